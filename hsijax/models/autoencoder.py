"""hsijax 0.1's one module for every network, kept for one release so that old imports keep working.

Each network now has its own module and config (`hsijax.models.networks`: ``poster_cnn``,
``grid_cnn``, ``linear_grid``), `Model` and `create_model` live in `hsijax.models.model`. The names
0.1 exported resolve to their successors with a `DeprecationWarning`; the few with no successor of
the same shape raise an `ImportError` naming what replaced them. To be removed in hsijax 0.3.
"""

from __future__ import annotations

import importlib
import warnings

from hsijax.models.networks import config_from_dict, config_from_v01, network_module


class ModelConfig:
    """0.1's single config: ``ModelConfig(**fields)`` builds the config of the network its fields
    describe (`config_from_v01`), ``ModelConfig.from_dict`` reads any saved record."""

    def __new__(cls, **fields):
        _deprecated("ModelConfig", "the network's own config (hsijax.models.networks.PosterCNNConfig, ...)")
        return config_from_v01(fields)

    @staticmethod
    def from_dict(fields):
        return config_from_dict(fields)


def SharedAutoencoder(config):  # noqa: N802 -- 0.1's class name
    """0.1's autoencoder module: the Flax module of ``config``'s network."""
    _deprecated("SharedAutoencoder", "hsijax.models.networks.network_module(config)")
    return network_module(config)


# 0.1 name -> (module, name) of what replaced it.
MOVED = {
    "Model": ("hsijax.models.model", "Model"),
    "create_model": ("hsijax.models.model", "create_model"),
    "init_variables": ("hsijax.models.model", "init_variables"),
    "DECODERS": ("hsijax.models.networks.poster_cnn", "DECODERS"),
    "POOLINGS": ("hsijax.models.networks.poster_cnn", "POOLINGS"),
    "band_conditioning": ("hsijax.models.networks.poster_cnn", "band_conditioning"),
    "real_positions": ("hsijax.models.networks.poster_cnn", "real_positions"),
    "fourier_features": ("hsijax.models.networks.conv", "fourier_features"),
    "pool_bands": ("hsijax.models.networks.conv", "pool_bands"),
    "duplicated_padding": ("hsijax.models.networks.conv", "duplicated_padding"),
    "LinearGridCode": ("hsijax.models.networks.linear_grid", "LinearGridCode"),
    "REFINEMENTS": ("hsijax.models.networks.linear_grid", "REFINEMENTS"),
    "RIDGE": ("hsijax.models.networks.linear_grid", "RIDGE"),
}
# 0.1 names whose successors take other arguments: importing them says what to use.
REPLACED = {
    "Encoder": "hsijax.models.networks.encoder_module(config)",
    "Decoder": "hsijax.models.networks.conv.ConvDecoder",
    "make_encoder": "hsijax.models.networks.encoder_module",
    "shared_code": "the encoder module's __call__ (hsijax.models.networks.encoder_module)",
    "pool_codes": "hsijax.models.networks.poster_cnn.PosterCNNEncoder",
    "on_grid": "hsijax.data.shared_grid.padded_on_grid",
    "band_wavelengths": "nothing: band centres are now required (no default range is assumed)",
    "AXES": "the network kinds, hsijax.models.networks.KINDS",
    "NETWORKS": "the network kinds, hsijax.models.networks.KINDS",
}


def _deprecated(name: str, new: str) -> None:
    warnings.warn(f"hsijax.models.autoencoder.{name} is deprecated: use {new}", DeprecationWarning, stacklevel=3)


def __getattr__(name: str):
    if name in MOVED:
        module, attribute = MOVED[name]
        _deprecated(name, f"{module}.{attribute}")
        return getattr(importlib.import_module(module), attribute)
    if name in REPLACED:
        raise ImportError(f"hsijax.models.autoencoder.{name} was removed in hsijax 0.2: use {REPLACED[name]}")
    raise AttributeError(f"module 'hsijax.models.autoencoder' has no attribute {name!r}")
