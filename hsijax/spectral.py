"""Pure functions on spectra: bucket choice, reflection padding, cropping, normalisation.

A pixel spectrum of ``b`` bands is padded at its end to a *bucket* length ``B >= b`` so that every
sensor falls into one of a handful of array shapes, and jit compiles once per bucket instead of
once per sensor. The band axis is always the last axis.

Padding rule (reflection, defined for every ``b >= 1``). The real bands keep their positions
``0 .. b-1`` and padded position ``j >= b`` copies real band ``reflect_indices(b, B)[j]``: the
spectrum is mirrored at its last band *without repeating it* (``x0 x1 x2 | x1 x0 x1 x2 x1 ...``).
When the padding is longer than the spectrum (``B - b >= b``) a single mirror image is not enough,
so the reflection is iterated: the index bounces between the two ends with period ``2 (b - 1)``.
This is exactly ``numpy.pad(x, (0, B - b), mode="reflect")``; for ``b = 1`` (period 0) the single
band is repeated. Because the padding is at the end only, cropping back is the slice ``[..., :b]``,
and every padded value is a copy of a real value of the same pixel (so max-pooling over the padded
axis sees nothing that is not in the pixel).

Normalisation is per scene, with one offset and one scale for all bands (a global min-max): it
maps the scene into [0, 1] while keeping the *shape* of each spectrum and the relative brightness
of its bands, which is what the shared encoder is meant to learn. A per-band standardisation would
erase that shape and make codes of different sensors incomparable. The offset and scale are stored
with the dataset so that reconstructions can be mapped back to the sensor's units and PSNR is
measured on a fixed [0, 1] range.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from hsijax.errors import HsijaxError
from hsijax.files import row_blocks

# Powers of two cover 1 ... 512 bands (all twelve poster sensors, Xuzhou's 436 included) with at
# most a 2x padding overhead, and each is a multiple of 2**L for up to 6 downsampling stages.
DEFAULT_BUCKETS: tuple[int, ...] = (64, 128, 256, 512)

# One band count per sensor of the poster's table (Botswana ... Pavia University): buckets 128-512.
POSTER_BAND_COUNTS = (145, 144, 220, 200, 176, 250, 224, 204, 436, 274, 270, 128, 191, 103)


def bucket_for(band_count: int, buckets: Sequence[int] = DEFAULT_BUCKETS) -> int:
    """The smallest bucket length that holds ``band_count`` bands.

    Raises `HsijaxError` for a band count below 1 or above the largest bucket.
    """
    band_count = int(band_count)
    if band_count < 1:
        raise HsijaxError(f"band count must be at least 1, got {band_count}")
    fitting = [length for length in sorted(buckets) if length >= band_count]
    if not fitting:
        raise HsijaxError(
            f"band count {band_count} is above the largest bucket ({max(buckets)}); "
            "add a larger bucket length to the model config"
        )
    return fitting[0]


def check_band_count(band_count: int, buckets: Sequence[int], where: str) -> int:
    """`bucket_for`, with a refusal that names ``where`` the bands come from (a file, a scene)."""
    try:
        return bucket_for(band_count, buckets)
    except HsijaxError as error:
        raise HsijaxError(f"{where}: {error}") from None


def reflect_indices(band_count, length: int, xp=np):
    """Index of the real band that each of ``length`` padded positions copies.

    ``band_count`` may be a Python int, a NumPy array, or (with ``xp=jax.numpy``) a traced value,
    so the same rule serves host-side padding and in-graph features such as band positions.
    """
    positions = xp.arange(length)
    band_count = xp.asarray(band_count)[..., None]
    period = xp.maximum(2 * (band_count - 1), 1)
    folded = positions % period
    return xp.where(folded < band_count, folded, period - folded)


def reflect_pad(spectra, length: int):
    """Pad the last axis of ``spectra`` (NumPy or JAX array) from b to ``length`` by reflection."""
    band_count = spectra.shape[-1]
    if length < band_count:
        raise HsijaxError(f"cannot pad {band_count} bands to the shorter length {length}")
    return spectra[..., reflect_indices(band_count, length)]


def crop(padded, band_count: int):
    """Inverse of `reflect_pad`: keep the first ``band_count`` bands of the last axis."""
    if not 1 <= band_count <= padded.shape[-1]:
        raise HsijaxError(
            f"cannot crop {padded.shape[-1]} padded bands to {band_count} bands"
        )
    return padded[..., :band_count]


def check_spectra(spectra, name: str = "spectra") -> np.ndarray:
    """Return ``spectra`` as a float32 NumPy array after checking it is usable.

    The band axis is the last; there must be at least one band, and every value must be finite.
    """
    array = np.asarray(spectra)
    if array.ndim < 1:
        raise HsijaxError(f"{name}: expected an array with a band axis, got a scalar")
    if array.dtype.kind not in "biuf":
        raise HsijaxError(f"{name}: expected numbers, got dtype {array.dtype}")
    if array.shape[-1] < 1:
        raise HsijaxError(f"{name}: has zero bands (shape {array.shape})")
    array = array.astype(np.float32, copy=False)
    # A finite sum means every value is finite (an infinity or NaN anywhere makes it infinite or NaN),
    # and one reduction is half the time of isfinite's mask; only a sum that overflowed, or bad data,
    # needs the exact check.
    if not np.isfinite(array.sum()) and not np.isfinite(array).all():
        bad = int(np.size(array) - np.isfinite(array).sum())
        raise HsijaxError(f"{name}: contains {bad} NaN or infinite values")
    return array


def pad_to_bucket(spectra, buckets: Sequence[int] = DEFAULT_BUCKETS) -> tuple[np.ndarray, int]:
    """Reflection-pad ``spectra`` (..., b) to its bucket; returns ``(padded, b)``.

    Host-side NumPy on purpose: the jit-compiled model then only ever sees bucket shapes.
    """
    array = check_spectra(spectra)
    band_count = array.shape[-1]
    return reflect_pad(array, bucket_for(band_count, buckets)), band_count


def check_wavelengths(wavelengths, band_count: int, name: str = "wavelengths") -> np.ndarray:
    """Band centres (nm) as a float64 array (b,) after checking they are ``band_count`` positive,
    finite numbers."""
    array = np.asarray(wavelengths, dtype=np.float64).reshape(-1)
    if not np.isfinite(array).all():
        raise HsijaxError(f"{name}: contains NaN or infinite values")
    if array.shape[0] != band_count:
        raise HsijaxError(
            f"{name}: has {array.shape[0]} values but the spectra have {band_count} bands"
        )
    if (array <= 0).any():
        raise HsijaxError(f"{name}: wavelengths must be positive numbers in nm")
    return array


def pad_wavelengths(wavelengths, band_count: int, length: int, name: str = "wavelengths") -> np.ndarray:
    """Pad a wavelength list (nm) like the spectra: each padded band keeps its source's wavelength."""
    return reflect_pad(check_wavelengths(wavelengths, band_count, name), length)


