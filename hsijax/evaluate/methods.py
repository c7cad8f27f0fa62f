"""Every classifier the few-label study compares (`hsijax.experiments.few_label`), as functions of one
scene's label-free inputs and one split's training pixels.

A method gets the scene's `SceneFeatures` (computed once for all seeds and splits: the normalised
spectra, and the codes of every candidate encoder, each standardised over every pixel of the scene:
label-free), the training pixels and the cross-validation folds on them (`cv_folds`: plain folds on
a random split, whole blocks on a spatially disjoint one), and returns its prediction for every
pixel with what it chose. Every choice -- an encoder, a head, C and gamma, a window, a smoothing
size, a graph's neighbours -- is made by the cross-validated accuracy on the training pixels; test
pixels are never looked at.

Per pixel (the poster's setting):
- ``svm``: the baseline, an RBF SVM on the normalised spectra;
- ``linear_codes``, ``svm_codes``: the checkpoint's frozen codes and a linear probe / an RBF SVM;
- ``svm_grid_pca_8`` ... ``_32``: the shipped grid PCA's nested codes at each width, RBF SVM (the
  code-width rows; the shipped network is the first 16 components, whitened: ``svm_codes``);
- ``svm_scene_pca``: a PCA fitted on the scene's own pixels (label-free), RBF SVM: the code adapted
  to the scene, which is no longer shared (a reference, not a candidate for ``map``);
- ``map``: what `hsijax map` trains, the encoder (checkpoint or grid PCA 32) and head (SVM or linear)
  with the best cross-validated accuracy (`choose_map_head`);
- ``label_spreading``: scikit-learn's label spreading over a k-nearest-neighbour graph of every
  pixel's codes (the map's encoder), the scene's unlabelled pixels carrying the labels along;
- ``self_training``: the map's encoder and head, refitted with pseudo-labels of the scene's own
  unlabelled pixels: each round adds, per class, as many of the pixels predicted most confidently
  as that class (the margin between the two best decision values) as it has training pixels; the
  number of rounds (`SELF_TRAINING_ROUNDS`, 0 = ``map`` itself) chosen by cross-validation;
- ``poster_cnn``, ``scratch``, ``fine_tuned``: networks trained end to end, see
  `hsijax.evaluate.classification.run_method` and `hsijax.train.fine_tune`.

With spatial context (reported apart, `hsijax.evaluate.spatial`):
- ``spatial_svm``, ``spatial_codes``: a pixel's spectrum or code (the encoder `map` chooses) beside
  their means over one window or several (`SPATIAL_WINDOWS`, chosen by cross-validation), RBF SVM;
- ``svm_smoothed``, ``map_smoothed``, ``spatial_svm_smoothed``, ``spatial_codes_smoothed``: the map of
  ``svm`` / ``map`` / ``spatial_*`` under a majority filter of a size chosen by cross-validation (each
  fold's classifier maps the scene, the filtered map is scored on the fold's held-out pixels);
- ``cnn_codes``, ``cnn_spectra``: a small 2-D convolutional network on 9 x 9 patches of the codes
  (the encoder `map` chooses) or of the spectra (`hsijax.evaluate.patch_cnn`), its step count
  chosen on the first fold's held-out pixels, then refitted on all training pixels.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable

import numpy as np

from hsijax.errors import HsijaxError
from hsijax.evaluate.classification import (LINEAR_GRID, choose_map_head, cv_folds, map_encoders, search_svm,
                                            standardised)
from hsijax.evaluate.spatial import neighbourhood_features
from hsijax.models.inference import encode
from hsijax.models.model import Model

GRID_PCA_WIDTHS = (8, 24, 32)  # the shipped grid PCA's code-width rows (16 is the checkpoint's own)
SCENE_PCA_WIDTH = 32
# The neighbourhoods cross-validation chooses from: one window, or several scales side by side.
SPATIAL_WINDOWS = ((5,), (9,), (15,), (3, 7, 15), (5, 11, 21))
SMOOTHING_SIZES = (1, 3, 5, 7, 9)  # majority filters (1: none)
SPREADING_GRID = {"n_neighbors": [10], "alpha": [0.5, 0.8, 0.95]}


@dataclasses.dataclass
class SceneFeatures:
    """One scene's label-free inputs, shared by every seed, split and method."""

    name: str
    spectra: np.ndarray  # (P, b), normalised
    labels: np.ndarray  # (P,), 0 = unlabelled
    shape: tuple[int, int] | None  # (H, W) of an image; None for spectra without one
    wavelengths: np.ndarray | None
    pretrained: Model
    codes: dict[str, np.ndarray]  # encoder -> (P, c) codes standardised over every pixel
    map_encoders: tuple[str, ...]  # the encoders `map` chooses among (shared codes only)
    chosen: dict = dataclasses.field(default_factory=dict)  # split -> `map`'s choice, made once per split

    @functools.cached_property
    def classes(self) -> np.ndarray:
        return np.unique(self.labels[self.labels > 0])

    @functools.cached_property
    def targets(self) -> np.ndarray:
        """0-based class numbers of every pixel (meaningless where unlabelled)."""
        return np.searchsorted(self.classes, self.labels)


