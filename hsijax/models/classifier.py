"""A Flax pixel classifier on the shared encoder, loadable from a pretraining checkpoint.

`SpectralClassifier` is the autoencoder's encoder (same parameter names, so a checkpoint's
``params/encoder`` drops in), the band-axis max-pool that gives the shared code, and a small
head (Dense-GELU-Dense). `SpectralClassifier.from_pretrained(CKPT, num_classes)` builds it from a
workdir, a checkpoint directory or one step's directory: the checkpoint carries its model config.

`hsijax.train.fine_tune` trains all of it, encoder included.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from hsijax.errors import HsijaxError
from hsijax.models.autoencoder import Encoder, ModelConfig, pool_codes
from hsijax.models.saved_model import load_model

HEAD_WIDTH = 64


class SpectralClassifier(nn.Module):
    config: ModelConfig
    num_classes: int
    band_count: int | None = None  # the real bands of the padded spectra; needed by pooling "real"

    @nn.compact
    def __call__(self, spectra):
        """(N, B) padded, normalised spectra -> (N, num_classes) logits."""
        if self.config.axis != "bands":
            raise HsijaxError("the classifier fine-tunes band-axis encoders; classify a wavelength-grid "
                              "network's frozen codes (hsijax.encode) instead")
        band_count = None if self.band_count is None else jnp.full(spectra.shape[:1], self.band_count)
        code = pool_codes(Encoder(self.config, name="encoder")(spectra), self.config, band_count)
        hidden = nn.gelu(nn.Dense(HEAD_WIDTH, name="head_hidden")(code))
        return nn.Dense(self.num_classes, name="head_out")(hidden)

    def init_variables(self, seed: int = 0):
        return _compiled_init(self)(jax.random.key(seed))

    @classmethod
    def from_pretrained(cls, checkpoint, num_classes: int, seed: int = 0, band_count: int | None = None):
        """(classifier, variables): the encoder from ``checkpoint``, a freshly initialised head."""
        return cls.from_model(load_model(checkpoint), num_classes, seed, band_count)

    @classmethod
    def from_model(cls, pretrained, num_classes: int, seed: int = 0, band_count: int | None = None):
        """(classifier, variables): the encoder of a loaded `Model`, a freshly initialised head."""
        classifier = cls(pretrained.config, num_classes, band_count)
        variables = classifier.init_variables(seed)
        params = dict(variables["params"])
        params["encoder"] = pretrained.variables["params"]["encoder"]
        return classifier, {"params": params}


@functools.lru_cache(maxsize=None)
def _compiled_init(classifier: SpectralClassifier):
    """Compiled once per classifier (see `hsijax.models.autoencoder._compiled_init`)."""
    length = classifier.config.buckets[0]
    return jax.jit(lambda key: classifier.init(key, jnp.zeros((1, length), jnp.float32)))


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
