"""Are codes worth more than the spectra they encode? The same classifier and the same detector on
both, nothing fitted to the scene but what the task itself fits.

- Classification: an RBF SVM (C and gamma cross-validated on the training pixels, as the SVM
  baseline of `hsijax.evaluate.classification`) and a linear probe (logistic regression, C
  cross-validated), each on standardised features, on the same few-label splits for every
  feature set.
- Anomaly detection: the global RX detector (Mahalanobis distance to the scene's mean), scored by
  the area under the ROC curve against the scene's anomaly map.
"""

from __future__ import annotations

import warnings

import numpy as np

from hsijax.evaluate.classification import fit_svm
from hsijax.evaluate.splits import stratified_split
from hsijax.metrics import classification_scores

CLASSIFIERS = ("svm", "linear")
LINEAR_C = [0.01, 0.1, 1.0, 10.0, 100.0]


def standardise(features: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per feature, with statistics of the training pixels only."""
    mean = features[train].mean(axis=0)
    scale = features[train].std(axis=0)
    return (features - mean) / np.where(scale > 0, scale, 1.0)


def fit_linear_probe(features: np.ndarray, targets: np.ndarray, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, KFold

    folds = KFold(n_splits=min(3, len(targets)), shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny classes and slow convergence on a few folds
        search = GridSearchCV(LogisticRegression(max_iter=1000), {"C": LINEAR_C}, cv=folds, n_jobs=1)
        return search.fit(features, targets).best_estimator_


def classify_features(features: np.ndarray, labels: np.ndarray, classifier: str, train: np.ndarray,
                      seed: int) -> dict:
    """Scores on the labelled pixels outside ``train`` after fitting ``classifier`` on ``train``."""
    labels = labels.reshape(-1)
    features = standardise(features.reshape(len(labels), -1), train)
    fit = fit_svm if classifier == "svm" else fit_linear_probe
    model = fit(features[train], labels[train], seed)
    test = np.setdiff1d(np.flatnonzero(labels > 0), train)
    return classification_scores(labels[test], model.predict(features[test]))


def compare_features(feature_sets: dict[str, np.ndarray], labels: np.ndarray, fraction: float, seeds: int,
                     progress=None) -> dict:
    """{classifier: {feature set: [scores per seed]}}, every feature set on the same splits."""
    results = {classifier: {name: [] for name in feature_sets} for classifier in CLASSIFIERS}
    for seed in range(seeds):
        train, _ = stratified_split(labels, fraction, seed)
        for classifier in CLASSIFIERS:
            for name, features in feature_sets.items():
                scores = classify_features(features, labels, classifier, train, seed)
                results[classifier][name].append(scores)
                if progress:
                    progress(f"{fraction:.0%} seed {seed} {classifier} on {name}: OA {scores['oa']:.2%}")
    return results


def rx_scores(features: np.ndarray) -> np.ndarray:
    """Global RX: squared Mahalanobis distance of every pixel (..., d) to the mean -> (...)."""
    flat = features.reshape(-1, features.shape[-1]).astype(np.float64)
    centred = flat - flat.mean(axis=0)
    covariance = centred.T @ centred / max(len(flat) - 1, 1)
    inverse = np.linalg.pinv(covariance, hermitian=True)
    return np.einsum("nd,de,ne->n", centred, inverse, centred).reshape(features.shape[:-1])


def rx_auc(features: np.ndarray, anomaly_map: np.ndarray) -> float:
    """Area under the ROC curve of RX scores against ``anomaly_map`` (> 0: anomalous)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(anomaly_map.reshape(-1) > 0, rx_scores(features).reshape(-1)))
