"""A Flax pixel classifier on the shared encoder, loadable from a pretraining checkpoint.

`SpectralClassifier` is the autoencoder's encoder (same parameter names, so a checkpoint's
``params/encoder`` drops in), the band-axis max-pool that gives the shared code, and a small
head (Dense-GELU-Dense). `SpectralClassifier.from_pretrained(CKPT, num_classes)` builds it from a
workdir, a checkpoint directory or one step's directory: the checkpoint carries its model config.

`fine_tune` trains all of it (encoder included) with Adam. Given validation pixels (drawn from
the training pixels, see `hsijax.splits.validation_split`) it evaluates them every ``eval_every``
steps and returns the parameters of the best evaluation -- early stopping, so the training length is
chosen per run without ever looking at test pixels. Without validation pixels it trains for the
full number of steps.
"""

from __future__ import annotations

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from hsijax.model import Encoder, ModelConfig

HEAD_WIDTH = 64


class SpectralClassifier(nn.Module):
    config: ModelConfig
    num_classes: int

    @nn.compact
    def __call__(self, spectra):
        """(N, B) padded, normalised spectra -> (N, num_classes) logits."""
        code = Encoder(self.config, name="encoder")(spectra).max(axis=1)
        hidden = nn.gelu(nn.Dense(HEAD_WIDTH, name="head_hidden")(code))
        return nn.Dense(self.num_classes, name="head_out")(hidden)

    def init_variables(self, seed: int = 0):
        return _compiled_init(self)(jax.random.key(seed))

    @classmethod
    def from_pretrained(cls, checkpoint, num_classes: int, seed: int = 0):
        """(classifier, variables): the encoder from ``checkpoint``, a freshly initialised head."""
        from hsijax.checkpoint import load_model

        return cls.from_model(load_model(checkpoint), num_classes, seed)

    @classmethod
    def from_model(cls, pretrained, num_classes: int, seed: int = 0):
        """(classifier, variables): the encoder of a loaded `Model`, a freshly initialised head."""
        classifier = cls(pretrained.config, num_classes)
        variables = classifier.init_variables(seed)
        params = dict(variables["params"])
        params["encoder"] = pretrained.variables["params"]["encoder"]
        return classifier, {"params": params}


@dataclasses.dataclass(frozen=True)
class FineTuned:
    variables: dict
    best_step: int  # the step whose parameters were kept
    history: tuple[tuple[int, float], ...] = ()  # (step, validation accuracy) at each evaluation


def fine_tune(classifier: SpectralClassifier, variables, spectra: np.ndarray, labels: np.ndarray,
              steps: int = 2000, batch_size: int = 256, learning_rate: float = 1e-3, seed: int = 0,
              validation: tuple[np.ndarray, np.ndarray] | None = None, eval_every: int = 100) -> FineTuned:
    """Cross-entropy training on (N, B) spectra with labels in 0..num_classes-1.

    ``validation`` = (spectra, labels) keeps the parameters with the best validation accuracy
    (the earliest on ties); without it, the parameters after ``steps`` steps.
    """
    optimizer = optax.adam(optax.cosine_decay_schedule(learning_rate, steps, alpha=0.05))
    step = _train_step(classifier, optimizer)
    params, opt_state = variables["params"], optimizer.init(variables["params"])
    rng = np.random.default_rng(seed)
    size = min(batch_size, len(labels))
    best, history = (-1.0, steps, params), []
    for number in range(1, steps + 1):
        rows = rng.choice(len(labels), size=size, replace=False)
        params, opt_state = step(params, opt_state, spectra[rows], labels[rows])
        if validation is not None and (number % eval_every == 0 or number == steps):
            accuracy = float(np.mean(predict(classifier, {"params": params}, validation[0]) == validation[1]))
            history.append((number, accuracy))
            if accuracy > best[0]:
                best = (accuracy, number, params)
    if validation is None:
        return FineTuned({"params": params}, steps)
    return FineTuned({"params": best[2]}, best[1], tuple(history))


@functools.lru_cache(maxsize=None)
def _compiled_init(classifier: SpectralClassifier):
    """Compiled once per classifier (see `hsijax.model._compiled_init`)."""
    length = classifier.config.buckets[0]
    return jax.jit(lambda key: classifier.init(key, jnp.zeros((1, length), jnp.float32)))


@functools.lru_cache(maxsize=None)
def _train_step(classifier: SpectralClassifier, optimizer):
    def loss(params, spectra, labels):
        logits = classifier.apply({"params": params}, spectra)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    @jax.jit
    def step(params, opt_state, spectra, labels):
        grads = jax.grad(loss)(params, spectra, labels)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    return step


def predict(classifier: SpectralClassifier, variables, spectra: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Class indices (N,) for (N, B) spectra, in fixed-size chunks (one compilation per bucket)."""
    apply = _predict_fn(classifier)
    chunk = min(chunk, 1 << max(0, len(spectra) - 1).bit_length())  # small sets: a small power of two
    out = []
    for start in range(0, len(spectra), chunk):
        part = spectra[start:start + chunk]
        padded = np.zeros((chunk, part.shape[1]), np.float32)
        padded[: len(part)] = part
        out.append(np.asarray(apply(variables, padded))[: len(part)])
    return np.concatenate(out) if out else np.zeros((0,), np.int32)


@functools.lru_cache(maxsize=None)
def _predict_fn(classifier: SpectralClassifier):
    return jax.jit(lambda variables, spectra: classifier.apply(variables, spectra).argmax(axis=-1))
