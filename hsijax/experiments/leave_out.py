"""Leave-sensor-out evaluation: is the shared code worth more than the simple things, on a sensor
pretraining never saw? (`hsijax leave-out`, config `hsijax/configs/leave_out.py`.)

For each left-out scene (one per non-AVIRIS sensor, and Indian Pines for AVIRIS) one pretraining
runs without it -- and without the *validation* scenes, which are kept for choosing models and
never appear in the left-out tables -- then the left-out scene is scored against:

- the shared wavelength-grid PCA (`hsijax.models.linear_code`) fitted on the same pretraining
  scenes (those with wavelengths), at each code width: the linear code a user could apply to a new
  sensor; the same fitted on those scenes plus the USGS spectral library and random mixtures of it
  (`hsijax.data.spectral_library`; the network is not trained on the library); the scene's own
  PCA (a transductive ceiling); its own mean spectrum;
- frozen codes vs raw spectra (and the grid-PCA codes) under the same classifiers
  (`hsijax.evaluate.codes`) when the scene is labelled;
- fine-tuned pretrained vs scratch vs SVM (the poster's comparison) on the classification scene.
Then codes vs spectra for RX anomaly detection on the anomaly scenes, with the model pretrained
without the classification scene (those scenes are AVIRIS, in its pretraining, labels unused).

The network is the config's ``pretrain.model``: a CNN is pretrained by the training loop; the linear
network on the wavelength grid (``--config leave_out:linear_grid``, the shipped `load_pretrained()`) is fitted in
closed form by the recipe it ships with -- the grid PCA of the cell's scenes plus the spectral
library -- and saved as the cell's ``model``, then scored like any network.

Each result is a JSON file written whole and kept, so the command resumes where it stopped;
`write_report` renders the page (tables and a figure) from what is on disk.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np

from hsijax.data.loading import load_scene, scene_names
from hsijax.data.pipeline import TrainingSet
from hsijax.data.scene import Scene
from hsijax.data.spectral_library import library_mixtures, read_usgs_library
from hsijax.evaluate.codes import compare_features, rx_auc
from hsijax.evaluate.reconstruction import evaluate_reconstruction
from hsijax.experiments.leave_out_report import render
from hsijax.experiments.settings import check_settings
from hsijax.experiments.study import classify, fraction_folder  # the study's resumable fine-tuning comparison
from hsijax.files import check_output, write_json_atomic, write_text_atomic
from hsijax.metrics import mean_and_std, per_band_psnr, per_band_ssim
from hsijax.models.checkpoints import load_model, save_model
from hsijax.models.inference import encode
from hsijax.models.linear_code import SharedGridPCA, own_pca_reconstruction
from hsijax.models.networks import config_from_dict
from hsijax.spectral import fit_normalization
from hsijax.train.loop import train

names = scene_names


def say(message: str) -> None:
    print(f"leave-out: {message}", file=sys.stderr, flush=True)


def normalised(scene: Scene) -> np.ndarray:
    return fit_normalization(scene.cube, scene.name).apply(scene.cube).astype(np.float32)


@functools.cache
def _library(directory: str, mixtures: int) -> tuple[np.ndarray, np.ndarray]:
    spectra, wavelengths = read_usgs_library(directory)
    return library_mixtures(spectra, mixtures), wavelengths


def library_set(config) -> TrainingSet | None:
    """The spectral library's random mixtures as a scene of spectra in memory, when the config
    names a library folder that exists (a relative one under ``pretrain.data.source_dir``)."""
    source_dir = Path(config.pretrain.data.get("source_dir") or "").expanduser()
    library = source_dir / Path(config.spectral_library).expanduser() if config.spectral_library else None
    if library is None or not library.is_dir():
        return None
    spectra, wavelengths = _library(str(library), config.library_mixtures)
    return TrainingSet("spectral_library", spectra.astype(np.float32), wavelengths)


def linear_fit_sets(config, fitted: list[Scene]) -> dict[str, list]:
    """{row prefix: (spectra, wavelengths) sets} the grid PCAs are fitted on: the scenes, and the
    scenes plus the spectral library when the config names one that exists."""
    sets = {"grid_pca": [(normalised(s), s.wavelengths_nm) for s in fitted]}
    library = library_set(config)
    if library is not None:
        sets["grid_pca_library"] = [*sets["grid_pca"], (library.pixels, library.wavelengths_nm)]
    return sets


def pretraining_scenes(config, left_out: str) -> list[str]:
    excluded = {left_out, *names(config.validation_scenes)}
    return [name for name in names(config.pretrain.data.scenes) if name not in excluded]


def reconstruction_scores(original: np.ndarray, reconstruction: np.ndarray) -> dict:
    return {"mpsnr_db": float(per_band_psnr(original, reconstruction).mean()),
            "mssim": float(per_band_ssim(original, reconstruction).mean())}


def score_reconstruction(model, scene: Scene, linear: dict[str, SharedGridPCA]) -> dict:
    """Every reconstruction row for one scene: the network, each grid PCA (``linear``: row name ->
    fitted code) and own PCA at each width, and the scene's mean spectrum."""
    metrics, original, _ = evaluate_reconstruction(model, scene)
    rows = {"network": {"mpsnr_db": metrics["mpsnr_db"], "mssim": metrics["mssim"],
                        "code_width": model.config.code_width},
            "mean_spectrum": reconstruction_scores(original, np.broadcast_to(
                original.reshape(-1, original.shape[-1]).mean(axis=0), original.shape))}
    for row, pca in linear.items():
        if scene.wavelengths_nm is not None:
            rows[row] = reconstruction_scores(original, pca.reconstruct(original, scene.wavelengths_nm))
    for width in {pca.code_width for pca in linear.values()}:
        rows[f"own_pca_c{width}"] = reconstruction_scores(original, own_pca_reconstruction(original, width))
    return {"dataset": scene.name, "bands": int(original.shape[-1]), "rows": rows}


