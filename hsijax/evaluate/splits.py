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


BLOCK = 8  # the spatially disjoint split's block side (pixels)


def block_split(labels: np.ndarray, fraction: float, seed: int, block: int = BLOCK,
                margin: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(training indices, test indices, block number of every pixel) into the flattened (H, W)
    ``labels``: a spatially disjoint split.

    Per class the same count as `stratified_split` (max(1, floor(F * n_c))), but drawn as whole
    ``block`` x ``block`` blocks: the class's blocks are visited in a seeded random order and all of
    the class's pixels in each are taken, the last block cut short at the count. Test pixels are the
    labelled pixels farther than ``margin`` pixels (Chebyshev) from every training pixel, so a
    window of radius ``margin`` around a test pixel never holds a training pixel: on a random split
    overlapping windows carry training labels into the test set and flatter every neighbourhood
    method. The block numbers let cross-validation on the training pixels keep whole blocks in one
    fold (`hsijax.evaluate.classification.cv_folds`) for the same reason.
    """
    from scipy.ndimage import binary_dilation

    if np.ndim(labels) != 2:
        raise HsijaxError(f"a spatially disjoint split needs an (H, W) label image, got shape {np.shape(labels)}")
    height, width = labels.shape
    rows, columns = np.divmod(np.arange(height * width), width)
    blocks = (rows // block) * (-(-width // block)) + columns // block
    flat = labels.reshape(-1)
    rng = np.random.default_rng(seed)
    train = []
    for label, count in training_counts(flat, fraction).items():
        members = np.flatnonzero(flat == label)
        order = rng.permutation(np.unique(blocks[members]))
        rank = np.empty(blocks.max() + 1, np.int64)
        rank[order] = np.arange(len(order))
        by_block = members[np.argsort(rank[blocks[members]], kind="stable")]
        train.append(by_block[:count])
    train = np.sort(np.concatenate(train))
    chosen = np.zeros(height * width, bool)
    chosen[train] = True
    near = binary_dilation(chosen.reshape(height, width), np.ones((2 * margin + 1,) * 2, bool)).reshape(-1)
    test = np.flatnonzero((flat > 0) & ~near)
    if len(test) == 0:
        raise HsijaxError(f"no test pixel is farther than {margin} pixels from the training blocks")
    return train, test, blocks
