"""`hsijax encode` at archive scale: one normalisation for one scene (tiles encode to the whole
scene's codes), GeoTIFF codes that keep the input's CRS, transform and nodata, ENVI and GeoTIFF
inputs read by windows with flat memory, and the normalisation recorded with every output."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from conftest import environment
from rasterio.transform import Affine, from_origin
from rasterio.windows import Window

import hsijax
from hsijax.cli import main
from hsijax.data.rasters import CACHE_BYTES
from hsijax.data.scene import load_indian_pines

CRS = "EPSG:32616"


def write_geotiff(path, cube: np.ndarray, transform: Affine, nodata=None) -> None:
    """A band-interleaved GeoTIFF of ``cube`` (H, W, b)."""
    height, width, bands = cube.shape
    with rasterio.open(path, "w", driver="GTiff", height=height, width=width, count=bands, dtype=cube.dtype.name,
                       crs=CRS, transform=transform, nodata=nodata) as target:
        target.write(np.moveaxis(cube, -1, 0))


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """Indian Pines (tensorly) as one GeoTIFF and as four tile GeoTIFFs of it, with its band centres."""
    folder = tmp_path_factory.mktemp("tiles")
    indian_pines = load_indian_pines()
    cube = indian_pines.cube
    transform = from_origin(600000, 4500000, 20, 20)
    write_geotiff(folder / "whole.tif", cube, transform)
    (folder / "tiles").mkdir()
    for row, rows in enumerate((slice(0, 70), slice(70, 145))):
        for col, cols in enumerate((slice(0, 80), slice(80, 145))):
            offset = transform * Affine.translation(cols.start, rows.start)
            write_geotiff(folder / "tiles" / f"tile_{row}{col}.tif", cube[rows, cols], offset)
    np.savetxt(folder / "wavelengths.txt", indian_pines.wavelengths_nm)
    return folder


def test_tiles_of_one_scene_encoded_with_one_normalisation_give_the_whole_scene_s_codes(scene, tmp_path, capsys):
    wavelengths = ["--wavelengths", str(scene / "wavelengths.txt")]
    assert main(["encode", "--checkpoint", "pretrained", str(scene / "whole.tif"), *wavelengths,
                 "--output", str(tmp_path / "whole.npy"), "--no-progress"]) == 0
    assert main(["encode", "--checkpoint", "pretrained", str(scene / "tiles"), *wavelengths, "--normalization",
                 "archive", "--output", str(tmp_path / "tiles"), "--no-progress"]) == 0
    whole = np.load(tmp_path / "whole.npy")
    for row, rows in enumerate((slice(0, 70), slice(70, 145))):
        for col, cols in enumerate((slice(0, 80), slice(80, 145))):
            tile, part = np.load(tmp_path / "tiles" / f"tile_{row}{col}.npy"), whole[rows, cols]
            # the same float32 products, summed in another order for another block size: 1e-6 of each code
            assert (np.linalg.norm(tile - part, axis=-1) / np.linalg.norm(part, axis=-1)).max() < 1e-6
    cached = json.loads((tmp_path / "tiles" / "normalization.json").read_text())
    assert cached["fitted_on"] == "archive of 4 files" and len(cached["files"]) == 4
    record = json.loads((tmp_path / "tiles" / "tile_00.json").read_text())
    assert record["normalization"] == json.loads((tmp_path / "whole.json").read_text())["normalization"] | {
        "fitted_on": "archive of 4 files"}
    # each tile normalised by itself: other codes (what hsijax 0.1 gave)
    assert main(["encode", "--checkpoint", "pretrained", str(scene / "tiles"), *wavelengths, "--normalization",
                 "scene", "--output", str(tmp_path / "own"), "--no-progress"]) == 0
    assert not np.allclose(np.load(tmp_path / "own" / "tile_00.npy"), whole[:70, :80], atol=1e-3)
    # several files and no choice: refused, nothing written
    capsys.readouterr()
    assert main(["encode", "--checkpoint", "pretrained", str(scene / "tiles"), *wavelengths,
                 "--output", str(tmp_path / "unchosen"), "--no-progress"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "hsijax encode: error: an archive of 4 files needs --normalization: archive (one fit over all of them: tiles "
        "of one scene), scene (each file its own: unrelated scenes), dataset:NAME or a saved FILE.json"]
    assert not (tmp_path / "unchosen").exists()


def test_a_saved_normalisation_and_a_dataset_s_are_used_as_given(scene, tmp_path, data_dir):
    wavelengths = ["--wavelengths", str(scene / "wavelengths.txt")]
    (tmp_path / "norm.json").write_text(json.dumps({"offset": 1000.0, "scale": 8000.0}))
    assert main(["encode", "--checkpoint", "pretrained", str(scene / "tiles" / "tile_11.tif"), *wavelengths,
                 "--normalization", str(tmp_path / "norm.json"), "--output", str(tmp_path / "saved.npy"),
                 "--no-progress"]) == 0
    cube = load_indian_pines().cube[70:, 80:]
    expected = hsijax.encode(hsijax.load_pretrained(), (cube.astype(np.float32) - 1000) / 8000,
                             wavelengths=load_indian_pines().wavelengths_nm)
    np.testing.assert_allclose(np.load(tmp_path / "saved.npy"), expected, atol=1e-5)
    assert json.loads((tmp_path / "saved.json").read_text())["normalization"]["fitted_on"] == str(tmp_path / "norm.json")
    assert main(["encode", "--checkpoint", "pretrained", "--dataset", "indian_pines", "--data-dir", str(data_dir),
                 "--output", str(tmp_path / "dataset.npy"), "--no-progress"]) == 0
    record = json.loads((tmp_path / "dataset.json").read_text())
    assert record["normalization"]["fitted_on"] == "dataset indian_pines"
    # the record of one output is a saved normalisation for the next
    assert main(["encode", "--checkpoint", "pretrained", str(scene / "whole.tif"), *wavelengths, "--normalization",
                 str(tmp_path / "dataset.json"), "--output", str(tmp_path / "again.npy"), "--no-progress"]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "again.npy"), np.load(tmp_path / "dataset.npy"), atol=1e-5)


@pytest.mark.parametrize("bad, message", [
    ("minmax", "--normalization minmax: expected one of scene, archive, dataset:NAME, FILE.json"),
    ("missing.json", "--normalization missing.json: no such file"),
    ("archive", "--normalization archive: applies to an archive of several files"),
])
def test_a_bad_normalisation_is_one_line(bad, message, scene, tmp_path, capsys):
    assert main(["encode", "--checkpoint", "pretrained", str(scene / "whole.tif"), "--wavelengths",
                 str(scene / "wavelengths.txt"), "--normalization", bad, "--output", str(tmp_path / "c.npy")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not (tmp_path / "c.npy").exists()


def test_geotiff_codes_keep_the_crs_transform_and_nodata_and_say_how_they_were_made(tmp_path):
    """A cube with a nodata border: the border is left out of the normalisation's fit, its codes are
    NaN (the output's nodata); the output has the input's CRS and transform, c float32 bands, its
    record in its tags."""
    cube = load_indian_pines().cube[:40, :30].copy()
    cube[:, :3] = 0  # nodata pixels: every band 0
    transform = from_origin(300000, 5000000, 2.5, 2.5)
    write_geotiff(tmp_path / "scene.tif", cube, transform, nodata=0)
    wavelengths = load_indian_pines().wavelengths_nm
    np.savetxt(tmp_path / "wl.txt", wavelengths)
    assert main(["encode", "--checkpoint", "pretrained", str(tmp_path / "scene.tif"), "--wavelengths",
                 str(tmp_path / "wl.txt"), "--output", str(tmp_path / "codes.tif"), "--no-progress"]) == 0
    with rasterio.open(tmp_path / "codes.tif") as codes:
        assert codes.crs.to_string() == CRS and codes.transform == transform and codes.count == 16
        assert codes.dtypes[0] == "float32" and np.isnan(codes.nodata) and codes.block_shapes[0] == (256, 256)
        tags, values = codes.tags(), np.moveaxis(codes.read(), 0, -1)
    record = json.loads(tags["HSIJAX_RECORD"])
    valid = cube[:, 3:]
    assert record["normalization"]["offset"] == valid.min() and record["normalization"]["scale"] == np.ptp(valid)
    assert tags["HSIJAX_VERSION"] == hsijax.__version__ and tags["HSIJAX_CODE_WIDTH"] == "16"
    np.testing.assert_allclose(json.loads(tags["HSIJAX_WAVELENGTHS_NM"]), wavelengths)
    assert np.isnan(values[:, :3]).all() and np.isfinite(values[:, 3:]).all()
    expected = hsijax.encode(hsijax.load_pretrained(), (valid - valid.min()) / np.ptp(valid).astype(np.float32),
                             wavelengths=wavelengths)
    np.testing.assert_allclose(values[:, 3:], expected, atol=1e-5)


MEASURED = """
import sys
from hsijax.cli import main
# Each argument list after the first is one `hsijax encode`; after each, its peak RSS (VmHWM), then
# the peak is reset to the current RSS (Linux: clear_refs 5), so each figure is that command's own.
for args in sys.argv[1:]:
    assert main(args.split("\\t")) == 0
    print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")), flush=True)
    open("/proc/self/clear_refs", "w").write("5")
"""


def peak_rss_mib(*commands: list) -> list[float]:
    """The peak RSS (MiB) of each `hsijax encode` of ``commands`` (argument lists), run in turn in one
    child process after a warm-up of the first (imports and compilation done)."""
    lines = ["\t".join(["encode", "--checkpoint", "pretrained", *map(str, args), "--no-progress"])
             for args in (commands[0], *commands)]
    result = subprocess.run([sys.executable, "-c", MEASURED, *lines], env=environment(1), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return [int(line) / 1024 for line in result.stdout.splitlines() if line.isdigit()][1:]


def write_both(folder, name: str, height: int, width: int, bands: int, rng) -> None:
    """The same random uint16 scene as ``name.img`` (ENVI BSQ) and ``name.tif``, a block at a time."""
    profile = {"driver": "GTiff", "height": height, "width": width, "count": bands, "dtype": "uint16", "crs": CRS,
               "transform": from_origin(0, 0, 1, 1), "interleave": "band"}
    envi = np.memmap(folder / f"{name}.img", mode="w+", dtype="<u2", shape=(bands, height, width))
    with rasterio.open(folder / f"{name}.tif", "w", **profile) as tiff:
        for start in range(0, height, 200):
            block = np.moveaxis(rng.integers(0, 10000, (min(200, height - start), width, bands), np.uint16), -1, 0)
            tiff.write(block, window=Window(0, start, width, block.shape[1]))
            envi[:, start:start + block.shape[1]] = block
    envi.flush()
    del envi
    (folder / f"{name}.hdr").write_text(
        f"ENVI\nsamples = {width}\nlines = {height}\nbands = {bands}\nheader offset = 0\nfile type = ENVI Standard\n"
        "data type = 12\ninterleave = bsq\nbyte order = 0\n")


@pytest.mark.full
def test_envi_and_geotiff_are_read_by_windows_with_flat_memory(tmp_path):
    """The same scene at 200 and 800 rows (600 x 200 bands, uint16: 46 and 183 MiB), as ENVI and as
    GeoTIFF: `hsijax encode`'s peak RSS grows by far less than the input does (the whole cube in
    memory would add 137 MiB, a float32 copy of it 275 MiB), and stays under 1 GiB."""
    rng = np.random.default_rng(0)
    width, bands = 600, 200
    np.savetxt(tmp_path / "wl.txt", np.linspace(400, 2500, bands))
    for name, height in (("short", 200), ("tall", 800)):
        write_both(tmp_path, name, height, width, bands, rng)
    added_mib = 600 * width * bands * 2 / 2**20
    commands = [[tmp_path / f"{name}{suffix}", "--wavelengths", tmp_path / "wl.txt", "--output",
                 tmp_path / f"{name}{suffix[1:]}.npy"] for suffix in (".hdr", ".tif") for name in ("short", "tall")]
    short_envi, tall_envi, short_tiff, tall_tiff = peak_rss_mib(*commands)
    for short, tall in ((short_envi, tall_envi), (short_tiff, tall_tiff)):  # at most GDAL's capped block cache more
        assert tall - short < added_mib / 4 + CACHE_BYTES / 2**20 and tall < 1024, (short, tall)
    assert np.load(tmp_path / "tallhdr.npy", mmap_mode="r").shape == (800, width, 16)
    np.testing.assert_array_equal(np.load(tmp_path / "talltif.npy"), np.load(tmp_path / "tallhdr.npy"))


@pytest.mark.parametrize("interleave, rows_per_strip, compress", [
    ("band", 1, None), ("band", 5, None), ("band", 37, None), ("pixel", 5, None), ("band", 5, "lzw")])
def test_a_geotiff_reads_the_same_by_rows_whichever_reader_it_takes(tmp_path, interleave, rows_per_strip, compress):
    """Uncompressed striped GeoTIFFs are read with pread (`RawTiffCube`), others by GDAL (`GdalCube`):
    every way of asking for rows (band-last, band-first, a band subset, the whole) gives the file's
    values, with its georeference."""
    from hsijax.data.rasters import GdalCube, RawTiffCube
    from hsijax.data.readers import read_cube

    cube = np.random.default_rng(7).integers(0, 60000, (37, 23, 7)).astype(np.uint16)
    transform = from_origin(1000, 2000, 10, 10)
    with rasterio.open(tmp_path / "scene.tif", "w", driver="GTiff", height=37, width=23, count=7, dtype="uint16",
                       interleave=interleave, blockysize=rows_per_strip, crs=CRS, transform=transform,
                       **({"compress": compress} if compress else {})) as target:
        target.write(np.moveaxis(cube, -1, 0))
    read = read_cube(tmp_path / "scene.tif").cube
    assert type(read) is (GdalCube if compress else RawTiffCube)
    np.testing.assert_array_equal(np.asarray(read), cube)
    np.testing.assert_array_equal(read[5:20], cube[5:20])
    np.testing.assert_array_equal(read.band_first(3, 11), np.moveaxis(cube[3:11], -1, 0))
    np.testing.assert_array_equal(read[..., [1, 4]][2:9], cube[2:9][..., [1, 4]])
    assert read.georeference.transform == tuple(transform)[:6]


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
@pytest.mark.parametrize("byte_order", [0, 1])
def test_an_envi_file_reads_the_same_by_rows_in_every_interleave_and_byte_order(tmp_path, interleave, byte_order):
    import spectral.io.envi as envi

    from hsijax.data.rasters import EnviCube
    from hsijax.data.readers import read_cube

    cube = np.random.default_rng(8).integers(0, 60000, (7, 5, 4)).astype(np.uint16)
    envi.save_image(str(tmp_path / "scene.hdr"), cube, interleave=interleave, byteorder=byte_order, ext=".img")
    read = read_cube(tmp_path / "scene.hdr").cube
    assert isinstance(read, EnviCube)
    np.testing.assert_array_equal(np.asarray(read), cube)
    np.testing.assert_array_equal(read[2:5], cube[2:5])
    np.testing.assert_array_equal(read.band_first(1, 6), np.moveaxis(cube[1:6], -1, 0))
    np.testing.assert_array_equal(read[..., [0, 2]][1:3], cube[1:3][..., [0, 2]])
