"""Scenes as TFDS datasets: one example per pixel, written as ArrayRecord, read without TensorFlow.

Features: ``spectrum`` (b,) float32, ``label`` int32 (0 = unlabelled, as in the published ground
truths), ``row`` and ``col`` int32. Spectra are stored as float32 in the sensor's units: one dtype
for every scene whatever its file held (uint16, int16, float64), exact for the 16-bit integers
that most sensors deliver; the normalisation (see `hsijax.spectral`) is stored as metadata and
applied when reading, so the dataset stays faithful to the file.

Records are not shuffled on disk: record ``i`` is pixel ``(i // width, i % width)``, so a data
source gives random access by pixel (whole-scene encoding, classification maps); the input
pipeline (`hsijax.data.pipeline`) shuffles.

Beside the records, a dense copy for training (`DENSE_PIXELS`, `DENSE_LABELS`: float32 pixels x
bands and int32 labels in record order), which the pipeline reads a block of consecutive pixels at a
time (`DenseReader`); a dataset written before hsijax kept one gets it on first use (`ensure_dense`).

Metadata: sensor, band count, wavelengths in nm (or none), height, width, class names, the
normalisation offset and scale, the source file, its dtype and value range, the labelled pixels and
classes, and how the file's layout was read (`hsijax.data.readers`).

A dataset appears whole or not at all: it is built in a temporary directory beside its target and
moved into place only when complete; a build that was killed leaves that directory behind, and the
next build in the same data dir removes it (a live build holds a lock on its own).

A damaged dataset file (truncated or garbled ArrayRecord shard, unreadable ``dataset_info.json``)
is reported as an `HsijaxError` naming the file, when it is opened or when a pixel is read from it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow_datasets as tfds

from hsijax.data.scene import Scene
from hsijax.errors import HsijaxError, describe, warn
from hsijax.files import check_output, write_npy_atomic
from hsijax.spectral import Normalization, band_ranges

VERSION = "1.0.0"
DEFAULT_DATA_DIR = Path.home() / "tensorflow_datasets"


class SceneStats(NamedTuple):
    """What checking a scene found: its normalisation and its value range in sensor units."""

    normalization: Normalization
    low: float
    high: float


def check_scene(scene: Scene, where: str = "") -> SceneStats:
    """Reject what would make a broken dataset; returns what the check measured.

    Messages name ``where`` (the source file) when given, else the scene.
    """
    if not re.fullmatch(r"[a-z][a-z0-9_]*", scene.name):
        raise HsijaxError(
            f"dataset name {scene.name!r}: use lowercase letters, digits and underscores, "
            "starting with a letter"
        )
    return check_scene_content(scene, where or scene.name)


def check_scene_content(scene: Scene, where: str) -> SceneStats:
    """`check_scene` without the name: what the evaluation commands check of a scene file.

    A constant cube, or bands constant over the whole scene, are kept (the normalisation still
    works) but named in one warning line: such data is usually a mistake upstream.
    """
    cube = scene.cube
    if cube.ndim != 3 or min(cube.shape) == 0:
        raise HsijaxError(f"{where}: expected a non-empty (H, W, b) cube, got shape {cube.shape}")
    lows, highs = band_ranges(cube, where, scene.nodata)  # raises on NaN / inf; nodata pixels left out
    low, high = float(lows.min()), float(highs.max())
    if scene.labels is not None and scene.labels.shape != cube.shape[:2]:
        raise HsijaxError(
            f"{where}: ground truth shape {scene.labels.shape} differs from the image's "
            f"{cube.shape[:2]}"
        )
    if scene.labels is not None and scene.class_names and scene.labels.max() > len(scene.class_names):
        raise HsijaxError(
            f"{where}: label {scene.labels.max()} is out of range for "
            f"{len(scene.class_names)} classes"
        )
    if scene.wavelengths_nm is not None and len(scene.wavelengths_nm) != cube.shape[-1]:
        raise HsijaxError(
            f"{where}: {len(scene.wavelengths_nm)} wavelengths for {cube.shape[-1]} bands"
        )
    constant = np.flatnonzero(lows == highs)
    if low == high:
        warn(f"{where}: every value of the cube is {number(low)}: a constant scene")
    elif len(constant):
        listed = ", ".join(str(band + 1) for band in constant[:8]) + (", ..." if len(constant) > 8 else "")
        warn(f"{where}: {len(constant)} of {cube.shape[-1]} bands are constant over the scene (bands {listed}, "
             "1-based)")
    return SceneStats(Normalization.from_range(low, high), low, high)


def number(value: float) -> str:
    """A value as a summary line shows it: whole numbers with thousands separators, else 4 digits."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:.4g}"


