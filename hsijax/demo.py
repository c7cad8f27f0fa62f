"""`hsijax demo`: pretrain both decoders briefly on Indian Pines and compare their reconstructions.

Indian Pines comes from the tensorly wheel, so this runs on a fresh machine with no download. A
fixed random sample of pixels is held out of training; the reconstruction MPSNR (dB, data scaled to
[0, 1] by the scene's min-max) is measured on those pixels only. Two baselines fitted on the same
training pixels put the numbers in context: the mean spectrum (what a decoder that ignores its code
would output at best) and PCA with as many components as the code has channels.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from pathlib import Path

import jax
import numpy as np

from sklearn.decomposition import PCA

from hsijax.files import write_json_atomic
from hsijax.inference import reconstruct
from hsijax.metrics import per_band_psnr
from hsijax.model import DECODERS, create_model
from hsijax.scenes import load_indian_pines
from hsijax.spectral import fit_normalization
from hsijax.train import TrainingSet, pretrain


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    workdir: Path = Path("hsijax_demo")
    steps: int = 600
    batch_size: int = 256
    code_width: int = 16
    held_out_pixels: int = 2000
    seed: int = 0


def split_pixels(pixels: np.ndarray, held_out: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training pixels, held-out pixels): a fixed random sample is kept out of training."""
    order = np.random.default_rng(seed).permutation(len(pixels))
    return pixels[order[held_out:]], pixels[order[:held_out]]


def baseline_reconstructions(training, held_out, components: int) -> dict[str, np.ndarray]:
    """Held-out reconstructions by the training mean spectrum and by a PCA of the training pixels."""
    pca = PCA(components, random_state=0).fit(training)
    return {
        "mean spectrum": np.broadcast_to(training.mean(axis=0), held_out.shape),
        f"PCA ({components} components)": pca.inverse_transform(pca.transform(held_out)),
    }


def run_demo(settings: DemoSettings, progress: bool = True) -> dict:
    """Train each decoder on the same pixels and seed; returns (and writes) the metrics."""
    scene = load_indian_pines()
    bands = scene.cube.shape[-1]
    pixels = fit_normalization(scene.cube).apply(scene.cube.reshape(-1, bands))
    training, held_out = split_pixels(pixels, settings.held_out_pixels, settings.seed)
    results = {}
    for decoder in DECODERS:
        model = create_model(settings.code_width, decoder, seed=settings.seed)
        run = pretrain(
            model,
            [TrainingSet(scene.name, training, scene.wavelengths_nm)],
            settings.steps,
            batch_size=settings.batch_size,
            seed=settings.seed,
            progress=progress,
        )
        psnr = per_band_psnr(held_out, reconstruct(run.model, held_out, scene.wavelengths_nm))
        results[decoder] = {
            "mpsnr_db": float(psnr.mean()),
            "final_training_mse": float(run.losses[-50:].mean()),
            "train_seconds": run.seconds,
            "pixels_per_second": run.pixels_per_second,
        }
    baselines = {
        name: {"mpsnr_db": float(per_band_psnr(held_out, recon).mean())}
        for name, recon in baseline_reconstructions(training, held_out, settings.code_width).items()
    }
    report = {
        "dataset": scene.name,
        "bands": bands,
        "settings": {k: str(v) for k, v in dataclasses.asdict(settings).items()},
        "machine": f"{platform.machine()} {jax.devices()[0].platform} x{jax.device_count()}",
        "decoders": results,
        "baselines": baselines,
        "date": time.strftime("%Y-%m-%d"),
    }
    write_json_atomic(settings.workdir / "demo.json", report)
    return report


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
