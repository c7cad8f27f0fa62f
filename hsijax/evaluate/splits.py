"""Few-label training splits: per class max(1, floor(F * n_c)) training pixels, the rest for testing.

This is the rule that reproduces the poster's per-class table exactly (Indian Pines: 98 training
pixels at 1 %, 505 at 5 %; Pavia University: 423 at 1 %). Every class keeps at least one training
pixel, so a class with fewer than 1/F pixels is still represented. Each seed draws a different
split; every method of a comparison is given the same split.
"""

from __future__ import annotations

import numpy as np

from hsijax.errors import HsijaxError


def training_counts(labels: np.ndarray, fraction: float) -> dict[int, int]:
    """{class: training pixels} for the labelled pixels (label > 0) of ``labels``."""
    if not 0 < fraction < 1:
        raise HsijaxError(f"fraction must be between 0 and 1 (exclusive), got {fraction}")
    classes, sizes = np.unique(labels[labels > 0], return_counts=True)
    if len(classes) == 0:
        raise HsijaxError("no labelled pixels (every label is 0)")
    counts = {int(c): max(1, int(np.floor(fraction * n))) for c, n in zip(classes, sizes)}
    single = [int(c) for c, n in zip(classes, sizes) if n < 2]
    if single:
        raise HsijaxError(f"classes {single} have a single pixel: none would be left for testing")
    return counts


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training indices, test indices) into the flattened ``labels``; unlabelled pixels are in neither."""
    flat = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label, count in training_counts(flat, fraction).items():
        members = rng.permutation(np.flatnonzero(flat == label))
        train.append(members[:count])
        test.append(members[count:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def validation_split(labels: np.ndarray, train: np.ndarray, fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fitting indices, validation indices), both drawn from the training indices ``train``.

    Per class floor(fraction * n_c) of its n_c training pixels validate, but every class keeps at
    least one pixel to fit, so a class with a single training pixel only fits. Training lengths are
    chosen on these pixels; test pixels are never looked at.
    """
    flat = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    fit, validate = [], []
    for label in np.unique(flat[train]):
        members = rng.permutation(train[flat[train] == label])
        held = min(len(members) - 1, int(np.floor(fraction * len(members))))
        validate.append(members[:held])
        fit.append(members[held:])
    return np.sort(np.concatenate(fit)), np.sort(np.concatenate(validate))
