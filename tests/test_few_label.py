"""The few-label study: the spatially disjoint split, block-keeping folds, the majority filter, the
methods' choices made on training pixels only, and `hsijax few-label` end to end on a small scene."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.ndimage import distance_transform_cdt

from conftest import environment
from hsijax.configs import load_config
from hsijax.errors import HsijaxError
from hsijax.evaluate import methods as few
from hsijax.evaluate.classification import cv_folds
from hsijax.evaluate.splits import block_split, training_counts
from hsijax.experiments.few_label import run_few_label
from hsijax.models.checkpoints import load_model


def field_labels(height=48, width=40, seed=0) -> np.ndarray:
    """Rectangular fields of 4 classes with an unlabelled border, like a ground-truth map."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((height, width), np.uint8)
    for top in range(2, height - 2, 11):
        for left in range(2, width - 2, 9):
            labels[top:top + 9, left:left + 7] = rng.integers(1, 5)
    return labels


def test_block_split_counts_blocks_and_margin():
    labels = field_labels()
    for margin in (0, 2):
        train, test, blocks = block_split(labels, 0.1, seed=3, margin=margin)
        flat = labels.reshape(-1)
        counts = training_counts(flat, 0.1)
        assert {c: int((flat[train] == c).sum()) for c in counts} == counts
        assert np.all(flat[test] > 0) and not set(train) & set(test)
        # every test pixel lies farther than the margin (Chebyshev) from every training pixel
        mask = np.ones(labels.shape, bool)
        mask.reshape(-1)[train] = False
        distance = distance_transform_cdt(mask, metric="chessboard").reshape(-1)
        assert distance[test].min() > margin
        # whole blocks: per class, every block it took is taken whole but (at most) the last one
        for c in counts:
            taken = train[flat[train] == c]
            partial = [b for b in np.unique(blocks[taken])
                       if (blocks[taken] == b).sum() < ((blocks == b) & (flat == c)).sum()]
            assert len(partial) <= 1
    # the margin removes test pixels; another seed draws other blocks
    assert len(block_split(labels, 0.1, 3, margin=2)[1]) < len(block_split(labels, 0.1, 3, margin=0)[1])
    assert not np.array_equal(block_split(labels, 0.1, 3)[0], block_split(labels, 0.1, 4)[0])


def test_block_folds_keep_blocks_whole():
    labels = field_labels()
    train, _, blocks = block_split(labels, 0.2, seed=0)
    targets = labels.reshape(-1)[train]
    for fit, held in cv_folds(targets, 0, blocks[train]):
        assert not set(blocks[train][fit]) & set(blocks[train][held])
    plain = cv_folds(targets, 0)
    assert any(set(blocks[train][fit]) & set(blocks[train][held]) for fit, held in plain)


def test_majority_filter():
    image = np.zeros((9, 9), np.int64)
    image[4, 4] = 1  # an isolated pixel goes
    image[:, 7:] = 2
    smoothed = few.majority_filter(image.reshape(-1), image.shape, 3, 3).reshape(image.shape)
    assert smoothed[4, 4] == 0 and (smoothed[:, 8] == 2).all()
    assert np.array_equal(few.majority_filter(image.reshape(-1), image.shape, 1, 3), image.reshape(-1))
    tie = np.array([[0, 1], [1, 0]])  # 2 votes each in every 3 x 3 window (reflected): own class wins
    assert np.array_equal(few.majority_filter(tie.reshape(-1), (2, 2), 3, 2), tie.reshape(-1))


@pytest.fixture(scope="module")
def synthetic_features():
    """A 48 x 40 scene whose 4 classes have different spectra, noisy, 60 bands at 400-1000 nm."""
    labels = field_labels()
    rng = np.random.default_rng(1)
    wavelengths = np.linspace(400, 1000, 60)
    shapes = np.stack([np.exp(-((wavelengths - centre) / 120) ** 2) for centre in (450, 600, 750, 900, 700)])
    spectra = 0.3 + 0.5 * shapes[np.where(labels > 0, labels, 5).reshape(-1) - 1]
    spectra = (spectra + rng.normal(0, 0.08, spectra.shape)).clip(0, 1).astype(np.float32)
    return few.scene_features("synthetic", spectra, labels.reshape(-1), labels.shape, wavelengths,
                              load_model("pretrained"))


@pytest.mark.parametrize("method", ["map", "label_spreading", "self_training", "spatial_codes_smoothed"])
def test_test_labels_choose_nothing(synthetic_features, method):
    """Scrambling every test pixel's label changes no prediction: the method chose on training pixels."""
    features = synthetic_features
    split = few.make_split(features, "random", 0.05, seed=0)
    predicted, choice = {**few.PER_PIXEL, **few.SPATIAL}[method](features, split)
    assert set(np.unique(predicted)) <= set(features.classes)
    assert "cross_validated_oa" in choice
    scrambled_labels = features.labels.copy()
    rng = np.random.default_rng(0)
    scrambled_labels[split.test] = rng.permutation(scrambled_labels[split.test])
    copy = few.SceneFeatures(features.name, features.spectra, scrambled_labels, features.shape,
                             features.wavelengths, features.pretrained, features.codes, features.map_encoders)
    again, _ = {**few.PER_PIXEL, **few.SPATIAL}[method](copy, split)
    assert np.array_equal(predicted, again)
    truth = features.labels[split.test]
    assert np.mean(predicted[split.test] == truth) > 0.5  # and it learned something


