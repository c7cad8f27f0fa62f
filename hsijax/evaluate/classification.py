"""The poster's second experiment: few-label classification with and without the pretrained encoder.

For each seed one split (`hsijax.evaluate.splits`), and on it every method:
- ``pretrained``: the encoder of a pretraining checkpoint plus a head, all fine-tuned;
- ``scratch``: the same network from random initialisation, trained the same way;
- ``svm``: scikit-learn's RBF SVM on the normalised spectra, C and gamma chosen by 3-fold
  cross-validation on the training pixels only;
- ``map`` (only when asked for): what `hsijax map` trains -- frozen codes, standardised over every
  pixel of the scene (label-free), and an RBF SVM or a linear probe: the encoder (the checkpoint's,
  and for a linear-grid code also the shipped grid PCA at 32 components, `map_encoders`) and the
  head whose 3-fold cross-validated accuracy on the training pixels is best (`choose_map_head`);
- ``spatial_pretrained``, ``spatial_svm`` (only when asked for): the spatial variant of
  `hsijax.evaluate.spatial`, a pixel's neighbourhood of frozen codes or of spectra, classified by the SVM.
Scores (OA, AA, kappa, per class) are on the test pixels, reported as mean and std over seeds.
The networks fit on part of the training pixels and keep the parameters that classify the rest
(``validation_fraction`` of each class, `hsijax.evaluate.splits.validation_split`) best; no test pixel ever
chooses a step, a model or a parameter.
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hsijax.data.loading import SceneInput
from hsijax.data.scene import Scene
from hsijax.errors import HsijaxError
from hsijax.evaluate.figures import classification_maps
from hsijax.evaluate.spatial import WINDOWS, features_by_window
from hsijax.evaluate.splits import stratified_split, training_counts, validation_split
from hsijax.files import check_output, write_json_atomic
from hsijax.metrics import classification_scores, mean_and_std
from hsijax.models.checkpoints import load_model
from hsijax.models.classifier import SpectralClassifier, as_wavelengths, predict
from hsijax.models.inference import encode
from hsijax.models.model import Model
from hsijax.models.networks import NetworkConfig, PosterCNNConfig
from hsijax.spectral import fit_normalization, pad_to_bucket
from hsijax.train.fine_tune import fine_tune

SPECTRAL_METHODS = ("pretrained", "scratch", "svm")  # the poster's comparison, the default
SPATIAL_METHODS = ("spatial_pretrained", "spatial_svm")
# What `hsijax map` trains: the checkpoint's frozen codes, standardised over the scene, and the head
# (RBF SVM or linear probe) chosen by cross-validation on the training pixels (`choose_head`).
MAP_METHODS = ("map",)
METHODS = SPECTRAL_METHODS + MAP_METHODS + SPATIAL_METHODS
NEEDS_CHECKPOINT = ("pretrained", "map", "spatial_pretrained")
SVM_GRID = {"C": [1, 10, 100, 1000], "gamma": ["scale", 1, 10, 100]}
LINEAR_GRID = {"C": [0.01, 0.1, 1, 10, 100]}  # the linear probe's inverse regularisation


@dataclasses.dataclass(frozen=True)
class ClassifySettings:
    fraction: float = 0.05
    seeds: int = 3
    steps: int = 2000  # most fine-tuning steps, for both networks
    learning_rate: float = 1e-3
    validation_fraction: float = 0.25  # of each class's training pixels, to choose the step
    eval_every: int = 100
    methods: tuple[str, ...] = SPECTRAL_METHODS  # a subset of METHODS
    windows: tuple[int, ...] = WINDOWS  # the spatial methods' candidate neighbourhoods


def search_svm(train_features: np.ndarray, train_labels: np.ndarray, seed: int, folds=None):
    """scikit-learn's grid search over `SVM_GRID`, 3-fold cross-validated on the training pixels
    (``folds``: the (fit, validate) index pairs to use instead, e.g. `cv_folds` by blocks)."""
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.svm import SVC

    if folds is None:
        folds = KFold(n_splits=min(3, len(train_labels)), shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny classes: some folds lack a class, which is fine here
        search = GridSearchCV(SVC(kernel="rbf"), SVM_GRID, cv=folds, n_jobs=1)
        return search.fit(train_features, train_labels)


def fit_svm(train_spectra: np.ndarray, train_labels: np.ndarray, seed: int, folds=None):
    return search_svm(train_spectra, train_labels, seed, folds).best_estimator_


def fit_spatial_svm(features: dict[int, np.ndarray], targets: np.ndarray, train: np.ndarray, seed: int,
                    folds=None):
    """(window, SVM): the neighbourhood and C, gamma whose cross-validated accuracy on the training
    pixels is best (the smaller window on ties)."""
    searches = {window: search_svm(f[train], targets[train], seed, folds) for window, f in features.items()}
    window = max(searches, key=lambda w: (searches[w].best_score_, -w))
    return window, searches[window].best_estimator_


def _folds(labels: np.ndarray, seed: int):
    from sklearn.model_selection import KFold, StratifiedKFold

    if np.unique(labels, return_counts=True)[1].min() >= 3:
        return StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    return KFold(n_splits=min(3, len(labels)), shuffle=True, random_state=seed)


def cv_folds(labels: np.ndarray, seed: int, groups: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """The 3 (fit, validate) index pairs into the training pixels that every choice is made on:
    stratified when each class has 3 pixels, else plain folds; with ``groups`` (the block of each
    training pixel, `hsijax.evaluate.splits.block_split`) whole groups stay in one fold, so a
    neighbourhood method is not chosen for what overlapping windows leak between folds."""
    from sklearn.model_selection import GroupKFold

    if groups is None:
        return list(_folds(labels, seed).split(labels, labels))
    count = min(3, len(np.unique(groups)))
    return list(GroupKFold(n_splits=count, shuffle=True, random_state=seed).split(labels, labels, groups))


def choose_head(features: np.ndarray, labels: np.ndarray, seed: int = 0, folds=None):
    """(the refitted winner, [candidate rows], cross-validated predictions of the winner's settings);
    ``folds``: (fit, validate) index pairs to choose on (default `cv_folds` of the labels)."""
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, cross_val_predict
    from sklearn.svm import SVC

    folds = cv_folds(labels, seed) if folds is None else folds
    candidates = {"svm_rbf": (SVC(kernel="rbf"), SVM_GRID),
                  "linear": (LogisticRegression(solver="newton-cg", max_iter=300), LINEAR_GRID)}
    rows, searches = [], {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny classes: folds that lack one, slow convergence
        for name, (estimator, grid) in candidates.items():
            search = GridSearchCV(estimator, grid, cv=folds, n_jobs=1).fit(features, labels)
            searches[name] = search
            rows.append({"head": name, "settings": {k: v for k, v in search.best_params_.items()},
                         "cross_validated_oa": float(search.best_score_)})
        best = max(rows, key=lambda row: row["cross_validated_oa"])  # first (the SVM) on ties
        chosen = searches[best["head"]]
        held_out = cross_val_predict(clone(chosen.best_estimator_), features, labels, cv=folds)
    return chosen.best_estimator_, rows, held_out


# The shipped grid PCA's widths that compete with a linear-grid checkpoint's own code in the map
# head's cross-validation (its 32 nested components; the shipped network is its first 16).
MAP_GRID_PCA_WIDTHS = (32,)


def map_encoders(model: Model) -> dict[str, Model]:
    """The encoders whose codes the map head's cross-validation compares: the checkpoint's, and for a
    linear-grid code also the shipped grid PCA at `MAP_GRID_PCA_WIDTHS` components."""
    candidates = {f"checkpoint (c = {model.config.code_width})": model}
    if model.config.kind == "linear_grid":
        from hsijax.models.linear_code import SharedGridPCA

        for width in MAP_GRID_PCA_WIDTHS:
            if width != model.config.code_width:
                candidates[f"shipped grid PCA (c = {width})"] = SharedGridPCA.load_pretrained(width).to_model()
    return candidates


def standardised(codes: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(codes standardised over the ``valid`` pixels -- every one by default; label-free --, mean, scale)."""
    sample = codes if valid is None else codes[valid]
    mean, scale = sample.mean(0), sample.std(0) + 1e-6
    return (codes - mean) / scale, mean, scale


def choose_map_head(features: dict[str, np.ndarray], labels: np.ndarray, seed: int = 0, folds=None):
    """(encoder name, the refitted head, [candidate rows], cross-validated predictions): `choose_head`
    for each encoder's features (the training pixels'), the best cross-validated accuracy winning
    (the first encoder on ties)."""
    best = None
    rows = []
    folds = cv_folds(labels, seed) if folds is None else folds
    for name, values in features.items():
        estimator, found, held_out = choose_head(values, labels, seed, folds)
        rows += [{"encoder": name, **row} for row in found]
        score = max(row["cross_validated_oa"] for row in found)
        if best is None or score > best[0]:
            best = (score, name, estimator, held_out)
    return best[1], best[2], rows, best[3]


def map_features_of(pretrained: Model, spectra: np.ndarray, wavelengths=None) -> dict[str, np.ndarray]:
    """{encoder: its codes of every pixel, standardised over them all (label-free)}, `map_encoders`."""
    return {name: standardised(encode(model, spectra, wavelengths))[0]
            for name, model in map_encoders(pretrained).items()}


def network_config(pretrained: Model | None) -> NetworkConfig:
    """The architecture both networks share: the pretrained model's (its buckets pad the spectra),
    or the default one when there is no pretrained model."""
    return pretrained.config if pretrained else PosterCNNConfig()


def network_for(method: str, pretrained: Model | None, num_classes: int, seed: int, band_count: int,
                wavelengths=None):
    """(classifier, initial variables) of ``pretrained`` or ``scratch``, the same architecture."""
    if method == "pretrained":
        return SpectralClassifier.from_model(pretrained, num_classes, seed, band_count, wavelengths)
    classifier = SpectralClassifier(network_config(pretrained), num_classes, band_count, as_wavelengths(wavelengths))
    return classifier, classifier.init_variables(seed)


def run_method(method: str, settings: ClassifySettings, pretrained: Model | None, spectra: np.ndarray,
               padded: np.ndarray, labels: np.ndarray, train: np.ndarray,
               seed: int, wavelengths=None, map_features: dict[str, np.ndarray] | None = None
               ) -> tuple[np.ndarray, int | None]:
    """(predicted labels (1-based) for every pixel, the fine-tuning step kept or None for the SVM)
    after training on pixels ``train``.

    ``spectra`` (P, b) feed the SVM, ``padded`` (P, B) the same spectra padded to their bucket
    feed the networks; ``wavelengths`` (b,) their band centres (nm) or None; ``map_features``: for
    ``map``, each candidate encoder's standardised codes of every pixel (`map_features_of`).
    """
    classes = np.unique(labels[labels > 0])
    targets = np.searchsorted(classes, labels)
    if method == "svm":
        return classes[fit_svm(spectra[train], targets[train], seed).predict(spectra)], None
    if method == "map":
        name, head, _, _ = choose_map_head({n: c[train] for n, c in map_features.items()}, targets[train], seed)
        return classes[head.predict(map_features[name])], None
    fit, validate = validation_split(labels, train, settings.validation_fraction, seed)
    classifier, variables = network_for(method, pretrained, len(classes), seed, spectra.shape[-1], wavelengths)
    tuned = fine_tune(classifier, variables, padded[fit], targets[fit], settings.steps,
                      learning_rate=settings.learning_rate, seed=seed,
                      validation=(padded[validate], targets[validate]) if len(validate) else None,
                      eval_every=settings.eval_every)
    return classes[predict(classifier, tuned.variables, padded)], tuned.best_step


def spatial_features(method: str, spectra: np.ndarray, shape: tuple[int, int] | None, pretrained: Model | None,
                     windows: tuple[int, ...], wavelengths=None) -> dict[int, np.ndarray]:
    """{window: features of every pixel} for a spatial method: the neighbourhood of each pixel's
    code (``spatial_pretrained``) or spectrum (``spatial_svm``), see `hsijax.evaluate.spatial`."""
    if shape is None:
        raise HsijaxError(f"{method} needs the image's height and width")
    per_pixel = encode(pretrained, spectra, wavelengths) if method == "spatial_pretrained" else spectra
    return features_by_window(per_pixel.reshape(*shape, -1), windows)


def run_spatial_method(features: dict[int, np.ndarray], labels: np.ndarray, train: np.ndarray,
                       seed: int) -> tuple[np.ndarray, int]:
    """(predicted labels (1-based) for every pixel, the window chosen on the training pixels)."""
    classes = np.unique(labels[labels > 0])
    window, svm = fit_spatial_svm(features, np.searchsorted(classes, labels), train, seed)
    return classes[svm.predict(features[window])], window


def run_classification(spectra: np.ndarray, labels: np.ndarray, settings: ClassifySettings,
                       pretrained: Model | None = None, progress=None,
                       shape: tuple[int, int] | None = None,
                       wavelengths=None) -> tuple[dict, dict[str, np.ndarray]]:
    """(report, {method: predictions of seed 0}) for normalised ``spectra`` (P, b), ``labels`` (P,);
    the spatial methods need the image's ``shape`` (H, W) with H * W = P; ``wavelengths`` (b,), band
    centres in nm, place spectra on a wavelength-grid network's axis. Without a ``pretrained``
    model only the methods that need none run."""
    methods = [m for m in METHODS if m in settings.methods and (m not in NEEDS_CHECKPOINT or pretrained)]
    padded, _ = pad_to_bucket(spectra, network_config(pretrained).buckets)
    spatial = {m: spatial_features(m, spectra, shape, pretrained, settings.windows, wavelengths)
               for m in methods if m in SPATIAL_METHODS}
    map_features = map_features_of(pretrained, spectra, wavelengths) if "map" in methods else None  # once for all seeds
    per_seed = {m: [] for m in methods}
    maps = {}
    for seed in range(settings.seeds):
        train, test = stratified_split(labels, settings.fraction, seed)
        for method in methods:
            if method in spatial:
                predicted, window = run_spatial_method(spatial[method], labels, train, seed)
                choice = {"step": None, "window": window}
            else:
                predicted, step = run_method(method, settings, pretrained, spectra, padded, labels, train, seed,
                                             wavelengths, map_features)
                choice = {"step": step}
            per_seed[method].append({**classification_scores(labels[test], predicted[test]), **choice})
            if seed == 0:
                maps[method] = predicted
            if progress:
                progress(seed, method, per_seed[method][-1])
    report = {
        "fraction": settings.fraction,
        "seeds": settings.seeds,
        "train_pixels": int(len(train)),
        "test_pixels": int(len(test)),
        "methods": {m: summarise(runs) for m, runs in per_seed.items()},
    }
    return report, maps


def classify_scene(scene: Scene, settings: ClassifySettings, out: Path, pretrained: Model | None = None,
                   progress=None) -> dict:
    """Run the comparison on a whole labelled scene; writes ``out/metrics.json`` and the maps."""
    bands = scene.cube.shape[-1]
    spectra = fit_normalization(scene.cube, scene.name).apply(np.asarray(scene.cube).reshape(-1, bands))
    labels = scene.labels.reshape(-1)
    report, maps = run_classification(spectra.astype(np.float32), labels, settings, pretrained, progress,
                                      shape=scene.cube.shape[:2], wavelengths=scene.wavelengths_nm)
    report = {"dataset": scene.name, "bands": int(bands), **report}
    write_json_atomic(out / "metrics.json", report)
    classification_maps(maps, labels, scene.cube.shape[:2], out)
    return report


def classify_file(scene_of: Callable[[], SceneInput], settings: ClassifySettings, out: Path,
                  checkpoint=None, methods: tuple[str, ...] | None = None) -> dict:
    """`hsijax classify`: the scene ``scene_of()`` gives, classified by ``methods`` (default: the
    poster's comparison, ``pretrained`` only with a ``checkpoint``); writes ``out``. Every input is
    checked before any work: the output path, methods that need the missing checkpoint, the labels
    (two classes at least, a test pixel left in each), the band count against the model's buckets."""
    check_output(out)
    needing = [name for name in methods or () if name in NEEDS_CHECKPOINT]
    if needing and not checkpoint:
        raise HsijaxError(f"--methods {','.join(needing)} needs --checkpoint")
    if methods is None:
        methods = tuple(m for m in SPECTRAL_METHODS if checkpoint or m not in NEEDS_CHECKPOINT)
    pretrained = load_model(checkpoint) if checkpoint else None
    scene, source, labels_source, _ = scene_of()
    if scene.labels is None or not (scene.labels > 0).any():
        raise HsijaxError(f"{labels_source}: no labelled pixels to classify")
    classes = np.unique(scene.labels[scene.labels > 0])
    if len(classes) < 2:
        raise HsijaxError(f"{labels_source}: only class {classes[0]} is labelled; classification needs at least "
                          "2 classes")
    try:
        training_counts(scene.labels, settings.fraction)  # every class must keep a pixel for testing
    except HsijaxError as error:
        raise HsijaxError(f"{labels_source}: {error}") from None
    network_config(pretrained).check_scene(scene.cube.shape[-1], scene.wavelengths_nm, source)
    return classify_scene(scene, dataclasses.replace(settings, methods=methods), out, pretrained,
                          progress=print_progress)


def print_progress(seed: int, method: str, scores: dict) -> None:
    """A progress callback for `run_classification`: one line per seed and method on stderr."""
    kept = f"  (step {scores['step']} kept)" if scores.get("step") else ""
    kept += f"  ({scores['window']}x{scores['window']} window)" if scores.get("window") else ""
    print(f"seed {seed} {method:10s} OA {scores['oa']:.4f}  AA {scores['aa']:.4f}  "
          f"kappa {scores['kappa']:.4f}{kept}", file=sys.stderr, flush=True)


def format_classification(report: dict) -> str:
    """The report as a Markdown table (percentages), mean ± std over seeds."""
    lines = [f"{report['dataset']}: {report['fraction']:.0%} labels ({report['train_pixels']} training px), "
             f"{report['seeds']} seeds, mean ± std", "| method | OA (%) | AA (%) | kappa |", "|---|---|---|---|"]
    for method, scores in report["methods"].items():
        cell = lambda key, scale: f"{scores[key]['mean'] * scale:.2f} ± {scores[key]['std'] * scale:.2f}"
        lines.append(f"| {method} | {cell('oa', 100)} | {cell('aa', 100)} | {cell('kappa', 1)} |")
    return "\n".join(lines)


def summarise(runs: list[dict]) -> dict:
    classes = runs[0]["per_class"].keys()
    return {
        **{key: mean_and_std([r[key] for r in runs]) for key in ("oa", "aa", "kappa")},
        "per_class": {str(c): mean_and_std([r["per_class"][c] for r in runs]) for c in classes},
        "per_seed": [{key: r[key] for key in ("oa", "aa", "kappa", "step", "window") if key in r} for r in runs],
    }