CHECKPOINT = "checkpoint"
SCENE_PCA = "scene PCA (c = 32)"


def grid_pca_name(width: int) -> str:
    return f"grid PCA (c = {width})"


def scene_features(name: str, spectra: np.ndarray, labels: np.ndarray, shape, wavelengths,
                   pretrained: Model) -> SceneFeatures:
    """Encode every pixel once with every candidate encoder (and fit the scene's own PCA)."""
    from sklearn.decomposition import PCA

    from hsijax.models.linear_code import SharedGridPCA

    codes = {CHECKPOINT: standardised(encode(pretrained, spectra, wavelengths))[0]}
    mapped = [CHECKPOINT]
    for encoder_name, model in map_encoders(pretrained).items():
        if model is not pretrained:  # the grid PCA at 32 beside a linear-grid checkpoint
            codes[grid_pca_name(model.config.code_width)] = standardised(encode(model, spectra, wavelengths))[0]
            mapped.append(grid_pca_name(model.config.code_width))
    for width in GRID_PCA_WIDTHS:
        if grid_pca_name(width) not in codes:
            model = SharedGridPCA.load_pretrained(width).to_model()
            codes[grid_pca_name(width)] = standardised(encode(model, spectra, wavelengths))[0]
    width = min(SCENE_PCA_WIDTH, spectra.shape[1], spectra.shape[0])
    codes[SCENE_PCA] = standardised(PCA(width, random_state=0).fit_transform(spectra).astype(np.float32))[0]
    return SceneFeatures(name, spectra.astype(np.float32), labels, shape, wavelengths, pretrained, codes,
                         tuple(mapped))


@dataclasses.dataclass(frozen=True)
class Split:
    """One seed's training pixels, and the folds that every choice is made on."""

    seed: int
    train: np.ndarray
    test: np.ndarray
    folds: list  # (fit, validate) index pairs into ``train``


def make_split(features: SceneFeatures, kind: str, fraction: float, seed: int, margin: int = 0) -> Split:
    """``kind`` "random": `stratified_split` and class-stratified folds; "blocks": `block_split`
    (test pixels beyond ``margin`` of every training pixel) and folds of whole blocks."""
    from hsijax.evaluate.splits import block_split, stratified_split

    if kind == "random":
        train, test = stratified_split(features.labels, fraction, seed)
        return Split(seed, train, test, cv_folds(features.targets[train], seed))
    if features.shape is None:
        raise HsijaxError(f"{features.name}: a spatially disjoint split needs an image, not spectra alone")
    train, test, blocks = block_split(features.labels.reshape(features.shape), fraction, seed, margin=margin)
    return Split(seed, train, test, cv_folds(features.targets[train], seed, blocks[train]))


Result = tuple[np.ndarray, dict]  # (predicted class numbers (1-based) of every pixel, what was chosen)


def _svm_on(values: np.ndarray, features: SceneFeatures, split: Split) -> Result:
    search = search_svm(values[split.train], features.targets[split.train], split.seed, split.folds)
    return features.classes[search.best_estimator_.predict(values)], {
        "settings": search.best_params_, "cross_validated_oa": float(search.best_score_)}


