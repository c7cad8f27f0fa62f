"""Scenes in memory, and the one that works on a fresh machine: Indian Pines from the tensorly wheel.

The PyPI wheels of tensorly 0.9 and 0.10 carry the EHU "corrected" cube (145 x 145 x 200, uint16,
AVIRIS) and its 16-class ground truth (10249 labelled pixels), byte for byte the same files; 0.8
does not. hsijax depends on ``tensorly>=0.9`` as a data carrier (it never imports tensorly), so the
demo and the tests have real data without any download and a user's environment keeps its own
tensorly; the files' SHA-256 are checked on reading, so a future release that changed or dropped
them is one clear error, never different data.

The 200 corrected bands are the 220 AVIRIS bands minus the water-absorption bands 104-108,
150-163 and 220 (1-based); their centres come from the AVIRIS calibration file 92AV3C.spc.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from importlib import resources
from pathlib import Path

import numpy as np

from hsijax.data.rasters import GeoReference
from hsijax.data.wavelengths import INDIAN_PINES_220_WAVELENGTHS_NM, kept_bands
from hsijax.errors import HsijaxError

# 1-based AVIRIS bands removed from the 220 to make the 200-band "corrected" cube.
INDIAN_PINES_REMOVED_BANDS = (*range(104, 109), *range(150, 164), 220)

INDIAN_PINES_CLASSES = (
    "Alfalfa", "Corn-notill", "Corn-mintill", "Corn", "Grass-pasture", "Grass-trees",
    "Grass-pasture-mowed", "Hay-windrowed", "Oats", "Soybean-notill", "Soybean-mintill",
    "Soybean-clean", "Wheat", "Woods", "Buildings-Grass-Trees-Drives", "Stone-Steel-Towers",
)


@dataclasses.dataclass(frozen=True)
class Scene:
    """A scene: cube (H, W, b) in sensor units -- in memory, or a file read by rows
    (`hsijax.data.rasters.WindowedCube`) -- and labels (H, W), 0 = unlabelled."""

    name: str
    sensor: str
    cube: np.ndarray
    labels: np.ndarray | None
    wavelengths_nm: np.ndarray | None
    class_names: tuple[str, ...] = ()
    layout: str = "band_last"  # how the file held the cube: band_last | band_first | bands_by_pixels | pixels_by_bands
    layout_decided_by: str = "an array in memory"  # the evidence that decided it (`hsijax.data.readers`)
    georeference: GeoReference | None = None  # the file's CRS and transform (GeoTIFF, ENVI with map info)
    nodata: float | None = None  # the file's nodata value: a pixel whose every band holds it has no data


def indian_pines_wavelengths() -> np.ndarray:
    """Band centres (nm) of the 200 corrected Indian Pines bands."""
    return kept_bands(INDIAN_PINES_220_WAVELENGTHS_NM, INDIAN_PINES_REMOVED_BANDS)


# SHA-256 of the two files in the tensorly 0.9.0 and 0.10.0 wheels.
INDIAN_PINES_FILES = {
    "Indian_pines_corrected.npy": "8f038e4d81569e38ebfc72a15c9984c150de42580ab260be10a13442e912e451",
    "Indian_pines_gt.npy": "44610d21625b311b05b8e0c4ba9a6cc755c2fbb9df48e4d89419024aa6ad3f9d",
}
REINSTALL = "reinstall a tensorly release that carries them: pip install 'tensorly>=0.9,<=0.10'"


def _read_checked(folder, name: str) -> np.ndarray:
    data = (folder / name).read_bytes()
    if hashlib.sha256(data).hexdigest() != INDIAN_PINES_FILES[name]:
        raise HsijaxError(f"{folder / name}: not the Indian Pines file hsijax knows (its SHA-256 differs); {REINSTALL}")
    return np.load(io.BytesIO(data), allow_pickle=False)


def tensorly_data_folder() -> Path:
    """The folder of the tensorly wheel that holds the Indian Pines files."""
    return Path(str(resources.files("tensorly"))) / "datasets" / "data"


def load_indian_pines() -> Scene:
    """Indian Pines from the tensorly wheel, without importing tensorly itself."""
    try:
        folder = resources.files("tensorly") / "datasets" / "data"
        with resources.as_file(folder) as path:
            cube = _read_checked(path, "Indian_pines_corrected.npy")
            labels = _read_checked(path, "Indian_pines_gt.npy")
    except (ModuleNotFoundError, FileNotFoundError, OSError, ValueError) as error:
        raise HsijaxError(f"cannot read Indian Pines from the tensorly package ({error}); {REINSTALL}") from None
    return Scene(
        name="indian_pines",
        sensor="AVIRIS",
        cube=cube,
        labels=labels,
        wavelengths_nm=indian_pines_wavelengths(),
        class_names=INDIAN_PINES_CLASSES,
        layout_decided_by="the NumPy convention, the ground truth (145 × 145)",
    )
