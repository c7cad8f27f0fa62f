"""Read a hyperspectral cube or a label map from the file formats scenes are published in.

Formats: MATLAB ``.mat`` v5 (scipy) and v7.3 (HDF5, h5py), ENVI ``.hdr`` + data file (the header
and its wavelengths by spectral, the cube by rows), TIFF/GeoTIFF (multi-band ones by GDAL
in windows, with their georeferencing; others by tifffile) and ``.npy`` (memory-mapped). Cubes read
in windows (`hsijax.data.rasters.WindowedCube`) are never whole in memory unless asked to be.

Layouts: cubes come out as (H, W, b), read by evidence, never by a guess from the array's sizes
alone (`decide_layout`). A 3-D array is band-last (H, W, b) or band-first (b, H, W); what decides:
- what the file says: an ENVI header's interleave (spectral reads the cube by it; never second-
  guessed, so ``--layout`` does not apply), a TIFF's PlanarConfiguration (``separate``: band-first,
  ``contig``: band-last, as tifffile reports its axes ``SYX`` / ``YXS``);
- what the user gives: ``--layout``, the ground truth's shape and ``--shape`` (the spatial axes),
  a wavelength list's length (the band axis) -- and for a catalogued scene its published band count;
- only when these leave both readings: the format's convention -- MATLAB and NumPy arrays are
  band-last, a TIFF's pages (axes ``QYX``) are bands -- else a refusal naming both readings and
  ``--layout``. Evidence that contradicts itself is refused in one line naming each piece.
A 2-D array with ``shape=(H, W)`` is a bands x pixels matrix with the pixels in MATLAB column-major
order (Samson, Jasper Ridge): ``cube = Y.T.reshape(W, H, b).transpose(1, 0, 2)``. MATLAB v7.3 files
store arrays transposed, so their axes are reversed on reading.

Every failure raises `HsijaxError` naming the file and what is wrong with it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from hsijax.data.rasters import EnviCube, GdalCube, RawTiffCube, WindowedCube, opens_with_gdal
from hsijax.errors import HsijaxError

CUBE_SUFFIXES = (".mat", ".npy", ".hdr", ".tif", ".tiff")


def _arrays_in_mat(path: Path) -> dict[str, np.ndarray]:
    """All numeric arrays of a .mat file, v5 or v7.3, with v7.3's transposition undone.

    Fields of MATLAB structs are included as ``"struct/field"`` (Chikusei's ground truth is one).
    """
    import h5py
    import scipy.io

    if h5py.is_hdf5(path):  # v7.3: HDF5 behind a 512-byte MATLAB header
        return _arrays_in_hdf5_mat(path)
    try:
        contents = scipy.io.loadmat(path)
    except Exception as error:  # scipy raises many types for damaged files
        raise HsijaxError(f"{path}: not a readable MATLAB file ({error})") from None
    arrays = {}
    for key, value in contents.items():
        if not key.startswith("__"):
            _collect_v5(key, value, arrays)
    return arrays


def _collect_v5(name: str, value, arrays: dict) -> None:
    if isinstance(value, np.ndarray) and value.dtype.names and value.size == 1:  # a struct
        for field in value.dtype.names:
            _collect_v5(f"{name}/{field}", value[field].item(), arrays)
    elif _numeric(value):
        arrays[name] = value


def _arrays_in_hdf5_mat(path: Path) -> dict[str, np.ndarray]:
    import h5py

    arrays = {}

    def collect(name, item):
        if isinstance(item, h5py.Dataset) and _numeric(item) and not name.startswith("#refs#"):
            arrays[name] = np.asarray(item).transpose()

    try:
        with h5py.File(path, "r") as handle:
            handle.visititems(collect)
    except (OSError, ValueError) as error:
        raise HsijaxError(f"{path}: not a readable MATLAB v7.3 (HDF5) file ({error})") from None
    return arrays


def _numeric(array) -> bool:
    return getattr(array, "dtype", np.dtype(object)).kind in "biuf" and len(array.shape) >= 1


def _pick(arrays: dict[str, np.ndarray], path: Path, key: str | None, ndims: tuple[int, ...], what: str):
    """The array named ``key``, or else the largest array with one of ``ndims`` dimensions."""
    if key is not None:
        if key not in arrays:
            raise HsijaxError(f"{path}: no numeric variable {key!r}; it has {sorted(arrays) or 'none'}")
        return arrays[key]
    candidates = [a for a in arrays.values() if a.ndim in ndims and min(a.shape) > 0]
    if not candidates:
        shapes = {k: v.shape for k, v in arrays.items()}
        raise HsijaxError(f"{path}: no {what} found (numeric variables: {shapes or 'none'})")
    return max(candidates, key=lambda a: a.size)


def _read_envi(path: Path) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(cube (H, W, b), wavelengths, interleave): the header read by spectral (which finds the data
    file), the cube by rows from the data file (`EnviCube`)."""
    from spectral.io import envi

    try:
        image = envi.open(str(path))
        cube = EnviCube(image.filename, image.metadata)
    except HsijaxError:
        raise
    except Exception as error:  # spectral raises its own and OS errors for missing data files
        raise HsijaxError(f"{path}: not a readable ENVI header and data file ({error})") from None
    wavelengths = image.metadata.get("wavelength")
    if wavelengths is not None:
        wavelengths = _in_nanometres(np.asarray(wavelengths, dtype=np.float64), image.metadata)
    return cube, wavelengths, str(image.metadata.get("interleave", "bsq")).lower()


def _envi_header_wavelengths(path: Path) -> np.ndarray:
    from spectral.io import envi

    try:
        header = envi.read_envi_header(str(path))
    except Exception as error:
        raise HsijaxError(f"{path}: not a readable ENVI header ({error})") from None
    if "wavelength" not in header:
        raise HsijaxError(f"{path}: the ENVI header has no wavelength list")
    return _in_nanometres(np.asarray(header["wavelength"], np.float64), header)


def _in_nanometres(wavelengths: np.ndarray, header: dict) -> np.ndarray:
    units = str(header.get("wavelength units", "nanometers")).lower()
    micrometres = units.startswith("micro") or units in ("um", "µm") or wavelengths.max() < 100
    return wavelengths * 1000.0 if micrometres else wavelengths


def _read_tiff(path: Path) -> tuple[np.ndarray | ArrayShape, str, WindowedCube | None]:
    """(array, its axes as tifffile names them: S samples, Y rows, X columns, Q/I pages, ..., a
    band-last view read by windows). A TIFF whose own axes say where the bands are (samples,
    contiguous or separate planes) and that GDAL reads as that many bands is read by windows
    (`WindowedCube`: an uncompressed striped one by ``pread``, others by GDAL; the array is then its
    shape alone); any other TIFF whole, by tifffile."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tiff:
            series = tiff.series[0]
            shape, axes, dtype = tuple(series.shape), series.axes, series.dtype
            if axes in ("YXS", "SYX") and opens_with_gdal(path, shape[axes.index("S")]):
                usable = len(tiff.pages) == 1 and RawTiffCube.usable(tiff.pages[0])
                return ArrayShape(shape, dtype), axes, RawTiffCube(path) if usable else GdalCube(path)
            return series.asarray(), axes, None
    except HsijaxError:
        raise
    except Exception as error:
        raise HsijaxError(f"{path}: not a readable TIFF file ({error})") from None


def _read_npy(path: Path) -> np.ndarray:
    with open(path, "rb") as stream:
        if stream.read(6) != b"\x93NUMPY":  # else NumPy takes it for a pickle and says so
            raise HsijaxError(f"{path}: not a .npy file (it does not start with the NumPy header)")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as error:
        if "mmap length is greater than file size" in str(error):
            raise HsijaxError(f"{path}: the .npy file is truncated (its header promises more data)") from None
        raise HsijaxError(f"{path}: not a readable .npy file ({error})") from None
    except Exception as error:
        raise HsijaxError(f"{path}: not a readable .npy file ({error})") from None


def _existing_file(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise HsijaxError(f"{path}: no such file")
    if not path.is_file():
        raise HsijaxError(f"{path}: not a file")
    if not os.access(path, os.R_OK):
        raise HsijaxError(f"{path}: permission denied, the file is not readable")
    if path.stat().st_size == 0:
        raise HsijaxError(f"{path}: the file is empty")
    return path


class ArrayShape(NamedTuple):
    """The shape and dtype of an array in a file that is read by windows, not whole."""

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)


@dataclasses.dataclass(frozen=True)
class FileArray:
    """An array as read from a file, and what the file itself says about its axes."""

    array: np.ndarray
    wavelengths_nm: np.ndarray | None = None  # an ENVI header's own list
    envi_interleave: str | None = None  # ENVI: the array is already (rows, columns, bands)
    tiff_axes: str | None = None
    convention: str | None = None  # "MATLAB", "NumPy": band-last by convention
    band_last: WindowedCube | None = None  # a TIFF read by windows: its (H, W, b) view (``array``: its shape)


def read_file_array(path, key: str | None, ndims: tuple[int, ...], what: str) -> FileArray:
    """The array of any supported file; see the module docstring."""
    path = _existing_file(path)
    suffix = path.suffix.lower()
    if suffix == ".mat":
        return FileArray(_pick(_arrays_in_mat(path), path, key, ndims, what), convention="MATLAB")
    if suffix == ".hdr":
        cube, wavelengths, interleave = _read_envi(path)
        return FileArray(cube, wavelengths, envi_interleave=interleave)
    if suffix in (".tif", ".tiff"):
        array, axes, windowed = _read_tiff(path)
        return FileArray(array, tiff_axes=axes, band_last=windowed)
    if suffix == ".npy":
        return FileArray(_read_npy(path), convention="NumPy")
    raise HsijaxError(f"{path}: unsupported file type {suffix!r}; expected one of {CUBE_SUFFIXES}")


def read_arrays(path, key: str | None, ndims: tuple[int, ...], what: str):
    """(array, wavelengths or None) from any supported file."""
    read = read_file_array(path, key, ndims, what)
    if read.band_last is not None:
        raise HsijaxError(f"{path}: a {read.band_last.shape[-1]}-band raster, not a {what}")
    return read.array, read.wavelengths_nm


LAYOUTS = ("auto", "band_last", "band_first")
READINGS = ("band_last", "band_first")


@dataclasses.dataclass(frozen=True)
class Evidence:
    """One thing that says how a 3-D array is laid out: the readings it allows, and whether it is
    only a convention (which decides nothing against any other evidence)."""

    name: str  # as a message names it, e.g. "the ground truth (70 x 90)"
    readings: frozenset[str]
    convention: bool = False


@dataclasses.dataclass(frozen=True)
class CubeReading:
    """A cube read from a file: (H, W, b), its own wavelengths if the file has them, and how its
    layout was decided."""

    cube: np.ndarray
    wavelengths_nm: np.ndarray | None
    layout: str  # band_last | band_first | bands_by_pixels | pixels_by_bands
    decided_by: str


def reading_shape(shape: tuple[int, int, int], reading: str) -> tuple[int, int, int]:
    """(H, W, b) of a 3-D array's shape under a reading."""
    return tuple(shape) if reading == "band_last" else (shape[1], shape[2], shape[0])


def describe_reading(shape, reading: str) -> str:
    height, width, bands = reading_shape(shape, reading)
    return f"{reading.replace('_', '-')}, {height} × {width} pixels × {bands} bands"


def layout_evidence(shape: tuple[int, int, int], read: FileArray, layout: str = "auto",
                    spatial: list[tuple[tuple[int, int], str]] = (),
                    band_count: tuple[int, str] | None = None) -> list[Evidence]:
    """What says how an array of ``shape`` is laid out: the file, ``--layout``, spatial sizes
    (``(shape, what gives it)`` each) and the band count (``(count, what gives it)``)."""
    evidence = []
    if read.tiff_axes is not None:
        axes = read.tiff_axes
        if axes == "SYX":
            evidence.append(Evidence("the TIFF's PlanarConfiguration (separate, axes SYX)", frozenset({"band_first"})))
        elif axes == "YXS":
            evidence.append(Evidence("the TIFF's PlanarConfiguration (contig, axes YXS)", frozenset({"band_last"})))
        elif len(axes) == 3 and axes.endswith("YX"):
            evidence.append(Evidence(f"the TIFF's pages as bands (axes {axes})", frozenset({"band_first"}), True))
    if read.convention:
        evidence.append(Evidence(f"the {read.convention} convention", frozenset({"band_last"}), True))
    if layout != "auto":
        evidence.append(Evidence(f"--layout {layout}", frozenset({layout})))
    for size, what in spatial:
        evidence.append(Evidence(f"{what} ({size[0]} × {size[1]})", frozenset(
            r for r in READINGS if reading_shape(shape, r)[:2] == tuple(size))))
    if band_count is not None:
        count, what = band_count
        evidence.append(Evidence(f"{what} ({count} bands)", frozenset(
            r for r in READINGS if reading_shape(shape, r)[2] == count)))
    return evidence


def decide_layout(path, shape: tuple[int, int, int], evidence: list[Evidence]) -> tuple[str, str]:
    """(reading, what decided it) from ``evidence``; `HsijaxError` naming the pieces when they
    contradict each other, or naming both readings when nothing but sizes could tell them apart."""
    # Evidence that fits neither reading decides nothing: its own check refuses it after reading,
    # naming its file (the ground truth's shape, the wavelength list's length, the catalogue's bands).
    firm = [e for e in evidence if not e.convention and e.readings]
    allowed = set(READINGS).intersection(*(e.readings for e in firm))
    if not allowed:
        said = "; ".join(f"{e.name} fits " + " or ".join(describe_reading(shape, r) for r in sorted(e.readings))
                         for e in firm)
        raise HsijaxError(f"{path}: the evidence on the layout of its {tuple(shape)} array conflicts: {said}; "
                          "correct the inputs, or choose with --layout band_last or --layout band_first")
    if len(allowed) == 1:
        reading = allowed.pop()
        return reading, ", ".join(e.name for e in firm if e.readings == {reading})
    for e in evidence:
        if e.convention:
            (reading,) = e.readings
            return reading, e.name
    raise HsijaxError(f"{path}: a {tuple(shape)} array reads as {describe_reading(shape, 'band_last')} or as "
                      f"{describe_reading(shape, 'band_first')}, and nothing says which; choose with "
                      "--layout band_last or --layout band_first (or give --gt or --wavelengths)")


def to_band_last(read: FileArray, path, shape: tuple[int, int] | None = None, layout: str = "auto",
                 labels_shape: tuple[int, int] | None = None,
                 band_count: tuple[int, str] | None = None) -> CubeReading:
    """(H, W, b) from a band-last or band-first cube, or from a bands x pixels matrix + ``shape``,
    with the layout decided by the evidence (see the module docstring)."""
    array = read.array
    if layout not in LAYOUTS:
        raise HsijaxError(f"layout {layout!r}: expected one of {LAYOUTS}")
    if array.ndim == 2:
        if shape is None:
            raise HsijaxError(
                f"{path}: holds a 2-D array {array.shape}; for a bands x pixels matrix give --shape H W"
            )
        height, width = shape
        if array.shape[0] == height * width != array.shape[1] and 1 in shape:
            # A table of spectra (pixels x bands) as an N x 1 image: no pixel order to guess. For a
            # real image a pixels x bands matrix is refused below (row- or column-major is unknowable).
            cube = np.asarray(array).reshape(height, width, array.shape[1])
            return CubeReading(cube, read.wavelengths_nm, "pixels_by_bands", f"--shape {height} {width}")
        if array.shape[1] != height * width:
            turned = (" (its rows would: a pixels x bands matrix; transpose it to bands x pixels in column-major "
                      "pixel order, or give a table of spectra as --shape N 1)")
            turned = turned if array.shape[0] == height * width else ""
            raise HsijaxError(
                f"{path}: {array.shape[1]} pixels do not fill --shape {height} {width} "
                f"({height * width} pixels){turned}"
            )
        cube = np.asarray(array).T.reshape(width, height, array.shape[0]).transpose(1, 0, 2)
        return CubeReading(cube, read.wavelengths_nm, "bands_by_pixels", f"--shape {height} {width}")
    if array.ndim != 3:
        raise HsijaxError(f"{path}: expected a 3-D cube, got an array of shape {array.shape}")
    if min(array.shape) == 0:
        raise HsijaxError(f"{path}: the cube has a zero-size dimension {array.shape}")
    if read.envi_interleave is not None:
        if layout != "auto":
            raise HsijaxError(f"{path}: --layout does not apply to an ENVI file: its header's interleave "
                              f"({read.envi_interleave}) says how it is laid out")
        reading, decided_by = "band_last", f"the ENVI header (interleave {read.envi_interleave})"
        evidence = layout_evidence(array.shape, read, spatial=_spatial(shape, labels_shape), band_count=band_count)
        decide_layout(path, array.shape, [Evidence(decided_by, frozenset({reading})), *evidence])
    else:
        evidence = layout_evidence(array.shape, read, layout, _spatial(shape, labels_shape), band_count)
        reading, decided_by = decide_layout(path, array.shape, evidence)
    if read.band_last is not None:  # the file's own axes decided (evidence against them is refused above)
        cube = read.band_last
    else:
        cube = np.moveaxis(array, 0, -1) if reading == "band_first" else array
    return CubeReading(cube, read.wavelengths_nm, reading, decided_by)


def _spatial(shape, labels_shape) -> list[tuple[tuple[int, int], str]]:
    """The spatial sizes given: the ground truth's shape and ``--shape``."""
    return [(tuple(size), what) for size, what in ((labels_shape, "the ground truth"), (shape, "--shape"))
            if size is not None]


def read_cube(path, key: str | None = None, shape: tuple[int, int] | None = None, layout: str = "auto",
              labels_shape: tuple[int, int] | None = None, band_count: tuple[int, str] | None = None) -> CubeReading:
    """The cube (H, W, b) of a file of any supported format, its own wavelengths (nm) if it has
    them, and how its layout was decided from the file, ``layout``, the ground truth's shape
    ``labels_shape``, ``shape`` and ``band_count`` (``(count, what gives it)``)."""
    read = read_file_array(path, key, (2, 3) if shape else (3,), "3-D cube")
    reading = to_band_last(read, path, shape, layout, labels_shape, band_count)
    if reading.cube.dtype.kind not in "biuf":
        raise HsijaxError(f"{path}: the cube is not numeric (dtype {reading.cube.dtype})")
    return reading


def read_labels(path, key: str | None = None) -> np.ndarray:
    """A 2-D label map (H, W) of non-negative integers, 0 = unlabelled."""
    array, _ = read_arrays(path, key, (2,), "2-D label map")
    array = np.asarray(array)
    if array.ndim > 2:  # e.g. (1, H, W); a (N, 1) column of labels stays 2-D
        array = np.squeeze(array)
    if array.ndim != 2:
        raise HsijaxError(f"{path}: expected a 2-D label map, got shape {array.shape}")
    if array.dtype.kind == "f":
        if not np.isfinite(array).all() or not np.array_equal(array, np.round(array)):
            raise HsijaxError(f"{path}: labels must be whole numbers")
    elif array.dtype.kind not in "biu":
        raise HsijaxError(f"{path}: labels must be integers, got dtype {array.dtype}")
    if array.size and array.min() < 0:
        raise HsijaxError(f"{path}: labels must be >= 0 (0 = unlabelled), found {array.min()}")
    if array.size and array.max() > np.iinfo(np.int32).max:  # astype would wrap them around
        raise HsijaxError(f"{path}: label {array.max()} is out of range (labels are int32, at most "
                          f"{np.iinfo(np.int32).max})")
    return array.astype(np.int32)


def block_majority(labels: np.ndarray, shape: tuple[int, int], path) -> np.ndarray:
    """A label map whose size is a whole multiple of the image's, brought to the image's grid: each
    image pixel takes the most frequent label of its block (0, unlabelled, counts as a label, so a
    mostly unlabelled block stays unlabelled). For label maps at a finer resolution than the image
    (Houston 2018: 0.5 m labels, 1 m spectra)."""
    (rows, cols), (height, width) = labels.shape, shape
    if rows % height or cols % width or rows // height != cols // width:
        raise HsijaxError(f"{path}: ground truth {labels.shape} is not a whole multiple of the image's {shape}")
    factor = rows // height
    blocks = labels.reshape(height, factor, width, factor).transpose(0, 2, 1, 3).reshape(height, width, -1)
    counts = np.apply_along_axis(np.bincount, -1, blocks, minlength=int(labels.max()) + 1)
    return counts.argmax(axis=-1).astype(np.int32)


def read_wavelengths(path, key: str | None = None) -> np.ndarray:
    """Band centres in nm from a text file (one per line, or the first column), a .npy/.mat file
    (``key``: its variable), or an ENVI header's ``wavelength`` list. Lists whose values are all
    below 30 are taken as micrometres and converted (no imaging sensor has bands below 30 nm)."""
    path = _existing_file(path)
    if path.suffix.lower() == ".hdr":
        return _envi_header_wavelengths(path)
    if path.suffix.lower() in (".npy", ".mat"):
        array, _ = read_arrays(path, key, (1, 2), "wavelength list")
    else:
        try:
            array = np.loadtxt(path, ndmin=2)[:, 0]
        except ValueError as error:
            raise HsijaxError(f"{path}: not a table of numbers ({error})") from None
    wavelengths = np.asarray(array, dtype=np.float64).reshape(-1)
    if not (np.isfinite(wavelengths).all() and (wavelengths > 0).all()):
        raise HsijaxError(f"{path}: wavelengths must be positive finite numbers (nm)")
    return wavelengths * 1000.0 if wavelengths.max() < 30 else wavelengths


def read_band_selection(path, key: str | None, band_count: int) -> np.ndarray:
    """Which of ``band_count`` listed bands a cube keeps, as a boolean mask: from a 0/1 list of that
    length (an ENVI bad-band list) or from 1-based band numbers (a "selected bands" list)."""
    path = _existing_file(path)
    array, _ = read_arrays(path, key, (1, 2), "band selection")
    values = np.asarray(array).reshape(-1)
    if len(values) == band_count and set(np.unique(values)) <= {0, 1}:
        return values.astype(bool)
    numbers = values.astype(np.int64)
    if (numbers != values).any() or numbers.min(initial=1) < 1 or numbers.max(initial=1) > band_count:
        raise HsijaxError(f"{path}: a band selection must be a 0/1 list of {band_count} or band numbers "
                          f"1..{band_count}, got values {values.min():g}..{values.max():g}")
    mask = np.zeros(band_count, bool)
    mask[numbers - 1] = True
    return mask