def scene_metadata(scene: Scene, stats: SceneStats, source: str) -> dict:
    height, width, bands = scene.cube.shape
    wavelengths = None if scene.wavelengths_nm is None else [float(w) for w in scene.wavelengths_nm]
    labelled = 0 if scene.labels is None else int((scene.labels > 0).sum())
    norm = stats.normalization
    return {
        "sensor": scene.sensor,
        "bands": bands,
        "height": height,
        "width": width,
        "wavelengths_nm": wavelengths,
        "class_names": list(scene.class_names),
        "normalization": {"offset": norm.offset, "scale": norm.scale},
        "source": source,
        "layout": {"read_as": scene.layout, "decided_by": scene.layout_decided_by},
        "source_dtype": str(scene.cube.dtype),
        "value_range": [stats.low, stats.high],
        "labelled_pixels": labelled,
        "labelled_classes": 0 if scene.labels is None else len(np.unique(scene.labels[scene.labels > 0])),
    }


def summary_line(name: str, metadata: dict) -> str:
    """One line saying what a dataset holds and how its file was read, from its metadata, e.g.
    ``my_scene: 70 × 90 pixels × 176 bands (band-last: the ground truth (70 × 90)), 4,120 labelled
    in 7 classes, int16 values -12...9,871``. Datasets written before hsijax recorded the layout
    leave that part out."""
    layout = metadata.get("layout")
    how = f" ({layout['read_as'].replace('_', '-')}: {layout['decided_by']})" if layout else ""
    if "labelled_pixels" not in metadata:
        labels = ""
    elif metadata["labelled_pixels"]:
        labels = f", {metadata['labelled_pixels']:,} labelled in {metadata['labelled_classes']} classes"
    else:
        labels = ", no labels"
    values = ""
    if "value_range" in metadata:
        low, high = metadata["value_range"]
        values = f", {metadata['source_dtype']} values {number(low)}…{number(high)}"
    return (f"{name}: {metadata['height']} × {metadata['width']} pixels × {metadata['bands']} bands{how}"
            f"{labels}{values}")


def pixel_features(bands: int) -> tfds.features.FeaturesDict:
    """The features of every hsijax dataset (see the module docstring)."""
    return tfds.features.FeaturesDict(
        {
            "spectrum": tfds.features.Tensor(shape=(bands,), dtype=np.float32),
            "label": tfds.features.Scalar(dtype=np.int32),
            "row": tfds.features.Scalar(dtype=np.int32),
            "col": tfds.features.Scalar(dtype=np.int32),
        }
    )


def pixel_examples(scene: Scene):
    """(key, example) for every pixel in row-major order; the key is the pixel's flat index."""
    cube, labels = scene.cube, scene.labels
    height, width, _ = cube.shape
    for row in range(height):
        spectra = np.asarray(cube[row], dtype=np.float32)
        for col in range(width):
            label = 0 if labels is None else int(labels[row, col])
            yield row * width + col, {"spectrum": spectra[col], "label": label, "row": row, "col": col}


