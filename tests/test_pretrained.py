"""The models shipped inside the package: `hsijax.load_pretrained()` (the linear network on the
wavelength grid) and `load_pretrained("poster")` (the poster's CNN), ``--checkpoint pretrained`` /
``poster`` in every command, `hsijax export`, and the wheel that carries them."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import REPO, environment

import hsijax
from hsijax.cli import main
from hsijax.evaluate.reconstruction import evaluate_reconstruction
from hsijax.models.checkpoints import MODEL_CARDS, SHIPPED, WEIGHTS


@pytest.fixture(scope="module")
def shipped():
    return hsijax.load_pretrained()


@pytest.mark.parametrize("name", list(SHIPPED))
def test_each_shipped_model_is_at_most_5_mb_and_its_card_describes_it(name):
    model = hsijax.load_pretrained(name)
    size = sum(path.stat().st_size for path in SHIPPED[name].rglob("*") if path.is_file())
    assert size <= 5_000_000, size
    card = MODEL_CARDS[name].read_text()
    assert f"code width {model.config.code_width}" in card and f"{model.parameter_count:,} parameters" in card
    assert {"pretrained": "`hsijax.load_pretrained()`", "poster": '`hsijax.load_pretrained("poster")`'}[name] in card


def test_the_default_is_the_linear_network_and_the_poster_cnn_loads_by_name(shipped):
    """The default is the shipped shared-grid PCA's first 16 components in network form (whitened);
    the poster's CNN, the default before, keeps its weights and its name."""
    assert shipped.config == hsijax.LinearGridConfig(code_width=16)
    pca = hsijax.SharedGridPCA.load_pretrained(16)
    np.testing.assert_allclose(np.asarray(shipped.variables["params"]["encoder"]["basis"]),
                               pca.basis * pca.scale[:, None], atol=1e-7)
    poster = hsijax.load_pretrained("poster")
    assert poster.config == hsijax.PosterCNNConfig(code_width=16, decoder="faithful")
    assert poster.parameter_count == 123_665
    assert hsijax.load_model("poster").config == poster.config
    with pytest.raises(hsijax.HsijaxError, match="no shipped model 'nope'; shipped: pretrained, poster"):
        hsijax.load_pretrained("nope")


def test_a_fresh_process_loads_them_from_the_package_alone(tmp_path, shipped):
    # HOME and the working directory hold nothing of hsijax: the weights can only come from the package.
    code = ("import hsijax; m = hsijax.load_pretrained(); print(m.config.code_width, m.parameter_count, "
            "hsijax.SharedGridPCA.load_pretrained(16).code_width)")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            env={**environment(), "HOME": str(tmp_path)}, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    width, count, linear_width = map(int, result.stdout.split())
    assert (width, count, linear_width) == (shipped.config.code_width, shipped.parameter_count, 16)


@pytest.mark.parametrize("name", list(SHIPPED))
def test_they_reconstruct_indian_pines_far_better_than_untrained_weights(name):
    shipped = hsijax.load_pretrained(name)
    whole = hsijax.load_indian_pines()
    scene = dataclasses.replace(whole, cube=whole.cube[:64, :64], labels=whole.labels[:64, :64])  # 1/5 of it
    trained, _, _ = evaluate_reconstruction(shipped, scene)
    untrained, _, _ = evaluate_reconstruction(hsijax.create_model(seed=0, **shipped.config.to_dict()), scene)
    # Measured on the whole image, the poster's CNN: MSSIM 0.54 against -0.02 (MPSNR 19.8 against 18.8 dB:
    # the faithful decoder's weak point on 200-band spectra, stated on its model card); the linear
    # network: 42.3 dB (its card).
    assert trained["mssim"] > untrained["mssim"] + 0.3, (trained["mssim"], untrained["mssim"])
    if name == "pretrained":
        assert trained["mpsnr_db"] > 38, trained


@pytest.fixture(scope="module")
def small_scene(tmp_path_factory) -> Path:
    """A 12 x 10 crop of Indian Pines with three striped classes, as FILE.npy and labels.npy, and its
    band centres as wavelengths.txt."""
    folder = tmp_path_factory.mktemp("scene")
    scene = hsijax.load_indian_pines()
    np.save(folder / "crop.npy", scene.cube[:12, :10])
    np.save(folder / "labels.npy", np.repeat(np.arange(1, 4), 40).reshape(12, 10).astype(np.uint8))
    np.savetxt(folder / "wavelengths.txt", scene.wavelengths_nm)
    return folder


@pytest.mark.full
def test_every_command_takes_checkpoint_pretrained(small_scene, tmp_path, shipped):
    scene, wavelengths = str(small_scene / "crop.npy"), ["--wavelengths", str(small_scene / "wavelengths.txt")]
    assert main(["encode", scene, *wavelengths, "--checkpoint", "pretrained", "--output", str(tmp_path / "codes.npy"),
                 "--no-progress"]) == 0
    cube = np.load(scene)
    np.testing.assert_allclose(np.load(tmp_path / "codes.npy"), hsijax.encode(
        shipped, hsijax.fit_normalization(cube).apply(cube), wavelengths=np.loadtxt(wavelengths[1])), atol=1e-5)
    assert main(["encode", scene, "--checkpoint", "poster", "--output", str(tmp_path / "poster.npy"),
                 "--no-progress"]) == 0  # wavelength-blind: needs no band centres
    assert np.load(tmp_path / "poster.npy").shape == (12, 10, 16)
    assert main(["reconstruct", scene, *wavelengths, "--checkpoint", "pretrained", "--out", str(tmp_path / "recon")]) == 0
    assert json.loads((tmp_path / "recon" / "metrics.json").read_text())["code_width"] == shipped.config.code_width
    assert main(["classify", scene, *wavelengths, "--gt", str(small_scene / "labels.npy"), "--checkpoint", "pretrained",
                 "--seeds", "1", "--steps", "5", "--fraction", "0.1", "--methods", "pretrained,spatial_pretrained",
                 "--out", str(tmp_path / "classify")]) == 0
    report = json.loads((tmp_path / "classify" / "metrics.json").read_text())
    assert set(report["methods"]) == {"pretrained", "spatial_pretrained"}


