"""`hsijax leave-out`: each cell pretrains without its scene and the validation scenes, scores the
left-out scene against the grid PCA, its own PCA and its mean, compares codes with spectra, and the
page is written from the results; a second run redoes nothing.

Tiny: the `tiny` network for 10 steps on synthetic 16 x 12 scenes with wavelengths (one labelled, one
with an anomaly map, one labelled outside pretraining), one validation scene, one seed; fine-tuning is
off (the study's, tested by `hsijax study`).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from hsijax.cli import main
from hsijax.configs import leave_out as leave_out_config
from hsijax.experiments.leave_out import pretraining_scenes

pytestmark = pytest.mark.full  # a small leave-out evaluation end to end

CONFIG = """
from hsijax.configs import leave_out, tiny


def get_config(kind=None):
    config = leave_out.get_config(kind)
    config.pretrain = tiny.get_config(kind)
    config.pretrain.data.data_dir = "{data_dir}"
    config.pretrain.data.scenes = "labelled,seen,valid,anomalous"
    config.pretrain.data.imports = {{
        "labelled": "{root}/labelled.npy --gt {root}/labels.npy --wavelengths linspace:400:2400",
        "seen": "{root}/seen.npy --wavelengths linspace:400:1000",
        "valid": "{root}/valid.npy --wavelengths linspace:450:2000",
        "anomalous": "{root}/anomalous.npy --gt {root}/anomalies.npy",
        "extra": "{root}/extra.npy --gt {root}/labels.npy --wavelengths linspace:420:900"}}
    config.pretrain.data.held_out_pixels = 64
    config.pretrain.train.steps = 10
    config.pretrain.train.eval_every = 10
    config.pretrain.train.checkpoint_every = 10
    config.left_out = "labelled,seen"
    config.labelled_scenes = "extra:seen"
    config.validation_scenes = "valid"
    config.spectral_library = "{root}/library"
    config.library_mixtures = 50
    config.code_widths = "2,4"
    config.anomaly_scenes = "anomalous"
    config.classify.dataset = "labelled"
    config.classify.fractions = "0.1"
    config.classify.seeds = 1
    config.classify.fine_tune = False
    return config
