"""`hsijax.train.fine_tune.fine_tune_refit`: the step count chosen on validation pixels, then a refit
on every training pixel, with the code standardised, dropout, label smoothing and augmentation.

All tests share one tiny CNN, one step count and one chunk length, so the chunk compiles once."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from hsijax.models.classifier import SpectralClassifier, codes, predict
from hsijax.models.networks import PosterCNNConfig
from hsijax.train.fine_tune import fine_tune_refit

CLASSIFIER = SpectralClassifier(PosterCNNConfig(widths=(4,), buckets=(16,), code_width=4), num_classes=3)
SETTINGS = {"steps": 37, "eval_every": 1, "batch_size": 16, "learning_rate": 2e-2}  # chunks of one step


def separable(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(count, 16) spectra in [0, 1] of 3 classes that differ in brightness and in slope, noisy."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 3
    bands = np.linspace(0, 1, 16)
    shapes = np.stack([0.2 + 0.1 * bands, 0.6 - 0.3 * bands, 0.4 + 0.4 * bands])
    spectra = shapes[labels] + 0.02 * rng.normal(size=(count, 16))
    return spectra.astype(np.float32), labels.astype(np.int32)


SPECTRA, LABELS = separable(48, seed=0)
FIT = np.flatnonzero(np.arange(48) < 36)
VALIDATE = np.flatnonzero(np.arange(48) >= 36)


SCENE = separable(300, seed=1)[0] + 0.3  # every pixel of a scene (label-free), brighter than the training pixels
APPLY = jax.jit(CLASSIFIER.apply)


@pytest.fixture(scope="module")
def tuned():
    return fine_tune_refit(CLASSIFIER, CLASSIFIER.init_variables(0), SPECTRA, LABELS, FIT, VALIDATE, seed=0,
                           all_spectra=SCENE, **SETTINGS)


def test_it_learns_a_tiny_separable_problem(tuned):
    spectra, labels = separable(90, seed=2)
    assert np.mean(tuned.predict(spectra) == labels) > 0.9


def test_the_step_count_is_the_earliest_best_on_validation_pixels(tuned):
    steps, accuracies = zip(*tuned.history)
    assert steps == tuple(range(1, 38))
    assert tuned.best_step == steps[int(np.argmax(accuracies))]
    fit_only = predict(CLASSIFIER, tuned.fit_variables, SPECTRA[VALIDATE],
                       standardisation=(tuned.code_mean, tuned.code_scale))
    assert np.mean(fit_only == LABELS[VALIDATE]) == max(accuracies)  # the fit's parameters at that step
    without = fine_tune_refit(CLASSIFIER, CLASSIFIER.init_variables(0), SPECTRA, LABELS, FIT, VALIDATE, seed=0,
                              all_spectra=SCENE, refit=False, **SETTINGS)
    assert without.best_step == tuned.best_step
    for refitted, fitted, alone in zip(*(jax.tree.leaves(v) for v in (tuned.variables, tuned.fit_variables,
                                                                      without.variables))):
        np.testing.assert_array_equal(fitted, alone)
        assert not np.allclose(refitted, fitted)


def test_the_refit_trains_on_every_training_pixel_for_the_chosen_step_count():
    """Evaluating only at the last step chooses it; the refit is then exactly a run on all 48 pixels
    (no validation) for that many steps. Class 2 is only among the validation pixels: the fit never
    predicts it, the refit learns it."""
    fit, validate = np.flatnonzero(LABELS != 2), np.flatnonzero(LABELS == 2)
    settings = {**SETTINGS, "eval_every": 37}  # the same chunk of one step
    tuned = fine_tune_refit(CLASSIFIER, CLASSIFIER.init_variables(0), SPECTRA, LABELS, fit, validate, seed=0,
                            all_spectra=SCENE, **settings)
    assert tuned.best_step == 37 and tuned.history == ((37, 0.0),)
    every = fine_tune_refit(CLASSIFIER, CLASSIFIER.init_variables(0), SPECTRA, LABELS, np.arange(48), [], seed=0,
                            all_spectra=SCENE, **settings)
    assert every.best_step == 37 and every.history == () and every.fit_variables is None
    for a, b in zip(jax.tree.leaves(tuned.variables), jax.tree.leaves(every.variables)):
        np.testing.assert_array_equal(a, b)
    standardisation = (tuned.code_mean, tuned.code_scale)
    assert not (predict(CLASSIFIER, tuned.fit_variables, SPECTRA, standardisation=standardisation) == 2).any()
    assert np.mean(tuned.predict(SPECTRA[validate]) == 2) > 0.9


def test_the_code_is_standardised_over_all_spectra_by_the_initial_encoder(tuned):
    initial = CLASSIFIER.init_variables(0)
    values = codes(CLASSIFIER, initial, SCENE)
    np.testing.assert_allclose(tuned.code_mean, values.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tuned.code_scale, values.std(0) + 1e-6, rtol=1e-4, atol=1e-6)
    trained = codes(CLASSIFIER, tuned.variables, SCENE)  # the encoder trained, the affine stayed
    assert not np.allclose(trained.mean(0), tuned.code_mean, atol=1e-4)
    alone = fine_tune_refit(CLASSIFIER, initial, SPECTRA, LABELS, FIT, VALIDATE, seed=0, **SETTINGS)
    np.testing.assert_allclose(alone.code_mean, codes(CLASSIFIER, initial, SPECTRA).mean(0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(alone.code_mean, tuned.code_mean, atol=1e-3)  # the scene is brighter


def test_predictions_have_no_dropout_or_augmentation(tuned):
    spectra, _ = separable(30, seed=3)
    first, again = tuned.predict(spectra), tuned.predict(spectra)
    np.testing.assert_array_equal(first, again)
    logits = APPLY(tuned.variables, spectra, tuned.code_mean, tuned.code_scale)
    np.testing.assert_array_equal(first, np.asarray(logits).argmax(-1))  # no dropout, no augmentation


def test_plain_classifier_calls_are_unchanged(tuned):
    """The additions to `SpectralClassifier` are off by default: the same logits as before."""
    spectra, _ = separable(30, seed=4)
    plain = np.asarray(APPLY(tuned.variables, spectra))
    np.testing.assert_array_equal(predict(CLASSIFIER, tuned.variables, spectra), plain.argmax(-1))
    identity = np.asarray(APPLY(tuned.variables, spectra, np.zeros(4, np.float32), np.ones(4, np.float32)))
    np.testing.assert_allclose(identity, plain, rtol=1e-6, atol=1e-6)
    assert set(tuned.variables["params"]) == set(CLASSIFIER.init_variables(0)["params"])


def test_another_seed_compiles_nothing(tuned):
    from conftest import count_compilations

    with count_compilations() as compiled:
        other = fine_tune_refit(CLASSIFIER, CLASSIFIER.init_variables(1), SPECTRA, LABELS, FIT, VALIDATE, seed=1,
                                all_spectra=SCENE, **SETTINGS)
    assert compiled() == 0 and 1 <= other.best_step <= 37


def test_an_ensemble_over_seeds_shares_the_step_and_averages_its_members(tuned):
    """``members=3``: one step choice, three refits; the first is the single run's, the others differ,
    and a prediction is the class of the members' mean softmax probabilities."""
    from hsijax.models.classifier import probabilities

    ensemble = fine_tune_refit(CLASSIFIER, CLASSIFIER.init_variables(0), SPECTRA, LABELS, FIT, VALIDATE, seed=0,
                               all_spectra=SCENE, members=3, **SETTINGS)
    assert ensemble.best_step == tuned.best_step and len(ensemble.ensemble) == 2
    for a, b in zip(jax.tree.leaves(ensemble.variables), jax.tree.leaves(tuned.variables)):
        np.testing.assert_array_equal(a, b)
    first, *others = (jax.tree.leaves(v)[0] for v in (ensemble.variables, *ensemble.ensemble))
    assert all(not np.allclose(first, other) for other in others)
    spectra, labels = separable(90, seed=2)
    standardisation = (ensemble.code_mean, ensemble.code_scale)
    mean = np.mean([probabilities(CLASSIFIER, v, spectra, standardisation=standardisation)
                    for v in (ensemble.variables, *ensemble.ensemble)], axis=0)
    np.testing.assert_allclose(mean.sum(-1), 1, rtol=1e-5)
    np.testing.assert_array_equal(ensemble.predict(spectra), mean.argmax(-1))
    assert np.mean(ensemble.predict(spectra) == labels) > 0.9
