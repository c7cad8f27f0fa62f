"""`hsijax classify` and `SpectralClassifier.from_pretrained` on Indian Pines."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import numpy as np
import pytest

from hsijax.cli import main
from hsijax.data.scene import load_indian_pines
from hsijax.errors import HsijaxError
from hsijax.evaluate.classification import ClassifySettings, run_method
from hsijax.evaluate.splits import stratified_split
from hsijax.models.checkpoints import load_model
from hsijax.models.classifier import SpectralClassifier, predict
from hsijax.models.networks import PosterCNNConfig
from hsijax.spectral import fit_normalization, pad_to_bucket
from hsijax.train.fine_tune import fine_tune


@pytest.mark.full
def test_from_pretrained_takes_the_checkpoints_encoder(reference, monkeypatch):
    monkeypatch.chdir(reference.parent)  # a relative path too
    for path in (reference, reference / "checkpoints", Path(reference.name) / "checkpoints" / "40"):
        classifier, variables = SpectralClassifier.from_pretrained(path, num_classes=16)
        encoder = load_model(path).variables["params"]["encoder"]
        for got, want in zip(jax.tree.leaves(variables["params"]["encoder"]), jax.tree.leaves(encoder)):
            np.testing.assert_array_equal(got, want)
        assert variables["params"]["head_out"]["kernel"].shape == (64, 16)
        logits = classifier.apply(variables, np.zeros((3, 256), np.float32))
        assert logits.shape == (3, 16)
    with pytest.raises(HsijaxError, match="no checkpoint found"):
        SpectralClassifier.from_pretrained(reference / "tensorboard", num_classes=3)


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(["classify", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.full
def test_classify_a_dataset_with_all_three_methods(tmp_path, capsys, data_dir, reference):
    code, out, err = run(capsys, "--dataset", "indian_pines", "--data-dir", data_dir, "--fraction", 0.05,
                         "--seeds", 2, "--checkpoint", reference, "--steps", 5, "--out", tmp_path)
    assert code == 0, err
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["dataset"] == "indian_pines" and report["train_pixels"] == 505
    assert report["test_pixels"] == 10249 - 505
    assert set(report["methods"]) == {"pretrained", "scratch", "svm"}
    for scores in report["methods"].values():
        for key in ("oa", "aa", "kappa"):
            assert 0 <= scores[key]["mean"] <= 1 and scores[key]["std"] >= 0
        assert len(scores["per_seed"]) == 2 and len(scores["per_class"]) == 16
    assert report["methods"]["svm"]["oa"]["mean"] > 0.6  # RBF SVM at 5 %: a real classifier
    assert (tmp_path / "classification_maps.png").stat().st_size > 10_000
    assert "| svm |" in out and "seed 1 svm" in err


@pytest.mark.full
def test_classify_a_file_without_checkpoint(tmp_path, capsys):
    scene = load_indian_pines()
    np.save(tmp_path / "cube.npy", scene.cube)
    np.save(tmp_path / "gt.npy", scene.labels)
    code, out, err = run(capsys, tmp_path / "cube.npy", "--gt", tmp_path / "gt.npy", "--fraction", 0.02,
                         "--seeds", 1, "--steps", 2, "--out", tmp_path / "out")
    assert code == 0, err
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(report["methods"]) == {"scratch", "svm"}  # the default without a checkpoint
    code, out, err = run(capsys, tmp_path / "cube.npy", "--gt", tmp_path / "gt.npy", "--fraction", 0.02,
                         "--seeds", 1, "--methods", "svm,spatial_svm", "--windows", "5",
                         "--out", tmp_path / "spatial")
    assert code == 0, err
    report = json.loads((tmp_path / "spatial" / "metrics.json").read_text())
    assert set(report["methods"]) == {"svm", "spatial_svm"}
    assert report["methods"]["spatial_svm"]["per_seed"][0]["window"] == 5  # --windows reaches the search
    assert "| spatial_svm |" in out and "window)" in err


def test_classify_bad_input(tmp_path, capsys):
    np.save(tmp_path / "cube.npy", np.ones((5, 5, 10), np.float32))
    np.save(tmp_path / "gt.npy", np.zeros((5, 5), np.uint8))
    code, _, err = run(capsys, tmp_path / "cube.npy", "--gt", tmp_path / "gt.npy", "--out", tmp_path / "o")
    assert code == 2 and "no labelled pixels" in err
    code, _, err = run(capsys, tmp_path / "cube.npy", "--dataset", "x", "--out", tmp_path / "o")
    assert code == 2 and "either --dataset NAME or a scene FILE" in err
    assert not (tmp_path / "o").exists()


def test_the_step_kept_is_the_best_on_validation_pixels():
    rng = np.random.default_rng(0)
    spectra = rng.normal(size=(120, 64)).astype(np.float32)
    labels = (spectra[:, :8].sum(axis=1) > 0).astype(np.int32)
    classifier = SpectralClassifier(PosterCNNConfig(widths=(8,), buckets=(64,)), num_classes=2)
    tuned = fine_tune(classifier, classifier.init_variables(0), spectra[:80], labels[:80], steps=60,
                      batch_size=32, validation=(spectra[80:], labels[80:]), eval_every=10)
    steps, accuracies = zip(*tuned.history)
    assert steps == (10, 20, 30, 40, 50, 60)
    assert tuned.best_step == steps[int(np.argmax(accuracies))]
    kept = np.mean(predict(classifier, tuned.variables, spectra[80:]) == labels[80:])
    assert kept == max(accuracies)


@pytest.mark.full
def test_test_labels_never_change_what_the_networks_learn():
    """Scrambling the labels of the test pixels leaves the kept step and every prediction unchanged."""
    scene = load_indian_pines()
    spectra = fit_normalization(scene.cube).apply(scene.cube.reshape(-1, 200)).astype(np.float32)
    labels = scene.labels.reshape(-1)
    train, test = stratified_split(labels, 0.05, seed=0)
    scrambled = labels.copy()
    scrambled[test] = np.random.default_rng(1).permutation(labels[test])
    padded, _ = pad_to_bucket(spectra)
    settings = ClassifySettings(steps=8, eval_every=2)  # four evaluations, a chunk of two steps to compile
    runs = [run_method("scratch", settings, None, spectra, padded, given, train, seed=0)
            for given in (labels, scrambled)]
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1] and runs[0][1] in (2, 4, 6, 8)


@pytest.mark.full
def test_a_model_with_its_own_buckets_classifies_with_them(tmp_path, capsys):
    """600 bands are beyond the default buckets (512 at most) but within this model's 1024: the
    networks pad with the checkpoint's buckets (before: the defaults, and 600 bands were refused)."""
    from hsijax import create_model, save_model

    save_model(create_model(4, widths=(8,), buckets=(1024,)), tmp_path / "model")
    rng = np.random.default_rng(0)
    labels = np.repeat([1, 2], 50).reshape(10, 10)
    cube = (rng.random((10, 10, 600)) + labels[..., None] * np.linspace(0, 1, 600)).astype(np.float32)
    np.save(tmp_path / "cube.npy", cube)
    np.save(tmp_path / "gt.npy", labels)
    code, _, err = run(capsys, tmp_path / "cube.npy", "--gt", tmp_path / "gt.npy", "--checkpoint", tmp_path / "model",
                       "--fraction", 0.2, "--seeds", 1, "--steps", 4, "--methods", "pretrained,scratch",
                       "--out", tmp_path / "out")
    assert code == 0, err
    assert set(json.loads((tmp_path / "out" / "metrics.json").read_text())["methods"]) == {"pretrained", "scratch"}
    code, _, err = run(capsys, tmp_path / "cube.npy", "--gt", tmp_path / "gt.npy", "--fraction", 0.2,
                       "--out", tmp_path / "default")
    assert code == 2 and "band count 600 is above the largest bucket (512)" in err and "cube.npy" in err


