"""Fine-tuning a `SpectralClassifier` on few labelled pixels, with the training length chosen on
validation pixels.

`fine_tune` trains all of the classifier (encoder included) with Adam and a cosine decay. Given
validation pixels (drawn from the training pixels, see `hsijax.evaluate.splits.validation_split`) it
evaluates them every ``eval_every`` steps and returns the parameters of the best evaluation -- early
stopping, so the training length is chosen per run without ever looking at test pixels. Without
validation pixels it trains for the full number of steps.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import numpy as np
import optax

from hsijax.models.classifier import SpectralClassifier, predict


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


