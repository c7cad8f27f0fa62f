"""`hsijax map`: a scene and a few labels in, a GeoTIFF class map, its legend, a reloadable classifier
and a report out; the classifier applied to another scene; bad input refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

import hsijax
from hsijax.cli import main

BANDS, HEIGHT, WIDTH = 40, 24, 20
WAVELENGTHS = np.linspace(420, 2400, BANDS)
CRS, TRANSFORM = "EPSG:32616", from_origin(500000, 4500000, 30, 30)


def synthetic_scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(cube (H, W, b) uint16, classes (H, W) 1..3): three materials in vertical stripes, with noise."""
    rng = np.random.default_rng(seed)
    classes = np.repeat(np.arange(1, 4), [7, 7, 6])[None, :].repeat(HEIGHT, 0)
    grid = np.linspace(0, 1, BANDS)
    spectra = {1: 2000 + 3000 * grid, 2: 5000 - 2500 * grid, 3: 3000 + 1500 * np.sin(6 * grid)}
    cube = np.stack([spectra[c] for c in classes.reshape(-1)]).reshape(HEIGHT, WIDTH, BANDS)
    return (cube + rng.normal(0, 150, cube.shape)).clip(0, 65535).astype(np.uint16), classes


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    """A GeoTIFF scene with a nodata pixel, 5 training labels a class, and its `hsijax map`."""
    root = tmp_path_factory.mktemp("map")
    cube, classes = synthetic_scene()
    cube[0, 0] = 0  # every band nodata
    with rasterio.open(root / "scene.tif", "w", driver="GTiff", height=HEIGHT, width=WIDTH, count=BANDS,
                       dtype="uint16", crs=CRS, transform=TRANSFORM, nodata=0) as target:
        target.write(np.moveaxis(cube, -1, 0))
    labels = np.zeros((HEIGHT, WIDTH), np.uint8)
    rng = np.random.default_rng(1)
    for c in (1, 2, 3):
        rows, cols = np.nonzero((classes == c) & (np.arange(HEIGHT)[:, None] > 0))
        pick = rng.choice(len(rows), 5, replace=False)
        labels[rows[pick], cols[pick]] = c
    np.save(root / "labels.npy", labels)
    np.savetxt(root / "wavelengths.txt", WAVELENGTHS)
    code = main(["map", str(root / "scene.tif"), "--labels", str(root / "labels.npy"), "--wavelengths",
                 str(root / "wavelengths.txt"), "--class-names", "soil,water,grass", "--out", str(root / "out")])
    assert code == 0
    return root, cube, classes


def test_the_map_is_a_georeferenced_uint8_geotiff_with_a_colour_table(mapped):
    root, _, classes = mapped
    with rasterio.open(root / "out" / "map.tif") as source:
        assert source.dtypes == ("uint8",) and source.count == 1 and source.nodata == 0
        assert source.crs.to_string() == CRS and source.transform == TRANSFORM
        colours = source.colormap(1)
        class_map = source.read(1)
    assert colours[0][3] == 0 and all(colours[c][3] == 255 for c in (1, 2, 3))
    assert class_map[0, 0] == 0  # the nodata pixel
    assert set(np.unique(class_map[1:])) <= {1, 2, 3}
    assert (class_map[1:] == classes[1:]).mean() > 0.95  # three well-separated materials


def test_the_report_says_what_was_chosen_on_the_training_pixels(mapped):
    root, _, _ = mapped
    report = json.loads((root / "out" / "report.json").read_text())
    assert {row["head"] for row in report["candidates"]} == {"svm_rbf", "linear"}
    assert {row["encoder"] for row in report["candidates"]} == {"checkpoint (c = 16)", "shipped grid PCA (c = 32)"}
    assert report["encoder"] in {row["encoder"] for row in report["candidates"]}
    assert report["chosen"] in ("svm_rbf", "linear") and report["training_pixels"] == {"1": 5, "2": 5, "3": 5}
    text = (root / "out" / "report.md").read_text()
    assert "**(chosen)**" in text and "1: soil" in text and "Confusion matrix" in text and "κ" in text
    assert (root / "out" / "map.png").stat().st_size > 0
    assert not list(root.glob(".*"))  # nothing half-written left beside it


