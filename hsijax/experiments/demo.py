"""`hsijax demo`, the main job: what a user gets from the shipped weights, then a short pretraining.

Indian Pines comes from the tensorly wheel and the weights from the package, so this runs on a
fresh machine with no download; ``--scene NAME`` adds prepared (or catalogued) scenes to the
pretraining. Steps:

1. the shipped network (`hsijax.load_pretrained()`, the linear network on the wavelength grid)
   encodes every pixel to its shared code and reconstructs the whole image (MPSNR, MSSIM, figures)
   -- Indian Pines was among the scenes it was fitted on; `hsijax leave-out` measures scenes it
   never saw;
2. few-label classification at 5 % over 3 seeds: the shipped encoder fine-tuned, what `hsijax map`
   trains (a head on the frozen codes, chosen by cross-validation on the training pixels), the same
   network from scratch, and an RBF SVM on the spectra, on identical splits (tables and maps);
3. a short pretraining of both decoders on the same pixels and seed (`hsijax.pretrain`, the loop
   the ``pretrain`` command runs); a fixed random sample of Indian Pines pixels is held out
   (`hsijax.data.pipeline.split_held_out`, as in the command) and the reconstruction MPSNR (dB,
   data scaled to [0, 1] by the scene's min-max) is measured on those pixels only, beside two
   baselines fitted on the same training pixels: the mean spectrum (what a decoder that ignores
   its code would output at best) and PCA with as many components as the code has channels; the
   conditioned model is saved as a checkpoint (``WORKDIR/model``);
4. the user's path: `hsijax map` (`hsijax.evaluate.mapping.make_map`) trains on the training
   pixels of seed 0's 5 % split (written as a label image, with the scene as a .npy and its band
   centres as a table, in ``WORKDIR/map_input``) and maps every pixel to ``WORKDIR/map`` (map.tif,
   map.png, report.md, classifier/), scored on that split's test pixels -- the demo ends on it;
5. ``WORKDIR/report.md`` gathers the tables and figures; ``WORKDIR/demo.json`` the numbers.
"""

from __future__ import annotations

import dataclasses
import platform
import shutil
import time
from pathlib import Path

import jax
import numpy as np

from hsijax.data.loading import load_scene
from hsijax.data.pipeline import TrainingSet, split_held_out
from hsijax.data.scene import load_indian_pines
from hsijax.evaluate.classification import ClassifySettings, classify_scene, format_classification, print_progress
from hsijax.evaluate.figures import reconstruction_figures
from hsijax.evaluate.reconstruction import evaluate_reconstruction
from hsijax.files import write_json_atomic, write_text_atomic
from hsijax.metrics import per_band_psnr
from hsijax.models.checkpoints import load_pretrained, save_model
from hsijax.models.inference import encode, reconstruct
from hsijax.models.model import create_model
from hsijax.models.networks.poster_cnn import DECODERS
from hsijax.spectral import fit_normalization
from hsijax.train.loop import pretrain


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    workdir: Path = Path("hsijax_demo")
    steps: int = 600
    batch_size: int = 256
    code_width: int = 16
    held_out_pixels: int = 2000
    seed: int = 0
    scenes: tuple[str, ...] = ()  # prepared or catalogued scenes added to the pretraining
    data_dir: Path = Path("~/tensorflow_datasets")
    fraction: float = 0.05
    seeds: int = 3
    classify_steps: int = 500  # most fine-tuning steps; the kept one is chosen on validation pixels


def baseline_reconstructions(training, held_out, components: int) -> dict[str, np.ndarray]:
    """Held-out reconstructions by the training mean spectrum and by a PCA of the training pixels."""
    from sklearn.decomposition import PCA  # here: importing scikit-learn takes a second

    pca = PCA(components, random_state=0).fit(training)
    return {
        "mean spectrum": np.broadcast_to(training.mean(axis=0), held_out.shape),
        f"PCA ({components} components)": pca.inverse_transform(pca.transform(held_out)),
    }


def extra_training_sets(settings: DemoSettings) -> list[TrainingSet]:
    """Every pixel of each ``--scene``, normalised, prepared first when it is catalogued."""
    sets = []
    for name in settings.scenes:
        scene = load_scene(name, settings.data_dir)
        pixels = fit_normalization(scene.cube, name).apply(scene.cube.reshape(-1, scene.cube.shape[-1]))
        sets.append(TrainingSet(name, pixels.astype(np.float32), scene.wavelengths_nm))
    return sets


