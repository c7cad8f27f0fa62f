"""`hsijax import`: every supported format and layout, bad input, and the real scenes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import tifffile
from conftest import environment

from benchmarks.shared_scenes import REAL_SCENES  # every image in ../shared/data
from hsijax.data.storage import load_dataset, read_scene

pytestmark = pytest.mark.full  # hsijax import in child processes, and the real scenes

rng = np.random.default_rng(0)
CUBE = rng.integers(0, 4000, size=(16, 14, 12)).astype(np.uint16)  # (H, W, b)
LABELS = rng.integers(0, 4, size=(16, 14)).astype(np.uint8)


def hsijax_import(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hsijax.cli", "import", *map(str, args)],
                          capture_output=True, text=True, timeout=120, env=environment())


def imported(tmp_path, *args) -> np.ndarray:
    """Import, check it printed the dataset directory, and return the cube read back."""
    result = hsijax_import(*args, "--name", "scene", "--data-dir", tmp_path / "data")
    assert result.returncode == 0, result.stderr
    directory = Path(result.stdout.strip().splitlines()[-1])
    assert directory == tmp_path / "data" / "scene" / "1.0.0"
    dataset = load_dataset(directory)
    meta = dataset.metadata
    cube = np.zeros((meta["height"], meta["width"], meta["bands"]), np.float32)
    labels = np.zeros((meta["height"], meta["width"]), np.int32)
    for index in range(len(dataset.source)):
        example = dataset.source[index]
        cube[example["row"], example["col"]] = example["spectrum"]
        labels[example["row"], example["col"]] = example["label"]
    return cube, labels, meta


def test_npy_band_last_with_gt_and_wavelengths(tmp_path):
    np.save(tmp_path / "cube.npy", CUBE)
    np.save(tmp_path / "gt.npy", LABELS)
    np.savetxt(tmp_path / "wl.txt", np.linspace(400, 1000, 12))
    cube, labels, meta = imported(tmp_path, tmp_path / "cube.npy", "--gt", tmp_path / "gt.npy",
                                  "--wavelengths", tmp_path / "wl.txt")
    np.testing.assert_array_equal(cube, CUBE)
    np.testing.assert_array_equal(labels, LABELS)
    assert meta["wavelengths_nm"][0] == 400 and meta["normalization"]["offset"] == CUBE.min()


def test_npy_band_first_is_read_by_its_evidence(tmp_path):
    """A band-first .npy is read band-first when something says so (here the ground truth); alone,
    NumPy's convention (band-last) reads it, and says so (tests/test_layouts.py has every case)."""
    np.save(tmp_path / "cube.npy", CUBE.transpose(2, 0, 1))
    np.save(tmp_path / "gt.npy", LABELS)
    cube, _, meta = imported(tmp_path, tmp_path / "cube.npy", "--gt", tmp_path / "gt.npy")
    np.testing.assert_array_equal(cube, CUBE)
    assert meta["layout"] == {"read_as": "band_first", "decided_by": "the ground truth (16 × 14)"}


def test_mat_v5_finds_the_cube_variable_itself(tmp_path):
    scipy.io.savemat(tmp_path / "scene.mat", {"labels": LABELS, "paviaU": CUBE, "note": np.ones(3)})
    cube, labels, _ = imported(tmp_path, tmp_path / "scene.mat", "--gt", tmp_path / "scene.mat")
    np.testing.assert_array_equal(cube, CUBE)
    np.testing.assert_array_equal(labels, LABELS)


def test_mat_v73_hdf5_is_read_in_matlab_orientation(tmp_path):
    path = tmp_path / "scene.mat"
    with h5py.File(path, "w", userblock_size=512) as handle:  # MATLAB writes arrays transposed
        handle["data"] = CUBE.transpose()
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Tue Nov 24 12:00:00 2026 HDF5 schema 1.00 ."
    with open(path, "r+b") as stream:  # the header MATLAB puts in the user block
        stream.write(header.ljust(116) + b"\x00" * 8 + b"\x00\x02IM")
    assert scipy.io.matlab.matfile_version(path) == (2, 0)
    np.testing.assert_array_equal(imported(tmp_path, tmp_path / "scene.mat", "--key", "data")[0], CUBE)


def test_envi_header_gives_the_wavelengths(tmp_path):
    import spectral.io.envi as envi

    envi.save_image(str(tmp_path / "scene.hdr"), CUBE, metadata={"wavelength": list(range(500, 512))})
    cube, _, meta = imported(tmp_path, tmp_path / "scene.hdr")
    np.testing.assert_array_equal(cube, CUBE)
    assert meta["wavelengths_nm"] == list(map(float, range(500, 512)))


def test_tiff_band_first(tmp_path):
    tifffile.imwrite(tmp_path / "scene.tif", CUBE.transpose(2, 0, 1))
    np.testing.assert_array_equal(imported(tmp_path, tmp_path / "scene.tif")[0], CUBE)


