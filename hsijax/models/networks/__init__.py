"""The networks, one module each, with its own config and a ``kind`` recorded in every saved model:

- ``poster_cnn``: the poster's CNN over band positions (wavelength-blind) -- `PosterCNN`;
- ``grid_cnn``: the same CNN over the shared wavelength grid -- `GridCNN`;
- ``linear_grid``: the linear network on the grid, the shipped default -- `LinearGrid`.

One protocol for all of them (Flax modules): ``encode(spectra, band_count, wavelengths,
has_wavelengths)`` gives the (N, c) codes of a padded batch and ``__call__`` (the same arguments) its
padded reconstruction; the encoder is the child module ``encoder`` (the subtree a classifier adopts).
A network whose config says ``folds_per_sensor`` also folds, for one list of band centres, into
matrices (``operators(wavelengths)``, `linear_grid.SensorOperators`). On the host, every network is
used through `hsijax.encode` / `hsijax.reconstruct`, which take the band centres by keyword.

`config_from_dict` rebuilds a config from its JSON, hsijax 0.1's single config included (which had
no ``kind``: its ``network`` and ``axis`` fields said which network it was).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn

from hsijax.errors import HsijaxError
from hsijax.models.networks.base import NetworkConfig, missing_wavelengths_message
from hsijax.models.networks.grid_cnn import GridCNN, GridCNNConfig, GridCNNEncoder
from hsijax.models.networks.linear_grid import LinearGrid, LinearGridCode, LinearGridConfig, SensorOperators
from hsijax.models.networks.poster_cnn import PosterCNN, PosterCNNConfig, PosterCNNEncoder

# kind -> (config, autoencoder module, encoder module)
NETWORKS: dict[str, tuple[type[NetworkConfig], type[nn.Module], type[nn.Module]]] = {
    PosterCNNConfig.kind: (PosterCNNConfig, PosterCNN, PosterCNNEncoder),
    GridCNNConfig.kind: (GridCNNConfig, GridCNN, GridCNNEncoder),
    LinearGridConfig.kind: (LinearGridConfig, LinearGrid, LinearGridCode),
}
KINDS = tuple(NETWORKS)

# hsijax 0.1's one config: its fields, and which of them each network kept.
V01_FIELDS = ("code_width", "decoder", "widths", "kernel_size", "fourier_frequencies", "buckets", "axis",
              "pooling", "network")


def config_class(kind: str) -> type[NetworkConfig]:
    if kind not in NETWORKS:
        raise HsijaxError(f"unknown network kind {kind!r}; one of {', '.join(KINDS)}")
    return NETWORKS[kind][0]


def config_from_dict(fields: dict[str, Any]) -> NetworkConfig:
    """The config a saved model or a training config records: ``{"kind": ..., its fields}``, or hsijax
    0.1's record without a kind (`config_from_v01`)."""
    fields = dict(fields)
    if "kind" not in fields:
        return config_from_v01(fields)
    return config_class(fields["kind"]).from_fields(fields)


def config_from_v01(fields: dict[str, Any]) -> NetworkConfig:
    """hsijax 0.1's ``ModelConfig`` fields -> the config of the network they described:
    ``network="linear"`` the linear grid network, ``axis="wavelength_grid"`` the grid CNN, else the
    poster's CNN. Fields the network never used (0.1 saved them all) are dropped."""
    unknown = sorted(set(fields) - set(V01_FIELDS))
    if unknown:
        raise HsijaxError(f"unknown model config field(s) {unknown}; known: {sorted(V01_FIELDS)}")
    network, axis = fields.get("network", "cnn"), fields.get("axis", "bands")
    if network not in ("cnn", "linear") or axis not in ("bands", "wavelength_grid"):
        raise HsijaxError(f"hsijax 0.1 model config: network {network!r}, axis {axis!r} name no network")
    if network == "linear":
        if axis != "wavelength_grid":
            raise HsijaxError('network "linear" needs axis "wavelength_grid": its basis lives on the shared grid')
        kind = LinearGridConfig.kind
    else:
        kind = GridCNNConfig.kind if axis == "wavelength_grid" else PosterCNNConfig.kind
    cls = config_class(kind)
    return cls(**{key: value for key, value in fields.items() if key in cls.field_names()})


def network_module(config: NetworkConfig) -> nn.Module:
    """The Flax autoencoder of ``config``'s kind."""
    return NETWORKS[config.kind][1](config)


def encoder_module(config: NetworkConfig, name: str | None = None) -> nn.Module:
    """The Flax encoder of ``config``'s kind (named ``name`` inside a parent module)."""
    return NETWORKS[config.kind][2](config, name=name)


__all__ = [
    "KINDS",
    "NETWORKS",
    "GridCNN",
    "GridCNNConfig",
    "LinearGrid",
    "LinearGridConfig",
    "NetworkConfig",
    "PosterCNN",
    "PosterCNNConfig",
    "SensorOperators",
    "config_class",
    "config_from_dict",
    "config_from_v01",
    "encoder_module",
    "missing_wavelengths_message",
    "network_module",
]
