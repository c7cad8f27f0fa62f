"""Fine-tuning a `SpectralClassifier` on few labelled pixels, compiled once and run on the device,
with the training length chosen on validation pixels.

`fine_tune` trains all of the classifier (encoder included) with Adam and a cosine decay. Its steps
run inside one compiled function: the training pixels stay on the device, every step's batch is a
row of an index table drawn up front (NumPy, seeded: the same batches as drawing step by step), and
one call runs a chunk of `chunk_steps` steps, so the host starts one call per chunk instead of one
per step. The chunk is compiled once per classifier, step count, learning rate, training-set size
class and batch size, and reused by every seed and by the pretrained and scratch networks of a
comparison (same architecture); steps past the end in the last chunk leave the parameters alone.

The chunk's steps are unrolled, not a ``lax.scan``: on XLA's CPU backend the convolutions inside a
loop body ran 44x slower (1.9 s against 0.044 s per step here, c = 16, 256-band batches of 256),
while unrolled they run faster than step-by-step calls (0.030 s).

Given validation pixels (drawn from the training pixels, see
`hsijax.evaluate.splits.validation_split`) it evaluates them every ``eval_every`` steps and returns
the parameters of the best evaluation -- early stopping, so the training length is chosen per run
without ever looking at test pixels. Without validation pixels it trains for the full number of steps.

`fine_tune_refit` chooses the step count the same way, then refits from the start on every training
pixel for that many steps, with the code standardised before the head, AdamW, dropout, label
smoothing and spectral augmentation of the training batches (see its docstring).
"""

from __future__ import annotations

import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from hsijax.models.classifier import SpectralClassifier, codes, predict, probabilities

FINAL_LEARNING_RATE_FRACTION = 0.05  # the cosine decay ends at this fraction of the learning rate


@dataclasses.dataclass(frozen=True)
class FineTuned:
    variables: dict
    best_step: int  # the step whose parameters were kept
    history: tuple[tuple[int, float], ...] = ()  # (step, validation accuracy) at each evaluation
    seconds: float = 0.0  # wall time of the whole run
    compiled_seconds: float = 0.0  # of which inside compiled calls (training steps and validation)


