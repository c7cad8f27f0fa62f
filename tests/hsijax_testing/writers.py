"""Write arrays in the formats hyperspectral scenes are published in.

Used to make each TFDS builder's ``dummy_data/`` (small files in the real format of that scene's
published files) and by the tests. MATLAB v7.3 files are HDF5 with a 512-byte MATLAB header in
the user block and every array stored transposed (MATLAB is column-major); the ``MATLAB_class``
attribute is what MATLAB itself writes, so the files also open in MATLAB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

_MATLAB_CLASSES = {
    "uint8": "uint8", "uint16": "uint16", "int16": "int16", "int32": "int32",
    "float32": "single", "float64": "double",
}


def write_mat_v5(path, arrays: dict[str, np.ndarray]) -> None:
    """A MATLAB v5 .mat file (what ``save`` wrote before v7.3; scipy reads it)."""
    import scipy.io

    scipy.io.savemat(path, arrays, do_compression=True)


def write_mat_v73(path, arrays: dict[str, np.ndarray], groups: dict[str, dict] | None = None) -> None:
    """A MATLAB v7.3 (HDF5) .mat file; ``groups`` become MATLAB structs of arrays."""
    import h5py

    path = Path(path)
    with h5py.File(path, "w", userblock_size=512) as handle:
        for name, array in arrays.items():
            _write_matlab_array(handle, name, array)
        for name, fields in (groups or {}).items():
            group = handle.create_group(name)
            group.attrs["MATLAB_class"] = np.bytes_("struct")
            for field, array in fields.items():
                _write_matlab_array(group, field, array)
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Tue Nov 24 12:00:00 2026 HDF5 schema 1.00 ."
    with open(path, "r+b") as stream:
        stream.write(header.ljust(116) + b"\x00" * 8 + b"\x00\x02IM")


def _write_matlab_array(group, name: str, array: np.ndarray) -> None:
    array = np.asarray(array)
    dataset = group.create_dataset(name, data=array.transpose())
    dataset.attrs["MATLAB_class"] = np.bytes_(_MATLAB_CLASSES[array.dtype.name])


def write_tiff(path, array: np.ndarray) -> None:
    """A (Geo)TIFF; a (b, H, W) array is written band-sequential (planar), as GDAL writes cubes."""
    import tifffile

    array = np.asarray(array)
    planar = "separate" if array.ndim == 3 else None
    tifffile.imwrite(path, array, planarconfig=planar, photometric="minisblack")


def write_envi(header_path, cube: np.ndarray, wavelengths_nm=None, interleave: str = "bsq") -> None:
    """An ENVI header + data file pair from a (H, W, b) cube."""
    import spectral.io.envi as envi

    metadata = {"interleave": interleave}
    if wavelengths_nm is not None:
        metadata.update({"wavelength": [f"{w:.2f}" for w in wavelengths_nm],
                         "wavelength units": "Nanometers"})
    envi.save_image(str(header_path), cube, dtype=cube.dtype, interleave=interleave,
                    metadata=metadata, force=True, ext=".img")
