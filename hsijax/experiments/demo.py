"""`hsijax demo`, the main job: pretrain briefly, reconstruct, classify, and write a report.

Indian Pines comes from the tensorly wheel, so this runs on a fresh machine with no download;
``--scene NAME`` adds prepared (or catalogued) scenes to the pretraining. Steps:

1. both decoders are pretrained on the same pixels and seed (`hsijax.pretrain`, the loop the
   ``pretrain`` command runs); a fixed random sample of Indian Pines pixels is held out
   (`hsijax.data.pipeline.split_held_out`, as in the command), and the reconstruction MPSNR (dB, data scaled to [0, 1] by the
   scene's min-max) is measured on those pixels only, beside two baselines fitted on the same
   training pixels: the mean spectrum (what a decoder that ignores its code would output at best)
   and PCA with as many components as the code has channels;
2. the conditioned model is saved as a checkpoint (``WORKDIR/model``) and reconstructs the whole
   image (MPSNR, MSSIM, figures);
3. few-label classification at 5 % over 3 seeds: the pretrained encoder, the same network from
   scratch, and an RBF SVM, on identical splits (tables and classification maps);
4. ``WORKDIR/report.md`` gathers the tables and figures; ``WORKDIR/demo.json`` the numbers.
"""

from __future__ import annotations

import dataclasses
import platform
import shutil
import time
from pathlib import Path

import jax
import numpy as np
from sklearn.decomposition import PCA

from hsijax.data.loading import load_scene
from hsijax.data.pipeline import TrainingSet, split_held_out
from hsijax.data.scene import load_indian_pines
from hsijax.evaluate.classification import ClassifySettings, classify_scene, format_classification, print_progress
from hsijax.evaluate.figures import reconstruction_figures
from hsijax.evaluate.reconstruction import evaluate_reconstruction
from hsijax.files import write_json_atomic, write_text_atomic
from hsijax.metrics import per_band_psnr
from hsijax.models.autoencoder import DECODERS, create_model
from hsijax.models.inference import reconstruct
from hsijax.models.saved_model import save_model
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


def run_demo(settings: DemoSettings, progress: bool = True) -> dict:
    """All four steps of the module docstring; returns (and writes) the numbers."""
    workdir = Path(settings.workdir)
    scene = load_indian_pines()
    bands = scene.cube.shape[-1]
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
    reconstruction, original, recon = evaluate_reconstruction(models["conditioned"], scene)
    reconstruction_figures(original, recon, np.asarray(reconstruction["per_band_psnr_db"]),
                           scene.wavelengths_nm, scene.name, workdir / "reconstruction")
    classification = classify_scene(
        scene, ClassifySettings(settings.fraction, settings.seeds, settings.classify_steps),
        workdir / "classification", models["conditioned"], progress=print_progress,
    )
    report = {
        "dataset": scene.name,
        "bands": bands,
        "settings": {k: str(v) for k, v in dataclasses.asdict(settings).items()},
        "machine": f"{platform.machine()} {jax.devices()[0].platform} x{jax.device_count()}",
        "decoders": results,
        "baselines": baselines,
        "reconstruction": {k: v for k, v in reconstruction.items() if k != "per_band_psnr_db"},
        "classification": classification,
        "date": time.strftime("%Y-%m-%d"),
    }
    write_json_atomic(workdir / "demo.json", report)
    write_text_atomic(workdir / "report.md", format_report(report))
    return report


def format_report(report: dict) -> str:
    """report.md: the three tables and the figures, with how they were made."""
    recon = report["reconstruction"]
    return "\n".join([
        "# hsijax demo report", "",
        f"{report['date']}, {report['machine']}. Settings: {report['settings']}.", "",
        "## Pretraining: held-out reconstruction", "", format_table(report), "",
        "## Whole-image reconstruction (conditioned decoder)", "",
        f"{recon['dataset']}, {recon['bands']} bands, code width {recon['code_width']}: "
        f"MPSNR {recon['mpsnr_db']:.2f} dB, MSSIM {recon['mssim']:.4f} (every pixel, training pixels "
        "included).", "",
        "![false colour](reconstruction/false_colour.png)", "",
        "![per-band PSNR](reconstruction/per_band_psnr.png)", "",
        "![spectra](reconstruction/spectra.png)", "",
        "## Few-label classification", "", format_classification(report["classification"]), "",
        "![classification maps](classification/classification_maps.png)", "",
    ])


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