def test_bands_by_pixels_matrix_column_major(tmp_path):
    matrix = CUBE.transpose(1, 0, 2).reshape(-1, 12).T  # as Samson / Jasper Ridge are stored
    scipy.io.savemat(tmp_path / "scene.mat", {"Y": matrix})
    cube = imported(tmp_path, tmp_path / "scene.mat", "--shape", 16, 14)[0]
    np.testing.assert_array_equal(cube, CUBE)


def bad_inputs(tmp_path):
    scipy.io.savemat(tmp_path / "good.mat", {"cube": CUBE})
    (tmp_path / "truncated.mat").write_bytes((tmp_path / "good.mat").read_bytes()[:300])
    scipy.io.savemat(tmp_path / "flat.mat", {"x": np.ones((4, 4))})
    np.save(tmp_path / "nan.npy", np.where(CUBE > 3000, np.nan, CUBE.astype(np.float32)))
    np.save(tmp_path / "gt_small.npy", LABELS[:3])
    np.save(tmp_path / "gt_negative.npy", -LABELS.astype(np.int16) - 1)
    np.save(tmp_path / "zero.npy", np.zeros((16, 0, 12), np.float32))
    (tmp_path / "empty.npy").write_bytes(b"")
    good = tmp_path / "good.mat"
    return [
        ((tmp_path / "missing.mat",), "missing.mat: no such file"),
        ((tmp_path / "empty.npy",), "empty.npy: the file is empty"),
        ((tmp_path / "truncated.mat",), "truncated.mat: not a readable MATLAB file"),
        ((tmp_path / "flat.mat",), "flat.mat: no 3-D cube found"),
        ((good, "--key", "nope"), "no numeric variable 'nope'"),
        ((tmp_path / "nan.npy",), "contains NaN or infinite values"),
        ((good, "--gt", tmp_path / "gt_small.npy"), "gt_small.npy: ground truth shape (3, 14) differs"),
        ((good, "--gt", tmp_path / "gt_negative.npy"), "labels must be >= 0"),
        ((tmp_path / "zero.npy",), "zero-size dimension"),
    ]


def test_bad_input_is_one_clear_line_and_leaves_nothing(tmp_path):
    """Two cases end to end in a real process (exit status, stderr); tests/test_bad_input.py runs
    these and many more in-process."""
    for args, message in bad_inputs(tmp_path)[::6]:
        data_dir = tmp_path / "data"
        result = hsijax_import(*args, "--name", "scene", "--data-dir", data_dir)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (message, result.stderr)
        assert "Traceback" not in result.stderr
        assert not (data_dir / "scene").exists()
        assert not data_dir.exists() or not any(data_dir.iterdir())


def test_layout_flag_chooses_where_nothing_else_says(tmp_path):
    wide = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)  # band-last, its first axis the smallest
    np.save(tmp_path / "cube.npy", wide)  # before: taken for band-first by its sizes alone
    np.testing.assert_array_equal(imported(tmp_path, tmp_path / "cube.npy")[0], wide)
    cube, _, meta = imported(tmp_path / "again", tmp_path / "cube.npy", "--layout", "band_first")
    np.testing.assert_array_equal(cube, np.moveaxis(wide, 0, -1))
    assert meta["layout"] == {"read_as": "band_first", "decided_by": "--layout band_first"}


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """The `hsijax` command in-process (the real scenes are many; a subprocess each is slow)."""
    from hsijax.cli import main

    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def labels_of(directory) -> np.ndarray:
    return read_scene(load_dataset(directory)).labels.reshape(-1)  # in chunks: one read per pixel is slow


@pytest.mark.parametrize("file, options, shape, labelled, classes", REAL_SCENES,
                         ids=[scene[0] for scene in REAL_SCENES])
def test_real_scene_imports_with_the_published_shape(shared_data, tmp_path, capsys, file, options,
                                                    shape, labelled, classes):
    options = [str(shared_data / o) if o.endswith((".mat", ".npy")) else o for o in options]
    code, out, err = run_cli(capsys, "import", shared_data / file, *options, "--name", "scene",
                             "--data-dir", tmp_path)
    if "SaltonSea" in file:  # its 20 bad bands are NaN: the import must refuse, naming the file
        assert code == 2 and "salton_sea_roi.mat" in err and "NaN" in err
        return
    assert code == 0, err
    directory = out.strip().splitlines()[-1]
    meta = load_dataset(directory).metadata
    assert (meta["height"], meta["width"], meta["bands"]) == shape
    if labelled is not None:
        labels = labels_of(directory)
        assert int((labels > 0).sum()) == labelled and labels.max() == classes


def test_real_envi_header_wavelengths_are_read(shared_data):
    import spectral.io.envi as envi

    from hsijax.data.readers import read_wavelengths

    header = envi.read_envi_header(str(shared_data / "Samson" / "samson_1.img.hdr"))
    assert len(header["wavelength"]) == 156
    assert len(read_wavelengths(shared_data / "Moffett" / "Moffet_wavelength.txt")) == 224
