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

INDIAN_PINES_220_WAVELENGTHS_NM = (
    400.02, 409.82, 419.62, 429.43, 439.25, 449.07, 458.90, 468.73, 478.57, 488.41,
    498.26, 508.12, 517.98, 527.85, 537.72, 547.60, 557.49, 567.38, 577.28, 587.18,
    597.09, 607.01, 616.93, 626.85, 636.78, 646.72, 656.67, 666.61, 676.57, 686.53,
    696.50, 686.91, 696.55, 706.19, 715.83, 725.47, 735.11, 744.74, 754.38, 764.01,
    773.64, 783.27, 792.91, 802.53, 812.16, 821.79, 831.41, 841.04, 850.66, 860.28,
    869.91, 879.53, 889.14, 898.76, 908.38, 917.99, 927.61, 937.22, 946.83, 956.45,
    966.06, 975.66, 985.27, 994.88, 1004.48, 1014.09, 1023.69, 1033.29, 1042.89, 1052.49,
    1062.09, 1071.69, 1081.29, 1090.88, 1100.48, 1110.07, 1119.66, 1129.25, 1138.84, 1148.43,
    1158.02, 1167.61, 1177.19, 1186.77, 1196.36, 1205.94, 1215.52, 1225.10, 1234.68, 1244.26,
    1253.83, 1263.41, 1272.98, 1282.55, 1273.00, 1282.96, 1292.93, 1302.89, 1312.85, 1322.81,
    1332.77, 1342.73, 1352.68, 1362.64, 1372.59, 1382.54, 1392.49, 1402.44, 1412.39, 1422.34,
    1432.28, 1442.23, 1452.17, 1462.11, 1472.05, 1481.99, 1491.92, 1501.86, 1511.79, 1521.73,
    1531.66, 1541.59, 1551.52, 1561.44, 1571.37, 1581.30, 1591.22, 1601.14, 1611.06, 1620.98,
    1630.90, 1640.81, 1650.73, 1660.64, 1670.56, 1680.47, 1690.38, 1700.28, 1710.19, 1720.10,
    1730.00, 1739.90, 1749.81, 1759.71, 1769.60, 1779.50, 1789.40, 1799.29, 1809.19, 1819.08,
    1828.97, 1838.86, 1848.75, 1858.63, 1868.52, 1878.40, 1888.28, 1883.24, 1893.25, 1903.26,
    1913.26, 1923.27, 1933.27, 1943.27, 1953.26, 1963.25, 1973.24, 1983.23, 1993.22, 2003.20,
    2013.18, 2023.16, 2033.13, 2043.10, 2053.07, 2063.04, 2073.00, 2082.97, 2092.92, 2102.88,
    2112.83, 2122.78, 2132.73, 2142.68, 2152.62, 2162.56, 2172.50, 2182.43, 2192.37, 2202.30,
    2212.22, 2222.15, 2232.07, 2241.99, 2251.90, 2261.82, 2271.73, 2281.64, 2291.54, 2301.45,
    2311.35, 2321.25, 2331.14, 2341.03, 2350.92, 2360.81, 2370.70, 2380.58, 2390.46, 2400.33,
    2410.21, 2420.08, 2429.95, 2439.81, 2449.68, 2459.54, 2469.40, 2479.25, 2489.11, 2498.96,
)

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
    keep = [i for i in range(220) if i + 1 not in INDIAN_PINES_REMOVED_BANDS]
    return np.asarray(INDIAN_PINES_220_WAVELENGTHS_NM, dtype=np.float64)[keep]


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
