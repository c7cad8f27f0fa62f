"""The poster's CNN: shapes for every poster sensor and code width, both decoders, gradients; every
network's config, its JSON record and hsijax 0.1's."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import POSTER_BAND_COUNTS

import hsijax
from hsijax import HsijaxError, create_model
from hsijax.models.networks import GridCNNConfig, LinearGridConfig, PosterCNNConfig, config_from_dict
from hsijax.spectral import make_batch
from hsijax.train.step import loss_fn

CODE_WIDTHS = (8, 16, 32)
DECODERS = ("faithful", "conditioned")


@pytest.fixture(scope="module")
def models():
    return {(c, d): create_model(c, d) for c in CODE_WIDTHS for d in DECODERS}


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("code_width", CODE_WIDTHS)
def test_shapes_for_every_poster_band_count(models, code_width, decoder):
    model = models[(code_width, decoder)]
    rng = np.random.default_rng(0)
    for bands in POSTER_BAND_COUNTS:
        spectra = rng.random((5, bands), dtype=np.float32)
        wavelengths = np.linspace(400, 2500, bands)
        codes = hsijax.encode(model, spectra, wavelengths, batch_size=8)
        recon = hsijax.reconstruct(model, spectra, wavelengths, batch_size=8)
        assert codes.shape == (5, code_width) and codes.dtype == np.float32
        assert recon.shape == (5, bands)
        assert np.isfinite(codes).all() and np.isfinite(recon).all()


def test_code_is_the_maximum_of_the_encoder_features_over_the_band_axis():
    import flax.linen as nn

    from hsijax.models.networks.conv import conv_features

    class Features(nn.Module):  # the encoder's convolutions alone, read from the same parameters
        @nn.compact
        def __call__(self, x):
            return conv_features(x, model.config.widths, model.config.kernel_size, model.config.code_width)

    model = create_model(8)
    padded, _ = hsijax.pad_to_bucket(np.random.default_rng(1).random((3, 100)))
    features = Features().apply({"params": model.variables["params"]["encoder"]}, padded)
    assert features.shape == (3, 128 // 2**model.config.stages, 8)
    np.testing.assert_allclose(hsijax.encode(model, padded[:, :100]), features.max(axis=1), rtol=1e-5, atol=1e-6)


def test_codes_do_not_depend_on_the_rest_of_the_batch():
    model = create_model(16)
    spectra = np.random.default_rng(2).random((37, 200), dtype=np.float32)
    together = hsijax.encode(model, spectra, batch_size=16)
    alone = np.concatenate([hsijax.encode(model, row[None], batch_size=16) for row in spectra[:3]])
    np.testing.assert_allclose(together[:3], alone, rtol=1e-5, atol=1e-6)


def test_only_the_conditioned_decoder_uses_wavelengths():
    spectra = np.random.default_rng(3).random((4, 144), dtype=np.float32)
    wavelengths = np.linspace(380, 1050, 144)
    for decoder, should_differ in (("faithful", False), ("conditioned", True)):
        model = create_model(16, decoder)
        with_wl = hsijax.reconstruct(model, spectra, wavelengths)
        without = hsijax.reconstruct(model, spectra)
        assert (not np.allclose(with_wl, without)) == should_differ, decoder


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("bands", [103, 436])
def test_gradients_are_finite_and_reach_every_parameter(decoder, bands):
    model = create_model(16, decoder)
    batch = make_batch(np.random.default_rng(4).random((6, bands)), np.linspace(400, 2500, bands))
    gradient = jax.jit(jax.grad(loss_fn, has_aux=True), static_argnums=(1, 3))  # eager: one compile per op
    grads, _ = gradient(model.variables, model.module, batch, 1e-4)
    leaves = jax.tree.leaves(grads)
    assert all(bool(jnp.isfinite(g).all()) for g in leaves)
    assert all(float(jnp.abs(g).max()) > 0 for g in leaves)


def test_padded_bands_do_not_enter_the_loss():
    model = create_model(8)
    batch = make_batch(np.random.default_rng(5).random((4, 100)))
    recon = model.module.apply(model.variables, *batch)
    _, mse = loss_fn(model.variables, model.module, batch, 0.0)
    expected = np.mean((np.asarray(recon)[:, :100] - batch.spectra[:, :100]) ** 2)
    np.testing.assert_allclose(mse, expected, rtol=1e-5)
    everywhere = np.mean((np.asarray(recon) - batch.spectra) ** 2)
    assert not np.isclose(mse, everywhere, rtol=1e-5)


def test_same_seed_same_parameters_other_seed_other_parameters():
    leaves = lambda m: jax.tree.leaves(m.variables)
    a, b, c = create_model(seed=1), create_model(seed=1), create_model(seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(b)))
    assert not all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(c)))


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"decoder": "mirror"}, "decoder must be one of"),
        ({"code_width": 0}, "code_width must be at least 1"),
        ({"kernel_size": 4}, "positive odd"),
        ({"buckets": (64, 100)}, "multiple of 2\\*\\*stages = 8"),
        ({"widths": ()}, "non-empty"),
        ({"code_widht": 8}, r"field\(s\) \['code_widht'\] do not apply to the poster_cnn network"),
    ],
)
def test_bad_model_config_is_a_clear_error(fields, message):
    with pytest.raises(HsijaxError, match=message):
        create_model(**fields)


def test_every_config_round_trips_through_its_json_record_with_its_kind():
    configs = [PosterCNNConfig(code_width=32, decoder="conditioned", widths=(8, 16), buckets=(256, 64)),
               GridCNNConfig(code_width=8, widths=(8, 8)), LinearGridConfig(code_width=4)]
    for config in configs:
        record = config.to_dict()
        assert list(record)[0] == "kind" and record["kind"] == config.kind
        assert config_from_dict(record) == config
    assert configs[0].buckets == (64, 256)
    assert sorted(LinearGridConfig().to_dict()) == ["buckets", "code_width", "kind"]  # nothing it does not use
    with pytest.raises(HsijaxError, match="do not apply to the linear_grid network"):
        config_from_dict({"kind": "linear_grid", "decoder": "faithful"})
    with pytest.raises(HsijaxError, match="unknown network kind 'mlp'"):
        config_from_dict({"kind": "mlp"})


V01 = {"code_width": 16, "decoder": "faithful", "widths": [32, 64, 128], "kernel_size": 5, "fourier_frequencies": 6,
       "buckets": [64, 128, 256, 512], "pooling": "all"}


@pytest.mark.parametrize("network, axis, expected", [
    ("cnn", "bands", PosterCNNConfig()),
    ("cnn", "wavelength_grid", GridCNNConfig()),
    ("linear", "wavelength_grid", LinearGridConfig()),
])
def test_hsijax_0_1_records_are_the_network_they_described(network, axis, expected):
    """0.1 saved every field for every network and no kind: its network and axis say which one."""
    assert config_from_dict({**V01, "axis": axis, "network": network}) == expected
    with pytest.warns(DeprecationWarning):
        from hsijax.models.autoencoder import ModelConfig
        assert ModelConfig(**{**V01, "axis": axis, "network": network}) == expected


def test_the_0_1_module_names_what_replaced_each_of_its_names():
    import hsijax.models.autoencoder as old

    with pytest.warns(DeprecationWarning, match="hsijax.models.model.create_model"):
        assert old.create_model is create_model
    with pytest.raises(ImportError, match="band centres are now required"):
        old.band_wavelengths  # noqa: B018
    with pytest.raises(HsijaxError, match='network "linear" needs axis "wavelength_grid"'):
        config_from_dict({**V01, "network": "linear", "axis": "bands"})


def test_a_model_saved_by_hsijax_0_1_loads_as_the_network_it_was(tmp_path):
    """0.1 wrote every field of its one config and no kind; such a saved model loads as its network."""
    import shutil

    import orbax.checkpoint as ocp

    model = create_model(8, kind="linear_grid", seed=1)
    hsijax.save_model(model, tmp_path / "saved")
    record = tmp_path / "saved" / "model_config"
    shutil.rmtree(record)
    record.mkdir()
    ocp.JsonCheckpointHandler().save(record, args=ocp.args.JsonSave(
        {**V01, "code_width": 8, "axis": "wavelength_grid", "network": "linear"}))
    loaded = hsijax.load_model(tmp_path / "saved")
    assert loaded.config == LinearGridConfig(code_width=8)
    np.testing.assert_array_equal(loaded.variables["params"]["encoder"]["basis"],
                                  model.variables["params"]["encoder"]["basis"])
    with pytest.raises(ImportError, match="Encoder was removed in hsijax 0.2: use hsijax.models.networks"):
        from hsijax.models.autoencoder import Encoder  # noqa: F401