def test_the_saved_classifier_reloads_and_maps_another_scene(mapped, capsys):
    root, cube, _ = mapped
    classifier = hsijax.load_classifier(root / "out" / "classifier")
    assert classifier.classes == (1, 2, 3) and classifier.class_names == ("soil", "water", "grass")
    with rasterio.open(root / "out" / "map.tif") as source:
        class_map = source.read(1)
    predicted = classifier.predict(cube[1:].reshape(-1, BANDS), WAVELENGTHS)
    np.testing.assert_array_equal(predicted, class_map[1:].reshape(-1))
    other, other_classes = synthetic_scene(seed=5)  # the same sensor: another tile, as a .npy
    np.save(root / "other.npy", other)
    assert main(["map", str(root / "other.npy"), "--classifier", str(root / "out" / "classifier"), "--wavelengths",
                 str(root / "wavelengths.txt"), "--out", str(root / "other")]) == 0
    with rasterio.open(root / "other" / "map.tif") as source:
        assert (source.read(1) == other_classes).mean() > 0.95


@pytest.mark.parametrize("case, extra, message", [
    ("labels of another shape", ["--labels", "{root}/small.npy"], "label image of shape (3, 3), but the scene is 24 × 20"),
    ("one class", ["--labels", "{root}/one_class.npy"], "needs at least two classes"),
    ("no band centres", ["--labels", "{root}/labels.npy", "--no-wavelengths"], "--wavelengths"),
    ("labels and classifier", ["--labels", "{root}/labels.npy", "--classifier", "{root}/out/classifier"], "either"),
])
def test_bad_input_is_one_line_and_writes_nothing(mapped, capsys, tmp_path, case, extra, message):
    root, _, _ = mapped
    np.save(root / "small.npy", np.ones((3, 3), np.uint8))
    np.save(root / "one_class.npy", np.ones((HEIGHT, WIDTH), np.uint8))
    extra = [e.replace("{root}", str(root)) for e in extra]
    wavelengths = [] if "--no-wavelengths" in extra else ["--wavelengths", str(root / "wavelengths.txt")]
    extra = [e for e in extra if e != "--no-wavelengths"]
    capsys.readouterr()
    assert main(["map", str(root / "other.npy" if "no band" in case else root / "scene.tif"), *extra, *wavelengths,
                 "--out", str(tmp_path / "new")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hsijax map: error: ") and message in err[0], err
    assert not (tmp_path / "new").exists()


def test_the_jax_heads_predict_what_scikit_learn_predicts():
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    from hsijax.models.map_classifier import MapClassifier, head_arrays
    from hsijax.spectral import Normalization

    rng = np.random.default_rng(0)
    labels = rng.integers(1, 6, 300)
    features = (rng.normal(size=(300, 8)) + labels[:, None] * 0.5).astype(np.float32)
    test = (rng.normal(size=(500, 8)) * 2).astype(np.float32)
    for estimator in (SVC(kernel="rbf", C=10).fit(features, labels), LogisticRegression(max_iter=500).fit(features, labels)):
        kind, arrays = head_arrays(estimator)
        arrays = {**arrays, "mean": np.zeros(8, np.float32), "scale": np.ones(8, np.float32)}
        classifier = MapClassifier(None, kind, arrays, tuple(estimator.classes_.tolist()), (), Normalization(0.0, 1.0),
                                   None)
        np.testing.assert_array_equal(classifier.predict_codes(test), estimator.predict(test))


def test_the_map_method_of_classify_never_reads_a_test_label():
    """`hsijax classify --methods map` scores what `hsijax map` trains on random splits; changing
    the labels of the test pixels changes no prediction."""
    from hsijax.evaluate.classification import ClassifySettings, run_classification
    from hsijax.evaluate.splits import stratified_split
    from hsijax.spectral import fit_normalization

    cube, classes = synthetic_scene()
    spectra = fit_normalization(cube).apply(cube.reshape(-1, BANDS)).astype(np.float32)
    labels = classes.reshape(-1)
    settings = ClassifySettings(fraction=0.05, seeds=1, methods=("map",))
    model = hsijax.load_pretrained()
    report, maps = run_classification(spectra, labels, settings, model, wavelengths=WAVELENGTHS)
    assert report["methods"]["map"]["oa"]["mean"] > 0.9
    train, test = stratified_split(labels, 0.05, 0)
    relabelled = labels.copy()
    relabelled[test] = np.roll(labels[test], 1)
    _, again = run_classification(spectra, relabelled, settings, model, wavelengths=WAVELENGTHS)
    np.testing.assert_array_equal(maps["map"], again["map"])


def write_polygons(path: Path, boxes: list[tuple[float, float, float, float, int]], crs: str = CRS) -> None:
    """A GeoPackage of rectangles (x0, y0, x1, y1 in the CRS's units) with their ``class`` number."""
    import pyogrio
    import shapely

    geometry = np.array([shapely.to_wkb(shapely.box(x0, y0, x1, y1)) for x0, y0, x1, y1, _ in boxes], dtype=object)
    classes = np.array([c for *_, c in boxes], np.int32)
    pyogrio.raw.write(path, geometry, [classes], ["class"], geometry_type="Polygon", crs=crs, driver="GPKG")


def test_polygons_are_rasterised_onto_the_scene_grid(mapped, tmp_path):
    """Training labels as polygons in the scene's CRS: one small box inside each stripe of columns."""
    root, _, classes = mapped
    x0, y0 = 500000, 4500000  # the scene's upper-left corner; 30 m pixels
    boxes = [(x0 + 30 * c0, y0 - 30 * 10, x0 + 30 * (c0 + 2), y0 - 30 * 7, c) for c0, c in ((2, 1), (9, 2), (16, 3))]
    write_polygons(tmp_path / "train.gpkg", boxes)
    assert main(["map", str(root / "scene.tif"), "--labels", str(tmp_path / "train.gpkg"), "--wavelengths",
                 str(root / "wavelengths.txt"), "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["training_pixels"] == {"1": 6, "2": 6, "3": 6}  # 2 columns x 3 rows each
    with rasterio.open(tmp_path / "out" / "map.tif") as source:
        assert (source.read(1)[1:] == classes[1:]).mean() > 0.95


def test_polygons_in_another_crs_or_without_the_attribute_are_refused(mapped, tmp_path, capsys):
    root, _, _ = mapped
    write_polygons(tmp_path / "wgs84.gpkg", [(0, 0, 1, 1, 1), (1, 1, 2, 2, 2)], crs="EPSG:4326")
    write_polygons(tmp_path / "ok.gpkg", [(500000, 4499000, 500300, 4499500, 1), (500300, 4499000, 500600, 4499500, 2)])
    for labels, extra, message in ((tmp_path / "wgs84.gpkg", [], "reproject the polygons to the scene's CRS"),
                                   (tmp_path / "ok.gpkg", ["--labels-attribute", "kind"], "no attribute 'kind'")):
        capsys.readouterr()
        assert main(["map", str(root / "scene.tif"), "--labels", str(labels), *extra, "--wavelengths",
                     str(root / "wavelengths.txt"), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
        assert not (tmp_path / "out").exists()


def test_the_scene_is_standardised_and_mapped_in_blocks_as_if_whole(mapped, monkeypatch, tmp_path):
    """`hsijax map` never holds a whole scene's codes: blocks of 3 rows, chunks of 50 pixels here. Its
    mean and scale are `standardised`'s over the whole scene bit for bit, and its map is the whole
    array's classified at once -- from the scratch file of codes and straight from the scene."""
    from hsijax.data.scene import Scene
    from hsijax.evaluate import encode_scene, mapping
    from hsijax.evaluate.classification import map_encoders, standardised
    from hsijax.models import map_classifier
    from hsijax.spectral import fit_normalization

    root, cube, _ = mapped
    scene = Scene("scene", "unknown", cube, None, WAVELENGTHS, nodata=0)
    normalization = fit_normalization(cube, "scene", 0)
    encoders = map_encoders(hsijax.load_pretrained())
    labels = np.load(root / "labels.npy")
    whole = [np.concatenate(codes).reshape(-1, model.config.code_width) for codes, model in
             zip(zip(*encode_scene.code_blocks(tuple(encoders.values()), scene, normalization, False)), encoders.values())]
    valid = ~np.isnan(whole[0]).any(1)
    monkeypatch.setattr(encode_scene, "BLOCK_PIXELS", 3 * WIDTH)
    monkeypatch.setattr(mapping, "CHUNK", 50)
    monkeypatch.setattr(map_classifier, "CHUNK", 50)
    features, streamed_valid = mapping.scene_features(encoders, scene, normalization, labels, tmp_path)
    np.testing.assert_array_equal(streamed_valid, valid)
    train = (labels.reshape(-1) > 0) & valid
    for codes, (values, mean, scale, _) in zip(whole, features.values()):
        want, want_mean, want_scale = standardised(np.nan_to_num(codes, nan=0.0), valid)
        assert mean.dtype == scale.dtype == np.float32
        np.testing.assert_array_equal(mean, want_mean)
        np.testing.assert_array_equal(scale, want_scale)
        np.testing.assert_array_equal(values, want[train])
    classifier = hsijax.load_classifier(root / "out" / "classifier")
    encoder = json.loads((root / "out" / "report.json").read_text())["encoder"]
    codes = np.nan_to_num(whole[list(encoders).index(encoder)], nan=0.0)
    want = np.where(valid, classifier.predict_codes(classifier.standardise(codes)), 0).reshape(HEIGHT, WIDTH)
    np.testing.assert_array_equal(mapping.predicted_map(classifier, scene, normalization), want)
    np.testing.assert_array_equal(
        mapping.predicted_map(classifier, scene, normalization, features[encoder][3], valid), want)
