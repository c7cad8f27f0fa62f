"""The few-label study: every classifier of `hsijax.evaluate.methods` and the networks, on every
labelled scene, fraction and split, the same splits for every method (paired).

For each scene the spectra are normalised and encoded once by every candidate encoder (label-free,
`scene_features`); then for each split kind, fraction and method, the method runs on each seed's
split and its scores on the test pixels are written to
``WORKDIR/SCENE/SPLIT/FRACTION/METHOD.json`` (with seed 0's map beside it, ``METHOD.npy``). A result
already on disk is kept, so an interrupted study resumes where it stopped, and the workdir records
its settings (`hsijax.experiments.settings`), so a resume with other settings is refused.
`hsijax.experiments.few_label_report` turns the results into the page in docs/.

The networks trained end to end:
- ``poster_cnn``: the poster's CNN (the shipped ``poster`` weights) and a head, all fine-tuned, the
  step kept chosen on validation pixels (`hsijax.evaluate.classification.run_method`) -- the
  poster's recipe, kept as a row;
- ``scratch``: the same architecture from random weights, trained the same way;
- ``fine_tuned``: the shared code's network (``checkpoint``) fine-tuned with standardised codes,
  weight decay, dropout, label smoothing and spectral augmentation, the step count chosen on
  validation pixels and then refitted on all training pixels (`hsijax.train.fine_tune.fine_tune_refit`);
- ``fine_tuned_ensemble``: an ensemble over seeds of ``fine_tuned``: the same step count, then
  `ENSEMBLE_MEMBERS` refits with their own batches, dropout and augmentation (the first is
  ``fine_tuned``'s), their softmax probabilities averaged.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from hsijax.data.loading import load_scene, scene_names
from hsijax.errors import HsijaxError
from hsijax.evaluate import methods as few
from hsijax.evaluate.classification import ClassifySettings, run_method
from hsijax.evaluate.splits import validation_split
from hsijax.experiments.settings import check_settings
from hsijax.files import check_output, write_json_atomic
from hsijax.metrics import classification_scores
from hsijax.models.checkpoints import load_model
from hsijax.spectral import fit_normalization, pad_to_bucket

NETWORKS = ("poster_cnn", "scratch", "fine_tuned", "fine_tuned_ensemble")
ENSEMBLE_MEMBERS = 3  # ``fine_tuned_ensemble``'s: 1 + 3 runs, twice ``fine_tuned``'s cost
names = scene_names


def fraction_folder(fraction: float) -> str:
    return f"{fraction * 100:g}pct"


def say(message: str) -> None:
    print(f"few-label: {message}", file=sys.stderr, flush=True)


@dataclasses.dataclass
class Networks:
    """What the end-to-end methods need beyond the scene's features."""

    poster: object  # the poster CNN's Model
    settings: ClassifySettings  # the poster CNN's training
    fine_tune: dict  # ``fine_tuned``'s steps and learning rate


def run_network(method: str, features: few.SceneFeatures, split: few.Split, networks: Networks) -> few.Result:
    settings = networks.settings
    if method in ("fine_tuned", "fine_tuned_ensemble"):
        members = ENSEMBLE_MEMBERS if method == "fine_tuned_ensemble" else 1
        return fine_tuned(features, split, settings.validation_fraction, members=members, **networks.fine_tune)
    model = networks.poster
    padded, _ = pad_to_bucket(features.spectra, model.config.buckets)
    predicted, step = run_method("pretrained" if method == "poster_cnn" else "scratch", settings, model,
                                 features.spectra, padded, features.labels, split.train, split.seed,
                                 features.wavelengths)
    fit, _ = validation_split(features.labels, split.train, settings.validation_fraction, split.seed)
    return predicted, {"step": step, "fitted_pixels": int(len(fit))}


def fine_tuned(features: few.SceneFeatures, split: few.Split, validation_fraction: float, steps: int,
               learning_rate: float, members: int = 1) -> few.Result:
    """The shared code's network and a head, fine-tuned with `fine_tune_refit`: the step count chosen
    on a quarter of each class's training pixels, then refitted on all of them; the codes the head
    sees standardised over every pixel of the scene (label-free)."""
    from hsijax.evaluate.classification import network_for
    from hsijax.train.fine_tune import fine_tune_refit

    model = features.pretrained
    padded, _ = pad_to_bucket(features.spectra, model.config.buckets)
    fit, validate = validation_split(features.labels, split.train, validation_fraction, split.seed)
    classifier, variables = network_for("pretrained", model, len(features.classes), split.seed,
                                        features.spectra.shape[-1], features.wavelengths)
    tuned = fine_tune_refit(classifier, variables, padded[split.train], features.targets[split.train],
                            np.searchsorted(split.train, fit), np.searchsorted(split.train, validate),
                            seed=split.seed, all_spectra=padded, steps=steps, learning_rate=learning_rate,
                            members=members)
    choice = {"step": tuned.best_step, "fitted_pixels": int(len(split.train))}
    return features.classes[tuned.predict(padded)], choice | ({"members": members} if members > 1 else {})


