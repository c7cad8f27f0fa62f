"""The poster's first experiment: how well a pretrained model reconstructs a whole scene.

The scene is scaled to [0, 1] with its own min-max normalisation (`hsijax.spectral`), every pixel
is reconstructed, and the scores are those of the hyperspectral literature, computed with dm-pix:
per-band PSNR over the image and its mean over bands (MPSNR, dB), and SSIM of each band image
(11 x 11 Gaussian window, the dm-pix defaults) averaged over bands (MSSIM). For reference the
MPSNR of the scene's own mean spectrum is reported too: a decoder that ignores its code can do no
better than that.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from hsijax.data.loading import SceneInput
from hsijax.data.scene import Scene
from hsijax.evaluate.figures import reconstruction_figures
from hsijax.files import check_output, write_json_atomic
from hsijax.metrics import per_band_psnr, per_band_ssim
from hsijax.models.checkpoints import load_model
from hsijax.models.inference import reconstruct
from hsijax.models.model import Model
from hsijax.spectral import fit_normalization


def evaluate_reconstruction(model: Model, scene: Scene) -> tuple[dict, np.ndarray, np.ndarray]:
    """(metrics, original, reconstruction), both (H, W, b) in [0, 1]."""
    original = fit_normalization(scene.cube, scene.name).apply(scene.cube).astype(np.float32)
    recon = reconstruct(model, original, scene.wavelengths_nm)
    psnr = per_band_psnr(original, recon)
    metrics = {
        "dataset": scene.name,
        "bands": int(original.shape[-1]),
        "code_width": model.config.code_width,
        "mpsnr_db": float(psnr.mean()),
        "mssim": float(per_band_ssim(original, recon).mean()),
        "per_band_psnr_db": [float(v) for v in psnr],
        # A reference: every pixel replaced by the scene's own mean spectrum (fitted on the scene).
        "mean_spectrum_mpsnr_db": float(per_band_psnr(original, np.broadcast_to(
            original.reshape(-1, original.shape[-1]).mean(axis=0), original.shape)).mean()),
    }
    return metrics, original, recon


def reconstruct_to(checkpoint, scene_of: Callable[[], SceneInput], out: Path) -> dict:
    """`hsijax reconstruct`: the scene ``scene_of()`` gives, reconstructed by the model of
    ``checkpoint``; ``out/metrics.json`` and three figures. The output path, the model and the
    scene's band count are checked before any work."""
    check_output(out)
    model = load_model(checkpoint)
    scene, source, *_ = scene_of()
    model.config.check_scene(scene.cube.shape[-1], scene.wavelengths_nm, source)
    metrics, original, recon = evaluate_reconstruction(model, scene)
    reconstruction_figures(original, recon, np.asarray(metrics["per_band_psnr_db"]), scene.wavelengths_nm,
                           scene.name, out)
    write_json_atomic(out / "metrics.json", metrics)
    return metrics
