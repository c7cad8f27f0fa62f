"""A small 2-D convolutional head on patches of a scene's codes or spectra: spatial context learned,
beside the window means of `hsijax.evaluate.spatial` (the few-label study's ``cnn_codes`` and
``cnn_spectra``).

Why this shape: with 100-1,000 labelled pixels a patch network must stay small, and at 16-32
channels a shared code makes it cheap. Each pixel of a ``PATCH`` x ``PATCH`` patch is first mixed
to ``WIDTH`` channels (a 1 x 1 convolution: a code's or a spectrum's channels alike), then two 3 x 3
convolutions see its neighbourhood; the head reads the centre pixel's features beside the patch
mean, so the pixel itself keeps its weight. Training: AdamW with a cosine decay, dropout before the
head, label smoothing, and a random one of the 8 flips and rotations of every patch (a land-cover
patch has no up). The step count is chosen on one cross-validation fold of the training pixels
(its held-out part: whole blocks on a spatially disjoint split), then the network is refitted on all
training pixels for that many steps, as `hsijax.train.fine_tune.fine_tune_refit` does.

The scene stays on the device as one (H + 2r, W + 2r, C) image, reflected at its border, and every
batch gathers its patches inside the compiled step, so no patch array is ever materialised.
"""

from __future__ import annotations

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

PATCH = 9  # the patch side: radius 4, inside the disjoint split's margin (`methods.SPATIAL_MARGIN`)
WIDTH = 32
STEPS = 400  # at most; the step kept is chosen on the held-out fold (every EVAL_EVERY steps)
EVAL_EVERY = 50
CHUNK = 10  # steps per compiled call (EVAL_EVERY is a multiple)
BATCH = 64
LEARNING_RATE = 2e-3
WEIGHT_DECAY = 1e-4
DROPOUT = 0.3
LABEL_SMOOTHING = 0.1
PREDICT_CHUNK = 4096