def svm(features: SceneFeatures, split: Split) -> Result:
    return _svm_on(features.spectra, features, split)


def svm_codes(features: SceneFeatures, split: Split) -> Result:
    return _svm_on(features.codes[CHECKPOINT], features, split)


def svm_grid_pca(width: int) -> Callable[[SceneFeatures, Split], Result]:
    return lambda features, split: _svm_on(features.codes[grid_pca_name(width)], features, split)


def svm_scene_pca(features: SceneFeatures, split: Split) -> Result:
    return _svm_on(features.codes[SCENE_PCA], features, split)


def linear_codes(features: SceneFeatures, split: Split) -> Result:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    values = features.codes[CHECKPOINT]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = GridSearchCV(LogisticRegression(solver="newton-cg", max_iter=300), LINEAR_GRID, cv=split.folds, n_jobs=1)
        search.fit(values[split.train], features.targets[split.train])
    return features.classes[search.best_estimator_.predict(values)], {
        "settings": search.best_params_, "cross_validated_oa": float(search.best_score_)}


def _map_choice(features: SceneFeatures, split: Split):
    """`choose_map_head` on this split, made once and shared by `map`, `label_spreading` and
    `map_smoothed` (a choice depends only on the training pixels and the folds)."""
    key = (split.seed, split.train.tobytes(), tuple(fold[1].tobytes() for fold in split.folds))
    if key not in features.chosen:
        codes = {name: features.codes[name][split.train] for name in features.map_encoders}
        features.chosen[key] = choose_map_head(codes, features.targets[split.train], split.seed, split.folds)
    return features.chosen[key]


def map_method(features: SceneFeatures, split: Split) -> Result:
    encoder, head, rows, _ = _map_choice(features, split)
    chosen = max(rows, key=lambda row: row["cross_validated_oa"])
    return features.classes[head.predict(features.codes[encoder])], {
        "encoder": encoder, "head": type(head).__name__, "cross_validated_oa": chosen["cross_validated_oa"]}


def label_spreading(features: SceneFeatures, split: Split) -> Result:
    """Label spreading over every pixel of the scene (labels of the fold's fitting pixels only while
    choosing k and alpha), on the codes of the encoder `map` chooses for this split."""
    from sklearn.semi_supervised import LabelSpreading

    encoder = _map_choice(features, split)[0]
    values = features.codes[encoder]
    targets = features.targets

    def spread(known: np.ndarray, settings: dict) -> np.ndarray:
        partial = np.full(len(values), -1)
        partial[known] = targets[known]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence
            return LabelSpreading(kernel="knn", max_iter=100, **settings).fit(values, partial).transduction_

    grid = [dict(n_neighbors=k, alpha=a) for k in SPREADING_GRID["n_neighbors"] for a in SPREADING_GRID["alpha"]]
    scores = []
    for settings in grid:
        accuracy = [np.mean(spread(split.train[fit], settings)[split.train[held]] == targets[split.train[held]])
                    for fit, held in split.folds]
        scores.append(float(np.mean(accuracy)))
    best = grid[int(np.argmax(scores))]
    return features.classes[spread(split.train, best)], {
        "encoder": encoder, "settings": best, "cross_validated_oa": max(scores)}


SELF_TRAINING_ROUNDS = (0, 2, 4)


def _self_train(head, values: np.ndarray, targets: np.ndarray, known: np.ndarray, rounds: int):
    """``head`` (settings chosen) refitted ``rounds`` times, each time with more pseudo-labelled
    pixels from outside ``known`` (see the module docstring); returns the last fit."""
    from sklearn.base import clone

    pixels, labels = np.asarray(known), targets[known]
    per_class = np.bincount(labels)
    model = clone(head).fit(values[pixels], labels)
    pool = np.setdiff1d(np.arange(len(values)), pixels)
    for _ in range(rounds):
        if len(pool) == 0:
            break
        scores = model.decision_function(values[pool])
        if scores.ndim == 1:  # two classes: one decision value
            scores = np.stack([-scores, scores], axis=1)
        ranked = np.sort(scores, axis=1)
        margin = ranked[:, -1] - ranked[:, -2]
        predicted = model.classes_[scores.argmax(1)]
        chosen = []
        for label in np.unique(predicted):
            candidates = np.flatnonzero(predicted == label)
            count = per_class[label] if label < len(per_class) else 0
            chosen.append(candidates[np.argsort(-margin[candidates], kind="stable")[:count]])
        chosen = np.concatenate(chosen)
        pixels, labels = np.concatenate([pixels, pool[chosen]]), np.concatenate([labels, predicted[chosen]])
        pool = np.delete(pool, chosen)
        model = clone(head).fit(values[pixels], labels)
    return model


