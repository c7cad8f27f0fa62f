"""Padding, cropping, buckets and normalisation: property tests against their definitions."""

from __future__ import annotations

import chex
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from hypothesis import given, settings
from hypothesis import strategies as st

from hsijax import HsijaxError, bucket_for, crop, fit_normalization, pad_to_bucket
from hsijax.spectral import (
    DEFAULT_BUCKETS,
    make_batch,
    pad_wavelengths,
    reflect_indices,
    reflect_pad,
)

band_counts = st.integers(min_value=1, max_value=512)


@st.composite
def spectra(draw, max_bands=512):
    bands = draw(st.integers(1, max_bands))
    rows = draw(st.integers(1, 4))
    elements = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=32)
    return draw(hnp.arrays(np.float32, (rows, bands), elements=elements))


@given(spectra())
def test_crop_inverts_pad_exactly(x):
    padded, band_count = pad_to_bucket(x)
    assert band_count == x.shape[-1]
    assert padded.shape == (x.shape[0], bucket_for(band_count))
    np.testing.assert_array_equal(crop(padded, band_count), x)


@given(spectra())
def test_every_padded_value_copies_a_real_band_of_its_pixel(x):
    padded, band_count = pad_to_bucket(x)
    source = reflect_indices(band_count, padded.shape[-1])
    assert source.min() >= 0 and source.max() < band_count
    np.testing.assert_array_equal(padded, x[:, source])
    for row, padded_row in zip(x, padded):
        assert np.isin(padded_row, row).all()


@given(band_counts, st.integers(0, 1100))
def test_padding_is_numpys_iterated_reflection(band_count, extra):
    """Also when the padding is longer than the spectrum (extra >= band_count)."""
    x = np.arange(band_count, dtype=np.float32) + 1
    expected = np.pad(x, (0, extra), mode="reflect")
    np.testing.assert_array_equal(reflect_pad(x, band_count + extra), expected)


def test_single_band_is_repeated_and_two_bands_alternate():
    np.testing.assert_array_equal(reflect_pad(np.array([7.0]), 5), [7, 7, 7, 7, 7])
    np.testing.assert_array_equal(reflect_pad(np.array([1.0, 2.0]), 5), [1, 2, 1, 2, 1])
    np.testing.assert_array_equal(reflect_pad(np.array([1.0, 2.0, 3.0]), 8), [1, 2, 3, 2, 1, 2, 3, 2])


@settings(deadline=None)  # each example compiles a jitted program: its time is the machine's load, not the code's
@given(band_counts)
def test_reflect_indices_agree_for_a_traced_band_count(band_count):
    length = bucket_for(band_count)
    traced = jax.jit(lambda b: reflect_indices(b, length, xp=jnp))(jnp.array([band_count]))
    np.testing.assert_array_equal(np.asarray(traced)[0], reflect_indices(band_count, length))


class PadJitTest(chex.TestCase):
    """The padding and cropping functions give the same values under jit and without."""

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(1, 2, 3, 63, 64, 65, 103, 200, 436, 512)
    def test_pad_and_crop_jit_and_eager_agree(self, band_count):
        length = bucket_for(band_count)
        x = np.random.default_rng(band_count).normal(size=(3, band_count)).astype(np.float32)
        pad = self.variant(lambda v: reflect_pad(v, length))
        padded = pad(jnp.asarray(x))
        np.testing.assert_array_equal(np.asarray(padded), reflect_pad(x, length))
        cropped = self.variant(lambda v: crop(v, band_count))(padded)
        np.testing.assert_array_equal(np.asarray(cropped), x)


@pytest.mark.parametrize(
    "band_count, bucket", [(1, 64), (64, 64), (65, 128), (103, 128), (200, 256), (436, 512), (512, 512)]
)
def test_bucket_is_the_smallest_that_fits(band_count, bucket):
    assert bucket_for(band_count) == bucket


@given(band_counts, st.lists(st.integers(1, 600), min_size=1, max_size=6))
def test_configurable_buckets(band_count, buckets):
    if band_count > max(buckets):
        with pytest.raises(HsijaxError, match="above the largest bucket"):
            bucket_for(band_count, buckets)
    else:
        chosen = bucket_for(band_count, buckets)
        assert chosen >= band_count and chosen in buckets
        assert all(b < band_count or b >= chosen for b in buckets)


def test_default_buckets_cover_every_poster_sensor():
    assert max(DEFAULT_BUCKETS) >= 436 and bucket_for(1) == min(DEFAULT_BUCKETS)


@pytest.mark.parametrize("band_count", [0, -3])
def test_band_count_below_one_is_an_error(band_count):
    with pytest.raises(HsijaxError, match="at least 1"):
        bucket_for(band_count)


def test_too_many_bands_is_an_error_naming_the_limit():
    with pytest.raises(HsijaxError, match="513 is above the largest bucket \\(512\\)"):
        pad_to_bucket(np.zeros((2, 513)))


def test_zero_bands_is_an_error():
    with pytest.raises(HsijaxError, match="zero bands"):
        pad_to_bucket(np.zeros((4, 0)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_an_error(bad):
    x = np.ones((3, 10), np.float32)
    x[1, 4] = bad
    with pytest.raises(HsijaxError, match="1 NaN or infinite"):
        pad_to_bucket(x)


def test_wavelengths_are_padded_like_the_spectra_and_checked():
    np.testing.assert_array_equal(pad_wavelengths([400, 500, 600], 3, 6), [400, 500, 600, 500, 400, 500])
    with pytest.raises(HsijaxError, match="has 2 values but the spectra have 3 bands"):
        pad_wavelengths([400, 500], 3, 64)
    with pytest.raises(HsijaxError, match="NaN"):
        pad_wavelengths([400, np.nan, 600], 3, 64)


def test_batch_marks_band_count_and_wavelength_availability():
    batch = make_batch(np.ones((5, 100)), wavelengths=np.linspace(400, 900, 100))
    assert batch.spectra.shape == batch.wavelengths.shape == (5, 128)
    assert (batch.band_count == 100).all() and batch.has_wavelengths.all()
    unknown = make_batch(np.ones((5, 100)))
    assert not unknown.has_wavelengths.any() and not unknown.wavelengths.any()


@given(hnp.arrays(np.uint16, (4, 5, 7)))
def test_normalisation_maps_the_scene_onto_0_1_and_back(cube):
    norm = fit_normalization(cube)
    scaled = norm.apply(cube)
    assert scaled.min() >= 0 and scaled.max() <= 1
    if cube.max() > cube.min():
        assert scaled.min() == 0 and scaled.max() == 1
    np.testing.assert_allclose(norm.invert(scaled), cube, rtol=1e-6, atol=1e-2)


def test_normalisation_rejects_nan():
    with pytest.raises(HsijaxError, match="NaN"):
        fit_normalization(np.array([[1.0, np.nan]]))
