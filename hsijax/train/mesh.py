"""The device mesh of data parallelism, and moving values between the host and it.

One 1-D `jax.sharding.Mesh` with axis ``"data"`` holds every device of every process (ordered by
process, as JAX lists them). Parameters and optimiser state are replicated over it; each global
batch is split over it, every process contributing its own block of rows (`hsijax.data.pipeline`
reads only those).
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from hsijax.spectral import SpectraBatch


def make_mesh() -> Mesh:
    """Every device of every process on one ``data`` axis."""
    return Mesh(np.asarray(jax.devices()), ("data",))


def replicate(tree, mesh: Mesh):
    """Host values (the same on every process) -> arrays replicated over the whole mesh."""
    sharding = NamedSharding(mesh, P())
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), tree)


def to_host(tree):
    """A replicated (possibly multi-process) pytree -> NumPy, from this process's first copy."""
    return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)) if isinstance(x, jax.Array) else x, tree)


def global_batch(local: dict, mesh: Mesh) -> SpectraBatch:
    """This process's rows of a batch -> global arrays split over the ``data`` axis."""
    sharding = NamedSharding(mesh, P("data"))
    fields = {name: local[name] for name in SpectraBatch._fields}
    return SpectraBatch(**{k: jax.make_array_from_process_local_data(sharding, v) for k, v in fields.items()})


def abstract(x):
    """What Orbax restores into: the shape, dtype and sharding of a live array (other leaves as they are)."""
    return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding) if isinstance(x, jax.Array) else x