def batch_draws(count: int, size: int, steps: int, seed: int) -> np.ndarray:
    """(steps, size) row indices: each step's batch, ``size`` distinct training pixels."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(count, size=size, replace=False) for _ in range(steps)]).astype(np.int32)


def rows_class(count: int) -> int:
    """The training set is zero-padded to a power of two of rows (at least 64), so training sets of
    similar sizes share one compilation; the padding is never drawn."""
    return max(64, 1 << max(0, count - 1).bit_length())


MAX_CHUNK = 10  # steps per compiled call; compiling costs about 0.4 s per unrolled step here


def chunk_steps(eval_every: int, steps: int | None = None) -> int:
    """Steps per compiled call: the largest divisor of ``eval_every`` up to `MAX_CHUNK`, so every
    evaluation falls at the end of a chunk; never more than the run's ``steps``, so a short run (a
    smoke test, the demo's ``--classify-steps 3``) compiles only the steps it takes (the same
    batches and parameters: steps past the end would only be masked)."""
    largest = max(k for k in range(1, MAX_CHUNK + 1) if eval_every % k == 0)
    return largest if steps is None else max(1, min(largest, steps))


def fine_tune(classifier: SpectralClassifier, variables, spectra: np.ndarray, labels: np.ndarray,
              steps: int = 2000, batch_size: int = 256, learning_rate: float = 1e-3, seed: int = 0,
              validation: tuple[np.ndarray, np.ndarray] | None = None, eval_every: int = 100) -> FineTuned:
    """Cross-entropy training on (N, B) spectra with labels in 0..num_classes-1.

    ``validation`` = (spectra, labels) keeps the parameters with the best validation accuracy
    (the earliest on ties), evaluated every ``eval_every`` steps and at the last; without it, the
    parameters after ``steps`` steps.
    """
    began = time.perf_counter()
    chunk = chunk_steps(eval_every, steps)
    size = min(batch_size, len(labels))
    draws = batch_draws(len(labels), size, -(-steps // chunk) * chunk, seed)
    rows = rows_class(len(labels))
    padded = np.zeros((rows, spectra.shape[1]), np.float32)
    padded[: len(labels)] = spectra
    targets = np.zeros((rows,), np.int32)
    targets[: len(labels)] = labels
    data = jax.device_put((padded, targets))
    init, run = _compiled(classifier, steps, learning_rate, chunk)
    params = uncommitted(variables["params"])
    opt_state = init(params)
    best, history, compiled = (-1.0, steps, params), [], 0.0
    for start in range(0, steps, chunk):
        stop = min(start + chunk, steps)
        tick = time.perf_counter()
        params, opt_state = run(params, opt_state, *data, draws[start:start + chunk],
                                np.arange(start, start + chunk) < steps)
        evaluate = validation is not None and (stop % eval_every == 0 or stop == steps)
        if evaluate:
            accuracy = float(np.mean(predict(classifier, {"params": params}, validation[0]) == validation[1]))
        elif stop == steps:
            jax.block_until_ready(params)
        compiled += time.perf_counter() - tick
        if evaluate:
            history.append((stop, accuracy))
            if accuracy > best[0]:
                best = (accuracy, stop, params)
    seconds = time.perf_counter() - began
    if validation is None:
        return FineTuned({"params": params}, steps, (), seconds, compiled)
    return FineTuned({"params": best[2]}, best[1], tuple(history), seconds, compiled)


def uncommitted(params):
    """``params`` as arrays not committed to a device. A checkpoint's encoder is read onto the device
    (committed), a fresh network's is not, and jit compiles once for each kind of placement: as
    they are, the pretrained and scratch networks of one comparison compiled the same chunk twice."""
    return jax.tree.map(lambda leaf: jax.device_put(np.asarray(leaf)), params)


@functools.lru_cache(maxsize=None)
def _compiled(classifier: SpectralClassifier, steps: int, learning_rate: float, chunk: int):
    """(optimiser init, run): ``run(params, opt_state, spectra, labels, draws, active)`` takes one
    step per row of ``draws`` (chunk, batch), leaving the state alone where ``active`` is False."""
    optimizer = optax.adam(optax.cosine_decay_schedule(learning_rate, steps, alpha=FINAL_LEARNING_RATE_FRACTION))

    def loss(params, spectra, labels):
        logits = classifier.apply({"params": params}, spectra)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    @jax.jit
    def run(params, opt_state, spectra, labels, draws, active):
        for number in range(chunk):  # unrolled: see the module docstring
            rows = draws[number]
            grads = jax.grad(loss)(params, spectra[rows], labels[rows])
            updates, new_state = optimizer.update(grads, opt_state, params)
            keep = lambda new, old: jnp.where(active[number], new, old)
            params = jax.tree.map(keep, optax.apply_updates(params, updates), params)
            opt_state = jax.tree.map(keep, new_state, opt_state)
        return params, opt_state

    return jax.jit(optimizer.init), run


# --- fine-tuning with a refit on every training pixel ---------------------------------------------


@dataclasses.dataclass(frozen=True)
class FineTunedRefit:
    """What `fine_tune_refit` returns; ``predict`` classifies with the code standardisation it used."""

    classifier: SpectralClassifier
    variables: dict  # refitted on all n training pixels for ``best_step`` steps: the ones to use
    best_step: int  # the step count chosen on the validation pixels (``steps`` without any)
    code_mean: np.ndarray  # (code_width,) the fixed affine before the head: (code - mean) / scale
    code_scale: np.ndarray
    history: tuple[tuple[int, float], ...] = ()  # (step, validation accuracy) of the fit on ``fit``
    fit_variables: dict | None = None  # the fit-only parameters at ``best_step`` (None without validation)
    seconds: float = 0.0  # wall time of the whole run (both phases)
    compiled_seconds: float = 0.0  # of which inside compiled calls
    ensemble: tuple[dict, ...] = ()  # the further members' refitted variables (``members`` > 1)

    def predict(self, spectra: np.ndarray) -> np.ndarray:
        """Class indices (N,) of (N, B) spectra, padded and normalised like the training spectra:
        the same standardisation, no dropout, no augmentation (deterministic). With an ensemble, the
        class of the members' mean softmax probabilities."""
        standardisation = (self.code_mean, self.code_scale)
        if not self.ensemble:
            return predict(self.classifier, self.variables, spectra, standardisation=standardisation)
        total = sum(probabilities(self.classifier, variables, spectra, standardisation=standardisation)
                    for variables in (self.variables, *self.ensemble))
        return np.asarray(total).argmax(-1)