def compare_decoders(settings: DemoSettings, scene, training, held_out, extra, progress: bool):
    """({decoder: metrics}, {decoder: trained model}) on the same pixels and seed."""
    results, models = {}, {}
    for decoder in DECODERS:
        model = create_model(settings.code_width, decoder, seed=settings.seed)
        sets = [TrainingSet(scene.name, training, scene.wavelengths_nm), *extra]
        run = pretrain(model, sets, settings.steps, batch_size=settings.batch_size, seed=settings.seed,
                       progress=progress)
        psnr = per_band_psnr(held_out, reconstruct(run.model, held_out, scene.wavelengths_nm))
        results[decoder] = {
            "mpsnr_db": float(psnr.mean()),
            "final_training_mse": float(run.losses[-50:].mean()),
            "train_seconds": run.seconds,
            "pixels_per_second": run.pixels_per_second,
        }
        models[decoder] = run.model
    return results, models


def shipped_weights(settings: DemoSettings, scene) -> dict:
    """Steps 1 and 2: encode, reconstruct and classify Indian Pines with the shipped weights."""
    workdir = Path(settings.workdir)
    model = load_pretrained()
    pixels = fit_normalization(scene.cube).apply(scene.cube.reshape(-1, scene.cube.shape[-1]))
    start = time.perf_counter()
    codes = encode(model, pixels, scene.wavelengths_nm)
    encode_seconds = time.perf_counter() - start
    reconstruction, original, recon = evaluate_reconstruction(model, scene)
    reconstruction_figures(original, recon, np.asarray(reconstruction["per_band_psnr_db"]),
                           scene.wavelengths_nm, scene.name, workdir / "reconstruction")
    classification = classify_scene(
        scene, ClassifySettings(settings.fraction, settings.seeds, settings.classify_steps,
                                methods=("pretrained", "map", "scratch", "svm")),
        workdir / "classification", model, progress=print_progress,
    )
    return {
        "model": {"network": model.config.kind, "description": model.config.description,
                  "code_width": model.config.code_width, "parameters": model.parameter_count},
        "encoding": {"pixels": int(codes.shape[0]), "code_width": int(codes.shape[1]),
                     "seconds": encode_seconds, "pixels_per_second": codes.shape[0] / encode_seconds},
        "reconstruction": {k: v for k, v in reconstruction.items() if k != "per_band_psnr_db"},
        "classification": classification,
    }


def land_cover_map(settings: DemoSettings, scene) -> dict:
    """Step 4: `hsijax map` on Indian Pines with seed 0's training pixels, scored on its test pixels."""
    from hsijax.data.loading import ImportOptions
    from hsijax.evaluate.mapping import make_map
    from hsijax.evaluate.splits import stratified_split
    from hsijax.metrics import classification_scores

    workdir = Path(settings.workdir)
    inputs, out = workdir / "map_input", workdir / "map"
    inputs.mkdir(parents=True, exist_ok=True)
    train, test = stratified_split(scene.labels, settings.fraction, 0)
    training = np.zeros(scene.labels.size, np.uint8)
    training[train] = scene.labels.reshape(-1)[train]
    np.save(inputs / "indian_pines.npy", np.asarray(scene.cube))
    np.savetxt(inputs / "wavelengths.txt", scene.wavelengths_nm)
    np.save(inputs / "training_labels.npy", training.reshape(scene.labels.shape))
    if out.exists():
        shutil.rmtree(out)
    result = make_map(ImportOptions(inputs / "indian_pines.npy", wavelengths=str(inputs / "wavelengths.txt"),
                                    sensor=scene.sensor), out, inputs / "training_labels.npy",
                      class_names=",".join(scene.class_names))
    import rasterio

    with rasterio.open(out / "map.tif") as mapped:
        predicted = mapped.read(1).reshape(-1)
    scores = classification_scores(scene.labels.reshape(-1)[test], predicted[test])
    return {"chosen": result.chosen, "cross_validated_oa": result.cross_validated_oa, "seconds": result.seconds,
            "training_pixels": int(len(train)), "test_pixels": int(len(test)),
            **{key: scores[key] for key in ("oa", "aa", "kappa")}}