"""


def test_the_real_config_keeps_validation_scenes_out_of_every_cell():
    config = leave_out_config.get_config()
    validation = set(config.validation_scenes.split(","))
    for left_out in config.left_out.split(","):
        scenes = pretraining_scenes(config, left_out)
        assert left_out not in scenes and not validation & set(scenes)
    assert not validation & set(config.left_out.split(","))
    assert config.pretrain.data.mixing == "uniform"


def write_library(folder, rng) -> None:
    """Three spectra in the USGS splib07a ASCII format, one with a deleted channel (dropped)."""
    (folder / "ChapterM_Minerals").mkdir(parents=True)
    wavelengths = np.linspace(0.35, 2.5, 2151)
    (folder / "splib07a_Wavelengths_ASD_0.35-2.5_microns_2151_ch.txt").write_text(
        "Wavelengths\n" + "\n".join(f"{w:.6f}" for w in wavelengths))
    for index in range(3):
        values = 0.3 + 0.2 * np.sin(wavelengths * (index + 1)) + 0.01 * rng.random(2151)
        if index == 2:
            values[100] = -1.23e34
        (folder / "ChapterM_Minerals" / f"splib07a_Thing{index}_ASDFR_AREF.txt").write_text(
            f" splib07a Record={index}: Thing{index} ASDFR AREF\n" + "\n".join(f"{v:.6e}" for v in values))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("leave_out")
    rng = np.random.default_rng(0)
    for name, bands in (("labelled", 40), ("seen", 30), ("valid", 35), ("anomalous", 25), ("extra", 20)):
        smooth = np.cumsum(rng.normal(size=(16, 12, bands)), axis=-1) + 50
        np.save(root / f"{name}.npy", smooth.astype(np.float32))
    np.save(root / "labels.npy", np.repeat(np.arange(1, 4), 64).reshape(16, 12).astype(np.uint8))
    anomalies = np.zeros((16, 12), np.uint8)
    anomalies[2, 3] = anomalies[9, 9] = 1
    np.save(root / "anomalies.npy", anomalies)
    write_library(root / "library", rng)
    config = root / "config.py"
    config.write_text(CONFIG.format(data_dir=root / "data", root=root))
    args = ["leave-out", "--config", str(config), "--workdir", str(root / "work"), "--report", str(root / "page"),
            "--no-progress"]
    assert main(args) == 0
    return root, args


def test_each_cell_scores_its_scene_against_the_linear_codes_and_the_page_shows_them(study):
    root, _ = study
    work, page = root / "work", (root / "page" / "README.md").read_text()
    result = json.loads((work / "without_labelled" / "reconstruct" / "labelled.json").read_text())
    assert set(result["rows"]) == {"network", "mean_spectrum", "grid_pca_c2", "grid_pca_c4", "grid_pca_library_c2",
                                   "grid_pca_library_c4", "own_pca_c2", "own_pca_c4"}
    assert result["grid_pca_fitted_on"] == ["seen"]  # not the left-out, not the validation, not one without wavelengths
    assert result["rows"]["own_pca_c4"]["mpsnr_db"] > result["rows"]["own_pca_c2"]["mpsnr_db"]
    row = result["rows"]["grid_pca_c4"]
    assert f"{row['mpsnr_db']:.2f} ({row['mssim']:.3f})" in page
    assert (work / "without_seen" / "reconstruct" / "valid.json").is_file()
    train = json.loads((work / "without_seen" / "checkpoints" / "10" / "train_config" / "metadata").read_text())
    assert train["data"]["scenes"] == "labelled,anomalous"
    codes = json.loads((work / "without_labelled" / "codes_vs_spectra" / "labelled_10pct.json").read_text())
    assert set(codes["results"]["svm"]) == {"spectra", "network codes", "grid PCA codes", "grid PCA + library codes"}
    extra = json.loads((work / "without_seen" / "codes_vs_spectra" / "extra_10pct.json").read_text())
    assert extra["model"] == "without_seen" and set(extra["results"]["linear"]) == set(codes["results"]["svm"])
    assert "(model pretrained without seen)" in page
    auc = json.loads((work / "anomaly_rx_auc.json").read_text())["auc"]["anomalous"]
    assert 0 <= auc["spectra"] <= 1 and 0 <= auc["network codes"] <= 1
    assert f"| anomalous | {auc['spectra']:.4f} |" in page
    assert (root / "page" / "reconstruction.png").is_file()


def test_a_second_run_keeps_every_result(study, capsys):
    root, args = study
    results = sorted((root / "work").rglob("*.json"))
    before = {path: path.stat().st_mtime_ns for path in results}
    assert main(args) == 0
    assert {path: path.stat().st_mtime_ns for path in results} == before
    assert "leave-out:" not in capsys.readouterr().err


def test_an_unknown_field_is_one_line(tmp_path, capsys):
    assert main(["leave-out", "--workdir", str(tmp_path / "w"), "--config.nope=1"]) != 0
    err = capsys.readouterr().err.strip()
    assert "unknown config field" in err and len(err.splitlines()) == 1


def test_the_linear_network_is_fitted_per_cell_by_its_shipping_recipe_and_scored_like_a_network(study, tmp_path):
    """With the linear network (``--config FILE:linear_grid``) a cell fits the grid PCA of its scenes
    plus the library (no pretraining) and saves it as its model; its row then equals that PCA's at
    the same width. (The anomaly scene lists no band centres, which the linear network needs.)"""
    root, _ = study
    args = ["leave-out", "--config", f"{root / 'config.py'}:linear_grid", "--workdir", str(tmp_path / "work"),
            "--report", str(tmp_path / "page"), "--no-progress", "--config.left_out=labelled",
            "--config.labelled_scenes=", "--config.anomaly_scenes=", "--config.pretrain.model.code_width=4"]
    assert main(args) == 0
    cell = tmp_path / "work" / "without_labelled"
    assert (cell / "model" / "state").is_dir() and not (cell / "checkpoints").exists()
    rows = json.loads((cell / "reconstruct" / "labelled.json").read_text())["rows"]
    assert rows["network"]["mpsnr_db"] == pytest.approx(rows["grid_pca_library_c4"]["mpsnr_db"], abs=0.05)
    codes = json.loads((cell / "codes_vs_spectra" / "labelled_10pct.json").read_text())["results"]["svm"]
    assert codes["network codes"]["oa"]["mean"] == pytest.approx(codes["grid PCA + library codes"]["oa"]["mean"],
                                                                  abs=0.02)
    assert "the linear network on the shared wavelength grid" in (tmp_path / "page" / "README.md").read_text()
