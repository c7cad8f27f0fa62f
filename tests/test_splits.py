"""The few-label split rule against the poster's table, and the scores against hand computation."""

from __future__ import annotations

import numpy as np
import pytest

from hsijax.data.readers import read_labels
from hsijax.data.scene import load_indian_pines
from hsijax.errors import HsijaxError
from hsijax.evaluate.splits import stratified_split, training_counts, validation_split
from hsijax.metrics import classification_scores, mean_and_std

# The poster's per-class training pixels for Indian Pines (classes 1..16).
POSTER_INDIAN_PINES = {
    0.01: [1, 14, 8, 2, 4, 7, 1, 4, 1, 9, 24, 5, 2, 12, 3, 1],
    0.05: [2, 71, 41, 11, 24, 36, 1, 23, 1, 48, 122, 29, 10, 63, 19, 4],
}


@pytest.mark.parametrize("fraction, total", [(0.01, 98), (0.05, 505)])
def test_indian_pines_counts_are_the_posters(fraction, total):
    labels = load_indian_pines().labels
    counts = training_counts(labels, fraction)
    assert list(counts.values()) == POSTER_INDIAN_PINES[fraction] and sum(counts.values()) == total
    train, test = stratified_split(labels, fraction, seed=0)
    flat = labels.reshape(-1)
    assert len(train) == total and len(test) == 10249 - total
    assert not set(train) & set(test) and (flat[train] > 0).all() and (flat[test] > 0).all()
    for label, count in counts.items():
        assert int((flat[train] == label).sum()) == count


def test_pavia_university_one_percent_is_423(shared_data):
    labels = read_labels(shared_data / "PaviaU" / "PaviaU_gt.mat", "paviaU_gt")
    assert sum(training_counts(labels, 0.01).values()) == 423


def test_seeds_draw_different_splits_and_repeat_exactly():
    labels = load_indian_pines().labels
    first, again, other = (stratified_split(labels, 0.05, seed)[0] for seed in (1, 1, 2))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_validation_pixels_come_from_training_pixels_and_every_class_still_fits():
    labels = load_indian_pines().labels.reshape(-1)
    train, _ = stratified_split(labels, 0.01, seed=0)
    fit, validate = validation_split(labels, train, 0.25, seed=0)
    assert sorted([*fit, *validate]) == sorted(train) and not set(fit) & set(validate)
    for label, count in training_counts(labels, 0.01).items():
        fitting = int((labels[fit] == label).sum())
        assert fitting >= 1 and count - fitting == min(count - 1, int(0.25 * count))
    assert set(labels[validate]) < set(labels[fit])  # the single-pixel classes only fit


def test_bad_fractions_and_labels_are_clear_errors():
    with pytest.raises(HsijaxError, match="between 0 and 1"):
        training_counts(np.array([1, 2]), 1.5)
    with pytest.raises(HsijaxError, match="no labelled pixels"):
        training_counts(np.zeros(5, int), 0.1)
    with pytest.raises(HsijaxError, match="single pixel"):
        training_counts(np.array([1, 1, 2]), 0.1)


def test_scores_by_hand():
    truth = np.array([1, 1, 1, 1, 2, 2, 3, 3, 3, 3])
    predicted = np.array([1, 1, 1, 2, 2, 2, 3, 3, 1, 1])
    scores = classification_scores(truth, predicted)
    assert scores["oa"] == pytest.approx(7 / 10)
    assert scores["per_class"] == pytest.approx({1: 3 / 4, 2: 1.0, 3: 2 / 4})
    assert scores["aa"] == pytest.approx((3 / 4 + 1 + 2 / 4) / 3)
    # kappa = (p_o - p_e) / (1 - p_e); p_e = sum over classes of (row total * column total) / n^2
    p_e = (4 * 5 + 2 * 3 + 4 * 2) / 100
    assert scores["kappa"] == pytest.approx((0.7 - p_e) / (1 - p_e))
    assert mean_and_std([0.5, 0.7]) == pytest.approx({"mean": 0.6, "std": np.std([0.5, 0.7], ddof=1)})


def test_a_class_the_test_pixels_lack_counts_as_an_error():
    """A prediction of a class absent from the test pixels is wrong, not dropped (scikit-learn's
    confusion matrix over the true classes alone drops it, and OA came out 2/2 here)."""
    scores = classification_scores(np.array([1, 1, 2]), np.array([1, 3, 3]))
    assert scores["oa"] == pytest.approx(1 / 3) and scores["per_class"] == {1: 0.5, 2: 0.0}
    assert scores["aa"] == pytest.approx(0.25)
