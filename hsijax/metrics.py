"""Scores: reconstruction (PSNR, SSIM on data scaled to [0, 1]) and classification (OA, AA, kappa).

Pure functions of arrays, used by training (held-out reconstruction), evaluation and the reports.
PSNR and SSIM come from dm-pix with a peak of 1.0: PSNR band by band over the pixels, and MPSNR,
its mean over bands, is the usual hyperspectral summary (and the poster's reconstruction figure);
SSIM of each band image (11 x 11 Gaussian window, the dm-pix defaults), averaged into MSSIM.
Classification scores come from scikit-learn's confusion matrix over the test pixels, as fractions
in [0, 1]; seeds are summarised as mean and sample standard deviation.
"""

from __future__ import annotations

import dm_pix
import jax.numpy as jnp
import numpy as np


def per_band_psnr(original, reconstruction) -> np.ndarray:
    """PSNR in dB of each band over all pixels: inputs (..., b) in [0, 1] -> (b,)."""
    original = np.asarray(original, np.float32)
    bands = original.shape[-1]
    as_images = lambda array: jnp.asarray(array, jnp.float32).reshape(-1, bands).T[:, :, None, None]
    return np.asarray(dm_pix.psnr(as_images(original), as_images(reconstruction)), np.float64)


def mpsnr(original, reconstruction) -> float:
    """Mean over bands of `per_band_psnr`, in dB."""
    return float(per_band_psnr(original, reconstruction).mean())


def per_band_ssim(original: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """SSIM of each band image: (H, W, b) inputs in [0, 1] -> (b,)."""
    as_images = lambda cube: jnp.asarray(np.moveaxis(cube, -1, 0)[..., None], jnp.float32)  # (b, H, W, 1)
    return np.asarray(dm_pix.ssim(as_images(original), as_images(reconstruction), max_val=1.0), np.float64)


def classification_scores(truth: np.ndarray, predicted: np.ndarray) -> dict:
    """{"oa", "aa", "kappa", "per_class": {label: accuracy}}: OA over every pixel, per-class accuracy
    (and their mean, AA) over the classes present in ``truth``.

    The confusion matrix counts the predicted classes too: given only the true classes, scikit-learn
    drops every pixel predicted as a class the test pixels lack, which flattered OA whenever a split
    leaves a class without test pixels (a spatially disjoint split can).
    """
    classes = np.unique(truth)
    from sklearn.metrics import cohen_kappa_score, confusion_matrix  # here: importing scikit-learn takes a second

    every = np.union1d(classes, np.unique(predicted))
    matrix = confusion_matrix(truth, predicted, labels=every)
    rows = np.searchsorted(every, classes)
    per_class = matrix.diagonal()[rows] / matrix.sum(axis=1)[rows]
    return {
        "oa": float(matrix.diagonal().sum() / matrix.sum()),
        "aa": float(per_class.mean()),
        "kappa": float(cohen_kappa_score(truth, predicted)),
        "per_class": {int(c): float(a) for c, a in zip(classes, per_class)},
    }


def mean_and_std(values) -> dict[str, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value) over seeds."""
    values = np.asarray(values, np.float64)
    return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}