def run_one(method: str, features: few.SceneFeatures, split: few.Split, networks: Networks) -> few.Result:
    if method in NETWORKS:
        return run_network(method, features, split, networks)
    table = {**few.PER_PIXEL, **few.SPATIAL}
    if method not in table:
        raise HsijaxError(f"unknown few-label method {method!r}; known: {', '.join([*table, *NETWORKS])}")
    return table[method](features, split)


# Trained only on ``config.cnn_scenes`` (minutes a run here): the poster's CNN and the ensemble.
CNNS = ("poster_cnn", "scratch", "fine_tuned_ensemble")


def methods_for(config, scene: str, kind: str, has_image: bool) -> list[str]:
    """The methods a split kind runs: every per-pixel one on the random split (`CNNS` on
    ``cnn_scenes`` only), the spatial ones (images only) on both, beside the per-pixel baselines
    on the disjoint split."""
    spatial = names(config.spatial) if has_image else []
    if kind == "random":
        return [m for m in names(config.per_pixel) if m not in CNNS or scene in names(config.cnn_scenes)] + spatial
    return names(config.baselines) + spatial if has_image else []


def scene_inputs(config, name: str, pretrained) -> few.SceneFeatures:
    data = config.data
    scene = load_scene(name, data.data_dir, data.imports, rebuild=data.rebuild, source_dir=data.source_dir)
    if scene.labels is None:
        raise HsijaxError(f"{name}: the few-label study needs a labelled scene")
    bands = scene.cube.shape[-1]
    spectra = fit_normalization(scene.cube, scene.name).apply(np.asarray(scene.cube).reshape(-1, bands))
    height, width = scene.cube.shape[:2]
    shape = (height, width) if min(height, width) > 1 else None
    pretrained.config.check_scene(bands, scene.wavelengths_nm, name)
    return few.scene_features(name, spectra.astype(np.float32), scene.labels.reshape(-1), shape,
                              scene.wavelengths_nm, pretrained)


def run_few_label(config, workdir, progress: bool = True) -> None:
    """Every scene x split x fraction x method not on disk yet (see the module docstring): the
    methods on frozen codes and spectra first, the networks trained end to end (slow) after."""
    known = [*few.PER_PIXEL, *few.SPATIAL, *NETWORKS]
    for field in ("per_pixel", "spatial", "baselines"):
        unknown = [m for m in names(config[field]) if m not in known]
        if unknown:  # refused before anything runs, not when the study reaches it
            raise HsijaxError(f"config.{field}: unknown few-label method {unknown[0]!r}; known: {', '.join(known)}")
    workdir = check_output(Path(workdir).expanduser(), "directory")
    workdir.mkdir(parents=True, exist_ok=True)
    check_settings(workdir, config, "hsijax few-label", growing=("per_pixel", "spatial"))
    pretrained = load_model(config.checkpoint)
    features, networks = {}, None
    for trains_networks in (False, True):
        for name in names(config.scenes):
            for kind in names(config.splits):
                for fraction in map(float, names(config.fractions)):
                    folder = workdir / name / kind / fraction_folder(fraction)
                    for method in methods_for(config, name, kind, has_image=True):
                        path = folder / f"{method}.json"
                        if (method in NETWORKS) != trains_networks or path.is_file():
                            continue
                        if name not in features:
                            say(f"{name}: encoding every pixel with every candidate encoder")
                            features = {name: scene_inputs(config, name, pretrained)}  # one scene in memory
                        if method not in methods_for(config, name, kind, features[name].shape is not None):
                            continue
                        if method in NETWORKS and networks is None:
                            networks = Networks(load_model(config.poster_checkpoint), ClassifySettings(
                                steps=config.network.steps, learning_rate=config.network.learning_rate,
                                validation_fraction=config.network.validation_fraction,
                                eval_every=config.network.eval_every), dict(config.fine_tune))
                        run_seeds(config, features[name], kind, fraction, method, networks, path, progress)


def run_seeds(config, features: few.SceneFeatures, kind: str, fraction: float, method: str, networks,
              path: Path, progress: bool) -> None:
    runs = []
    for seed in range(config.seeds):
        split = few.make_split(features, kind, fraction, seed, margin=few.SPATIAL_MARGIN)
        began = time.perf_counter()
        predicted, choice = run_one(method, features, split, networks)
        scores = classification_scores(features.labels[split.test], predicted[split.test])
        runs.append({**scores, "choice": choice, "seconds": time.perf_counter() - began,
                     "train_pixels": int(len(split.train)), "test_pixels": int(len(split.test))})
        if seed == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".partial.npy")
            np.save(temporary, predicted.astype(np.uint8))
            temporary.replace(path.with_suffix(".npy"))
        if progress:
            say(f"{features.name} {kind} {fraction:.0%} seed {seed} {method}: OA {100 * scores['oa']:.2f} % "
                f"({runs[-1]['seconds']:.1f} s)")
    write_json_atomic(path, {"scene": features.name, "split": kind, "fraction": fraction, "method": method,
                             "runs": runs})
