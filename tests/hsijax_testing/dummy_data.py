"""Small fake copies of a catalogued scene's files, in the real format of the published ones.

The builder tests read these through exactly the code path real files take, so each file keeps the
published file's name, MATLAB variable, MATLAB version (v5 or HDF5-based v7.3), dtype and
orientation; only the image is tiny and the values random. Regenerate every scene's files with
``PYTHONPATH=tests python -m hsijax_testing.dummy_data datasets`` (deterministic for a seed).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from hsijax.data.catalog import SCENES, SceneFile, SceneSpec
from hsijax_testing import writers

DUMMY_HEIGHT, DUMMY_WIDTH = 6, 5
_VALUE_RANGES = {"uint16": (0, 9000), "int16": (-50, 8000), "float32": (0.0, 1.0), "float64": (0.0, 1.0)}


def dummy_cube(spec: SceneSpec, dtype: str, rng: np.random.Generator) -> np.ndarray:
    """(H, W, b) random values in a plausible range for ``dtype``."""
    low, high = _VALUE_RANGES[dtype]
    shape = (DUMMY_HEIGHT, DUMMY_WIDTH, spec.bands)
    if np.dtype(dtype).kind == "f":
        return rng.uniform(low, high, shape).astype(dtype)
    return rng.integers(low, high, shape).astype(dtype)


def dummy_label_maps(spec: SceneSpec, rng: np.random.Generator) -> list[np.ndarray]:
    """One map per label file; several files split the labelled pixels between them (train/test)."""
    if not spec.label_files:
        return []
    labels = rng.integers(0, len(spec.class_names) + 1, (DUMMY_HEIGHT, DUMMY_WIDTH))
    labels[0, 0], labels[-1, -1] = 0, len(spec.class_names)  # an unlabelled pixel and the last class
    owner = rng.integers(0, len(spec.label_files), labels.shape)
    return [np.where(owner == index, labels, 0) for index in range(len(spec.label_files))]


def write_file(file: SceneFile, array: np.ndarray, directory: Path) -> None:
    """Write ``array`` ((H, W, b) cube or (H, W) labels) as ``file`` describes."""
    path = directory / file.filename
    array = array.astype(file.dtype)
    if file.role == "cube" and (file.layout == "band_first" or file.fmt == "tif"):
        array = np.moveaxis(array, -1, 0)  # TIFF cubes are written (b, H, W), band-sequential: see write_tiff
    if file.fmt == "mat_v5":
        if "/" in file.key:  # a field of a MATLAB struct, e.g. Chikusei's "GT/gt"
            struct, field = file.key.split("/")
            writers.write_mat_v5(path, {struct: {field: array}})
        else:
            writers.write_mat_v5(path, {file.key: array})
    elif file.fmt == "mat_v73":
        if "/" in file.key:
            group, field = file.key.split("/")
            writers.write_mat_v73(path, {}, groups={group: {field: array}})
        else:
            writers.write_mat_v73(path, {file.key: array})
    elif file.fmt == "tif":
        writers.write_tiff(path, array)
    elif file.fmt == "envi":
        writers.write_envi(path, array if array.ndim == 3 else array[..., None])
    else:
        raise ValueError(f"{file.filename}: unknown format {file.fmt!r}")


def dummy_arrays(spec: SceneSpec, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """The (H, W, b) cube and the label maps that the dummy files hold, in file order."""
    rng = np.random.default_rng(seed)
    return dummy_cube(spec, spec.cube_file.dtype, rng), dummy_label_maps(spec, rng)


def write_dummy_data(spec: SceneSpec, directory, seed: int = 0) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cube, label_maps = dummy_arrays(spec, seed)
    write_file(spec.cube_file, cube, directory)
    for file, labels in zip(spec.label_files, label_maps):
        write_file(file, labels, directory)


def main(datasets_dir: str) -> None:
    for name, spec in SCENES.items():
        write_dummy_data(spec, Path(datasets_dir) / name / "dummy_data")
        print(f"wrote {Path(datasets_dir) / name / 'dummy_data'}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "datasets")