def self_training(features: SceneFeatures, split: Split) -> Result:
    encoder, head, _, _ = _map_choice(features, split)
    values, targets = features.codes[encoder], features.targets
    scores = {}
    for rounds in SELF_TRAINING_ROUNDS:
        accuracy = [np.mean(_self_train(head, values, targets, split.train[fit], rounds).predict(
            values[split.train[held]]) == targets[split.train[held]]) for fit, held in split.folds]
        scores[rounds] = float(np.mean(accuracy))
    rounds = max(scores, key=lambda r: (scores[r], -r))
    model = _self_train(head, values, targets, split.train, rounds)
    return features.classes[model.predict(values)], {
        "encoder": encoder, "head": type(head).__name__, "rounds": rounds, "cross_validated_oa": scores[rounds]}


def _patch_cnn(features: SceneFeatures, split: Split, source: str) -> Result:
    from hsijax.evaluate.patch_cnn import fit_patch_cnn

    _needs_image(features, f"cnn_{source}")
    name = "spectra" if source == "spectra" else _map_choice(features, split)[0]
    values = features.spectra if source == "spectra" else features.codes[name]
    fitted = fit_patch_cnn(values, features.shape, features.targets, len(features.classes), split.train,
                           split.folds[0], split.seed)
    held_out = dict(fitted.history).get(fitted.best_step)
    return features.classes[fitted.predicted], {"features": name, "step": fitted.best_step,
                                                "held_out_oa": held_out}


def cnn_codes(features: SceneFeatures, split: Split) -> Result:
    return _patch_cnn(features, split, "codes")


def cnn_spectra(features: SceneFeatures, split: Split) -> Result:
    return _patch_cnn(features, split, "spectra")


def _spatial_choice(features: SceneFeatures, split: Split, source: str):
    """(score, features name, windows, fitted SVM, windowed features of every pixel): the windows
    (`SPATIAL_WINDOWS`) and C, gamma with the best cross-validated accuracy, the first candidate on
    ties; ``source`` "spectra" or "codes" (those of the encoder `map` chooses for this split). Made
    once per split and shared by the plain and the smoothed method."""
    key = (source, split.seed, split.train.tobytes(), tuple(fold[1].tobytes() for fold in split.folds))
    if key not in features.chosen:
        name = "spectra" if source == "spectra" else _map_choice(features, split)[0]
        values = features.spectra if source == "spectra" else features.codes[name]
        best = None
        for windows in SPATIAL_WINDOWS:
            windowed = neighbourhood_features(values.reshape(*features.shape, -1), windows)
            search = search_svm(windowed[split.train], features.targets[split.train], split.seed, split.folds)
            if best is None or search.best_score_ > best[0]:
                best = (float(search.best_score_), name, windows, search, windowed)
        features.chosen[key] = best
    return features.chosen[key]


def _spatial(features: SceneFeatures, split: Split, source: str, smooth: bool) -> Result:
    _needs_image(features, f"spatial_{source}")
    score, name, windows, search, windowed = _spatial_choice(features, split, source)
    choice = {"features": name, "window": "+".join(map(str, windows)), "settings": search.best_params_,
              "cross_validated_oa": score}
    if smooth:
        predicted, smoothing = _smoothed(features, split, windowed, search.best_estimator_)
        return predicted, {**choice, **smoothing}
    return features.classes[search.best_estimator_.predict(windowed)], choice


def spatial_svm(features: SceneFeatures, split: Split) -> Result:
    return _spatial(features, split, "spectra", smooth=False)


def spatial_codes(features: SceneFeatures, split: Split) -> Result:
    return _spatial(features, split, "codes", smooth=False)


