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


def neighbourhood_features(image: np.ndarray, window: int) -> np.ndarray:
    """(H, W, d) per-pixel features -> (H * W, 2 d): each pixel's features beside their mean over
    its ``window`` x ``window`` neighbourhood, every column standardised over the scene.

    Standardising puts codes and spectra on one scale, so one SVM grid serves both.
    """
    if image.ndim != 3 or window < 1 or window % 2 == 0:
        raise HsijaxError(f"expected an (H, W, d) image and an odd window, got {image.shape} and {window}")
    image = image.astype(np.float32)
    mean = uniform_filter(image, size=(window, window, 1), mode="reflect")
    features = np.concatenate([image, mean], axis=-1).reshape(-1, 2 * image.shape[-1])
    return (features - features.mean(axis=0)) / (features.std(axis=0) + 1e-6)


def features_by_window(image: np.ndarray, windows=WINDOWS) -> dict[int, np.ndarray]:
    """{window: `neighbourhood_features`} for each candidate window."""
    return {window: neighbourhood_features(image, window) for window in windows}
