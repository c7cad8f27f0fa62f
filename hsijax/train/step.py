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

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from hsijax.models.autoencoder import SharedAutoencoder
from hsijax.spectral import SpectraBatch


def masked_mse(reconstruction, batch: SpectraBatch):
    """Per-pixel mean squared error over the real bands, averaged over pixels."""
    spectra = jnp.asarray(batch.spectra)
    real = jnp.arange(spectra.shape[-1]) < batch.band_count[:, None]
    squared = jnp.where(real, (reconstruction - spectra) ** 2, 0.0)
    return jnp.mean(squared.sum(axis=-1) / batch.band_count)


def l2_penalty(variables):
    return sum(jnp.sum(leaf**2) for leaf in jax.tree.leaves(variables))


def loss_fn(variables, module: SharedAutoencoder, batch: SpectraBatch, weight_decay: float):
    """Returns (total loss, reconstruction MSE)."""
    mse = masked_mse(module.apply(variables, *batch), batch)
    return mse + weight_decay * l2_penalty(variables), mse


def make_optimizer(learning_rate: float, steps: int, final_fraction: float = 0.05) -> optax.GradientTransformation:
    """Adam whose learning rate decays along a cosine to ``final_fraction`` of it over ``steps``."""
    return optax.adam(optax.cosine_decay_schedule(learning_rate, steps, alpha=final_fraction))


def make_train_step(module: SharedAutoencoder, optimizer: optax.GradientTransformation, weight_decay: float,
                    mesh: Mesh) -> Callable:
    """``(params, opt_state, batch) -> (params, opt_state, mse)``, sharded over ``mesh``'s ``data``
    axis; jit compiles it once per bucket and donates the parameters and optimiser state."""

    def device_step(params, opt_state, batch):
        grads, mse = jax.grad(loss_fn, has_aux=True)(params, module, batch, weight_decay)
        grads = jax.lax.pmean(grads, "data")
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, jax.lax.pmean(mse, "data")

    sharded = jax.shard_map(
        device_step, mesh=mesh, in_specs=(P(), P(), P("data")), out_specs=(P(), P(), P())
    )
    return jax.jit(sharded, donate_argnums=(0, 1))
