"""One wavelength axis for every sensor: spectra resampled onto a 5-nm grid, 365-2560 nm.

Band positions mean different things on different sensors (band 50 is 890 nm on AVIRIS and 1,050
nm on the Houston CASI), so a code learned on band positions does not transfer; on one physical
axis it can. Resampling is linear interpolation between a grid point's two neighbouring bands,
and back again; on the scenes in ``../shared/data`` the round trip (bands -> grid -> bands) loses
nothing a 16-number code could keep (61-74 dB MPSNR).

A grid point is *covered* by a sensor when it lies within the sensor's range (half a grid step
beyond its first and last band) and its two neighbouring bands are at most ``GAP_FACTOR`` times
the sensor's mean band spacing apart (or it falls on a band): the water-absorption gaps of a "corrected" AVIRIS cube and
the ends of a VNIR-only sensor are not covered, and nothing there is interpolated.

Every function takes ``xp`` (NumPy, or ``jax.numpy`` with traced arrays inside a network) and
leading batch axes, so one rule serves the linear baseline on the host and the grid model in-graph.
Padded spectra: only the first ``band_count`` wavelengths of each row are real.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

GRID_START_NM = 365.0
GRID_STEP_NM = 5.0
GRID_POINTS = 440  # 365 ... 2560 nm; a multiple of 8, so three stride-2 stages fit it exactly
SHARED_GRID_NM = GRID_START_NM + GRID_STEP_NM * np.arange(GRID_POINTS)
GAP_FACTOR = 3.0


class GridInterpolation(NamedTuple):
    """For every grid point: its left and right neighbouring bands (indices into the spectrum),
    the weight of the right one, and whether the sensor covers the point. Arrays (..., G)."""

    left: object
    right: object
    weight: object
    covered: object


def grid_interpolation(wavelengths, band_count=None, xp=np) -> GridInterpolation:
    """How spectra with band centres ``wavelengths`` (..., B) (nm, any order) map onto the grid.

    ``band_count`` (...) marks how many leading entries of each row are real (default: all B).
    """
    wavelengths = xp.asarray(wavelengths, dtype=xp.float32)
    length = wavelengths.shape[-1]
    if band_count is None:
        band_count = xp.full(wavelengths.shape[:-1], length)
    band_count = xp.asarray(band_count)
    real = xp.arange(length) < band_count[..., None]
    order = xp.argsort(xp.where(real, wavelengths, xp.inf), axis=-1)
    ordered = xp.take_along_axis(wavelengths, order, axis=-1)
    last = xp.maximum(band_count - 1, 0)[..., None]
    first_nm = ordered[..., :1]
    last_nm = xp.take_along_axis(ordered, last, axis=-1)
    grid = xp.asarray(SHARED_GRID_NM, dtype=xp.float32)
    # Bands below each grid point (the sorted position of the point among the real bands).
    below = ((ordered[..., None, :] <= grid[:, None]) & real[..., None, :]).sum(axis=-1)
    right = xp.clip(below, 1, xp.maximum(last, 1))
    left = right - 1
    left_nm = xp.take_along_axis(ordered, left, axis=-1)
    right_nm = xp.take_along_axis(ordered, right, axis=-1)
    span = right_nm - left_nm
    weight = xp.clip((grid - left_nm) / xp.where(span > 0, span, 1.0), 0.0, 1.0)
    spacing = (last_nm - first_nm) / xp.maximum(last, 1)
    covered = ((grid >= first_nm - GRID_STEP_NM / 2) & (grid <= last_nm + GRID_STEP_NM / 2)
               & ((span <= GAP_FACTOR * spacing + 1e-3) | (weight == 0.0)) & (band_count[..., None] > 1))
    return GridInterpolation(xp.take_along_axis(order, left, axis=-1), xp.take_along_axis(order, right, axis=-1),
                             weight, covered)


def to_grid(spectra, interpolation: GridInterpolation, xp=np):
    """Spectra (..., B) -> values on the grid (..., G), zero where the sensor does not cover it."""
    left = xp.take_along_axis(spectra, xp.broadcast_to(interpolation.left, spectra.shape[:-1] + (GRID_POINTS,)), -1)
    right = xp.take_along_axis(spectra, xp.broadcast_to(interpolation.right, spectra.shape[:-1] + (GRID_POINTS,)), -1)
    values = left + interpolation.weight * (right - left)
    return xp.where(interpolation.covered, values, 0.0)


def from_grid(grid_values, wavelengths, xp=np):
    """Values on the grid (..., G) -> values at band centres ``wavelengths`` (..., B), by linear
    interpolation between the two nearest grid points (clamped at the grid's ends)."""
    wavelengths = xp.asarray(wavelengths, dtype=xp.float32)
    position = xp.clip((wavelengths - GRID_START_NM) / GRID_STEP_NM, 0.0, GRID_POINTS - 1.0)
    left = xp.clip(xp.floor(position).astype(xp.int32), 0, GRID_POINTS - 2)
    weight = position - left
    shape = grid_values.shape[:-1] + wavelengths.shape[-1:]
    left = xp.broadcast_to(left, shape)
    low = xp.take_along_axis(grid_values, left, -1)
    high = xp.take_along_axis(grid_values, left + 1, -1)
    return low + weight * (high - low)


def padded_on_grid(spectra, band_count, wavelengths, visible_nm=None, xp=np):
    """Padded spectra (N, B) with their band counts (N,) and padded band centres (N, B) -> (values on
    the grid (N, G), covered (N, G) bool): the per-pixel path, for batches that mix sensors.
    ``visible_nm`` (N, 2): only grid points in that range count as covered (a masked-band objective)."""
    interpolation = grid_interpolation(wavelengths, band_count, xp=xp)
    covered = interpolation.covered
    if visible_nm is not None:
        grid_nm = xp.asarray(SHARED_GRID_NM, xp.float32)
        covered = covered & (grid_nm >= visible_nm[:, :1]) & (grid_nm <= visible_nm[:, 1:])
    return to_grid(spectra, interpolation._replace(covered=covered), xp=xp), covered


def to_grid_matrix(wavelengths, xp=np, dtype=None):
    """(b, G) matrix R with ``spectra @ R == to_grid(spectra, grid_interpolation(wavelengths))`` for
    spectra (..., b) of one sensor (zero columns where it does not cover the grid), and the covered
    mask (G,): the grid resampling as one matrix, computed once per wavelength list (``dtype``:
    float32 unless given)."""
    interpolation = grid_interpolation(wavelengths, xp=xp)
    bands = xp.arange(np.shape(wavelengths)[-1])
    left = (bands[:, None] == interpolation.left[None, :]) * (1.0 - interpolation.weight)
    right = (bands[:, None] == interpolation.right[None, :]) * interpolation.weight
    matrix = xp.where(interpolation.covered, left + right, 0.0)
    return matrix.astype(dtype or xp.float32), interpolation.covered


def from_grid_matrix(wavelengths, xp=np):
    """(G, b) matrix D with ``grid_values @ D == from_grid(grid_values, wavelengths)``."""
    wavelengths = xp.asarray(wavelengths, dtype=xp.float32)
    position = xp.clip((wavelengths - GRID_START_NM) / GRID_STEP_NM, 0.0, GRID_POINTS - 1.0)
    left = xp.clip(xp.floor(position).astype(xp.int32), 0, GRID_POINTS - 2)
    weight = position - left
    points = xp.arange(GRID_POINTS)[:, None]
    return ((points == left[None, :]) * (1.0 - weight) + (points == left[None, :] + 1) * weight).astype(xp.float32)
