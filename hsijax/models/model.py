"""A model: a network's config and its parameters -- what `hsijax.encode`, `save_model` and a
classifier take, whichever network it is (`hsijax.models.networks`)."""

from __future__ import annotations

import dataclasses
import functools
import warnings
from typing import Any

import jax
import jax.numpy as jnp

from hsijax.models.networks import (
    NetworkConfig,
    PosterCNNConfig,
    config_class,
    config_from_v01,
    network_module,
)


@dataclasses.dataclass(frozen=True)
class Model:
    """A configured network and its parameters (a Flax variables dict: ``{"params": ...}``).

    ``operators`` caches what `hsijax.models.inference` folds per list of band centres (a network
    with ``folds_per_sensor``); a new `Model` (`replace`) starts with an empty cache, so the cache
    always belongs to these parameters.
    """

    config: NetworkConfig
    variables: Any
    operators: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @property
    def module(self):
        """The Flax autoencoder of this model's network."""
        return network_module(self.config)

    def replace(self, variables) -> Model:
        return Model(self.config, variables)

    @property
    def parameter_count(self) -> int:
        return sum(leaf.size for leaf in jax.tree.leaves(self.variables))


def init_variables(config: NetworkConfig, seed: int):
    """Fresh parameters; convolution kernels do not depend on the length, so any bucket will do."""
    return _compiled_init(config)(jax.random.key(seed))


@functools.lru_cache(maxsize=None)
def _compiled_init(config: NetworkConfig):
    """One compiled initialiser per configuration: run eagerly, Flax's init compiles each of its
    ~120 small operations separately (8 s on a CPU core, for every run and every seed)."""
    length = config.buckets[0]

    def init(key):
        dummy = jnp.zeros((1, length), jnp.float32)
        wavelengths = jnp.broadcast_to(jnp.linspace(400.0, 2500.0, length), (1, length))  # shapes only
        return network_module(config).init(key, dummy, jnp.full((1,), length, jnp.int32), wavelengths,
                                           jnp.ones((1,), bool))

    return jax.jit(init)


def create_model(code_width: int = 16, decoder: str | None = None, seed: int = 0, *, kind: str | None = None,
                 **fields) -> Model:
    """A freshly initialised network: the poster's CNN unless ``kind`` names another
    (``"grid_cnn"``, ``"linear_grid"``); ``fields`` are that kind's config fields.

    hsijax 0.1's ``network=`` and ``axis=`` fields still choose the network for this release (with a
    `DeprecationWarning`): pass ``kind`` instead.
    """
    fields = {"code_width": code_width, **fields, **({} if decoder is None else {"decoder": decoder})}
    if kind is None and {"network", "axis"} & set(fields):
        warnings.warn("create_model(network=..., axis=...) is hsijax 0.1's form; pass kind='linear_grid' or "
                      "kind='grid_cnn'", DeprecationWarning, stacklevel=2)
        config = config_from_v01(fields)
    else:
        config = config_class(kind or PosterCNNConfig.kind).from_fields(fields)
    return Model(config, init_variables(config, seed))
