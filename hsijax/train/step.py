"""The pretraining objective and its jit-compiled, data-parallel optimiser step.

The loss is the poster's: the mean squared reconstruction error over each pixel's *real* bands
(padded positions are masked out), averaged over pixels so every pixel weighs the same whatever
its sensor's band count, plus ``weight_decay`` * ||theta||^2 over all parameters. The optimiser is
Adam with cosine decay; the penalty lives in the loss (so it is differentiated and enters Adam's
moments), as in the poster, rather than in AdamW's decoupled decay, which would be a different
objective.

The step is data parallel over a 1-D mesh (`hsijax.train.mesh`): `shard_map` runs it on each
device's rows and an explicit ``pmean`` averages the gradients and the reported loss. Equal rows
per device make the mean of the per-device means the global mean, so 1 device, 8 devices or 2
processes x 4 devices compute the same update up to float summation order. Shapes other than the
bucket length are fixed by the batch size, so it compiles once per bucket.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from hsijax.spectral import SpectraBatch


def masked_mse(reconstruction, batch: SpectraBatch):
    """Per-pixel mean squared error over the real bands, averaged over pixels."""
    spectra = jnp.asarray(batch.spectra)
    real = jnp.arange(spectra.shape[-1]) < batch.band_count[:, None]
    squared = jnp.where(real, (reconstruction - spectra) ** 2, 0.0)
    return jnp.mean(squared.sum(axis=-1) / batch.band_count)


def l2_penalty(variables):
    return sum(jnp.sum(leaf**2) for leaf in jax.tree.leaves(variables))


def loss_fn(variables, module: nn.Module, batch: SpectraBatch, weight_decay: float, visible_nm=None):
    """Returns (total loss, reconstruction MSE)."""
    mse = masked_mse(module.apply(variables, *batch, visible_nm), batch)
    return mse + weight_decay * l2_penalty(variables), mse


def step_count(opt_state):
    """The optimiser's step counter (Adam's ``count``): restored with every checkpoint, so random
    draws keyed on it are the same in a resumed run."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(opt_state):
        if getattr(path[-1], "name", None) == "count":
            return leaf
    raise ValueError("the optimiser state has no step counter")


def visible_windows(key, rows: int, probability: float):
    """(rows, 2) wavelength ranges (nm) the encoder may see: with ``probability`` a random window of
    300-2200 nm starting between 365 and 2100 nm (a simulated sensor: the decoder must still
    reconstruct every band), otherwise everything."""
    start_key, width_key, use_key = jax.random.split(key, 3)
    start = jax.random.uniform(start_key, (rows, 1), minval=365.0, maxval=2100.0)
    width = jax.random.uniform(width_key, (rows, 1), minval=300.0, maxval=2200.0)
    use = jax.random.uniform(use_key, (rows, 1)) < probability
    return jnp.where(use, jnp.concatenate([start, start + width], axis=1), jnp.asarray([[0.0, 1e5]]))


def make_optimizer(learning_rate: float, steps: int, final_fraction: float = 0.05) -> optax.GradientTransformation:
    """Adam whose learning rate decays along a cosine to ``final_fraction`` of it over ``steps``."""
    return optax.adam(optax.cosine_decay_schedule(learning_rate, steps, alpha=final_fraction))


def make_train_step(module: nn.Module, optimizer: optax.GradientTransformation, weight_decay: float,
                    mesh: Mesh, visible_window: float = 0.0, seed: int = 0) -> Callable:
    """``(params, opt_state, batch) -> (params, opt_state, mse)``, sharded over ``mesh``'s ``data``
    axis; jit compiles it once per bucket and donates the parameters and optimiser state.

    ``visible_window`` > 0 (wavelength-grid network only): that fraction of pixels is encoded from
    a random wavelength window (`visible_windows`), drawn from ``seed``, the step count and the
    device, and scored on every band -- a masked-band objective.
    """

    def device_step(params, opt_state, batch):
        visible_nm = None
        if visible_window > 0:
            key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), step_count(opt_state)),
                                     jax.lax.axis_index("data"))
            visible_nm = visible_windows(key, batch.spectra.shape[0], visible_window)
        grads, mse = jax.grad(loss_fn, has_aux=True)(params, module, batch, weight_decay, visible_nm)
        grads = jax.lax.pmean(grads, "data")
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, jax.lax.pmean(mse, "data")

    sharded = jax.shard_map(
        device_step, mesh=mesh, in_specs=(P(), P(), P("data")), out_specs=(P(), P(), P())
    )
    return jax.jit(sharded, donate_argnums=(0, 1))
