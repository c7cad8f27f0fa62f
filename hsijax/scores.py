"""Classification scores: overall accuracy (OA), average per-class accuracy (AA), Cohen's kappa.

Computed with scikit-learn from the confusion matrix over the test pixels; fractions in [0, 1].
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import cohen_kappa_score, confusion_matrix


def classification_scores(truth: np.ndarray, predicted: np.ndarray) -> dict:
    """{"oa", "aa", "kappa", "per_class": {label: accuracy}} over the classes present in ``truth``."""
    classes = np.unique(truth)
    matrix = confusion_matrix(truth, predicted, labels=classes)
    per_class = matrix.diagonal() / matrix.sum(axis=1)
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