def spatial_svm_smoothed(features: SceneFeatures, split: Split) -> Result:
    return _spatial(features, split, "spectra", smooth=True)


def spatial_codes_smoothed(features: SceneFeatures, split: Split) -> Result:
    return _spatial(features, split, "codes", smooth=True)


def majority_filter(predicted: np.ndarray, shape: tuple[int, int], size: int, classes: int) -> np.ndarray:
    """(P,) 0-based class numbers -> the most frequent class in each ``size`` x ``size`` window
    (reflected at the border); a tie goes to the pixel's own class, then to the lower number."""
    from scipy.ndimage import uniform_filter

    if size == 1:
        return predicted
    image = predicted.reshape(shape)
    votes = np.stack([uniform_filter((image == c).astype(np.float32), size, mode="reflect") for c in range(classes)])
    votes += 0.5 / size**2 * (np.arange(classes)[:, None, None] == image[None])
    return votes.argmax(0).reshape(-1)


def _smoothed(features: SceneFeatures, split: Split, values: np.ndarray, estimator) -> Result:
    """``estimator`` (settings already chosen per pixel) refitted on each fold to map the scene, the
    majority filter size chosen by the folds' held-out accuracy, then applied to the full fit's map."""
    from sklearn.base import clone

    targets, classes = features.targets, len(features.classes)
    fold_maps = [clone(estimator).fit(values[split.train[fit]], targets[split.train[fit]]).predict(values)
                 for fit, _ in split.folds]
    scores = {size: float(np.mean([np.mean(majority_filter(m, features.shape, size, classes)[split.train[held]]
                                           == targets[split.train[held]])
                                   for m, (_, held) in zip(fold_maps, split.folds)]))
              for size in SMOOTHING_SIZES}
    size = max(scores, key=lambda s: (scores[s], -s))
    full = estimator.fit(values[split.train], targets[split.train]).predict(values)
    return features.classes[majority_filter(full, features.shape, size, classes)], {
        "filter": size, "cross_validated_oa": scores[size]}


def svm_smoothed(features: SceneFeatures, split: Split) -> Result:
    _needs_image(features, "svm_smoothed")
    search = search_svm(features.spectra[split.train], features.targets[split.train], split.seed, split.folds)
    return _smoothed(features, split, features.spectra, search.best_estimator_)


def map_smoothed(features: SceneFeatures, split: Split) -> Result:
    _needs_image(features, "map_smoothed")
    encoder, head, _, _ = _map_choice(features, split)
    predicted, choice = _smoothed(features, split, features.codes[encoder], head)
    return predicted, {"encoder": encoder, "head": type(head).__name__, **choice}


def _needs_image(features: SceneFeatures, method: str) -> None:
    if features.shape is None:
        raise HsijaxError(f"{features.name}: {method} needs an image (spectra without one have no neighbours)")


PER_PIXEL: dict[str, Callable[[SceneFeatures, Split], Result]] = {
    "svm": svm,
    "linear_codes": linear_codes,
    "svm_codes": svm_codes,
    **{f"svm_grid_pca_{width}": svm_grid_pca(width) for width in GRID_PCA_WIDTHS},
    "svm_scene_pca": svm_scene_pca,
    "map": map_method,
    "label_spreading": label_spreading,
    "self_training": self_training,
}
SPATIAL: dict[str, Callable[[SceneFeatures, Split], Result]] = {
    "spatial_svm": spatial_svm,
    "spatial_codes": spatial_codes,
    "svm_smoothed": svm_smoothed,
    "map_smoothed": map_smoothed,
    "spatial_svm_smoothed": spatial_svm_smoothed,
    "spatial_codes_smoothed": spatial_codes_smoothed,
    "cnn_spectra": cnn_spectra,
    "cnn_codes": cnn_codes,
}
# The disjoint split's margin: the largest window's radius. A smoothed spatial method looks up to the
# largest filter's radius (4) further; a margin of both (14) would leave Indian Pines at 5 % with 843
# test pixels of 10 classes, this one 2,864 of 13.
SPATIAL_MARGIN = max(max(w) for w in SPATIAL_WINDOWS) // 2
