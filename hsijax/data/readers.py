"""Read a hyperspectral cube or a label map from the file formats scenes are published in.

Formats: MATLAB ``.mat`` v5 (scipy) and v7.3 (HDF5, h5py), ENVI ``.hdr`` + data file (spectral,
wavelengths from the header), TIFF/GeoTIFF (tifffile) and ``.npy`` (memory-mapped).

Layouts: cubes come out as (H, W, b). A 3-D array is band-last unless its *first* axis is the
smallest, in which case it is taken as band-first (b, H, W). A 2-D array with ``shape=(H, W)`` is a
bands x pixels matrix with the pixels in MATLAB column-major order (Samson, Jasper Ridge):
``cube = Y.T.reshape(W, H, b).transpose(1, 0, 2)``. MATLAB v7.3 files store arrays transposed, so
their axes are reversed on reading.

Every failure raises `HsijaxError` naming the file and what is wrong with it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

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


def _read_envi(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    import spectral.io.envi as envi

    try:
        image = envi.open(str(path))
        cube = np.asarray(image.load())
    except Exception as error:  # spectral raises its own and OS errors for missing data files
        raise HsijaxError(f"{path}: not a readable ENVI header and data file ({error})") from None
    wavelengths = image.metadata.get("wavelength")
    if wavelengths is not None:
        wavelengths = _in_nanometres(np.asarray(wavelengths, dtype=np.float64), image.metadata)
    return cube, wavelengths


def _envi_header_wavelengths(path: Path) -> np.ndarray:
    import spectral.io.envi as envi

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


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        return tifffile.imread(path)
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


def read_arrays(path, key: str | None, ndims: tuple[int, ...], what: str):
    """(array, wavelengths or None) from any supported file; see the module docstring."""
    path = _existing_file(path)
    suffix = path.suffix.lower()
    if suffix == ".mat":
        return _pick(_arrays_in_mat(path), path, key, ndims, what), None
    if suffix == ".hdr":
        return _read_envi(path)
    if suffix in (".tif", ".tiff"):
        return _read_tiff(path), None
    if suffix == ".npy":
        return _read_npy(path), None
    raise HsijaxError(f"{path}: unsupported file type {suffix!r}; expected one of {CUBE_SUFFIXES}")


LAYOUTS = ("auto", "band_last", "band_first")


def to_band_last(array: np.ndarray, path, shape: tuple[int, int] | None, layout: str = "auto") -> np.ndarray:
    """(H, W, b) from a band-last or band-first cube, or from a bands x pixels matrix + ``shape``.

    ``layout="auto"`` takes a 3-D array as band-first when its first axis is the smallest.
    """
    if array.ndim == 2:
        if shape is None:
            raise HsijaxError(
                f"{path}: holds a 2-D array {array.shape}; for a bands x pixels matrix give --shape H W"
            )
        height, width = shape
        if array.shape[1] != height * width:
            raise HsijaxError(
                f"{path}: {array.shape[1]} pixels do not fill --shape {height} {width} "
                f"({height * width} pixels)"
            )
        return np.asarray(array).T.reshape(width, height, array.shape[0]).transpose(1, 0, 2)
    if array.ndim != 3:
        raise HsijaxError(f"{path}: expected a 3-D cube, got an array of shape {array.shape}")
    if min(array.shape) == 0:
        raise HsijaxError(f"{path}: the cube has a zero-size dimension {array.shape}")
    if layout not in LAYOUTS:
        raise HsijaxError(f"layout {layout!r}: expected one of {LAYOUTS}")
    band_first = layout == "band_first" or (layout == "auto" and array.shape[0] < min(array.shape[1:]))
    return np.moveaxis(array, 0, -1) if band_first else array


def read_cube(path, key: str | None = None, shape: tuple[int, int] | None = None, layout: str = "auto"):
    """(cube (H, W, b), wavelengths (b,) in nm or None) from a file of any supported format."""
    array, wavelengths = read_arrays(path, key, (2, 3) if shape else (3,), "3-D cube")
    cube = to_band_last(array, path, shape, layout)
    if cube.dtype.kind not in "biuf":
        raise HsijaxError(f"{path}: the cube is not numeric (dtype {cube.dtype})")
    return cube, wavelengths


def read_labels(path, key: str | None = None) -> np.ndarray:
    """A 2-D label map (H, W) of non-negative integers, 0 = unlabelled."""
    array, _ = read_arrays(path, key, (2,), "2-D label map")
    array = np.squeeze(np.asarray(array))
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


def read_wavelengths(path) -> np.ndarray:
    """Band centres in nm from a text file (one per line, or the first column), a .npy/.mat file,
    or an ENVI header's ``wavelength`` list (micrometres are converted)."""
    path = _existing_file(path)
    if path.suffix.lower() == ".hdr":
        return _envi_header_wavelengths(path)
    if path.suffix.lower() in (".npy", ".mat"):
        array, _ = read_arrays(path, None, (1, 2), "wavelength list")
    else:
        try:
            array = np.loadtxt(path, ndmin=2)[:, 0]
        except ValueError as error:
            raise HsijaxError(f"{path}: not a table of numbers ({error})") from None
    wavelengths = np.asarray(array, dtype=np.float64).reshape(-1)
    if not (np.isfinite(wavelengths).all() and (wavelengths > 0).all()):
        raise HsijaxError(f"{path}: wavelengths must be positive finite numbers (nm)")
    return wavelengths