REFUSAL = ("{file}: the linear network on the shared wavelength grid places spectra by their band centres and none "
           "were given: pass wavelengths=... (nm, one per band) in Python, or --wavelengths with a file (text, .npy, "
           ".mat or an ENVI .hdr), a sensor table (aviris, hyperion) or linspace:FIRST:LAST on the command line")


@pytest.mark.parametrize("command", ["encode", "reconstruct", "classify"])
def test_without_band_centres_every_command_refuses_in_one_line_and_writes_nothing(command, small_scene, tmp_path,
                                                                                    capsys):
    scene = str(small_scene / "crop.npy")
    output = {"encode": ["--output", str(tmp_path / "out" / "codes.npy")]}.get(command, ["--out", str(tmp_path / "out")])
    extra = ["--gt", str(small_scene / "labels.npy")] if command == "classify" else []
    assert main([command, scene, "--checkpoint", "pretrained", *output, *extra]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"hsijax {command}: error: " + REFUSAL.format(file=scene)]
    assert not (tmp_path / "out").exists()


def test_export_writes_a_model_that_loads_back_equal(tmp_path, shipped, capsys):
    assert main(["export", "--checkpoint", "pretrained", "--output", str(tmp_path / "copy")]) == 0
    assert "MB" in capsys.readouterr().out
    copy = hsijax.load_model(tmp_path / "copy")
    assert copy.config == shipped.config
    for ours, theirs in zip(jax.tree.leaves(copy.variables), jax.tree.leaves(shipped.variables)):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    assert main(["export", "--checkpoint", "pretrained", "--output", str(tmp_path / "copy")]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.full
def test_the_wheel_carries_the_weights_and_the_card(tmp_path):
    source = tmp_path / "source"  # a copy, so that the build leaves nothing in the repository
    for folder in ("hsijax", "datasets"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                             "--wheel-dir", str(tmp_path / "wheel"), str(source)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    names = zipfile.ZipFile(next((tmp_path / "wheel").glob("hsijax-*.whl"))).namelist()
    in_wheel = {name for name in names if name.startswith("hsijax/weights/")}
    in_package = {str(path.relative_to(REPO)) for path in WEIGHTS.parent.rglob("*") if path.is_file()}
    assert in_wheel == in_package and "hsijax/weights/MODEL_CARD.md" in in_wheel
    assert {"hsijax/weights/POSTER_MODEL_CARD.md", "hsijax/weights/shared_grid_pca/record/metadata",
            "hsijax/weights/shared_grid_network/model_config/metadata",
            "hsijax/weights/shared_encoder/model_config/metadata"} <= in_wheel
    # The TFDS builders `hsijax prepare` runs, with their checksums, as the package hsijax_datasets;
    # every package of both folders is listed in pyproject.toml (find cannot rename a folder).
    packages = {str(p.parent.relative_to(REPO)).replace("/", ".").replace("datasets", "hsijax_datasets", 1)
                for folder in ("hsijax", "datasets") for p in (REPO / folder).rglob("__init__.py")}
    in_wheel_packages = {name.rpartition("/")[0].replace("/", ".") for name in names if name.endswith("/__init__.py")}
    assert in_wheel_packages == packages
    assert {"hsijax_datasets/ksc/ksc_dataset_builder.py", "hsijax_datasets/ksc/checksums.tsv",
            "hsijax_datasets/houston2013/checksums.tsv"} <= set(names)
    assert not any("dummy_data" in name for name in names)


@pytest.mark.full
def test_export_writes_a_model_card_from_the_run_records(small_run, tmp_path, capsys):
    card = tmp_path / "CARD.md"
    assert main(["export", "--checkpoint", str(small_run / "work"), "--output", str(tmp_path / "model"),
                 "--card", str(card)]) == 0
    text = card.read_text()
    model = hsijax.load_model(tmp_path / "model")
    assert f"code width {model.config.code_width}" in text and f"{model.parameter_count:,} parameters" in text
    assert "| small | " in text and "2 steps of 8 pixels" in text
    assert main(["export", "--checkpoint", "pretrained", "--output", str(tmp_path / "again"),
                 "--card", str(tmp_path / "again.md")]) == 2
    assert "no training record" in capsys.readouterr().err and not (tmp_path / "again").exists()


def test_the_cards_classification_section_says_what_each_method_is():
    from hsijax.experiments.model_card import classification_section

    scores = {key: {"mean": 0.5, "std": 0.01} for key in ("oa", "aa", "kappa")}
    report = {"dataset": "indian_pines", "fraction": 0.05, "train_pixels": 505, "seeds": 5,
              "methods": {"pretrained": scores, "svm": scores}}
    spectral = "\n".join(classification_section([report]))
    assert "| pretrained | 50.00 ± 1.00 |" in spectral and "spatial" not in spectral
    with_spatial = "\n".join(classification_section([report, {**report, "methods": {"spatial_svm": scores}}]))
    assert "`spatial_pretrained`, `spatial_svm`: the spatial variant" in with_spatial
    assert with_spatial.count("indian_pines: 5% labels") == 2
    assert "No classification report" in "\n".join(classification_section([]))
