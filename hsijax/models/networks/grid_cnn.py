"""The poster's CNN run over the shared 5-nm wavelength grid instead of band positions.

Each spectrum is interpolated onto the grid points its sensor covers (`hsijax.data.shared_grid`),
the encoder sees (value, covered) per point, the code pools only covered positions (elsewhere the
input is zero-filled, and a maximum over it would make codes depend on the sensor's range), the
decoder is conditioned on the grid wavelength (Fourier features) and its output is interpolated
back to the spectrum's band centres. Band centres are an input like the spectrum: without them
there is nothing to place on the grid, and the network refuses rather than assuming a range.
Bucket lengths still shape the per-pixel inputs, so it compiles once per bucket.

On the leave-sensor-out scenes it reconstructs better than the band-position CNN (docs/leave_out)
and worse than the linear network (`linear_grid`), which ships.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import flax.linen as nn
import jax.numpy as jnp

from hsijax.data.shared_grid import GRID_POINTS, SHARED_GRID_NM, from_grid, padded_on_grid
from hsijax.errors import HsijaxError
from hsijax.models.networks.base import NetworkConfig
from hsijax.models.networks.conv import (
    ConvDecoder,
    check_conv_fields,
    conv_features,
    duplicated_padding,
    fourier_features,
)


@dataclasses.dataclass(frozen=True)
class GridCNNConfig(NetworkConfig):
    """The CNN on the wavelength grid (``kind: "grid_cnn"``)."""

    kind: ClassVar[str] = "grid_cnn"
    needs_wavelengths: ClassVar[bool] = True

    widths: tuple[int, ...] = (32, 64, 128)
    kernel_size: int = 5
    fourier_frequencies: int = 6  # of the decoder's grid-wavelength conditioning

    @property
    def stages(self) -> int:
        return len(self.widths)

    @property
    def description(self) -> str:
        return "the CNN on the shared wavelength grid"

    def _validate(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        check_conv_fields(self.widths, self.kernel_size, self.fourier_frequencies)
        if GRID_POINTS % 2**self.stages:
            raise HsijaxError(f"the wavelength grid's {GRID_POINTS} points need widths with at most 3 stages, "
                              f"got {len(self.widths)}")
        self.check_buckets(1)


def _required(band_count, wavelengths):
    if band_count is None or wavelengths is None:
        raise HsijaxError("the wavelength-grid network needs each spectrum's band count and band centres")


class GridCNNEncoder(nn.Module):
    """Padded spectra (N, B), band counts (N,) and padded band centres (N, B) -> codes (N, c)."""

    config: GridCNNConfig

    @nn.compact
    def __call__(self, spectra, band_count=None, wavelengths=None, visible_nm=None):
        _required(band_count, wavelengths)
        grid, covered = padded_on_grid(spectra, band_count, wavelengths, visible_nm, xp=jnp)
        features = conv_features(jnp.stack([grid, covered.astype(grid.dtype)], axis=-1), self.config.widths,
                                 self.config.kernel_size, self.config.code_width)
        real = covered.reshape(*covered.shape[:-1], features.shape[1], -1).any(axis=-1)
        pooled = jnp.where(real[..., None], features, -jnp.inf).max(axis=1)
        return jnp.where(real.any(axis=-1, keepdims=True), pooled, 0.0)


class GridCNN(nn.Module):
    config: GridCNNConfig

    def setup(self):
        self.encoder = GridCNNEncoder(self.config)
        self.decoder = ConvDecoder(self.config.widths, self.config.kernel_size)

    def encode(self, spectra, band_count=None, wavelengths=None, has_wavelengths=None, visible_nm=None):
        return self.encoder(spectra, band_count, wavelengths, visible_nm)

    def __call__(self, spectra, band_count, wavelengths, has_wavelengths, visible_nm=None):
        """Padded reconstructions (N, B) at the band centres; ``has_wavelengths`` is not used (every
        spectrum must come with its band centres)."""
        code = self.encode(spectra, band_count, wavelengths, visible_nm=visible_nm)
        steps = GRID_POINTS // 2**self.config.stages
        span = SHARED_GRID_NM[-1] - SHARED_GRID_NM[0]
        features = fourier_features(jnp.asarray((SHARED_GRID_NM - SHARED_GRID_NM[0]) / span),
                                    self.config.fourier_frequencies)
        conditioning = jnp.broadcast_to(features, (spectra.shape[0], *features.shape))
        grid = self.decoder(duplicated_padding(code, steps), conditioning)
        return from_grid(grid, wavelengths, xp=jnp)
