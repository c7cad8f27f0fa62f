"""Reconstruction metrics on data scaled to [0, 1] (see `hsijax.spectral.Normalization`).

PSNR comes from dm-pix with a peak of 1.0, computed band by band over the pixels; MPSNR is its mean
over bands, the usual hyperspectral summary (and the poster's reconstruction figure).
"""

from __future__ import annotations

import dm_pix
import jax.numpy as jnp
import numpy as np


def per_band_psnr(original, reconstruction) -> np.ndarray:
    """PSNR in dB of each band over all pixels: inputs (..., b) in [0, 1] -> (b,)."""
    original = np.asarray(original, np.float32)
    bands = original.shape[-1]
    as_images = lambda array: jnp.asarray(array, jnp.float32).reshape(-1, bands).T[:, :, None, None]
    return np.asarray(dm_pix.psnr(as_images(original), as_images(reconstruction)), np.float64)


def mpsnr(original, reconstruction) -> float:
    """Mean over bands of `per_band_psnr`, in dB."""
    return float(per_band_psnr(original, reconstruction).mean())
