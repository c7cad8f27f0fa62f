"""The spatial variant (`hsijax.evaluate.spatial`, classify's ``spatial_*`` methods)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from hsijax.errors import HsijaxError
from hsijax.evaluate.classification import ClassifySettings, run_classification, run_spatial_method
from hsijax.evaluate.spatial import features_by_window, neighbourhood_features
from hsijax.evaluate.splits import stratified_split


def standardised(columns: np.ndarray) -> np.ndarray:
    return (columns - columns.mean(axis=0)) / (columns.std(axis=0) + 1e-6)


def test_each_pixel_is_its_features_beside_their_window_mean_mirrored_at_the_border():
    image = np.random.default_rng(0).normal(size=(7, 6, 3)).astype(np.float32)
    window = 5
    mirrored = np.pad(image, ((2, 2), (2, 2), (0, 0)), mode="symmetric")  # d c b a | a b c d
    means = sliding_window_view(mirrored, (window, window), axis=(0, 1)).mean(axis=(-2, -1))
    features = neighbourhood_features(image, window)
    assert features.shape == (42, 6)
    np.testing.assert_allclose(features[:, :3], standardised(image.reshape(-1, 3)), atol=1e-4)
    np.testing.assert_allclose(features[:, 3:], standardised(means.reshape(-1, 3)), atol=1e-4)


def test_window_one_repeats_the_pixel_and_bad_shapes_are_refused():
    image = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
    features = neighbourhood_features(image, 1)
    np.testing.assert_allclose(features[:, :3], features[:, 3:])
    for bad_image, window in ((image, 4), (image, 0), (image[0], 3)):
        with pytest.raises(HsijaxError, match="odd window"):
            neighbourhood_features(bad_image, window)


def blocky_scene(seed: int = 0):
    """A 24 x 24 scene of four 12 x 12 fields whose spectra are their class's mean buried in noise:
    one pixel alone is ambiguous, its neighbourhood is not."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.repeat(np.array([[1, 2], [3, 4]]), 12, axis=0), 12, axis=1)
    means = rng.normal(size=(5, 16))
    spectra = means[labels] + 2.0 * rng.normal(size=(24, 24, 16))
    return spectra.reshape(-1, 16).astype(np.float32), labels.reshape(-1)


def test_the_neighbourhood_classifies_fields_that_single_spectra_cannot():
    spectra, labels = blocky_scene()
    settings = ClassifySettings(fraction=0.1, seeds=2, methods=("svm", "spatial_svm"))
    report, maps = run_classification(spectra, labels, settings, shape=(24, 24))
    single, spatial = (report["methods"][m]["oa"]["mean"] for m in ("svm", "spatial_svm"))
    assert single < 0.85 and spatial > 0.95, (single, spatial)
    assert all(run["window"] in settings.windows and run["step"] is None
               for run in report["methods"]["spatial_svm"]["per_seed"])
    assert maps["spatial_svm"].shape == labels.shape


def test_test_labels_never_choose_the_window_or_change_a_prediction():
    spectra, labels = blocky_scene(1)
    features = features_by_window(spectra.reshape(24, 24, 16))
    train, test = stratified_split(labels, 0.1, seed=0)
    scrambled = labels.copy()
    scrambled[test] = np.random.default_rng(2).permutation(labels[test])
    (first, window), (second, again) = (run_spatial_method(features, given, train, seed=0)
                                        for given in (labels, scrambled))
    np.testing.assert_array_equal(first, second)
    assert window == again


def test_spatial_methods_need_the_image_shape():
    spectra, labels = blocky_scene()
    with pytest.raises(HsijaxError, match="spatial_svm needs the image's height and width"):
        run_classification(spectra, labels, ClassifySettings(seeds=1, methods=("spatial_svm",)))
