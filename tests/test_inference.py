"""Bucketed jit: one XLA compilation per bucket, whatever the band count or number of pixels."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import POSTER_BAND_COUNTS, count_compilations

import hsijax
from hsijax import HsijaxError, create_model


@pytest.mark.parametrize("decoder", ["faithful", "conditioned"])
def test_one_compilation_per_bucket_and_none_after_warm_up(decoder):
    model = create_model(16, decoder, seed=7)
    rng = np.random.default_rng(0)
    warm_up_bands = (50, 100, 200, 436)  # one per bucket: 64, 128, 256, 512
    with count_compilations() as warm_up:
        for bands in warm_up_bands:
            hsijax.encode(model, rng.random((3, bands)), batch_size=64)
            hsijax.reconstruct(model, rng.random((3, bands)), batch_size=64)
    assert warm_up() == 2 * len(warm_up_bands)  # encode and reconstruct, once per bucket

    other_bands = (1, 33, 64, 65, 127, 128, *POSTER_BAND_COUNTS, 300, 512)
    with count_compilations() as after:
        for index, bands in enumerate(other_bands):
            pixels = 1 + 37 * index  # 1 ... 700 pixels: one chunk or several, a partial last one
            wavelengths = np.linspace(400, 2500, bands) if index % 2 else None
            codes = hsijax.encode(model, rng.random((pixels, bands)), wavelengths, batch_size=64)
            recon = hsijax.reconstruct(model, rng.random((pixels, bands)), wavelengths, batch_size=64)
            assert codes.shape == (pixels, 16) and recon.shape == (pixels, bands)
        # A second model of the same configuration (other weights) shares the compiled functions.
        hsijax.encode(create_model(16, decoder, seed=8), rng.random((9, 200)), batch_size=64)
    assert after() == 0


def test_the_listener_does_count_compilations():
    """Guards the test above against a counter that can never see anything."""
    model = create_model(16, seed=1)
    with count_compilations() as compiled:
        hsijax.encode(model, np.ones((2, 100)), batch_size=5)  # a new chunk size is a new shape
    assert compiled() == 1


def test_leading_axes_are_kept_so_a_cube_encodes_directly():
    model = create_model(8)
    cube = np.random.default_rng(1).random((6, 7, 103), dtype=np.float32)
    codes = hsijax.encode(model, cube, batch_size=16)
    assert codes.shape == (6, 7, 8)
    np.testing.assert_allclose(codes.reshape(-1, 8), hsijax.encode(model, cube.reshape(-1, 103)), atol=1e-6)
    assert hsijax.reconstruct(model, cube).shape == cube.shape


def test_no_pixels_give_empty_results():
    model = create_model(8)
    assert hsijax.encode(model, np.zeros((0, 50))).shape == (0, 8)
    assert hsijax.reconstruct(model, np.zeros((0, 50))).shape == (0, 50)


@pytest.mark.parametrize(
    "spectra, message",
    [
        (np.zeros((3, 0)), "zero bands"),
        (np.zeros((3, 600)), "600 is above the largest bucket"),
        (np.full((3, 10), np.nan), "NaN or infinite"),
        (np.array(["a", "b"]), "expected numbers"),
    ],
)
def test_bad_spectra_are_clear_errors(spectra, message):
    with pytest.raises(HsijaxError, match=message):
        hsijax.encode(create_model(8), spectra)


def test_wavelength_count_must_match_the_bands():
    with pytest.raises(HsijaxError, match="wavelengths: has 3 values but the spectra have 10 bands"):
        hsijax.reconstruct(create_model(8, "conditioned"), np.ones((2, 10)), [400, 500, 600])