def grid_pca_scenes(config, left_out: str, scene) -> list[Scene]:
    """The pretraining scenes of a cell that list their own wavelengths (not a nominal list): what
    its grid PCA is fitted on."""
    nominal = config.pretrain.data.get("nominal_wavelengths") or {}
    return [scene(name) for name in pretraining_scenes(config, left_out)
            if name not in nominal and scene(name).wavelengths_nm is not None]


def is_linear(config) -> bool:
    """Whether the config's network is fitted in closed form (the linear network) or pretrained."""
    return config_from_dict(dict(config.pretrain.model)).folds_per_sensor


def network_directory(config, workdir: Path) -> Path:
    """Where a cell's network lies: its pretraining workdir, or the linear network's saved model."""
    return workdir / "model" if is_linear(config) else workdir


def fit_linear_network(config, fitted: list[Scene], directory: Path) -> None:
    """The linear network of a cell: the shipped recipe (grid PCA of ``fitted`` plus the library
    when there is one) at the config's code width and buckets, saved to ``directory``."""
    sets = linear_fit_sets(config, fitted)
    pca = SharedGridPCA.fit(sets.get("grid_pca_library", sets["grid_pca"]), int(config.pretrain.model.code_width),
                            seed=config.pretrain.seed)
    save_model(pca.to_model(buckets=tuple(config.pretrain.model.buckets)), directory)


def run_cell(config, left_out: str, workdir: Path, scene, progress: bool) -> None:
    """Pretrain without ``left_out`` and score it (and the validation scenes) in ``workdir``."""
    steps = config.pretrain.train.steps
    pretrain = config.pretrain.copy_and_resolve_references()
    pretrain.data.scenes = ",".join(pretraining_scenes(config, left_out))
    fitted = grid_pca_scenes(config, left_out, scene)
    if is_linear(config) and not network_directory(config, workdir).is_dir():
        say(f"without {left_out}: fitting the linear network on {', '.join(s.name for s in fitted)}")
        fit_linear_network(config, fitted, network_directory(config, workdir))
    elif not is_linear(config) and not (workdir / "checkpoints" / str(steps)).is_dir():
        say(f"without {left_out}: pretraining {steps} steps on {pretrain.data.scenes}")
        summary = train(pretrain, workdir, progress=progress)
        say(f"without {left_out}: pretrained in {summary.seconds:.0f} s")
    model = None
    linear = None
    for name in [left_out, *names(config.validation_scenes)]:
        out = workdir / "reconstruct" / f"{name}.json"
        if out.is_file():
            continue
        model = model or load_model(network_directory(config, workdir))
        linear = linear or {f"{prefix}_c{w}": SharedGridPCA.fit(sets, w)
                            for prefix, sets in linear_fit_sets(config, fitted).items()
                            for w in map(int, names(config.code_widths))}
        result = score_reconstruction(model, scene(name), linear)
        result["grid_pca_fitted_on"] = [s.name for s in fitted]
        if any(row.startswith("grid_pca_library") for row in linear):
            result["library"] = {"folder": config.spectral_library, "mixtures": config.library_mixtures}
        write_json_atomic(out, result)
        rows = result["rows"]
        say(f"without {left_out}: {name} network {rows['network']['mpsnr_db']:.2f} dB, "
            + ", ".join(f"{k} {v['mpsnr_db']:.2f}" for k, v in rows.items() if k.startswith("grid_pca")))
    target = scene(left_out)
    if target.labels is not None and (target.labels > 0).any():
        codes_vs_spectra(config, target, workdir, fitted)


