"""The poster's twelve scenes: where their files are published, in what format, and what they hold.

One `SceneSpec` per scene is the single source of truth for its TFDS builder (`hsijax.data.builders`),
for the expected-files message of a manual download, and for the dummy data the builder tests use
(`hsijax_testing.dummy_data`), which must be small files in the *real* format of the published ones.

Facts that could not be confirmed from an official page are marked in ``notes``; see each
``datasets/<name>/README.md`` for sources.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hsijax.data import wavelengths as wl
from hsijax.data.scene import INDIAN_PINES_CLASSES, INDIAN_PINES_REMOVED_BANDS

EHU = "http://www.ehu.eus/ccwintco/uploads"
EHU_PAGE = "https://www.ehu.eus/ccwintco/index.php/Hyperspectral_Remote_Sensing_Scenes"


@dataclasses.dataclass(frozen=True)
class SceneFile:
    """One published file. ``fmt``: mat_v5 | mat_v73 | tif | envi; ``key``: the MATLAB variable."""

    role: str  # "cube" or "labels" (several label files are merged; their labelled pixels are disjoint)
    filename: str
    fmt: str
    dtype: str
    key: str | None = None
    url: str | None = None
    layout: str = "auto"  # cubes only: band_last (H, W, b), band_first (b, H, W), or auto-detect
    companions: tuple[str, ...] = ()  # files read together with this one (an ENVI header's .img)

    @property
    def filenames(self) -> tuple[str, ...]:
        return (self.filename, *self.companions)


@dataclasses.dataclass(frozen=True)
class SceneSpec:
    name: str
    title: str
    sensor: str
    bands: int
    height: int
    width: int
    files: tuple[SceneFile, ...]
    class_names: tuple[str, ...]
    labelled_pixels: int
    wavelengths_nm: tuple[float, ...] | None
    wavelength_source: str
    homepage: str
    citation: str
    licence: str
    notes: str = ""
    archive_url: str | None = None  # one archive holding every file, under archive_dir
    archive_dir: str = ""

    @property
    def expected_files(self) -> tuple[str, ...]:
        return tuple(name for f in self.files for name in f.filenames)

    @property
    def cube_file(self) -> SceneFile:
        return next(f for f in self.files if f.role == "cube")

    @property
    def label_files(self) -> tuple[SceneFile, ...]:
        return tuple(f for f in self.files if f.role == "labels")

    @property
    def downloadable(self) -> bool:
        return self.archive_url is not None or all(f.url for f in self.files)

    def manual_instructions(self) -> str:
        """What to put in the manual directory, and where to get it."""
        urls = {f.filename: f.url for f in self.files if f.url}
        names = "\n".join(
            f"  - {name}" + (f"  ({urls[name]})" if name in urls else "") for name in self.expected_files
        )
        archive = f" (all in {self.archive_url}, folder {self.archive_dir})" if self.archive_url else ""
        return (
            f"Download the {self.title} files from {self.homepage}{archive}\n"
            f"and place them, with these exact names, in the manual directory:\n{names}\n"
        )


def _floats(values) -> tuple[float, ...]:
    return tuple(round(float(w), 2) for w in values)


def _grid(first: float, last: float, bands: int) -> tuple[float, ...]:
    return _floats(wl.nominal_grid(first, last, bands))


def _ehu(role, filename, key, path, dtype) -> SceneFile:
    return SceneFile(role, filename, "mat_v5", dtype, key=key, url=f"{EHU}/{path}")


SALINAS_REMOVED_BANDS = (*range(108, 113), *range(154, 168), 224)
# Hyperion bands kept in the EHU Botswana cube (1-based, of 242).
BOTSWANA_KEPT_BANDS = (*range(10, 56), *range(82, 98), *range(102, 120), *range(134, 165), *range(187, 221))


def hyperion_nominal_wavelengths() -> np.ndarray:
    """Nominal Hyperion centres of bands 1..242: VNIR 1-70 then SWIR 71-242 (overlapping ranges)."""
    band = np.arange(1, 243)
    return np.where(band <= 70, 355.59 + (band - 1) * 10.1751, 851.92 + (band - 71) * 10.0902)


SCENES: dict[str, SceneSpec] = {}


def _register(spec: SceneSpec) -> None:
    assert spec.wavelengths_nm is None or len(spec.wavelengths_nm) == spec.bands, spec.name
    SCENES[spec.name] = spec


_register(SceneSpec(
    name="indian_pines",
    title="Indian Pines (AVIRIS, corrected)",
    sensor="AVIRIS",
    bands=200, height=145, width=145,
    files=(
        _ehu("cube", "Indian_pines_corrected.mat", "indian_pines_corrected",
             "6/67/Indian_pines_corrected.mat", "uint16"),
        _ehu("labels", "Indian_pines_gt.mat", "indian_pines_gt", "c/c4/Indian_pines_gt.mat", "uint8"),
    ),
    class_names=INDIAN_PINES_CLASSES,
    labelled_pixels=10249,
    wavelengths_nm=_floats(wl.kept_bands(wl.INDIAN_PINES_220_WAVELENGTHS_NM, INDIAN_PINES_REMOVED_BANDS)),
    wavelength_source="92AV3C.spc (1992 AVIRIS calibration), bands 104-108, 150-163, 220 removed",
    homepage=EHU_PAGE,
    citation="Baumgardner, Biehl, Landgrebe (2015). 220 Band AVIRIS Hyperspectral Image Data Set: "
             "June 12, 1992 Indian Pine Test Site 3. Purdue University Research Repository. "
             "doi:10.4231/R7RX991C",
    licence="Purdue University Research Repository: CC0 1.0 (public domain dedication)",
    notes="Falls back to the copy inside the tensorly wheel when neither a download nor "
          "the manual directory works.",
))

_register(SceneSpec(
    name="salinas",
    title="Salinas Valley (AVIRIS, corrected)",
    sensor="AVIRIS",
    bands=204, height=512, width=217,
    files=(
        _ehu("cube", "Salinas_corrected.mat", "salinas_corrected", "a/a3/Salinas_corrected.mat", "int16"),
        _ehu("labels", "Salinas_gt.mat", "salinas_gt", "f/fa/Salinas_gt.mat", "uint8"),
    ),
    class_names=(
        "Brocoli_green_weeds_1", "Brocoli_green_weeds_2", "Fallow", "Fallow_rough_plow",
        "Fallow_smooth", "Stubble", "Celery", "Grapes_untrained", "Soil_vinyard_develop",
        "Corn_senesced_green_weeds", "Lettuce_romaine_4wk", "Lettuce_romaine_5wk",
        "Lettuce_romaine_6wk", "Lettuce_romaine_7wk", "Vinyard_untrained", "Vinyard_vertical_trellis",
    ),
    labelled_pixels=54129,
    wavelengths_nm=_floats(wl.kept_bands(wl.AVIRIS_224_WAVELENGTHS_NM, SALINAS_REMOVED_BANDS)),
    wavelength_source="nominal AVIRIS 224-band centres (not the 1998 flight's own calibration), "
                      "bands 108-112, 154-167, 224 removed",
    homepage=EHU_PAGE,
    citation="Salinas scene, AVIRIS, 1998; distributed by the Grupo de Inteligencia Computacional "
             "(GIC), Universidad del Pais Vasco (UPV/EHU).",
    licence="No licence stated by the distributor (GIC, UPV/EHU); widely redistributed for research",
))

_register(SceneSpec(
    name="pavia_university",
    title="Pavia University (ROSIS)",
    sensor="ROSIS",
    bands=103, height=610, width=340,
    files=(
        _ehu("cube", "PaviaU.mat", "paviaU", "e/ee/PaviaU.mat", "uint16"),
        _ehu("labels", "PaviaU_gt.mat", "paviaU_gt", "5/50/PaviaU_gt.mat", "uint8"),
    ),
    class_names=(
        "Asphalt", "Meadows", "Gravel", "Trees", "Painted metal sheets", "Bare Soil", "Bitumen",
        "Self-Blocking Bricks", "Shadows",
    ),
    labelled_pixels=42776,
    wavelengths_nm=_grid(430, 860, 103),
    wavelength_source="no official per-band list; the usual convention linspace(430, 860, 103)",
    homepage=EHU_PAGE,
    citation="Pavia University scene, ROSIS-03, courtesy of Prof. Paolo Gamba, Telecommunications "
             "and Remote Sensing Laboratory, University of Pavia.",
    licence="No licence stated by the distributor (GIC, UPV/EHU); widely redistributed for research",
))

_register(SceneSpec(
    name="ksc",
    title="Kennedy Space Center (AVIRIS)",
    sensor="AVIRIS",
    bands=176, height=512, width=614,
    files=(
        _ehu("cube", "KSC.mat", "KSC", "2/26/KSC.mat", "uint16"),
        _ehu("labels", "KSC_gt.mat", "KSC_gt", "a/a6/KSC_gt.mat", "uint8"),
    ),
    class_names=(
        "Scrub", "Willow swamp", "Cabbage palm hammock", "Cabbage palm/oak hammock", "Slash pine",
        "Oak/broadleaf hammock", "Hardwood swamp", "Graminoid marsh", "Spartina marsh",
        "Cattail marsh", "Salt marsh", "Mud flats", "Water",
    ),
    labelled_pixels=5211,
    wavelengths_nm=wl.KSC_176_WAVELENGTHS_NM,
    wavelength_source="KSC_spec.mat (dataset_specBandWL) of the 176 kept bands",
    homepage=EHU_PAGE,
    citation="Ham, Chen, Crawford, Ghosh (2005). Investigation of the random forest framework for "
             "classification of hyperspectral data. IEEE TGRS 43(3):492-501.",
    licence="No licence stated by the distributor (GIC, UPV/EHU; originally UT Austin CSR)",
))

_register(SceneSpec(
    name="botswana",
    title="Botswana, Okavango Delta (EO-1 Hyperion)",
    sensor="Hyperion",
    bands=145, height=1476, width=256,
    files=(
        _ehu("cube", "Botswana.mat", "Botswana", "7/72/Botswana.mat", "uint16"),
        _ehu("labels", "Botswana_gt.mat", "Botswana_gt", "5/58/Botswana_gt.mat", "uint8"),
    ),
    class_names=(
        "Water", "Hippo grass", "Floodplain grasses 1", "Floodplain grasses 2", "Reeds", "Riparian",
        "Firescar", "Island interior", "Acacia woodlands", "Acacia shrublands", "Acacia grasslands",
        "Short mopane", "Mixed mopane", "Exposed soils",
    ),
    labelled_pixels=3248,
    wavelengths_nm=_floats(hyperion_nominal_wavelengths()[np.asarray(BOTSWANA_KEPT_BANDS) - 1]),
    wavelength_source="nominal Hyperion centres (VNIR 355.59 nm + 10.18 nm steps, SWIR 851.92 nm + "
                      "10.09 nm steps) of the kept bands 10-55, 82-97, 102-119, 134-164, 187-220",
    homepage=EHU_PAGE,
    citation="Ham, Chen, Crawford, Ghosh (2005). Investigation of the random forest framework for "
             "classification of hyperspectral data. IEEE TGRS 43(3):492-501.",
    licence="No licence stated by the distributor (GIC, UPV/EHU; originally UT Austin CSR)",
))

_register(SceneSpec(
    name="houston2013",
    title="Houston 2013, IEEE GRSS Data Fusion Contest (CASI)",
    sensor="CASI-1500",
    bands=144, height=349, width=1905,
    files=(
        SceneFile("cube", "2013_IEEE_GRSS_DF_Contest_CASI.tif", "tif", "uint16"),
        SceneFile("labels", "2013_IEEE_GRSS_DF_Contest_Samples_TR.tif", "tif", "uint8"),
        SceneFile("labels", "2013_IEEE_GRSS_DF_Contest_Samples_VA.tif", "tif", "uint8"),
    ),
    class_names=(
        "Healthy grass", "Stressed grass", "Synthetic grass", "Trees", "Soil", "Water", "Residential",
        "Commercial", "Road", "Highway", "Railway", "Parking Lot 1", "Parking Lot 2", "Tennis Court",
        "Running Track",
    ),
    labelled_pixels=15029,
    wavelengths_nm=_grid(380, 1050, 144),
    wavelength_source="no per-band list found; nominal CASI range linspace(380, 1050, 144)",
    homepage="https://www.grss-ieee.org/community/technical-committees/2013-ieee-grss-data-fusion-contest/",
    citation="Debes et al. (2014). Hyperspectral and LiDAR Data Fusion: Outcome of the 2013 GRSS "
             "Data Fusion Contest. IEEE JSTARS 7(6):2405-2418. doi:10.1109/JSTARS.2014.2305441",
    licence="IEEE GRSS Data Fusion Contest terms (data on request; acknowledge the providers)",
    notes="Manual download only (the GRSS sends the data on request). The contest ships its labels as "
          "ENVI ROIs; the two label TIFFs are their rasterisation (training 2832 px + test 12197 px, "
          "disjoint), as in danfenghong/ISPRS_S2FL; the dataset merges them. The CASI cube's dtype "
          "(uint16) and orientation are taken from loaders, not from the file: the reader detects "
          "band-first or band-last itself.",
))

_register(SceneSpec(
    name="xiongan",
    title="Xiong'an New Area, Matiwan Village (AMMIS VNIR)",
    sensor="AMMIS",
    bands=256, height=1580, width=3750,
    files=(
        SceneFile("cube", "Hyperspectral_XiongAn.hdr", "envi", "uint16",
                  companions=("Hyperspectral_XiongAn.img",)),
        SceneFile("labels", "Groundtruth.hdr", "envi", "uint8", companions=("Groundtruth.img",)),
    ),
    class_names=(
        "Rice", "Rice Stubble", "Waters", "Grassland", "Willow", "Elm", "Acer Negundo", "White Wax",
        "Koelreuteria Paniculata", "Chinese scholar tree", "Peach", "Vegetable Field", "Corn",
        "Poplar", "Pear Tree", "Soybean", "Lotus leaf", "Locust", "House",
    ),
    labelled_pixels=3341881,
    wavelengths_nm=_grid(400, 1000, 256),
    wavelength_source="the ENVI header's list when it has one; otherwise nominal linspace(400, 1000, 256)",
    homepage="https://doi.org/10.3974/geodb.2021.01.02.V1",
    citation="Cen Yi, Zhang Lifu, et al. (2020). Aerial hyperspectral remote sensing classification "
             "dataset of Xiongan New Area (Matiwan Village). National Remote Sensing Bulletin 24(11). "
             "doi:10.11834/jrs.20209065",
    licence="Global Change Research Data Publishing & Repository terms (believed CC BY 4.0; unconfirmed)",
    notes="Manual download (registration). The official release is ENVI (BSQ uint16, 256 x 1580 x 3750) "
          "with the 19-class Groundtruth.img; community .mat conversions (xiongan.mat, v7.3) use the "
          "20-class Farm_roi labels instead and are not what this builder expects.",
))

_register(SceneSpec(
    name="xuzhou",
    title="Xuzhou (HySpex)",
    sensor="HySpex",
    bands=436, height=500, width=260,
    files=(
        SceneFile("cube", "image.hdr", "envi", "uint16", companions=("image.img",)),
        SceneFile("labels", "true label.hdr", "envi", "uint8", companions=("true label.img",)),
    ),
    class_names=(
        "Bareland-1", "Lakes", "Coals", "Cement", "Crops-1", "Trees", "Bareland-2", "Crops-2",
        "Red-tiles",
    ),
    labelled_pixels=68877,
    wavelengths_nm=_grid(415, 2508, 436),
    wavelength_source="the ENVI header's list when it has one; otherwise nominal linspace(415, 2508, 436)",
    homepage="https://ieee-dataport.org/documents/xuzhou-hyspex-dataset",
    citation="Xuzhou HYSPEX dataset, IEEE DataPort (2020).",
    licence="IEEE DataPort terms (unconfirmed)",
    notes="Manual download (IEEE DataPort login). The DataPort package holds ENVI files image.hdr/.img "
          "and 'true label.hdr/.img'; their dtype and interleave are read from the headers (the "
          "dummy data's uint16 is a guess). Community copies (xuzhou.mat, xuzhou_gt.mat) import with "
          "`hsijax import xuzhou.mat --gt xuzhou_gt.mat --name xuzhou`.",
))

_WHU_HI = dict(
    sensor="Nano-Hyperspec",
    homepage="http://rsidea.whu.edu.cn/resource_WHUHi_sharing.htm",
    citation="Zhong, Hu, Luo, Wang, Zhao, Zhang (2020). WHU-Hi: UAV-borne hyperspectral with high "
             "spatial resolution (H2) benchmark datasets and classifier for precise crop "
             "identification based on deep convolutional neural network with CRF. Remote Sensing of "
             "Environment 250:112012. doi:10.1016/j.rse.2020.112012",
    licence="academic use only, no commercial use, citation required (RSIDEA, Wuhan University)",
    notes="Manual download (cloud-drive links on the RSIDEA page). MATLAB v5 files read by "
          "scipy; the cube dtype (float32 in the dummy data) is unconfirmed and read from the file.",
)

_register(SceneSpec(
    name="whu_hi_hanchuan",
    title="WHU-Hi-HanChuan (Headwall Nano-Hyperspec, UAV)",
    bands=274, height=1217, width=303,
    files=(
        SceneFile("cube", "WHU_Hi_HanChuan.mat", "mat_v5", "float32", key="WHU_Hi_HanChuan"),
        SceneFile("labels", "WHU_Hi_HanChuan_gt.mat", "mat_v5", "uint8", key="WHU_Hi_HanChuan_gt"),
    ),
    class_names=(
        "Strawberry", "Cowpea", "Soybean", "Sorghum", "Water spinach", "Watermelon", "Greens", "Trees",
        "Grass", "Red roof", "Gray roof", "Plastic", "Bare soil", "Road", "Bright object", "Water",
    ),
    labelled_pixels=257530,
    wavelengths_nm=_grid(400, 1000, 274),
    wavelength_source="no per-band list published; nominal linspace(400, 1000, 274)",
    **_WHU_HI,
))

_register(SceneSpec(
    name="whu_hi_longkou",
    title="WHU-Hi-LongKou (Headwall Nano-Hyperspec, UAV)",
    bands=270, height=550, width=400,
    files=(
        SceneFile("cube", "WHU_Hi_LongKou.mat", "mat_v5", "float32", key="WHU_Hi_LongKou"),
        SceneFile("labels", "WHU_Hi_LongKou_gt.mat", "mat_v5", "uint8", key="WHU_Hi_LongKou_gt"),
    ),
    class_names=(
        "Corn", "Cotton", "Sesame", "Broad-leaf soybean", "Narrow-leaf soybean", "Rice", "Water",
        "Roads and houses", "Mixed weed",
    ),
    labelled_pixels=204542,
    wavelengths_nm=_grid(400, 1000, 270),
    wavelength_source="no per-band list published; nominal linspace(400, 1000, 270)",
    **_WHU_HI,
))

_register(SceneSpec(
    name="chikusei",
    title="Chikusei (Headwall Hyperspec-VNIR-C)",
    sensor="Hyperspec-VNIR-C",
    bands=128, height=2517, width=2335,
    files=(
        SceneFile("cube", "HyperspecVNIR_Chikusei_20140729.mat", "mat_v73", "uint16", key="chikusei"),
        SceneFile("labels", "HyperspecVNIR_Chikusei_20140729_Ground_Truth.mat", "mat_v5", "uint8",
                  key="GT/gt"),
    ),
    class_names=(
        "Water", "Bare soil (school)", "Bare soil (park)", "Bare soil (farmland)", "Natural plants",
        "Weeds in farmland", "Forest", "Grass", "Rice field (grown)", "Rice field (first stage)",
        "Row crops", "Plastic house", "Manmade (non-dark)", "Manmade (dark)", "Manmade (blue)",
        "Manmade (red)", "Manmade grass", "Asphalt", "Paved ground",
    ),
    labelled_pixels=77592,
    wavelengths_nm=_grid(363, 1018, 128),
    wavelength_source="nominal linspace(363, 1018, 128) (the ENVI release's header has the exact list)",
    homepage="https://naotoyokoya.com/Download.html",
    citation="Yokoya, Iwasaki (2016). Airborne hyperspectral data over Chikusei. Space Application "
             "Laboratory, University of Tokyo, Technical Report SAL-2016-05-27.",
    licence="CC BY 3.0 (with the acknowledgment asked for on the download page)",
    notes="The cube is MATLAB v7.3 (HDF5); the ground truth is a v5 struct GT with fields gt and "
          "classnames. The cube's dtype (uint16 in the dummy data) is unconfirmed and read from the file.",
    archive_url="http://park.itc.u-tokyo.ac.jp/sal/hyperdata/Hyperspec_Chikusei_MATLAB.zip",
    archive_dir="Hyperspec_Chikusei_MATLAB/Chikusei_MATLAB",
))

_register(SceneSpec(
    name="washington_dc",
    title="Washington DC Mall (HYDICE)",
    sensor="HYDICE",
    bands=191, height=1280, width=307,
    files=(SceneFile("cube", "dc.tif", "tif", "int16", layout="band_first"),),
    class_names=(),
    labelled_pixels=0,
    wavelengths_nm=None,
    wavelength_source="unknown: no per-band list of the 191 kept HYDICE bands was found",
    homepage="https://engineering.purdue.edu/~biehl/MultiSpec/hyperspectral.html",
    citation="Landgrebe (2003). Signal Theory Methods in Multispectral Remote Sensing. Wiley. "
             "(Washington DC Mall HYDICE image distributed with MultiSpec, Purdue University.)",
    licence="No licence stated (Purdue MultiSpec sample data)",
    notes="Unlabelled: no official label raster is published with dc.tif (community label sets "
          "vary). Used for pretraining and reconstruction only.",
    archive_url="http://cobweb.ecn.purdue.edu/~biehl/Hyperspectral_Project.zip",
    archive_dir="Hyperspectral_Project",
))