class PatchNet(nn.Module):
    classes: int
    width: int = WIDTH

    @nn.compact
    def __call__(self, patches, deterministic: bool = True):
        """(N, P, P, C) patches -> (N, classes) logits."""
        x = nn.gelu(nn.Dense(self.width, name="mix")(patches))
        x = nn.gelu(nn.Conv(self.width, (3, 3), name="conv1")(x))
        x = nn.gelu(nn.Conv(self.width, (3, 3), name="conv2")(x))
        centre = x[:, x.shape[1] // 2, x.shape[2] // 2]
        hidden = jnp.concatenate([centre, x.mean((1, 2))], axis=-1)
        hidden = nn.Dropout(DROPOUT, deterministic=deterministic)(hidden)
        return nn.Dense(self.classes, name="head")(hidden)


def padded_image(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(P, C) per-pixel values -> the (H + 2r, W + 2r, C) image, standardised per channel over every
    pixel (label-free) and reflected at its border."""
    image = values.reshape(*shape, -1).astype(np.float32)
    image = (image - image.mean((0, 1))) / (image.std((0, 1)) + 1e-6)
    radius = PATCH // 2
    return np.pad(image, ((radius, radius), (radius, radius), (0, 0)), mode="reflect")


def gather(image, pixels, width: int):
    """(N,) flat pixel indices of the unpadded (H, W) grid -> their (N, P, P, C) patches."""
    rows, cols = pixels // width, pixels % width
    offsets = jnp.arange(PATCH)
    return image[rows[:, None, None] + offsets[None, :, None], cols[:, None, None] + offsets[None, None, :]]


def dihedral(key, patches):
    """Each patch under a random one of the 8 flips and rotations (of its two spatial axes)."""
    flips = jax.random.bernoulli(key, 0.5, (3, patches.shape[0]))[..., None, None, None]
    patches = jnp.where(flips[0], patches[:, ::-1], patches)
    patches = jnp.where(flips[1], patches[:, :, ::-1], patches)
    return jnp.where(flips[2], patches.transpose(0, 2, 1, 3), patches)


@functools.lru_cache(maxsize=None)
def _compiled(classes: int, width: int, steps: int):
    """The training chunk (CHUNK steps) and the prediction, compiled once per class count, image
    width and schedule."""
    net = PatchNet(classes)
    schedule = optax.cosine_decay_schedule(LEARNING_RATE, steps, alpha=0.05)
    optimizer = optax.adamw(schedule, weight_decay=WEIGHT_DECAY)

    def loss(params, image, pixels, targets, key):
        augment_key, dropout_key = jax.random.split(key)
        patches = dihedral(augment_key, gather(image, pixels, width))
        logits = net.apply({"params": params}, patches, deterministic=False, rngs={"dropout": dropout_key})
        soft = optax.smooth_labels(jax.nn.one_hot(targets, classes), LABEL_SMOOTHING)
        return optax.softmax_cross_entropy(logits, soft).mean()

    @jax.jit
    def train_chunk(params, opt_state, image, pixels, targets, draws, key, start):
        # Unrolled, not a lax.scan: XLA's CPU backend runs convolutions inside a loop body far slower
        # (see hsijax.train.fine_tune).
        for index in range(draws.shape[0]):
            batch = draws[index]
            grads = jax.grad(loss)(params, image, pixels[batch], targets[batch], jax.random.fold_in(key, start + index))
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
        return params, opt_state

    @jax.jit
    def logits(params, image, pixels):
        return net.apply({"params": params}, gather(image, pixels, width))

    def init(seed: int, channels: int):
        params = net.init(jax.random.key(seed), jnp.zeros((1, PATCH, PATCH, channels)))["params"]
        return params, optimizer.init(params)

    return init, train_chunk, logits


@dataclasses.dataclass(frozen=True)
class PatchFit:
    predicted: np.ndarray  # (H * W,) 0-based classes of every pixel
    best_step: int
    history: tuple[tuple[int, float], ...]  # (step, held-out accuracy) of the fit on the fold


def predict_all(logits, params, image, count: int) -> np.ndarray:
    out = []
    for start in range(0, count, PREDICT_CHUNK):
        pixels = np.arange(start, start + PREDICT_CHUNK) % count  # a fixed chunk shape: one compilation
        out.append(np.asarray(logits(params, image, jnp.asarray(pixels, jnp.int32)).argmax(-1)))
    return np.concatenate(out)[:count]


def fit_patch_cnn(values: np.ndarray, shape: tuple[int, int], targets: np.ndarray, classes: int,
                  train: np.ndarray, fold: tuple[np.ndarray, np.ndarray], seed: int, steps: int = STEPS) -> PatchFit:
    """Train on the patches around the ``train`` pixels (flat indices into the (H, W) grid of the
    (H * W, C) ``values``; ``targets`` 0-based classes of every pixel), the step count chosen on
    ``fold`` = (fit, held) positions into ``train``, then refitted on all of ``train``; returns every
    pixel's class. Reproducible from ``seed`` (initial parameters, batches, augmentation, dropout)."""
    image = jax.device_put(padded_image(values, shape))
    init, train_chunk, logits = _compiled(classes, shape[1], steps)
    rng = np.random.default_rng(seed)
    pixels = jnp.asarray(train, jnp.int32)
    labels = jnp.asarray(targets[train], jnp.int32)

    def run(members: np.ndarray, stop: int, phase: int, held: np.ndarray | None = None):
        """Steps 0..stop-1 on batches of ``members``: the earliest step with the best held-out
        accuracy (``stop`` without ``held``), the history, and the final parameters."""
        params, opt_state = init(seed, values.shape[-1])
        size = min(BATCH, len(members))
        best, history = (-1.0, stop), []
        key = jax.random.fold_in(jax.random.key(seed), phase)
        for start in range(0, stop, CHUNK):
            count = min(CHUNK, stop - start)
            draws = np.stack([rng.choice(members, size, replace=False) for _ in range(count)]).astype(np.int32)
            params, opt_state = train_chunk(params, opt_state, image, pixels, labels, draws, key, np.int32(start))
            if held is not None and ((start + count) % EVAL_EVERY == 0 or start + count == stop):
                scores = np.asarray(logits(params, image, pixels[held]).argmax(-1))
                accuracy = float(np.mean(scores == targets[train][held]))
                history.append((start + count, accuracy))
                if accuracy > best[0]:
                    best = (accuracy, start + count)
        return best[1], tuple(history), params

    fit, held = (np.asarray(part, np.int64) for part in fold)
    best_step, history, _ = run(fit, steps, 0, held)
    _, _, params = run(np.arange(len(train)), best_step, 1)
    return PatchFit(predict_all(logits, params, image, shape[0] * shape[1]), int(best_step), history)