def code_features(config, target: Scene, model, fitted: list[Scene]) -> dict[str, np.ndarray]:
    """{feature set: (pixels, d)}: the spectra, the network's codes and the grid PCAs' codes."""
    spectra = normalised(target).reshape(-1, target.cube.shape[-1])
    features = {"spectra": spectra, "network codes": encode(model, spectra, target.wavelengths_nm)}
    if target.wavelengths_nm is not None and fitted:
        titles = {"grid_pca": "grid PCA codes", "grid_pca_library": "grid PCA + library codes"}
        for prefix, sets in linear_fit_sets(config, fitted).items():
            pca = SharedGridPCA.fit(sets, model.config.code_width)
            features[titles[prefix]] = pca.encode(spectra, target.wavelengths_nm)
    return features


def codes_vs_spectra(config, target: Scene, workdir: Path, fitted: list[Scene]) -> None:
    """Frozen codes of the model in ``workdir`` (and of the grid PCA fitted on ``fitted``) against
    the raw spectra of ``target``, at each label fraction."""
    features = None
    for fraction in map(float, names(config.classify.fractions)):
        out = workdir / "codes_vs_spectra" / f"{target.name}_{fraction * 100:g}pct.json"
        if out.is_file():
            continue
        features = features or code_features(config, target, load_model(network_directory(config, workdir)), fitted)
        results = compare_features(features, target.labels.reshape(-1), fraction, config.classify.seeds,
                                   progress=lambda line: say(f"{target.name} {line}"))
        summary = {classifier: {name: {"oa": mean_and_std([r["oa"] for r in runs]),
                                       "aa": mean_and_std([r["aa"] for r in runs]),
                                       "kappa": mean_and_std([r["kappa"] for r in runs])}
                                for name, runs in by_features.items()}
                   for classifier, by_features in results.items()}
        write_json_atomic(out, {"dataset": target.name, "fraction": fraction, "seeds": config.classify.seeds,
                                "model": workdir.name, "results": summary})


def anomaly_detection(config, model_dir: Path, out: Path, scene) -> None:
    if out.is_file() or not names(config.anomaly_scenes):
        return
    model = load_model(model_dir)
    rows = {}
    for name in names(config.anomaly_scenes):
        target = scene(name)
        cube = normalised(target)
        codes = encode(model, cube, target.wavelengths_nm)
        rows[name] = {"spectra": rx_auc(cube, target.labels), "network codes": rx_auc(codes, target.labels)}
        say(f"RX AUC {name}: spectra {rows[name]['spectra']:.4f}, codes {rows[name]['network codes']:.4f}")
    write_json_atomic(out, {"model": str(model_dir), "auc": rows})


def run_leave_out(config, workdir, progress: bool = True) -> None:
    """Every cell, then anomaly detection and the fine-tuning comparison (what is done is kept)."""
    workdir = check_output(Path(workdir).expanduser(), "directory")
    workdir.mkdir(parents=True, exist_ok=True)
    check_settings(workdir, config, "hsijax leave-out")
    data = config.pretrain.data
    scene = functools.cache(lambda name: load_scene(name, data.data_dir, data.imports, data.nominal_wavelengths,
                                                    rebuild=data.get("rebuild", False),
                                                    source_dir=data.get("source_dir", "")))
    for left_out in names(config.left_out):
        run_cell(config, left_out, workdir / f"without_{left_out}", scene, progress)
    for pair in names(config.labelled_scenes):
        name, cell = pair.split(":")
        codes_vs_spectra(config, scene(name), workdir / f"without_{cell}", grid_pca_scenes(config, cell, scene))
    classified = workdir / f"without_{config.classify.dataset}"
    if classified.is_dir():
        network = network_directory(config, classified)
        anomaly_detection(config, network, workdir / "anomaly_rx_auc.json", scene)
        if config.classify.fine_tune:
            for fraction in map(float, names(config.classify.fractions)):
                classify(config, workdir / "fine_tune" / fraction_folder(fraction), ("pretrained", "scratch", "svm"),
                         fraction, network, "fine-tuning", scene)


def write_report(config, workdir, report_dir) -> Path:
    """``report_dir/README.md`` and its figure, from the results in ``workdir``."""
    workdir, report_dir = Path(workdir).expanduser(), Path(report_dir).expanduser()
    text = render(config, workdir, report_dir)
    return write_text_atomic(report_dir / "README.md", text)