@pytest.mark.full
def test_fine_tuning_compiles_once_for_every_seed_and_both_networks(tmp_path):
    """After the first run of the pretrained network, more seeds and the scratch network (same
    architecture) compile nothing: the chunk of steps (the last one part masked), the optimiser's
    init, validation and prediction are all reused -- also when the pretrained encoder was read from
    a checkpoint (arrays committed to the device, where a fresh network's are not)."""
    from conftest import count_compilations

    from hsijax import create_model, load_model, save_model
    from hsijax.evaluate.classification import run_classification

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(1, 4), 40)
    spectra = (rng.random((120, 30)) + labels[:, None] * np.linspace(0, 0.3, 30)).astype(np.float32)
    save_model(create_model(5, widths=(8,), seed=1), tmp_path / "model")  # a configuration no other test compiles
    pretrained = load_model(tmp_path / "model")
    settings = ClassifySettings(fraction=0.3, seeds=1, steps=5, eval_every=2, methods=("pretrained",))
    with count_compilations() as first:
        run_classification(spectra, labels, settings, pretrained)
    assert first() > 0
    with count_compilations() as again:
        report, _ = run_classification(spectra, labels, dataclasses.replace(
            settings, seeds=3, methods=("pretrained", "scratch")), pretrained)
    assert again() == 0 and len(report["methods"]["pretrained"]["per_seed"]) == 3
    assert [run["step"] for run in report["methods"]["scratch"]["per_seed"]] != []


@pytest.mark.full
def test_chunked_fine_tuning_takes_the_same_steps_as_one_step_at_a_time():
    """The compiled chunks (steps past the end masked) equal plain optax steps on the same batches."""
    import optax

    from hsijax.train.fine_tune import FINAL_LEARNING_RATE_FRACTION, batch_draws

    rng = np.random.default_rng(0)
    spectra = rng.normal(size=(40, 64)).astype(np.float32)
    labels = (spectra[:, 0] > 0).astype(np.int32)
    classifier = SpectralClassifier(PosterCNNConfig(widths=(8,), buckets=(64,)), num_classes=2)
    variables = classifier.init_variables(0)
    tuned = fine_tune(classifier, variables, spectra, labels, steps=7, batch_size=16, eval_every=4)
    optimizer = optax.adam(optax.cosine_decay_schedule(1e-3, 7, alpha=FINAL_LEARNING_RATE_FRACTION))
    params, state = variables["params"], optimizer.init(variables["params"])
    loss = lambda p, x, y: optax.softmax_cross_entropy_with_integer_labels(classifier.apply({"params": p}, x), y).mean()

    @jax.jit  # one plain step per call (not eagerly: that compiled each of its ~200 operations)
    def step(params, state, x, y):
        updates, state = optimizer.update(jax.grad(loss)(params, x, y), state, params)
        return optax.apply_updates(params, updates), state

    for rows in batch_draws(40, 16, 7, seed=0):
        params, state = step(params, state, spectra[rows], labels[rows])
    for got, want in zip(jax.tree.leaves(tuned.variables["params"]), jax.tree.leaves(params)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
