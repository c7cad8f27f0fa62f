"""Encode and reconstruct spectra of any band count with one XLA compilation per bucket.

Three things keep the compile count at one per bucket (and per model configuration):
- padding happens on the host in NumPy, so the jitted functions only ever see bucket lengths;
- the real band count is an *argument* (an array), not a static value;
- pixels go through in chunks of a fixed number of rows per bucket (`chunk_rows`), the last chunk
  zero-filled, so the number of pixels never reaches a shape either.
The jitted functions are cached per `ModelConfig`, so every model of one configuration shares them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import numpy as np

from hsijax.data.shared_grid import DEFAULT_RANGE_NM
from hsijax.errors import warn
from hsijax.models.autoencoder import Model, ModelConfig, SharedAutoencoder
from hsijax.spectral import SpectraBatch, check_spectra, crop, make_batch

# Padded values (rows x bucket length) per jitted call, by backend. On a CPU the first stage's
# activations must stay in cache; an accelerator wants calls large enough to fill it and to hide
# the dispatch and the host-to-device copy.
CHUNK_ELEMENTS = {"cpu": 2**17}
ACCELERATOR_CHUNK_ELEMENTS = 2**22


def chunk_rows(bucket: int, backend: str | None = None) -> int:
    """Pixels per jitted call for a bucket on ``backend`` (default: JAX's).

    CPU: 128 k padded values (512 rows of 256 bands). Measured on this project's 2-core CPU, c = 16,
    pixels/s by rows per call: bucket 128 -- 45 k at 2048 rows, 58 k at 1024; bucket 256 -- 23 k at
    2048, 27 k at 512; bucket 512 -- 11.5 k at 2048, 13.5 k at 256. The first stage's activations
    (rows x bucket / 2 x 32 floats, 8 MiB) then stay in cache.

    GPU and TPU: 4 M padded values (16 k rows of 256 bands; the first stage's activations 256 MiB,
    within any accelerator's memory). Not yet measured: `benchmarks/accelerator.py` sweeps the rows
    per call on a GPU, and this value is to be set from that sweep.
    """
    elements = CHUNK_ELEMENTS.get(backend or jax.default_backend(), ACCELERATOR_CHUNK_ELEMENTS)
    return max(8, elements // bucket)


@functools.lru_cache(maxsize=None)
def jitted_encode(config: ModelConfig) -> Callable:
    """(variables, SpectraBatch) -> codes (N, c), compiled once per bucket."""
    module = SharedAutoencoder(config)
    return jax.jit(lambda variables, batch: module.apply(variables, *batch, method="encode"))


@functools.lru_cache(maxsize=None)
def jitted_reconstruct(config: ModelConfig) -> Callable:
    """(variables, SpectraBatch) -> padded reconstructions (N, B), compiled once per bucket."""
    module = SharedAutoencoder(config)
    return jax.jit(lambda variables, batch: module.apply(variables, *batch))


def _rows_of(batch: SpectraBatch, start: int, size: int) -> SpectraBatch:
    """Rows ``start : start + size`` of a batch, zero-filled to exactly ``size`` rows."""

    def take(array):
        part = array[start : start + size]
        if part.shape[0] == size:
            return part
        filler = np.zeros((size - part.shape[0], *part.shape[1:]), part.dtype)
        return np.concatenate([part, filler])

    return SpectraBatch(*(take(array) for array in batch))


def _in_chunks(function: Callable, batch: SpectraBatch, batch_size: int | None) -> np.ndarray:
    """Apply ``function`` to fixed-size chunks of ``batch``; dispatch all, then gather."""
    rows = batch.spectra.shape[0]
    batch_size = batch_size or chunk_rows(batch.spectra.shape[1])
    outputs = [
        (start, function(_rows_of(batch, start, batch_size)))
        for start in range(0, rows, batch_size)
    ]
    return np.concatenate(
        [np.asarray(out)[: rows - start] for start, out in outputs]
    ) if outputs else None


@functools.cache
def _warn_default_wavelengths(bands: int) -> None:
    """Once per process and band count (a scene is encoded in many blocks)."""
    first, last = DEFAULT_RANGE_NM
    warn(f"no band centres given: the wavelength-grid network places the {bands} bands evenly over "
         f"{first:.0f}-{last:.0f} nm (pass the wavelengths; hsijax import --wavelengths)")


def _prepare(model: Model, spectra, wavelengths) -> tuple[SpectraBatch, tuple[int, ...]]:
    if wavelengths is None and model.config.axis == "wavelength_grid":
        _warn_default_wavelengths(int(np.shape(spectra)[-1]))
    array = check_spectra(spectra)
    leading = array.shape[:-1]
    return make_batch(array.reshape(-1, array.shape[-1]), wavelengths, model.config.buckets), leading


def encode(model: Model, spectra, wavelengths=None, batch_size: int | None = None) -> np.ndarray:
    """Shared codes of ``spectra`` (..., b) -> (..., code_width), for any b within the buckets.

    ``wavelengths`` (b,) are checked against the band count. The poster's network (axis
    "bands") sees only the spectrum; the wavelength-grid network places it on the shared grid by
    them (evenly over 400-2500 nm when None, with a one-line warning).
    """
    batch, leading = _prepare(model, spectra, wavelengths)
    encode_fn = jitted_encode(model.config)
    codes = _in_chunks(lambda chunk: encode_fn(model.variables, chunk), batch, batch_size)
    if codes is None:
        return np.zeros((*leading, model.config.code_width), np.float32)
    return codes.reshape(*leading, model.config.code_width)


def reconstruct(model: Model, spectra, wavelengths=None, batch_size: int | None = None) -> np.ndarray:
    """Autoencoder output for ``spectra`` (..., b), cropped back to (..., b)."""
    batch, leading = _prepare(model, spectra, wavelengths)
    band_count = int(np.shape(spectra)[-1])
    reconstruct_fn = jitted_reconstruct(model.config)
    padded = _in_chunks(lambda chunk: reconstruct_fn(model.variables, chunk), batch, batch_size)
    if padded is None:
        return np.zeros((*leading, band_count), np.float32)
    return crop(padded, band_count).reshape(*leading, band_count)
