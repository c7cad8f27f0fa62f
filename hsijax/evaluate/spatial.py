"""The spatial variant: classify a pixel from its neighbourhood, reported as its own method.

The poster's classifier (``pretrained``, ``scratch`` and ``svm`` in `hsijax.evaluate.classification`) sees one
pixel's spectrum. Land-cover classes come in fields, so a pixel's neighbours say much about it; the
spatial methods describe each pixel by its own features beside their mean over a w x w window
(reflected at the image border) and classify that with an RBF SVM:

- ``spatial_pretrained``: the features are the frozen pretrained encoder's shared codes;
- ``spatial_svm``: the features are the normalised spectra themselves. The same recipe without the
  encoder, so the pair isolates what the codes add or lose.

The window and the SVM's C and gamma are chosen together by cross-validation on the training
pixels (`hsijax.evaluate.classification.fit_spatial_svm`); no test pixel chooses anything. One caveat, common to
every neighbourhood method on these benchmarks: a test pixel next to a training pixel shares part of
its window, so spatial scores are optimistic next to spectral ones and must never replace them.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter

from hsijax.errors import HsijaxError

WINDOWS = (3, 5, 7, 9)  # the candidates cross-validation chooses from, per seed


def neighbourhood_features(image: np.ndarray, window: int | tuple[int, ...]) -> np.ndarray:
    """(H, W, d) per-pixel features -> (H * W, (1 + k) d): each pixel's features beside their mean over
    its ``window`` x ``window`` neighbourhood (or over each of k windows, several scales at once),
    every column standardised over the scene.

    Standardising puts codes and spectra on one scale, so one SVM grid serves both.
    """
    windows = (window,) if isinstance(window, (int, np.integer)) else tuple(window)
    if image.ndim != 3 or not windows or any(w < 1 or w % 2 == 0 for w in windows):
        raise HsijaxError(f"expected an (H, W, d) image and odd windows, got {image.shape} and {window}")
    image = image.astype(np.float32)
    means = [uniform_filter(image, size=(w, w, 1), mode="reflect") for w in windows]
    features = np.concatenate([image, *means], axis=-1).reshape(-1, (1 + len(windows)) * image.shape[-1])
    return (features - features.mean(axis=0)) / (features.std(axis=0) + 1e-6)


def features_by_window(image: np.ndarray, windows=WINDOWS) -> dict[int, np.ndarray]:
    """{window: `neighbourhood_features`} for each candidate window."""
    return {window: neighbourhood_features(image, window) for window in windows}
