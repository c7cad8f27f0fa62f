"""Pretraining the shared autoencoder: the loss, a jit-compiled optax step, and an in-memory loop.

The loss is the poster's: the mean squared reconstruction error over each pixel's *real* bands
(padded positions are masked out), averaged over pixels so every pixel weighs the same whatever
its sensor's band count, plus ``weight_decay`` * ||theta||^2 over all parameters. The optimiser
is plain Adam: the penalty lives in the loss, as in the poster, rather than in AdamW's decoupled
decay.

`pretrain` samples pixels from scenes held in memory; it is what the demo and the tests use.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from hsijax.model import Model, SharedAutoencoder
from hsijax.spectral import SpectraBatch, make_batch


@dataclasses.dataclass(frozen=True)
class TrainingSet:
    """Normalised pixels of one scene, (P, b) float32, with the band centres in nm if known."""

    name: str
    pixels: np.ndarray
    wavelengths_nm: np.ndarray | None = None


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


def make_train_step(model: Model, optimizer: optax.GradientTransformation, weight_decay: float) -> Callable:
    """A jit-compiled step ``(variables, opt_state, batch) -> (variables, opt_state, mse)``.

    Shapes other than the bucket length are fixed by the batch size, so it compiles once per bucket.
    """
    module = model.module

    def step(variables, opt_state, batch):
        grads, mse = jax.grad(loss_fn, has_aux=True)(variables, module, batch, weight_decay)
        updates, opt_state = optimizer.update(grads, opt_state, variables)
        return optax.apply_updates(variables, updates), opt_state, mse

    return jax.jit(step, donate_argnums=(0, 1))


def sample_batch(
    sets: Sequence[TrainingSet], rng: np.random.Generator, batch_size: int, buckets
) -> SpectraBatch:
    """One scene chosen in proportion to its pixel count, then ``batch_size`` of its pixels."""
    sizes = np.array([len(s.pixels) for s in sets], dtype=np.float64)
    chosen = sets[rng.choice(len(sets), p=sizes / sizes.sum())]
    rows = rng.integers(0, len(chosen.pixels), size=batch_size)
    return make_batch(chosen.pixels[rows], chosen.wavelengths_nm, buckets)


@dataclasses.dataclass(frozen=True)
class TrainingResult:
    model: Model
    losses: np.ndarray  # reconstruction MSE per step
    seconds: float  # wall time, compilation included
    pixels_per_second: float  # after the first (compiling) step


def pretrain(
    model: Model,
    sets: Sequence[TrainingSet],
    steps: int,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    weight_decay: float = 1e-6,
    seed: int = 0,
    progress: bool = True,
) -> TrainingResult:
    """Train ``model`` on pixels sampled from ``sets``; deterministic for a seed on one machine."""
    schedule = optax.cosine_decay_schedule(learning_rate, steps, alpha=0.05)
    optimizer = optax.adam(schedule)
    step_fn = make_train_step(model, optimizer, weight_decay)
    variables = jax.tree.map(jnp.array, model.variables)  # a copy: the step donates its inputs
    opt_state = optimizer.init(variables)
    rng = np.random.default_rng(seed)
    losses = []
    start = time.perf_counter()
    steady_start = None  # after the first step, which includes the compilation
    with tqdm(total=steps, desc=f"pretrain {model.config.decoder}", disable=not progress) as bar:
        for step in range(steps):
            batch = sample_batch(sets, rng, batch_size, model.config.buckets)
            variables, opt_state, mse = step_fn(variables, opt_state, batch)
            losses.append(mse)
            bar.update()
            if step == 0:
                jax.block_until_ready(mse)
                steady_start = time.perf_counter()
            elif step % 50 == 0:
                bar.set_postfix(mse=f"{float(mse):.2e}")
    losses = np.asarray(jax.device_get(losses), dtype=np.float64)
    end = time.perf_counter()
    steady_steps = max(steps - 1, 0)
    rate = steady_steps * batch_size / (end - steady_start) if steady_steps else float("nan")
    return TrainingResult(model.replace(variables), losses, end - start, rate)
