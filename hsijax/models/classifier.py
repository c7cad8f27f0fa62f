"""A Flax pixel classifier on the shared encoder, loadable from a pretraining checkpoint.

`SpectralClassifier` is the autoencoder's encoder (same parameter names, so a checkpoint's
``params/encoder`` drops in), the step that gives the shared code (`autoencoder.shared_code`: the
band-axis max-pool, or the wavelength grid's pooling or least squares), and a small head
(Dense-GELU-Dense). A wavelength-grid network needs the scene's band count and band centres, fixed
per classifier like its bucket: one classifier classifies one sensor.
`SpectralClassifier.from_pretrained(CKPT, num_classes)` builds it from a workdir, a checkpoint
directory, one step's directory or a shipped model's name: the checkpoint carries its model config.

`hsijax.train.fine_tune` trains all of it, encoder included.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from hsijax.errors import HsijaxError
from hsijax.models.autoencoder import ModelConfig, make_encoder, shared_code
from hsijax.models.saved_model import load_model
from hsijax.spectral import pad_wavelengths

HEAD_WIDTH = 64


class SpectralClassifier(nn.Module):
    config: ModelConfig
    num_classes: int
    band_count: int | None = None  # the real bands of the padded spectra; needed by pooling "real" and the grid
    wavelengths: tuple[float, ...] | None = None  # their band centres (nm); the grid network's default when None

    @nn.compact
    def __call__(self, spectra):
        """(N, B) padded, normalised spectra -> (N, num_classes) logits."""
        rows, length = spectra.shape
        band_count = None if self.band_count is None else jnp.full((rows,), self.band_count)
        wavelengths = has_wavelengths = None
        if self.config.axis == "wavelength_grid":
            if self.band_count is None:
                raise HsijaxError("a wavelength-grid classifier needs the spectra's band count")
            centres = (np.zeros(length) if self.wavelengths is None
                       else pad_wavelengths(self.wavelengths, self.band_count, length))  # checked, padded like spectra
            wavelengths = jnp.broadcast_to(jnp.asarray(centres, jnp.float32), (rows, length))
            has_wavelengths = jnp.full((rows,), self.wavelengths is not None)
        encoder = make_encoder(self.config, name="encoder")
        code = shared_code(encoder, self.config, spectra, band_count, wavelengths, has_wavelengths)
        hidden = nn.gelu(nn.Dense(HEAD_WIDTH, name="head_hidden")(code))
        return nn.Dense(self.num_classes, name="head_out")(hidden)

    def init_variables(self, seed: int = 0):
        return _compiled_init(self)(jax.random.key(seed))

    @classmethod
    def from_pretrained(cls, checkpoint, num_classes: int, seed: int = 0, band_count: int | None = None,
                        wavelengths=None):
        """(classifier, variables): the encoder from ``checkpoint``, a freshly initialised head."""
        return cls.from_model(load_model(checkpoint), num_classes, seed, band_count, wavelengths)

    @classmethod
    def from_model(cls, pretrained, num_classes: int, seed: int = 0, band_count: int | None = None,
                   wavelengths=None):
        """(classifier, variables): the encoder of a loaded `Model`, a freshly initialised head."""
        classifier = cls(pretrained.config, num_classes, band_count, as_wavelengths(wavelengths))
        variables = classifier.init_variables(seed)
        params = dict(variables["params"])
        params["encoder"] = pretrained.variables["params"]["encoder"]
        return classifier, {"params": params}


def as_wavelengths(wavelengths) -> tuple[float, ...] | None:
    """Band centres as the classifier's hashable field (it is a static part of the compiled model)."""
    return None if wavelengths is None else tuple(float(w) for w in np.asarray(wavelengths).reshape(-1))


@functools.lru_cache(maxsize=None)
def _compiled_init(classifier: SpectralClassifier):
    """Compiled once per classifier (see `hsijax.models.autoencoder._compiled_init`)."""
    buckets = classifier.config.buckets
    length = next((b for b in buckets if b >= (classifier.band_count or 0)), buckets[-1])  # one its spectra fit
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