@dataclasses.dataclass(frozen=True)
class Normalization:
    """Per-scene affine map to [0, 1]: ``normalised = (raw - offset) / scale``."""

    offset: float
    scale: float

    @classmethod
    def from_range(cls, low: float, high: float) -> Normalization:
        """[low, high] -> [0, 1]; a constant scene (low == high) keeps scale 1, mapping to 0."""
        return cls(offset=low, scale=high - low if high > low else 1.0)

    def apply(self, raw) -> np.ndarray:
        return ((np.asarray(raw, dtype=np.float32) - self.offset) / self.scale).astype(np.float32)

    def invert(self, normalised) -> np.ndarray:
        return np.asarray(normalised, dtype=np.float32) * self.scale + self.offset


def nodata_pixels(values, nodata: float | None, band_axis: int = -1) -> np.ndarray | None:
    """Which pixels hold ``nodata`` in every band (NaN matches NaN), or None without a nodata value."""
    if nodata is None:
        return None
    values = np.asarray(values)
    same = np.isnan(values) if np.isnan(nodata) else values == nodata
    return same.all(axis=band_axis)


def band_ranges(cube, name: str = "cube", nodata: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(lowest, highest) value of each band over all pixels, (b,) each, after checking the scene
    is finite and fits float32 (`check_float32_range`). ``nodata``: pixels whose every band holds
    this value (a file's fill) are left out.

    Reads the raw dtype in row blocks (`hsijax.files.row_blocks`) without a float copy, so a
    memory-mapped scene, or one read by windows, larger than memory is scanned with flat memory; a
    cube read by windows from a band-sequential file offers its blocks band-first
    (``band_first_blocks``), which are cheaper to read than band-last ones.
    """
    array = cube if hasattr(cube, "dtype") and getattr(cube, "ndim", 0) >= 1 else np.asarray(cube)
    if array.size == 0 or array.dtype.kind not in "biuf":
        raise HsijaxError(f"{name}: expected a non-empty numeric array, got {array.dtype} {array.shape}")
    bands = array.shape[-1]
    if hasattr(array, "band_first_blocks"):
        blocks = (block.reshape(bands, -1).T for block in array.band_first_blocks())  # (pixels, b) views
    else:
        blocks = (np.asarray(block).reshape(-1, bands) for _, block in row_blocks(array))
    ranges = []
    for pixels in blocks:
        empty = nodata_pixels(pixels, nodata)
        if empty is not None:
            pixels = pixels[~empty]
        if len(pixels):
            ranges.append((pixels.min(axis=0), pixels.max(axis=0)))
    if not ranges:
        raise HsijaxError(f"{name}: every pixel holds the nodata value {nodata:g}")
    lows = np.min([low for low, _ in ranges], axis=0).astype(np.float64)  # NumPy's min/max propagate NaN
    highs = np.max([high for _, high in ranges], axis=0).astype(np.float64)
    if not (np.isfinite(lows).all() and np.isfinite(highs).all()):
        bad_bands = int((~(np.isfinite(lows) & np.isfinite(highs))).sum())
        raise HsijaxError(f"{name}: contains NaN or infinite values (in {bad_bands} of {bands} bands)")
    check_float32_range(float(lows.min()), float(highs.max()), array.dtype, name)
    return lows, highs


def fit_normalization(cube, name: str = "cube", nodata: float | None = None) -> Normalization:
    """Global min-max of a scene (all pixels and bands together, nodata pixels left out); see the
    module docstring."""
    lows, highs = band_ranges(cube, name, nodata)
    return Normalization.from_range(float(lows.min()), float(highs.max()))


FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT32_ROUNDING = 2.0**-24  # float32's largest relative rounding error (half an ulp)
RANGE_RESOLUTION = 2.0**-12  # the rounding error must stay below this fraction of the scene's range


def check_float32_range(low: float, high: float, dtype, name: str) -> None:
    """Refuse a scene whose values float32 cannot hold: spectra are stored and computed in float32.

    *Overflow*: a magnitude above float32's largest value (3.4e38) would become infinite. Integer
    cubes never overflow (even uint64's maximum, 1.8e19, is finite in float32), but integers above
    2**24 are rounded to 24 significant bits: harmless while that rounding (magnitude x 2**-24) is
    a small part of the scene's range -- below 2**-12 of it, finer than a 12-bit sensor's levels --
    and destructive when large values differ by little (int64 values near 2**40 that span 1000 all
    round alike), which is refused here. float16 and float32 cubes and integers up to 16 bits are
    exact in float32 and not checked.
    """
    magnitude = max(abs(low), abs(high))
    if magnitude > FLOAT32_MAX:
        raise HsijaxError(f"{name}: values up to {magnitude:.3g} overflow float32 (largest "
                          f"{FLOAT32_MAX:.3g}), in which spectra are stored; rescale the data")
    dtype = np.dtype(dtype)
    exact = dtype.kind == "f" and dtype.itemsize <= 4 or dtype.kind in "biu" and dtype.itemsize <= 2
    if not exact and high > low and magnitude * FLOAT32_ROUNDING > (high - low) * RANGE_RESOLUTION:
        raise HsijaxError(f"{name}: {dtype} values near {magnitude:.6g} span only {high - low:.6g}; "
                          "float32, in which spectra are stored, would round their differences away; "
                          "subtract an offset first")


class SpectraBatch(NamedTuple):
    """What the jit-compiled autoencoder takes: one bucket's worth of padded pixels.

    Per-pixel band counts and wavelength flags let one batch mix scenes of the same bucket.
    """

    spectra: np.ndarray  # (N, B) float32, reflection-padded
    band_count: np.ndarray  # (N,) int32, the real b of each pixel
    wavelengths: np.ndarray  # (N, B) float32 nm, padded like the spectra; 0 where unknown
    has_wavelengths: np.ndarray  # (N,) bool


def make_batch(spectra, wavelengths=None, buckets: Sequence[int] = DEFAULT_BUCKETS) -> SpectraBatch:
    """Pad ``spectra`` (N, b) of one sensor to its bucket, with its wavelengths (b,) if known."""
    padded, band_count = pad_to_bucket(spectra, buckets)
    rows, length = padded.reshape(-1, padded.shape[-1]).shape
    if wavelengths is None:
        padded_wavelengths = np.zeros((rows, length), np.float32)
    else:
        padded_wavelengths = np.broadcast_to(
            pad_wavelengths(wavelengths, band_count, length).astype(np.float32), (rows, length)
        )
    return SpectraBatch(
        spectra=padded.reshape(rows, length),
        band_count=np.full((rows,), band_count, np.int32),
        wavelengths=padded_wavelengths,
        has_wavelengths=np.full((rows,), wavelengths is not None),
    )
