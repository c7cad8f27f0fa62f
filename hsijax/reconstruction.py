"""The poster's first experiment: how well a pretrained model reconstructs a whole scene.

The scene is scaled to [0, 1] with its own min-max normalisation (`hsijax.spectral`), every pixel
is reconstructed, and the scores are those of the hyperspectral literature, computed with dm-pix:
per-band PSNR over the image and its mean over bands (MPSNR, dB), and SSIM of each band image
(11 x 11 Gaussian window, the dm-pix defaults) averaged over bands (MSSIM). For reference the
MPSNR of the scene's own mean spectrum is reported too: a decoder that ignores its code can do no
better than that.
"""

from __future__ import annotations

import dm_pix
import jax.numpy as jnp
import numpy as np

from hsijax.inference import reconstruct
from hsijax.metrics import per_band_psnr
from hsijax.model import Model
from hsijax.scenes import Scene
from hsijax.spectral import fit_normalization


def per_band_ssim(original: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """SSIM of each band image: (H, W, b) inputs in [0, 1] -> (b,)."""
    as_images = lambda cube: jnp.asarray(np.moveaxis(cube, -1, 0)[..., None], jnp.float32)  # (b, H, W, 1)
    return np.asarray(dm_pix.ssim(as_images(original), as_images(reconstruction), max_val=1.0), np.float64)


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
