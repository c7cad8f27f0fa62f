"""The linear network on the shared wavelength grid: the code that transfers to sensors it never saw,
which `hsijax.load_pretrained()` ships.

Parameters: a mean (G,) and a basis (code_width, G) on the shared 5-nm grid. A spectrum's code is
the least-squares fit of the grid points its sensor covers (so a VNIR-only sensor is fitted on its
own range, not on zeros): (B M B^T + ridge I) z = B M (x_grid - m), M the covered mask; the decoder
is the mean plus the code times the basis (tied weights), resampled back to the band centres.
Band centres are an input like the spectrum: without them the network refuses, it never assumes
where the bands lie. The shipped parameters are a `hsijax.SharedGridPCA` in network form
(`SharedGridPCA.to_model`), whose codes these are divided by each component's ``scale``.

Two paths compute the same codes:
- **one sensor** (`LinearGridCode.operators`): for spectra that share band centres (a scene, a
  tile, a batch of one sensor) the grid resampling, the covered-point least squares and the
  whitening are all linear, so they fold into one (b, c) matrix and an offset, and the decoder into
  a (c, b) matrix and an offset -- computed once per wavelength list, as a differentiable function
  of the parameters (a classifier fine-tunes through it). Encoding is then one matrix product.
- **per pixel** (`LinearGridCode.__call__`): each pixel of a padded batch with its own band
  count and band centres, for training batches that may mix sensors of one bucket.

Numerics: the normal equations are solved in float32 and refined twice on the residual: on a narrow
sensor the covered part of the basis is far from orthogonal (the normal equations' condition number
reaches 1e4-1e5) and one float32 solve loses the code's smaller components (15 % off on a 48-band
VNIR sensor); refined, both paths agree with float64 least squares to about 1e-4 of the code's size
(`tests/test_linear_grid.py` holds them to 2e-4 on Houston 2018's 48 bands and Indian Pines' 200).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, NamedTuple

import flax.linen as nn
import jax.numpy as jnp
from jax.scipy.linalg import cho_factor, cho_solve

from hsijax.data.shared_grid import GRID_POINTS, from_grid, from_grid_matrix, padded_on_grid, to_grid_matrix
from hsijax.errors import HsijaxError
from hsijax.models.networks.base import NetworkConfig

REFINEMENTS = 5  # of the least squares, see the module docstring
RIDGE = 1e-6  # added to the normal equations: a pixel covering no grid point gets code 0


@dataclasses.dataclass(frozen=True)
class LinearGridConfig(NetworkConfig):
    """The linear network (``kind: "linear_grid"``): a code width and the per-pixel path's buckets."""

    kind: ClassVar[str] = "linear_grid"
    needs_wavelengths: ClassVar[bool] = True
    folds_per_sensor: ClassVar[bool] = True

    @property
    def description(self) -> str:
        return "the linear network on the shared wavelength grid"


class SensorOperators(NamedTuple):
    """The network for one list of band centres: ``codes = spectra @ encode + offset`` and
    ``reconstruction = codes @ decode + mean``, spectra (N, b) unpadded."""

    encode: object  # (b, c)
    offset: object  # (c,)
    decode: object  # (c, b)
    mean: object  # (b,)


def refined_codes(basis, centred, mask, factor):
    """Least-squares codes (..., c) of masked, centred grid values (..., G) by ``basis`` (c, G):
    the Cholesky-factored normal equations ``factor``, then `REFINEMENTS` refinements on the
    residual. ``mask`` (..., G) broadcasts against ``centred``; ``factor`` against the codes."""
    code = jnp.zeros(centred.shape[:-1] + basis.shape[:1], centred.dtype)
    for _ in range(REFINEMENTS + 1):
        residual = (centred - code @ basis) * mask
        code = code + cho_solve(factor, (residual @ basis.T)[..., None])[..., 0]
    return code


class LinearGridCode(nn.Module):
    """The encoder: ``mean`` (G,) and ``basis`` (code_width, G); a random start is an orthonormal
    basis around a zero mean."""

    config: LinearGridConfig

    def setup(self):
        self.mean = self.param("mean", nn.initializers.zeros, (GRID_POINTS,))
        self.basis = self.param("basis", nn.initializers.orthogonal(), (self.config.code_width, GRID_POINTS))

    def _factor(self, mask):
        gram = jnp.einsum("cg,...g,dg->...cd", self.basis, mask, self.basis)
        return cho_factor(gram + RIDGE * jnp.eye(self.config.code_width, dtype=gram.dtype))

    def __call__(self, spectra, band_count=None, wavelengths=None, visible_nm=None):
        """Per pixel: padded spectra (N, B), band counts (N,), padded band centres (N, B) -> (N, c)."""
        if band_count is None or wavelengths is None:
            raise HsijaxError("the wavelength-grid network needs each spectrum's band count and band centres")
        grid, covered = padded_on_grid(spectra, band_count, wavelengths, visible_nm, xp=jnp)
        mask = covered.astype(grid.dtype)
        return refined_codes(self.basis, (grid - self.mean) * mask, mask, self._factor(mask))

    def decode(self, code):
        """Codes (N, code_width) -> values on the whole grid (N, G)."""
        return self.mean + code @ self.basis

    def operators(self, wavelengths) -> SensorOperators:
        """The network folded for band centres ``wavelengths`` (b,): the codes of each band's unit
        spectrum (its resampling row) and of the mean give the encoding matrix and offset."""
        to_grid, covered = to_grid_matrix(wavelengths, xp=jnp)
        mask = covered.astype(jnp.float32)
        rows = jnp.concatenate([to_grid, -self.mean[None, :]]) * mask
        codes = refined_codes(self.basis, rows, mask, self._factor(mask))
        from_grid_ = from_grid_matrix(wavelengths, xp=jnp)
        return SensorOperators(codes[:-1], codes[-1], self.basis @ from_grid_, self.mean @ from_grid_)


class LinearGrid(nn.Module):
    """The autoencoder: `LinearGridCode` and its tied decoder, resampled to the band centres."""

    config: LinearGridConfig

    def setup(self):
        self.encoder = LinearGridCode(self.config)

    def encode(self, spectra, band_count=None, wavelengths=None, has_wavelengths=None, visible_nm=None):
        return self.encoder(spectra, band_count, wavelengths, visible_nm)

    def __call__(self, spectra, band_count, wavelengths, has_wavelengths, visible_nm=None):
        """Padded reconstructions (N, B) at the (padded) band centres."""
        grid = self.encoder.decode(self.encode(spectra, band_count, wavelengths, visible_nm=visible_nm))
        return from_grid(grid, wavelengths, xp=jnp)

    def operators(self, wavelengths) -> SensorOperators:
        return self.encoder.operators(wavelengths)
