"""How a file's cube is laid out, decided by evidence and never by its sizes alone: every shape class
read exactly or refused with the right message.

Every cube holds values that encode their own (row, column, band), so a transposed or reshaped read
cannot pass. In-process and small: the readers alone (`read_scene_file`), a few whole imports.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hsijax_testing import writers

from hsijax.cli import main
from hsijax.data.loading import ImportOptions, read_scene_file
from hsijax.data.readers import decide_layout
from hsijax.errors import HsijaxError


def coded(height: int, width: int, bands: int) -> np.ndarray:
    """(H, W, b) int32 whose value at (r, c, b) is r * 1e6 + c * 1e3 + b."""
    r, c, b = np.meshgrid(np.arange(height), np.arange(width), np.arange(bands), indexing="ij")
    return (r * 1_000_000 + c * 1_000 + b).astype(np.int32)


def band_first(cube: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(cube, -1, 0))


def write(folder: Path, fmt: str, cube: np.ndarray, stored: str = "band_last", wavelengths=None) -> Path:
    """``cube`` (H, W, b) in format ``fmt``, its array ``stored`` band-last or band-first."""
    array = cube if stored == "band_last" else band_first(cube)
    if fmt == "npy":
        np.save(folder / "cube.npy", array)
        return folder / "cube.npy"
    if fmt in ("mat_v5", "mat_v73"):
        (writers.write_mat_v5 if fmt == "mat_v5" else writers.write_mat_v73)(folder / "cube.mat", {"cube": array})
        return folder / "cube.mat"
    if fmt == "tif_separate":  # PlanarConfiguration separate: tifffile's axes SYX
        writers.write_tiff(folder / "cube.tif", band_first(cube))
    elif fmt == "tif_contig":  # contig: YXS
        tifffile.imwrite(folder / "cube.tif", cube, planarconfig="contig", photometric="minisblack")
    elif fmt == "tif_pages":  # one page per leading index: QYX
        tifffile.imwrite(folder / "cube.tif", array)
    elif fmt.startswith("envi_"):
        writers.write_envi(folder / "cube.hdr", cube, wavelengths, interleave=fmt.removeprefix("envi_"))
        return folder / "cube.hdr"
    return folder / "cube.tif"


def read(folder: Path, path: Path, gt: tuple[int, int] | None = None, wavelengths: int | None = None, **options):
    """``read_scene_file`` with a ground truth of shape ``gt`` and a list of ``wavelengths`` values."""
    if gt is not None:
        np.save(folder / "gt.npy", np.ones(gt, np.uint8))
        options["gt"] = folder / "gt.npy"
    if wavelengths is not None:
        np.savetxt(folder / "wl.txt", np.linspace(400, 2400, wavelengths))
        options["wavelengths"] = folder / "wl.txt"
    return read_scene_file(ImportOptions(path, **options), "scene")


# (case, format, (H, W, b), stored as, read_scene_file options, layout read, what decided it)
READ = [
    ("tall npy", "npy", (30, 12, 20), "band_last", {}, "band_last", "the NumPy convention"),
    ("wide crop, height below width and bands", "npy", (60, 120, 150), "band_last", {}, "band_last",
     "the NumPy convention"),
    ("ground truth picks band-last", "npy", (70, 90, 176), "band_last", {"gt": (70, 90)}, "band_last",
     "the ground truth (70 × 90)"),
    ("ground truth picks band-first", "npy", (70, 90, 176), "band_first", {"gt": (70, 90)}, "band_first",
     "the ground truth (70 × 90)"),
    ("wavelengths pick band-first", "npy", (70, 90, 176), "band_first", {"wavelengths": 176}, "band_first",
     "the wavelength list (176 bands)"),
    ("--layout picks band-first", "mat_v5", (5, 40, 60), "band_first", {"layout": "band_first"}, "band_first",
     "--layout band_first"),
    ("tiny crop, height below bands", "mat_v5", (2, 3, 50), "band_last", {}, "band_last", "the MATLAB convention"),
    ("tiny crop, width below bands", "mat_v5", (40, 2, 50), "band_last", {"gt": (40, 2)}, "band_last",
     "the ground truth (40 × 2)"),
    ("square crop", "npy", (32, 32, 100), "band_last", {"gt": (32, 32)}, "band_last", "the ground truth (32 × 32)"),
    ("cube crop: the ground truth fits both, the convention decides", "npy", (20, 20, 20), "band_last",
     {"gt": (20, 20)}, "band_last", "the NumPy convention"),
    ("MATLAB v7.3, band-last", "mat_v73", (5, 40, 60), "band_last", {}, "band_last", "the MATLAB convention"),
    ("MATLAB v7.3, band-first with its ground truth", "mat_v73", (5, 40, 60), "band_first", {"gt": (5, 40)},
     "band_first", "the ground truth (5 × 40)"),
    ("TIFF planar separate, few rows", "tif_separate", (4, 50, 30), "band_first", {}, "band_first",
     "the TIFF's PlanarConfiguration (separate, axes SYX)"),
    ("TIFF contig, few rows", "tif_contig", (4, 50, 30), "band_last", {"wavelengths": 30}, "band_last",
     "the TIFF's PlanarConfiguration (contig, axes YXS), the wavelength list (30 bands)"),
    ("TIFF pages are bands", "tif_pages", (4, 50, 30), "band_first", {}, "band_first",
     "the TIFF's pages as bands (axes QYX)"),
    ("TIFF pages that are rows: the ground truth says so", "tif_pages", (6, 50, 30), "band_last", {"gt": (6, 50)},
     "band_last", "the ground truth (6 × 50)"),
    *[(f"ENVI {interleave.upper()}, few rows", f"envi_{interleave}", (3, 40, 60), "band_last", {}, "band_last",
       f"the ENVI header (interleave {interleave})") for interleave in ("bsq", "bil", "bip")],
]


@pytest.mark.parametrize("case, fmt, size, stored, options, layout, decided_by", READ, ids=[row[0] for row in READ])
def test_every_shape_class_is_read_exactly(tmp_path, case, fmt, size, stored, options, layout, decided_by):
    cube = coded(*size)
    scene = read(tmp_path, write(tmp_path, fmt, cube, stored), **options)
    assert scene.cube.shape == size
    np.testing.assert_array_equal(scene.cube, cube)
    assert (scene.layout, scene.layout_decided_by) == (layout, decided_by)


def test_a_band_first_array_with_nothing_to_say_so_is_read_by_the_convention_and_says_it(tmp_path):
    """The convention reads it band-last (a 176 x 70 image of 90 bands); the printed line shows it,
    and --layout, --gt or --wavelengths read it right (above)."""
    scene = read(tmp_path, write(tmp_path, "npy", coded(70, 90, 176), "band_first"))
    assert scene.cube.shape == (176, 70, 90) and scene.layout_decided_by == "the NumPy convention"


def test_bands_by_pixels_matrices_are_column_major(tmp_path):
    cube = coded(4, 6, 30)
    matrix = cube.transpose(1, 0, 2).reshape(24, 30).T  # bands x pixels, pixels in column-major order
    writers.write_mat_v5(tmp_path / "matrix.mat", {"Y": matrix})
    scene = read(tmp_path, tmp_path / "matrix.mat", shape=(4, 6), wavelengths=30)
    np.testing.assert_array_equal(scene.cube, cube)
    assert (scene.layout, scene.layout_decided_by) == ("bands_by_pixels", "--shape 4 6")
    writers.write_mat_v5(tmp_path / "turned.mat", {"Y": matrix.T})  # pixels x bands
    with pytest.raises(HsijaxError, match=r"turned.mat: 30 pixels do not fill --shape 4 6 \(24 pixels\) "
                                          r"\(its rows would: a pixels x bands matrix; transpose it"):
        read(tmp_path, tmp_path / "turned.mat", shape=(4, 6))


# (case, format, (H, W, b), stored as, options, the refusal)
REFUSED = [
    ("--layout against the ground truth", "npy", (70, 90, 176), "band_last", {"gt": (70, 90), "layout": "band_first"},
     r"cube.npy: the evidence on the layout of its \(70, 90, 176\) array conflicts: --layout band_first fits "
     r"band-first, 90 × 176 pixels × 70 bands; the ground truth \(70 × 90\) fits band-last, 70 × 90 pixels × "
     r"176 bands; correct the inputs, or choose with --layout band_last or --layout band_first"),
    ("the ground truth against the wavelength list", "npy", (70, 90, 176), "band_last",
     {"gt": (70, 90), "wavelengths": 70}, r"cube.npy: the evidence on the layout .* conflicts: the ground truth "
     r"\(70 × 90\) fits band-last, .*; the wavelength list \(70 bands\) fits band-first"),
    ("a ground truth that fits neither reading", "npy", (70, 90, 176), "band_last", {"gt": (3, 3)},
     r"gt.npy: ground truth shape \(3, 3\) differs from the image's \(70, 90\)"),
    ("--layout against a TIFF's PlanarConfiguration", "tif_contig", (4, 50, 30), "band_last",
     {"layout": "band_first"}, r"cube.tif: the evidence .* conflicts: the TIFF's PlanarConfiguration \(contig, "
     r"axes YXS\) fits band-last, 4 × 50 pixels × 30 bands; --layout band_first fits band-first"),
    ("--layout on an ENVI file", "envi_bil", (3, 40, 60), "band_last", {"layout": "band_last"},
     r"cube.hdr: --layout does not apply to an ENVI file: its header's interleave \(bil\) says how it is laid out"),
    ("a ground truth against an ENVI header", "envi_bsq", (3, 40, 60), "band_last", {"gt": (40, 60)},
     r"cube.hdr: the evidence .* conflicts: the ENVI header \(interleave bsq\) fits band-last, 3 × 40 pixels × "
     r"60 bands; the ground truth \(40 × 60\) fits band-first"),
]


@pytest.mark.parametrize("case, fmt, size, stored, options, message", REFUSED, ids=[row[0] for row in REFUSED])
def test_conflicting_evidence_is_refused_naming_it(tmp_path, case, fmt, size, stored, options, message):
    with pytest.raises(HsijaxError, match=message):
        read(tmp_path, write(tmp_path, fmt, coded(*size), stored), **options)


def test_two_readings_with_nothing_to_choose_are_refused_naming_both():
    """No convention and no evidence (a format without one): never a guess from the sizes."""
    with pytest.raises(HsijaxError, match=r"x.raw: a \(4, 5, 6\) array reads as band-last, 4 × 5 pixels × 6 bands "
                                          r"or as band-first, 5 × 6 pixels × 4 bands, and nothing says which; "
                                          r"choose with --layout band_last or --layout band_first"):
        decide_layout("x.raw", (4, 5, 6), [])


def test_import_says_what_it_read_and_records_how(tmp_path, capsys):
    cube = coded(70, 90, 176).astype(np.int16) - 12  # int16: the codes wrap, their range stays known
    labels = np.zeros((70, 90), np.uint8)
    labels[:40, :30] = np.arange(1, 8).repeat(172)[:1200].reshape(40, 30)
    np.save(tmp_path / "cube.npy", cube)
    np.save(tmp_path / "gt.npy", labels)
    assert main(["import", str(tmp_path / "cube.npy"), "--gt", str(tmp_path / "gt.npy"), "--name", "my_scene",
                 "--data-dir", str(tmp_path / "data")]) == 0
    line, directory = capsys.readouterr().out.strip().splitlines()
    low, high = int(cube.min()), int(cube.max())
    assert line == (f"my_scene: 70 × 90 pixels × 176 bands (band-last: the ground truth (70 × 90)), 1,200 labelled "
                    f"in 7 classes, int16 values {low:,}…{high:,}")
    metadata = json.loads((Path(directory) / "metadata.json").read_text())
    assert metadata["layout"] == {"read_as": "band_last", "decided_by": "the ground truth (70 × 90)"}


@pytest.mark.parametrize("cube, warning", [
    (np.full((6, 5, 12), 7, np.uint16), "every value of the cube is 7: a constant scene"),
    (coded(6, 5, 12).astype(np.float32) * np.isin(np.arange(12), [2, 9], invert=True),
     "2 of 12 bands are constant over the scene (bands 3, 10, 1-based)"),
])
def test_constant_data_is_one_warning_line(tmp_path, capsys, cube, warning):
    np.save(tmp_path / "cube.npy", cube)
    assert main(["import", str(tmp_path / "cube.npy"), "--name", "flat", "--data-dir", str(tmp_path / "data")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0] == f"hsijax: warning: {tmp_path / 'cube.npy'}: {warning}"


def test_pretraining_refuses_a_scene_beyond_the_largest_bucket_naming_it(tmp_path, capsys):
    """Import keeps 600 bands (a dataset may outlive a model); pretraining names the scene, its band
    count and the largest bucket in one line instead of failing inside the pipeline."""
    np.save(tmp_path / "wide.npy", np.random.default_rng(0).random((8, 8, 600), np.float32))
    assert main(["import", str(tmp_path / "wide.npy"), "--name", "wide", "--data-dir", str(tmp_path / "data")]) == 0
    capsys.readouterr()
    assert main(["pretrain", "--config", "tiny", "--workdir", str(tmp_path / "work"), "--no-progress",
                 "--config.data.scenes=wide", f"--config.data.data_dir={tmp_path / 'data'}",
                 "--config.data.held_out_pixels=8", "--config.train.batch_size=8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["hsijax pretrain: error: scene wide: band count 600 is above the largest bucket (512); "
                   "add a larger bucket length to the model config"]