def run_demo(settings: DemoSettings, progress: bool = True) -> dict:
    """All the steps of the module docstring; returns (and writes) the numbers."""
    workdir = Path(settings.workdir)
    scene = load_indian_pines()
    bands = scene.cube.shape[-1]
    shipped = shipped_weights(settings, scene)
    pixels = fit_normalization(scene.cube).apply(scene.cube.reshape(-1, bands))
    train, held = split_held_out(pixels, settings.held_out_pixels, settings.seed)
    training, held_out = pixels[train], pixels[held]
    results, models = compare_decoders(settings, scene, training, held_out,
                                       extra_training_sets(settings), progress)
    baselines = {
        name: {"mpsnr_db": float(per_band_psnr(held_out, recon).mean())}
        for name, recon in baseline_reconstructions(training, held_out, settings.code_width).items()
    }
    model_dir = workdir / "model"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    save_model(models["conditioned"], model_dir)
    land_cover = land_cover_map(settings, scene)
    report = {
        "dataset": scene.name,
        "bands": bands,
        "settings": {k: str(v) for k, v in dataclasses.asdict(settings).items()},
        "machine": f"{platform.machine()} {jax.devices()[0].platform} x{jax.device_count()}",
        "shipped": shipped,
        "decoders": results,
        "baselines": baselines,
        "map": land_cover,
        "date": time.strftime("%Y-%m-%d"),
    }
    write_json_atomic(workdir / "demo.json", report)
    write_text_atomic(workdir / "report.md", format_report(report))
    return report


def format_report(report: dict) -> str:
    """report.md: what the shipped weights do, then the short pretraining, with the figures."""
    shipped = report["shipped"]
    recon, encoding, model = shipped["reconstruction"], shipped["encoding"], shipped["model"]
    return "\n".join([
        "# hsijax demo report", "",
        f"{report['date']}, {report['machine']}. Settings: {report['settings']}.", "",
        "## 1. The shipped network on Indian Pines", "",
        f"`hsijax.load_pretrained()`: {model['description']}, code width {model['code_width']}, "
        f"{model['parameters']:,} parameters (Indian Pines was among the scenes it was fitted on). "
        f"Encoded {encoding['pixels']:,} pixels to {encoding['code_width']}-number codes in "
        f"{encoding['seconds']:.2f} s ({encoding['pixels_per_second']:,.0f} pixels/s).", "",
        f"Whole-image reconstruction, {recon['bands']} bands: MPSNR {recon['mpsnr_db']:.2f} dB, MSSIM "
        f"{recon['mssim']:.4f} (the scene's mean spectrum: {recon['mean_spectrum_mpsnr_db']:.2f} dB).", "",
        "![false colour](reconstruction/false_colour.png)", "",
        "![per-band PSNR](reconstruction/per_band_psnr.png)", "",
        "![spectra](reconstruction/spectra.png)", "",
        "## 2. A short pretraining: held-out reconstruction", "", format_table(report), "",
        "## 3. Few-label classification: `hsijax map`'s head on the frozen codes (`map`), the shipped encoder "
        "fine-tuned, the same network from scratch, an SVM on the spectra", "",
        format_classification(shipped["classification"]), "",
        "![classification maps](classification/classification_maps.png)", "",
        *map_section(report.get("map")),
    ])


def map_section(land_cover: dict | None) -> list[str]:
    """The demo's last section: the map `hsijax map` wrote (absent from a report of hsijax 0.2)."""
    if not land_cover:
        return []
    return [
        "## 4. The map", "",
        f"`hsijax map map_input/indian_pines.npy --wavelengths map_input/wavelengths.txt --labels "
        f"map_input/training_labels.npy --out map` (seed 0's {land_cover['training_pixels']} training pixels): "
        f"{land_cover['chosen']} chosen (cross-validated OA {100 * land_cover['cross_validated_oa']:.2f} % on the "
        f"training pixels), every pixel mapped in {land_cover['seconds']:.1f} s; on the "
        f"{land_cover['test_pixels']:,} test pixels OA {100 * land_cover['oa']:.2f} %, AA "
        f"{100 * land_cover['aa']:.2f} %, κ {land_cover['kappa']:.4f}. `map/map.tif` opens in a GIS; "
        "`map/classifier` maps another scene (`--classifier`).", "",
        "![the map](map/map.png)", "",
    ]


def format_table(report: dict) -> str:
    lines = [
        f"Indian Pines ({report['bands']} bands), held-out pixels, code width "
        f"{report['settings']['code_width']}, {report['settings']['steps']} steps",
        "",
        "| decoder | MPSNR (dB) | final train MSE | train time (s) | pixels/s |",
        "|---|---|---|---|---|",
    ]
    for decoder, row in report["decoders"].items():
        lines.append(
            f"| {decoder} | {row['mpsnr_db']:.2f} | {row['final_training_mse']:.2e} "
            f"| {row['train_seconds']:.1f} | {row['pixels_per_second']:.0f} |"
        )
    for name, row in report["baselines"].items():
        lines.append(f"| baseline: {name} | {row['mpsnr_db']:.2f} | | | |")
    return "\n".join(lines)