def fine_tune_refit(classifier: SpectralClassifier, variables, spectra: np.ndarray, targets: np.ndarray,
                    fit: np.ndarray, validate: np.ndarray, *, seed: int = 0, all_spectra: np.ndarray | None = None,
                    steps: int = 2000, batch_size: int = 256, learning_rate: float = 3e-3,
                    weight_decay: float = 1e-4, dropout: float = 0.2, label_smoothing: float = 0.1,
                    brightness: float = 0.1, noise: float = 0.005, offset: float = 0.01,
                    eval_every: int = 50, refit: bool = True, members: int = 1) -> FineTunedRefit:
    """Fine-tune on few labels, choose the step count on validation pixels, then refit on all of them.

    Why: `fine_tune` keeps the parameters that were fitted on the ``fit`` pixels only (about three
    quarters of the training pixels) while the SVM it is compared with fits on all of them; with
    100-500 labels the held-out quarter is a large loss. Here the validation pixels only choose how
    long to train, and the parameters returned are a second run on every training pixel for exactly
    that many steps. Both runs use the same ``steps``-long schedule (the cosine decay of the learning
    rate), the same batch size and the same regularisation, so a step count chosen on the first
    means the same thing on the second; the refit is cut at that step, not stretched to it.

    ``spectra`` (n, B) are the training pixels, normalised and padded as `fine_tune` takes them,
    ``targets`` (n,) their classes 0..num_classes-1; ``fit`` and ``validate`` are positions into those
    n rows (for indices ``f, v = validation_split(labels, train, ...)`` into a scene whose training
    indices ``train`` are sorted: ``np.searchsorted(train, f)``, likewise ``v``). An empty ``validate``
    skips the choice: one run on all n pixels for ``steps`` steps. ``refit=False`` skips the refit
    and returns the fit-only parameters as ``variables`` (an ablation; for choosing settings on
    validation pixels without the refit's cost).

    ``members`` > 1: an ensemble over seeds. The step count is chosen once (the members differ only
    in their randomness, not in how long they should train), then ``members`` refits run on all
    pixels, each with its own batches, dropout and augmentation, from the same initial parameters;
    `FineTunedRefit.predict` averages their softmax probabilities. Its cost is 1 + ``members`` runs
    rather than 2 x ``members``.

    What the training does beyond `fine_tune`:
    - the head sees the code standardised, ``(code - mean) / scale``, by a fixed affine (not
      trained): the mean and std per code entry of ``all_spectra`` (every pixel of the scene, no
      labels needed; the training spectra without it) under the *initial* encoder, so the head's
      inputs are on one scale whatever the encoder's, and learning rates mean the same across networks;
    - AdamW (decoupled ``weight_decay`` on the head's and a convolutional encoder's kernels; not on
      a linear-grid encoder, whose basis's scale only rescales its least-squares codes), dropout
      ``dropout`` on the standardised code, ``label_smoothing`` in the cross-entropy;
    - spectral augmentation of every training batch (never of validation or prediction): each
      pixel times a brightness ~ U(1 - ``brightness``, 1 + ``brightness``), plus an offset
      ~ N(0, ``offset``²), plus per-band noise ~ N(0, ``noise``²), in normalised units.
    Validation accuracy is measured every ``eval_every`` steps and at the last; the earliest best
    step wins. Every step is reproducible from ``seed`` (batches, dropout, augmentation).

    Defaults: for 100-500 training pixels, chosen on validation pixels only (Indian Pines at 5 %
    labels, the shipped linear-grid network, seeds 0-2, mean best validation accuracy: 1000 steps at
    1e-3 0.72, 2000 at 1e-3 0.77, 1000 at 3e-3 0.76, 1000 at 1e-2 0.76, 2000 at 3e-3 0.79, its
    steps kept 1650-1750; `fine_tune`'s defaults 0.74). Dropout, smoothing and augmentation were not
    tuned: switching either group off moved it by about 0.01, within the ~0.02 noise of ~120 pixels.

    Compiled once per classifier, ``steps``, ``dropout``, batch and training-set size class (the
    other settings are arguments of the compiled chunk); the fit and the refit share it.
    """
    began = time.perf_counter()
    fit, validate = np.asarray(fit, np.int64).reshape(-1), np.asarray(validate, np.int64).reshape(-1)
    targets = np.asarray(targets, np.int32)
    if len(fit) == 0:
        raise ValueError("fine_tune_refit needs at least one pixel to fit")
    mean, scale = code_standardisation(classifier, variables, spectra if all_spectra is None else all_spectra)
    chunk = chunk_steps(eval_every, steps)
    size = min(batch_size, len(fit))  # both runs draw batches of this size
    chunks = -(-steps // chunk)
    rows = rows_class(len(targets))  # both runs see all n rows (the fit's batches only draw ``fit``)
    padded = np.zeros((rows, spectra.shape[1]), np.float32)
    padded[: len(targets)] = spectra
    labels = np.zeros((rows,), np.int32)
    labels[: len(targets)] = targets
    data = jax.device_put((padded, labels))
    init, run = _compiled_refit(classifier, steps, chunk, float(dropout))
    variables = {**variables, "params": uncommitted(variables["params"])}
    hyper = {"learning_rate": learning_rate, "weight_decay": weight_decay, "label_smoothing": label_smoothing,
             "brightness": brightness, "noise": noise, "offset": offset}
    hyper = {name: jnp.float32(value) for name, value in hyper.items()}
    standardisation = (jnp.asarray(mean), jnp.asarray(scale))
    key = jax.random.key(seed)
    compiled = [0.0]

    def train(draws, stop: int, phase: int, evaluate=None):
        """Steps 0..stop-1 from the initial parameters on the batches ``draws``; with ``evaluate``,
        (best accuracy, its step, its parameters) and the history, else the final parameters."""
        params = variables["params"]
        opt_state = init(params)
        best, history = (-1.0, stop, params), []
        for start in range(0, stop, chunk):
            end = min(start + chunk, stop)
            tick = time.perf_counter()
            params, opt_state = run(params, opt_state, *data, draws[start:start + chunk], *standardisation,
                                    hyper, jax.random.fold_in(key, phase), np.int32(start), np.int32(stop))
            if evaluate is not None and (end % eval_every == 0 or end == stop):
                accuracy = evaluate(params)
                history.append((end, accuracy))
                if accuracy > best[0]:
                    best = (accuracy, end, params)
            elif end == stop:
                jax.block_until_ready(params)
            compiled[0] += time.perf_counter() - tick
        return (best, tuple(history)) if evaluate is not None else params

    history, fit_variables = (), None
    best_step = steps
    if len(validate):
        def accuracy(params):
            predicted = predict(classifier, {"params": params}, spectra[validate], standardisation=standardisation)
            return float(np.mean(predicted == targets[validate]))

        draws = fit[batch_draws(len(fit), size, chunks * chunk, seed)].astype(np.int32)
        (_, best_step, best_params), history = train(draws, steps, 0, accuracy)
        fit_variables = {"params": best_params}
    if fit_variables is not None and not refit:
        params, ensemble = fit_variables["params"], ()
    else:
        # Member j's batches from seed + 1 + 10007 j: apart from every other seed's first member's.
        refits = [train(batch_draws(len(targets), size, chunks * chunk, seed + 1 + 10007 * member), best_step,
                        1 + member) for member in range(max(1, members))]
        params, ensemble = refits[0], tuple({"params": p} for p in refits[1:])
    return FineTunedRefit(classifier, {"params": params}, int(best_step), mean, scale, history, fit_variables,
                          time.perf_counter() - began, compiled[0], ensemble)


def code_standardisation(classifier: SpectralClassifier, variables, spectra: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale) (code_width,) of the codes of ``spectra`` under ``variables``' encoder: their
    mean and std per entry (std + 1e-6, as `hsijax.evaluate.classification.standardised`)."""
    values = codes(classifier, variables, spectra).astype(np.float64)
    return values.mean(0).astype(np.float32), (values.std(0) + 1e-6).astype(np.float32)


def decayed(classifier: SpectralClassifier, params) -> dict:
    """Which parameters weight decay shrinks: kernels (2 dimensions or more), but not a linear-grid
    encoder's basis (a smaller basis only gives larger least-squares codes)."""
    skip = "encoder" if classifier.config.folds_per_sensor else None
    kernels = lambda tree: jax.tree.map(lambda leaf: jnp.ndim(leaf) >= 2, tree)
    nothing = lambda tree: jax.tree.map(lambda leaf: False, tree)
    return {name: nothing(tree) if name == skip else kernels(tree) for name, tree in params.items()}


def decoupled_step(params, updates, mask, rate, weight_decay):
    """AdamW's update: ``params - rate * (updates + weight_decay * params)``, the decay where ``mask``."""
    return jax.tree.map(lambda p, u, m: p - rate * (u + weight_decay * p if m else u), params, updates, mask)


def augment(key, spectra, brightness, noise, offset):
    """Random brightness (per pixel), offset (per pixel) and noise (per band) on a training batch."""
    gain_key, offset_key, noise_key = jax.random.split(key, 3)
    rows = spectra.shape[0]
    gain = jax.random.uniform(gain_key, (rows, 1), minval=1.0 - brightness, maxval=1.0 + brightness)
    shift = offset * jax.random.normal(offset_key, (rows, 1))
    return spectra * gain + shift + noise * jax.random.normal(noise_key, spectra.shape)


@functools.lru_cache(maxsize=None)
def _compiled_refit(classifier: SpectralClassifier, steps: int, chunk: int, dropout: float):
    """(optimiser init, run): ``run(params, opt_state, spectra, labels, draws, mean, scale, hyper,
    key, start, stop)`` takes the steps ``start, start + 1, ...`` on the rows of ``draws`` (chunk,
    batch), leaving the state alone from step ``stop`` on. AdamW as ``optax.adamw`` (Adam, then
    decoupled decay, then the learning rate), the learning rate ``hyper["learning_rate"]`` times a
    cosine decay over ``steps`` steps to `FINAL_LEARNING_RATE_FRACTION`."""
    adam = optax.scale_by_adam()
    schedule = optax.cosine_decay_schedule(1.0, steps, alpha=FINAL_LEARNING_RATE_FRACTION)

    def loss(params, spectra, labels, mean, scale, smoothing, key):
        logits = classifier.apply({"params": params}, spectra, mean, scale, dropout_rate=dropout,
                                  deterministic=False, rngs={"dropout": key})
        soft = optax.smooth_labels(jax.nn.one_hot(labels, classifier.num_classes), smoothing)
        return optax.softmax_cross_entropy(logits, soft).mean()

    @jax.jit
    def run(params, opt_state, spectra, labels, draws, mean, scale, hyper, key, start, stop):
        mask = decayed(classifier, params)
        for number in range(chunk):  # unrolled: see the module docstring
            step = start + number
            step_key, dropout_key = jax.random.split(jax.random.fold_in(key, step))
            rows = draws[number]
            batch = augment(step_key, spectra[rows], hyper["brightness"], hyper["noise"], hyper["offset"])
            grads = jax.grad(loss)(params, batch, labels[rows], mean, scale, hyper["label_smoothing"], dropout_key)
            updates, new_state = adam.update(grads, opt_state, params)
            new_params = decoupled_step(params, updates, mask, hyper["learning_rate"] * schedule(step),
                                        hyper["weight_decay"])
            keep = functools.partial(jnp.where, step < stop)  # new where the step is active, else old
            params = jax.tree.map(keep, new_params, params)
            opt_state = jax.tree.map(keep, new_state, opt_state)
        return params, opt_state

    return jax.jit(adam.init), run