def test_self_training_adds_per_class_at_most_as_many_pseudo_labels_as_it_has_labels_each_round(
        synthetic_features):
    from sklearn.linear_model import LogisticRegression

    class Recording(LogisticRegression):
        sizes: list = []

        def fit(self, values, targets):
            Recording.sizes.append(np.bincount(targets, minlength=4))
            return super().fit(values, targets)

    features = synthetic_features
    split = few.make_split(features, "random", 0.05, seed=0)
    values, targets = features.codes[few.CHECKPOINT], features.targets
    few._self_train(Recording(max_iter=300), values, targets, split.train, 2)
    labelled = np.bincount(targets[split.train], minlength=4)
    first, second, third = Recording.sizes
    assert np.array_equal(first, labelled)  # round 0: the training pixels alone
    assert np.all(second <= 2 * labelled) and np.all(third <= 3 * labelled) and third.sum() > second.sum() > first.sum()
    plain = LogisticRegression(max_iter=300)
    assert np.array_equal(few._self_train(plain, values, targets, split.train, 0).predict(values),
                          plain.fit(values[split.train], targets[split.train]).predict(values))
    _, choice = few.self_training(features, split)
    assert choice["rounds"] in few.SELF_TRAINING_ROUNDS and choice["encoder"] in features.map_encoders


def test_the_patch_cnn_learns_from_training_pixels_only_and_is_reproducible(synthetic_features):
    """A few steps of `hsijax.evaluate.patch_cnn` on the synthetic scene: better than chance, the same
    for a seed, unchanged when every test label is scrambled (the step is chosen on a training fold)."""
    from hsijax.evaluate.patch_cnn import fit_patch_cnn

    features = synthetic_features
    split = few.make_split(features, "random", 0.2, seed=0)
    values = features.codes[few.CHECKPOINT]

    def fit(targets):
        return fit_patch_cnn(values, features.shape, targets, len(features.classes), split.train, split.folds[0],
                             seed=0, steps=60)

    first = fit(features.targets)
    assert first.predicted.shape == (features.shape[0] * features.shape[1],)
    assert [step for step, _ in first.history] == [50, 60] and first.best_step in (50, 60)
    assert np.mean(first.predicted[split.test] == features.targets[split.test]) > 0.5
    scrambled = features.targets.copy()
    scrambled[split.test] = np.random.default_rng(0).permutation(scrambled[split.test])
    again = fit(scrambled)
    assert np.array_equal(first.predicted, again.predicted) and first.history == again.history


@pytest.mark.full
def test_few_label_command_end_to_end(tmp_path):
    """`hsijax few-label` on an imported scene: results for each split, paired tables, a map figure;
    a resume with other seeds is refused; the report renders from what is on disk."""
    labels = field_labels()
    rng = np.random.default_rng(2)
    wavelengths = np.linspace(400, 1000, 60)
    shapes = np.stack([np.exp(-((wavelengths - centre) / 120) ** 2) for centre in (450, 600, 750, 900, 700)])
    cube = 0.3 + 0.5 * shapes[np.where(labels > 0, labels, 5) - 1]
    cube = ((cube + rng.normal(0, 0.08, cube.shape)).clip(0, 1) * 10000).astype(np.uint16)
    np.save(tmp_path / "cube.npy", cube)
    np.save(tmp_path / "labels.npy", labels)
    (tmp_path / "config.py").write_text(
        "from hsijax.configs import base, few_label\n\n\ndef get_config():\n"
        "    config = few_label.get_config()\n"
        "    config.data.imports = {'fields': base.import_fields(dict(file='cube.npy', gt='labels.npy', "
        "wavelengths='linspace:400:1000', sensor='test'))}\n"
        "    return config\n")
    overrides = [
        f"--config.data.data_dir={tmp_path / 'tfds'}", f"--config.data.source_dir={tmp_path}",
        "--config.scenes=fields", "--config.fractions=0.05", "--config.seeds=1",
        "--config.per_pixel=svm,map", "--config.spatial=spatial_codes", "--config.baselines=svm",
    ]
    command = [sys.executable, "-m", "hsijax.cli", "few-label", "--config", str(tmp_path / "config.py"),
               "--workdir", str(tmp_path / "work"), "--no-progress"]
    result = subprocess.run(command + overrides, env=environment(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    work = tmp_path / "work" / "fields"
    for kind, methods in (("random", ("svm", "map", "spatial_codes")), ("blocks", ("svm", "spatial_codes"))):
        for method in methods:
            saved = json.loads((work / kind / "5pct" / f"{method}.json").read_text())
            assert len(saved["runs"]) == 1 and 0 < saved["runs"][0]["oa"] <= 1
        assert (work / kind / "5pct" / f"{methods[0]}.npy").is_file()
    page = (tmp_path / "work" / "report" / "README.md").read_text()
    assert "baseline" in page and "Δ vs SVM" in page and "spatially disjoint" in page
    assert (tmp_path / "work" / "report" / "fields_5pct_maps.png").is_file()
    other = load_config(str(tmp_path / "config.py"), overrides[:4] + ["--config.seeds=2"] + overrides[5:])
    with pytest.raises(HsijaxError, match="seeds"):
        run_few_label(other, tmp_path / "work", progress=False)
    typo = load_config(str(tmp_path / "config.py"), overrides[:6] + ["--config.spatial=spatial_codes,cnn_code"])
    with pytest.raises(HsijaxError, match="config.spatial: unknown few-label method 'cnn_code'"):
        run_few_label(typo, tmp_path / "fresh", progress=False)
    assert not (tmp_path / "fresh").exists()  # refused before anything was written
