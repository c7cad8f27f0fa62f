"""Encode and reconstruct spectra of any band count, for every network, from host NumPy.

`encode(model, spectra, wavelengths=...)` and `reconstruct(...)` take the band centres (nm, one per
band) by keyword; a network that places spectra by them (`NetworkConfig.needs_wavelengths`) refuses
spectra given without them, in one line naming the forms ``--wavelengths`` takes.

Two paths:
- **Folded** (networks with ``folds_per_sensor``, the shipped linear network): all the spectra of
  one call share their band centres, so the network is folded once per wavelength list into
  matrices (`SensorOperators`, computed by a jitted, differentiable function of the parameters
  and cached on the `Model`), and encoding is one matrix product per chunk of rows -- no padding
  to a bucket, no per-pixel resampling or least squares. It compiles once per band count (a dot).
- **Bucketed** (the CNNs): spectra are reflection-padded on the host, so the jitted network only
  ever sees bucket lengths; the real band count is an *argument* (an array), not a static value;
  pixels go through in chunks of a fixed number of rows per bucket (`chunk_rows`), the last chunk
  zero-filled, so the number of pixels never reaches a shape either: one compilation per bucket.
The jitted functions are cached per network config, so every model of one config shares them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from hsijax.data.shared_grid import grid_interpolation
from hsijax.errors import HsijaxError
from hsijax.models.model import Model
from hsijax.models.networks import NetworkConfig, SensorOperators, network_module
from hsijax.spectral import (
    Normalization,
    SpectraBatch,
    check_band_count,
    check_spectra,
    check_wavelengths,
    crop,
    make_batch,
)

# Padded values (rows x bucket length) per jitted call of a CNN, by backend. On a CPU the first
# stage's activations must stay in cache; an accelerator wants calls large enough to fill it and to
# hide the dispatch and the host-to-device copy.
CHUNK_ELEMENTS = {"cpu": 2**17}
ACCELERATOR_CHUNK_ELEMENTS = 2**22
# Rows per folded matrix product: large enough that dispatch is negligible, small enough that
# copying a chunk and its result overlaps the next one's product. Measured on this project's
# 2-core CPU, (N, 200) @ (200, 16): 3.1 M px/s at 8 k rows, 5.8 M at 32 k, 3.4 M at 64 k.
FOLDED_CHUNK_ROWS = 2**13


def chunk_rows(bucket: int, backend: str | None = None) -> int:
    """Pixels per jitted call of a CNN for a bucket on ``backend`` (default: JAX's).

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
def jitted_encode(config: NetworkConfig) -> Callable:
    """(variables, SpectraBatch) -> codes (N, c): the per-pixel path, compiled once per bucket."""
    module = network_module(config)
    return jax.jit(lambda variables, batch: module.apply(variables, *batch, method="encode"))


@functools.lru_cache(maxsize=None)
def jitted_reconstruct(config: NetworkConfig) -> Callable:
    """(variables, SpectraBatch) -> padded reconstructions (N, B), compiled once per bucket."""
    module = network_module(config)
    return jax.jit(lambda variables, batch: module.apply(variables, *batch))


@functools.lru_cache(maxsize=None)
def jitted_operators(config: NetworkConfig) -> Callable:
    """(variables, band centres (b,)) -> `SensorOperators`, compiled once per band count."""
    module = network_module(config)
    return jax.jit(lambda variables, wavelengths: module.apply(variables, wavelengths, method="operators"))


@jax.jit
def _affine(spectra, matrix, offset):
    """``spectra @ matrix + offset`` in full float32 (an accelerator's default would round the
    product to bfloat16 passes; the fold is memory-bound, so the precision costs nothing)."""
    return jnp.dot(spectra.astype(matrix.dtype), matrix, precision=jax.lax.Precision.HIGHEST) + offset


@jax.jit
def _affine_band_first(block, matrix, offset):
    """(b, rows, W) band-first values -> (rows, W, c): the same product with the band axis first,
    contracted by XLA in place (a transpose on the host would cost as much as reading the block)."""
    bands, rows, width = block.shape
    flat = block.reshape(bands, rows * width).astype(matrix.dtype)
    # (c, b) @ (b, pixels), then the small result transposed: measured here 24 ms a 200 x 64,000 block,
    # against 40 ms for the same product contracting the left operand's first axis
    codes = jnp.dot(matrix.T, flat, precision=jax.lax.Precision.HIGHEST) + offset[:, None]
    return codes.T.reshape(rows, width, -1)


@jax.jit
def _affine_twice(spectra, operators: SensorOperators):
    codes = _affine(spectra, operators.encode, operators.offset)
    return _affine(codes, operators.decode, operators.mean)


def sensor_operators(model: Model, wavelengths) -> SensorOperators:
    """``model`` folded for band centres ``wavelengths`` (b,): computed once per list, then cached on
    the model. Refused when the sensor covers fewer grid points than the code has numbers."""
    key = tuple(float(w) for w in np.asarray(wavelengths).reshape(-1))
    if key not in model.operators:
        covered = int(np.asarray(grid_interpolation(np.asarray(key)).covered).sum())
        if covered < model.config.code_width:
            raise HsijaxError(f"wavelengths: the {len(key)} band centres cover {covered} points of the shared grid, "
                              f"fewer than the code width {model.config.code_width}: its codes would not be "
                              "determined")
        model.operators[key] = jitted_operators(model.config)(model.variables, np.asarray(key, np.float32))
    return model.operators[key]


def _rows_of(batch: SpectraBatch, start: int, size: int) -> SpectraBatch:
    """Rows ``start : start + size`` of a batch, zero-filled to exactly ``size`` rows."""

    def take(array):
        part = array[start : start + size]
        if part.shape[0] == size:
            return part
        filler = np.zeros((size - part.shape[0], *part.shape[1:]), part.dtype)
        return np.concatenate([part, filler])

    return SpectraBatch(*(take(array) for array in batch))


ALIGNMENT = 64  # bytes: XLA's CPU client reads a host array this aligned in place (no copy)
RING = 4  # aligned chunk buffers reused in turn (`_folded_in_chunks`)


def _aligned_empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised C-order array whose data starts on an `ALIGNMENT`-byte boundary."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buffer = np.empty(size + ALIGNMENT, np.uint8)
    start = -buffer.ctypes.data % ALIGNMENT
    return buffer[start:start + size].view(dtype).reshape(shape)


def _rows_class(rows: int, size: int) -> int:
    """A chunk of ``rows`` (<= ``size``) zero-filled to the next power of two (at least 64), so the
    folded product compiles for a handful of shapes per band count, not once per pixel count."""
    return min(size, max(64, 1 << max(0, rows - 1).bit_length()))


def _folded_in_chunks(function: Callable, flat: np.ndarray, size: int) -> np.ndarray | None:
    """``function(chunk)`` for every chunk of ``size`` rows of ``flat``, each handed to XLA as an
    aligned host array that it reads in place. Measured here, an 8 k x 200 float32 chunk: 0.7 ms to
    hand over unaligned (XLA copies it), 0.2 ms to copy into a reused aligned buffer, 0.05 ms when
    already aligned; its product takes 0.45 ms. Chunks of an aligned ``flat`` are used as they are;
    others are copied into a ring of `RING` reused buffers (fresh ones would cost a page fault per
    4 KiB), each reused only once the product that read it has finished."""
    rows, outputs, ring, copies = len(flat), [], [], 0
    for start in range(0, rows, size):
        part = flat[start:start + size]
        shape = (_rows_class(len(part), size), *part.shape[1:])
        if len(part) == shape[0] and part.flags.c_contiguous and part.ctypes.data % ALIGNMENT == 0:
            chunk = part
        else:
            slot = copies % RING
            if len(ring) <= slot:
                ring.append((_aligned_empty((size, *part.shape[1:]), part.dtype), None))
            buffer, reader = ring[slot]
            if reader is not None:
                jax.block_until_ready(reader)  # the product that read this buffer has finished
            chunk = buffer[: shape[0]]
            chunk[: len(part)] = part
            chunk[len(part):] = 0
            copies += 1
        outputs.append((start, function(chunk)))
        if chunk is not part:
            ring[slot] = (buffer, outputs[-1][1])
    return np.concatenate([np.asarray(out)[: rows - start] for start, out in outputs]) if outputs else None


def _in_chunks(function: Callable, rows: int, batch_size: int, take: Callable) -> np.ndarray | None:
    """``function(take(start, batch_size))`` for every chunk of ``rows``; dispatch all, then gather."""
    outputs = [(start, function(take(start, batch_size))) for start in range(0, rows, batch_size)]
    return np.concatenate([np.asarray(out)[: rows - start] for start, out in outputs]) if outputs else None


def _checked(model: Model, spectra, wavelengths, raw: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """(spectra (P, b), band centres (b,) or None) after every check, in the order a user would fix
    them: band centres a network needs, the spectra, the band count, the centres' count. Spectra
    become float32 unless ``raw`` integers may go through as they are (a folded product converts
    them itself, and integers are always finite)."""
    model.config.require_wavelengths(wavelengths)
    array = np.asarray(spectra)
    if not (raw and array.dtype.kind in "iu" and array.ndim >= 1 and array.shape[-1] >= 1):
        array = check_spectra(spectra)
    bands = array.shape[-1]
    check_band_count(bands, model.config.buckets, "spectra")
    checked = None if wavelengths is None else check_wavelengths(wavelengths, bands)
    return array.reshape(-1, bands), checked


def normalised_operators(model: Model, wavelengths, normalization: Normalization | None) -> SensorOperators:
    """`sensor_operators` with ``normalization`` folded into the encoding: ``raw @ encode + offset``
    gives the codes of ``normalization.apply(raw)`` (so a raw integer cube needs no float copy)."""
    operators = sensor_operators(model, wavelengths)
    if normalization is None:
        return operators
    key = (tuple(float(w) for w in wavelengths), normalization.offset, normalization.scale)
    if key not in model.operators:
        matrix = np.asarray(operators.encode, np.float64) / normalization.scale
        offset = np.asarray(operators.offset, np.float64) - normalization.offset * matrix.sum(axis=0)
        model.operators[key] = operators._replace(encode=jnp.asarray(matrix, jnp.float32),
                                                  offset=jnp.asarray(offset, jnp.float32))
    return model.operators[key]


def encode(model: Model, spectra, wavelengths=None, batch_size: int | None = None,
           normalization: Normalization | None = None) -> np.ndarray:
    """Shared codes of ``spectra`` (..., b) -> (..., code_width), for any b within the buckets.

    ``wavelengths`` (b,): the band centres in nm. The wavelength-grid networks need them (and refuse
    without them); the poster's CNN accepts and ignores them. ``normalization``: the spectra are raw
    sensor values, to be normalised by it (`hsijax.spectral.Normalization`; for the folded networks
    inside the matrix, so a raw integer cube goes through without a float copy); by default they
    are normalised already.
    """
    leading = np.shape(spectra)[:-1]
    flat, wavelengths = _checked(model, spectra, wavelengths, raw=normalization is not None)
    if model.config.folds_per_sensor:
        operators = normalised_operators(model, wavelengths, normalization)
        codes = _folded_in_chunks(lambda chunk: _affine(chunk, operators.encode, operators.offset), flat,
                                  batch_size or FOLDED_CHUNK_ROWS)
    else:
        flat = flat if normalization is None else normalization.apply(flat)
        batch = make_batch(flat, wavelengths, model.config.buckets)
        encode_fn = jitted_encode(model.config)
        codes = _in_chunks(lambda chunk: encode_fn(model.variables, chunk), len(flat),
                           batch_size or chunk_rows(batch.spectra.shape[1]), functools.partial(_rows_of, batch))
    if codes is None:
        return np.zeros((*leading, model.config.code_width), np.float32)
    return codes.reshape(*leading, model.config.code_width)


def encode_band_first(model: Model, block: np.ndarray, wavelengths, normalization: Normalization | None = None
                      ) -> np.ndarray:
    """`encode` of a band-first (b, rows, W) block of one scene -> (rows, W, c) codes, for a network
    that folds (the linear one): what `hsijax encode` hands over from band-sequential files."""
    return np.array(dispatch_band_first(model, block, wavelengths, normalization))  # a writable copy


def dispatch_band_first(model: Model, block: np.ndarray, wavelengths, normalization: Normalization | None = None):
    """`encode_band_first`, returned as soon as XLA has the work (a `jax.Array` still computing), so
    that the caller can read the next block meanwhile."""
    if not model.config.folds_per_sensor:
        raise HsijaxError(f"{model.config.description}: band-first blocks need a network that folds per sensor")
    model.config.require_wavelengths(wavelengths)
    block = np.asarray(block)
    if block.dtype.kind not in "iu":
        check_spectra(np.moveaxis(block, 0, -1))
    operators = normalised_operators(model, check_wavelengths(wavelengths, block.shape[0]), normalization)
    return _affine_band_first(block, operators.encode, operators.offset)


def reconstruct(model: Model, spectra, wavelengths=None, batch_size: int | None = None) -> np.ndarray:
    """Autoencoder output for ``spectra`` (..., b), at the same b bands (see `encode`)."""
    leading = np.shape(spectra)[:-1]
    flat, wavelengths = _checked(model, spectra, wavelengths)
    bands = flat.shape[-1]
    if model.config.folds_per_sensor:
        operators = sensor_operators(model, wavelengths)
        output = _folded_in_chunks(lambda chunk: _affine_twice(chunk, operators), flat,
                                   batch_size or FOLDED_CHUNK_ROWS)
    else:
        batch = make_batch(flat, wavelengths, model.config.buckets)
        reconstruct_fn = jitted_reconstruct(model.config)
        padded = _in_chunks(lambda chunk: reconstruct_fn(model.variables, chunk), len(flat),
                            batch_size or chunk_rows(batch.spectra.shape[1]), functools.partial(_rows_of, batch))
        output = None if padded is None else crop(padded, bands)
    if output is None:
        return np.zeros((*leading, bands), np.float32)
    return output.reshape(*leading, bands)
