"""Scenes in memory, and the one that works on a fresh machine: Indian Pines from ``tensorly==0.10.0``.

The PyPI wheel of tensorly carries the EHU "corrected" cube (145 x 145 x 200, uint16, AVIRIS) and
its 16-class ground truth (10249 labelled pixels). hsijax depends on that exact version so that
the demo and the tests have real data without any download.

The 200 corrected bands are the 220 AVIRIS bands minus the water-absorption bands 104-108,
150-163 and 220 (1-based); their centres come from the AVIRIS calibration file 92AV3C.spc.
"""

from __future__ import annotations

import dataclasses
from importlib import resources

import numpy as np

from hsijax.errors import HsijaxError
from hsijax.wavelengths import INDIAN_PINES_220_WAVELENGTHS_NM, kept_bands


# 1-based AVIRIS bands removed from the 220 to make the 200-band "corrected" cube.
INDIAN_PINES_REMOVED_BANDS = (*range(104, 109), *range(150, 164), 220)

INDIAN_PINES_CLASSES = (
    "Alfalfa", "Corn-notill", "Corn-mintill", "Corn", "Grass-pasture", "Grass-trees",
    "Grass-pasture-mowed", "Hay-windrowed", "Oats", "Soybean-notill", "Soybean-mintill",
    "Soybean-clean", "Wheat", "Woods", "Buildings-Grass-Trees-Drives", "Stone-Steel-Towers",
)


@dataclasses.dataclass(frozen=True)
class Scene:
    """A whole scene in memory: cube (H, W, b) in sensor units, labels (H, W), 0 = unlabelled."""

    name: str
    sensor: str
    cube: np.ndarray
    labels: np.ndarray | None
    wavelengths_nm: np.ndarray | None
    class_names: tuple[str, ...] = ()


def indian_pines_wavelengths() -> np.ndarray:
    """Band centres (nm) of the 200 corrected Indian Pines bands."""
    return kept_bands(INDIAN_PINES_220_WAVELENGTHS_NM, INDIAN_PINES_REMOVED_BANDS)


def load_indian_pines() -> Scene:
    """Indian Pines from the tensorly wheel, without importing tensorly itself."""
    folder = resources.files("tensorly") / "datasets" / "data"
    try:
        with resources.as_file(folder) as path:
            cube = np.load(path / "Indian_pines_corrected.npy")
            labels = np.load(path / "Indian_pines_gt.npy")
    except (ModuleNotFoundError, FileNotFoundError, OSError, ValueError) as error:
        raise HsijaxError(
            f"cannot read Indian Pines from the tensorly==0.10.0 package ({error}); "
            "reinstall it with: pip install tensorly==0.10.0"
        ) from None
    return Scene(
        name="indian_pines",
        sensor="AVIRIS",
        cube=cube,
        labels=labels,
        wavelengths_nm=indian_pines_wavelengths(),
        class_names=INDIAN_PINES_CLASSES,
    )