def prepare_staged(name: str, data_dir, make_builder, overwrite: bool = True, after=None, **prepare_kwargs) -> Path:
    """Run ``make_builder(staging_dir).download_and_prepare()`` and move the result into place.

    The dataset is written in a temporary directory beside its target, so an error or a kill
    leaves no partial dataset under ``data_dir/NAME``; only complete datasets are moved in.
    """
    data_dir = check_output(data_dir, "directory")
    target = data_dir / name / VERSION
    if target.exists() and not overwrite:
        raise HsijaxError(f"{target}: already exists")
    # Folders this call creates (the data dir and its parents, TFDS's downloads folder): on failure
    # those left empty are removed again, so a refused scene leaves no trace.
    created = [p for p in (_first_missing(data_dir), data_dir / "downloads") if p is not None and not p.exists()]
    data_dir.mkdir(parents=True, exist_ok=True)
    remove_abandoned_builds(data_dir)
    staging, lock = locked_staging(data_dir, name)
    try:
        # TFDS prints "Downloading and preparing ..." naming the staging folder: not for users.
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            make_builder(staging).download_and_prepare(**prepare_kwargs)
        if after is not None:  # more files of the dataset, written before it moves into place
            after(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():  # moved into the staging folder (removed below): never half-deleted in place
            target.rename(staging / "replaced")
        (staging / name / VERSION).rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in reversed(created):
            _remove_empty_folders(folder)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        os.close(lock)
    return target


def locked_staging(data_dir: Path, name: str) -> tuple[Path, int]:
    """A new ``data_dir/.building-NAME-*`` folder and a descriptor holding an exclusive lock on it.

    The folder is created under another name and renamed once locked, so `remove_abandoned_builds`
    never sees an unlocked folder of a live build. The lock goes with the process, even on SIGKILL.
    """
    fresh = Path(tempfile.mkdtemp(dir=data_dir, prefix=f".starting-{name}-"))
    lock = os.open(fresh, os.O_RDONLY)
    fcntl.flock(lock, fcntl.LOCK_EX)
    staging = fresh.with_name(".building-" + fresh.name.removeprefix(".starting-"))
    fresh.rename(staging)
    return staging, lock


def remove_abandoned_builds(data_dir: Path) -> None:
    """Remove the staging folders that killed builds left in ``data_dir`` (those nobody holds locked)."""
    for folder in data_dir.glob(".building-*"):
        try:
            lock = os.open(folder, os.O_RDONLY)
        except OSError:
            continue  # removed meanwhile
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass  # locked: a build in progress
        finally:
            os.close(lock)


def _first_missing(path: Path) -> Path | None:
    """The outermost folder that ``path.mkdir(parents=True)`` would create, or None."""
    missing = None
    while not path.exists() and path != path.parent:
        missing, path = path, path.parent
    return missing


def _remove_empty_folders(folder: Path) -> None:
    """Remove ``folder`` and the folders under it if they hold no files."""
    for directory, _, _ in os.walk(folder, topdown=False):  # the deepest first
        with contextlib.suppress(OSError):
            os.rmdir(directory)


@dataclasses.dataclass(frozen=True)
class SceneDataset:
    """A prepared scene: random access to its pixels plus its metadata."""

    directory: Path
    source: object  # a tfds data source: len() and [index] -> dict of NumPy values
    metadata: dict

    @property
    def name(self) -> str:
        """The dataset's name: its directory is ``.../NAME/VERSION``."""
        return self.directory.parent.name

    def __len__(self) -> int:
        return len(self.source)

    @property
    def bands(self) -> int:
        return self.metadata["bands"]

    @property
    def normalization(self) -> Normalization:
        """The scene's own min-max map to [0, 1], stored with it."""
        norm = self.metadata["normalization"]
        return Normalization(norm["offset"], norm["scale"])

    @property
    def wavelengths_nm(self) -> np.ndarray | None:
        wavelengths = self.metadata.get("wavelengths_nm")
        return None if wavelengths is None else np.asarray(wavelengths, np.float64)

    @property
    def width(self) -> int:
        return self.metadata["width"]

    def dense(self) -> DenseReader:
        """Contiguous row ranges of the dense copy (written from the records on first use)."""
        ensure_dense(self)
        return DenseReader(self.directory / DENSE_PIXELS, self.directory / DENSE_LABELS)

    def spectra(self, indices) -> np.ndarray:
        """The spectra of pixels ``indices`` (n, b), float32 in sensor units, in ascending pixel order,
        from the dense copy: only the pages those pixels lie on are read."""
        ensure_dense(self)
        dense = np.load(self.directory / DENSE_PIXELS, mmap_mode="r")
        return np.asarray(dense[np.sort(np.asarray(indices, np.int64))], np.float32)

    def read(self, indices) -> dict[str, np.ndarray]:
        """Pixels ``indices`` in one read: ``spectrum`` (n, b) float32 in sensor units, ``label``,
        ``row``, ``col`` (n,) int32."""
        examples = self.source.__getitems__([int(i) for i in indices])
        pixels = {"spectrum": np.stack([e["spectrum"] for e in examples]).astype(np.float32, copy=False)}
        for key in ("label", "row", "col"):
            pixels[key] = np.asarray([e[key] for e in examples], np.int32)
        return pixels


def load_dataset(directory) -> SceneDataset:
    """Open a dataset directory written by `build_dataset` (``.../NAME/VERSION``)."""
    directory = Path(directory).expanduser()
    if not (directory / "dataset_info.json").is_file():
        raise HsijaxError(f"{directory}: not a prepared hsijax dataset (no dataset_info.json)")
    try:
        builder = tfds.builder_from_directory(str(directory))
        source = CheckedSource(builder.as_data_source()["train"], directory)
        return SceneDataset(directory, source, dict(builder.info.metadata))
    except Exception as error:  # TFDS raises many types for a damaged dataset_info.json
        raise HsijaxError(f"{directory}: damaged dataset ({describe(error)}); prepare or import it again") from None


class CheckedSource:
    """A TFDS data source whose damaged records become one `HsijaxError` naming their shard file.

    ArrayRecord raises on a garbled shard (Riegeli's hashes fail) but reads every record of a
    truncated one back empty, which TFDS decodes to None features: both are caught here.
    """

    def __init__(self, source, directory: Path):
        self.source, self.directory = source, directory

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index):
        return self.__getitems__([index.__index__()])[0]

    def __getitems__(self, indices):
        if len(indices) and not 0 <= min(indices) <= max(indices) < len(self):  # a caller's mistake, not damage
            raise IndexError(f"pixel indices {min(indices)}..{max(indices)} out of range for {len(self)} pixels")
        try:
            examples = self.source.__getitems__(indices)
        except Exception as error:  # ArrayRecord / Riegeli and the feature decoder raise various types
            raise self._damaged(indices, describe(error)) from None
        empty = [i for i, example in zip(indices, examples) if any(v is None for v in example.values())]
        if empty:
            raise self._damaged(empty, "records read back empty: truncated?")
        return examples

    def _damaged(self, indices, reason: str) -> HsijaxError:
        files = ", ".join(map(str, self._shards_of(indices)))
        return HsijaxError(f"{files}: damaged dataset file ({reason}); prepare or import it again")

    def _shards_of(self, indices) -> list[Path]:
        """The shard files that hold ``indices``, or the dataset directory if that cannot be told."""
        inner = getattr(self.source, "data_source", None)  # ArrayRecord's source: private, hence the guard
        try:
            return sorted({Path(inner._paths[inner._reader_idx_and_position(i)[0]]) for i in indices})
        except (AttributeError, IndexError, TypeError, ValueError):
            return [self.directory]


