"""`hsijax study`: every cell pretrains, reconstructs its unseen scene and classifies; the page is
built from the results; a second run redoes nothing.

The study here is tiny: the `tiny` pretraining for 10 steps on two synthetic 16 x 12 scenes, one
of them labelled (the classified scene, which the leave-scene-out cell leaves out), one unseen
synthetic scene, and one seed of 2 fine-tuning steps at 5 % of the labels (compiling a chunk of 2
unrolled steps: the page needs scores, not good ones).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from hsijax.cli import main
from hsijax.configs import study as study_config
from hsijax.experiments.study import Cell, cells, pretrain_config
from hsijax.train.metrics_log import read_metrics

pytestmark = pytest.mark.full  # a small decoder study end to end

CONFIG = """
from hsijax.configs import study, tiny


def get_config():
    config = study.get_config()
    config.pretrain = tiny.get_config()
    config.pretrain.data.data_dir = "{data_dir}"
    config.pretrain.data.scenes = "labelled,seen"
    config.pretrain.data.imports = {{"labelled": "{root}/labelled.npy --gt {root}/labels.npy",
                                     "seen": "{root}/seen.npy", "unseen": "{root}/unseen.npy"}}
    config.pretrain.data.held_out_pixels = 64
    config.pretrain.train.steps = 10
    config.pretrain.train.eval_every = 10
    config.pretrain.train.checkpoint_every = 10
    config.decoders = "faithful"  # and a conditioned leave-scene-out cell: two pretrainings in all
    config.leave_out_decoder = "conditioned"
    config.code_widths = "4"
    config.unseen_scenes = "unseen"
    config.leave_out = "labelled"
    config.leave_out_code_width = 4
    config.classify.dataset = "labelled"
    config.classify.fractions = "0.05"
    config.classify.seeds = 1
    config.classify.steps = 2
    return config
"""


def test_the_grid_is_every_decoder_at_every_width_then_the_leave_out_cell():
    config = study_config.get_config()
    grid = cells(config)
    assert [c.name for c in grid[:2]] == ["conditioned_c16", "faithful_c16"]
    assert {(c.decoder, c.code_width) for c in grid[:-1]} == {(d, w) for d in ("conditioned", "faithful")
                                                                for w in (8, 16, 32)}
    assert grid[-1] == Cell("faithful", 16, ("indian_pines",))
    left_out = pretrain_config(config, grid[-1])
    assert "indian_pines" not in left_out.data.scenes.split(",")
    assert left_out.data.scenes.split(",") == [s for s in config.pretrain.data.scenes.split(",") if s != "indian_pines"]
    assert not set(config.unseen_scenes.split(",")) & set(config.pretrain.data.scenes.split(","))
    assert pretrain_config(config, grid[0]).model.decoder == "conditioned"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    rng = np.random.default_rng(0)
    for name, bands in (("labelled", 25), ("seen", 30), ("unseen", 20)):
        np.save(root / f"{name}.npy", rng.uniform(0, 1000, size=(16, 12, bands)).astype(np.float32))
    np.save(root / "labels.npy", np.repeat(np.arange(1, 4), 64).reshape(16, 12).astype(np.uint8))
    config = root / "study_config.py"
    config.write_text(CONFIG.format(data_dir=root / "data", root=root))
    args = ["study", "--config", str(config), "--workdir", str(root / "work"), "--report", str(root / "page"),
            "--no-progress"]
    assert main(args) == 0
    return root, args


def test_every_cell_reconstructs_and_classifies_and_the_page_shows_their_numbers(study):
    root, _ = study
    work, page = root / "work", (root / "page" / "README.md").read_text()
    for cell in ("faithful_c4", "conditioned_c4_without_labelled"):
        recon = json.loads((work / cell / "reconstruct" / "unseen" / "metrics.json").read_text())
        assert recon["bands"] == 20 and recon["code_width"] == 4
        seen = [r for r in read_metrics(work / cell) if r["kind"] == "eval"][-1]["mpsnr_db/mean"]
        assert f"| {cell} | {recon['mpsnr_db']:.2f} / {recon['mssim']:.3f} | {recon['mpsnr_db']:.2f} | {seen:.2f} |" in page
        scores = json.loads((work / cell / "classify_5pct" / "metrics.json").read_text())
        assert list(scores["methods"]) == ["pretrained"] and scores["seeds"] == 1
        assert f"| {cell} | {scores['methods']['pretrained']['oa']['mean'] * 100:.2f} ± 0.00 |" in page
    baselines = json.loads((work / "baselines" / "classify_5pct" / "metrics.json").read_text())
    assert list(baselines["methods"]) == ["scratch", "svm"]
    train = json.loads((work / "conditioned_c4_without_labelled" / "checkpoints" / "10" / "train_config"
                        / "metadata").read_text())
    assert train["data"]["scenes"] == "seen"  # the classified scene left out, the unseen scene never seen
    assert "Not computed yet" not in page
    assert "| 4 | — |" in page  # no conditioned cell pretrained with every scene to compare at c = 4
    assert {p.name for p in (root / "page").glob("*.png")} >= {"reconstruction_mpsnr.png", "per_band_psnr.png",
                                                               "classification_oa.png"}


def test_a_second_run_keeps_every_result(study, capsys):
    root, args = study
    results = sorted((root / "work").rglob("metrics.json"))
    before = {path: path.stat().st_mtime_ns for path in results}
    assert main(args) == 0
    assert {path: path.stat().st_mtime_ns for path in results} == before
    assert "study:" not in capsys.readouterr().err  # nothing pretrained, reconstructed or classified again


def test_the_page_renders_from_a_partial_study(study, tmp_path):
    root, args = study
    (root / "work" / "baselines" / "classify_5pct" / "metrics.json").rename(tmp_path / "kept.json")
    try:
        report = tmp_path / "partial"
        assert main([*args[:-3], "--report", str(report), "--report-only"]) == 0
    finally:
        (tmp_path / "kept.json").rename(root / "work" / "baselines" / "classify_5pct" / "metrics.json")
    page = (report / "README.md").read_text()
    assert re.search(r"\| svm \| — \|", page) and "- svm: classification at 5%" in page