DENSE_PIXELS = "pixels.npy"  # (H * W, b) float32 in sensor units, record order
DENSE_LABELS = "labels.npy"  # (H * W,) int32


def write_dense(directory: Path, spectra_blocks, labels: np.ndarray, bands: int) -> None:
    """Write the dense copy of a dataset beside its records: ``pixels.npy`` from ``spectra_blocks``
    (an iterable of (n, b) blocks in record order) and ``labels.npy``, each whole or not at all."""
    directory = Path(directory)
    write_npy_atomic(directory / DENSE_PIXELS, (len(labels), bands), "<f4", spectra_blocks)
    write_npy_atomic(directory / DENSE_LABELS, (len(labels),), "<i4", [labels])


def ensure_dense(dataset: SceneDataset, chunk: int = 65536) -> Path:
    """The dataset's dense copy (`DENSE_PIXELS`), written from its records the first time it is
    needed: datasets written before hsijax kept one get it on first use."""
    directory = dataset.directory
    if not ((directory / DENSE_PIXELS).is_file() and (directory / DENSE_LABELS).is_file()):
        total, labels = len(dataset), np.empty(len(dataset), np.int32)

        def blocks():
            for start in range(0, total, chunk):
                pixels = dataset.read(range(start, min(start + chunk, total)))
                labels[start:start + len(pixels["label"])] = pixels["label"]
                yield pixels["spectrum"]

        try:
            write_dense(directory, blocks(), labels, dataset.bands)
        except OSError as error:
            raise HsijaxError(f"{directory}: cannot write the dataset's dense copy {DENSE_PIXELS} ({error}); "
                              "make the dataset folder writable") from None
    return directory / DENSE_PIXELS


class DenseReader:
    """Reads rows ``start:stop`` of a dense copy with one ``pread`` into a new array: no memory map,
    so a pass over a scene far larger than memory leaves nothing resident behind it."""

    def __init__(self, pixels: Path, labels: Path):
        with open(pixels, "rb") as stream:
            version = np.lib.format.read_magic(stream)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(stream)
            self.offset = stream.tell()
        if dtype != np.dtype("<f4") or len(shape) != 2:
            raise HsijaxError(f"{pixels}: not a dense copy of float32 (pixels, bands); prepare the dataset again")
        self.path, (self.count, self.bands) = pixels, shape
        self.labels = np.load(labels)  # 4 bytes a pixel
        self.descriptor = os.open(pixels, os.O_RDONLY)

    def rows(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, self.bands), np.float32)
        wanted = out.nbytes
        if os.preadv(self.descriptor, [memoryview(out).cast("B")], self.offset + start * self.bands * 4) != wanted:
            raise HsijaxError(f"{self.path}: the dense copy is truncated; prepare the dataset again")
        return out

    def __del__(self):
        if getattr(self, "descriptor", None) is not None:
            os.close(self.descriptor)


def read_scene(dataset: SceneDataset, chunk: int = 8192) -> Scene:
    """The whole scene back in memory: cube (H, W, b) float32 in sensor units, labels (H, W)."""
    meta = dataset.metadata
    height, width, bands = meta["height"], meta["width"], meta["bands"]
    cube = np.empty((height * width, bands), np.float32)
    labels = np.empty((height * width,), np.int32)
    for start in range(0, height * width, chunk):
        pixels = dataset.read(range(start, min(start + chunk, height * width)))
        cube[start:start + chunk] = pixels["spectrum"]
        labels[start:start + chunk] = pixels["label"]
    return Scene(
        dataset.name, meta["sensor"], cube.reshape(height, width, bands), labels.reshape(height, width),
        dataset.wavelengths_nm, tuple(meta.get("class_names") or ()),
    )
