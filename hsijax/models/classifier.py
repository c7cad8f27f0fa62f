"""A Flax pixel classifier on the shared encoder, loadable from a pretraining checkpoint.

`SpectralClassifier` is a network's encoder (`hsijax.models.networks.encoder_module`: the same
parameter names, so a checkpoint's ``params/encoder`` drops in), the step that gives the shared
code, and a small head (Dense-GELU-Dense). It classifies spectra of one sensor: its band count and
band centres are fixed per classifier, like its bucket. The linear network's code is its folded
matrix (`LinearGridCode.operators`), recomputed from the parameters in every step, so fine-tuning
reaches the basis through it. A network that needs band centres refuses a classifier without them.
`SpectralClassifier.from_pretrained(CKPT, num_classes, band_count=..., wavelengths=...)` builds it
from a workdir, a checkpoint directory, one step's directory or a shipped model's name: the
checkpoint carries its network config.

`hsijax.train.fine_tune` trains all of it, encoder included. Off by default (the same parameters,
the same logits): a fixed standardisation of the code and dropout before the head, used by
`hsijax.train.fine_tune.fine_tune_refit`, whose predictions go through `predict(...,
standardisation=...)`; `codes` gives the encoder's codes.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from hsijax.errors import HsijaxError
from hsijax.models.checkpoints import load_model
from hsijax.models.networks import NetworkConfig, encoder_module
from hsijax.spectral import check_wavelengths, pad_wavelengths

HEAD_WIDTH = 64


class SpectralClassifier(nn.Module):
    config: NetworkConfig
    num_classes: int
    band_count: int | None = None  # the real bands of the padded spectra; needed by pooling "real" and the grid
    wavelengths: tuple[float, ...] | None = None  # their band centres (nm); the grid networks need them

    def check(self) -> None:
        """Refuse what this classifier cannot encode (one line): band centres a network needs."""
        self.config.require_wavelengths(self.wavelengths)
        if self.config.needs_wavelengths and self.band_count is None:
            raise HsijaxError("a wavelength-grid classifier needs the spectra's band count")
        if self.wavelengths is not None and self.band_count is not None:
            check_wavelengths(self.wavelengths, self.band_count)

    @nn.compact
    def __call__(self, spectra, code_mean=None, code_scale=None, dropout_rate: float = 0.0,
                 deterministic: bool = True, return_code: bool = False):
        """(N, B) padded, normalised spectra -> (N, num_classes) logits.

        Optional, all off by default (the plain classifier, the same parameters): the head sees
        ``(code - code_mean) / code_scale``, a fixed affine that is not a parameter (see
        `hsijax.train.fine_tune.fine_tune_refit`); ``dropout_rate`` > 0 drops code entries before
        the head unless ``deterministic`` (needs a ``"dropout"`` rng); ``return_code`` returns the
        encoder's code (N, code_width) itself, before any of that.
        """
        self.check()
        rows, length = spectra.shape
        encoder = encoder_module(self.config, name="encoder")
        if self.config.folds_per_sensor:
            operators = encoder.operators(jnp.asarray(self.wavelengths, jnp.float32))
            code = spectra[:, : self.band_count] @ operators.encode + operators.offset
        else:
            band_count = None if self.band_count is None else jnp.full((rows,), self.band_count)
            wavelengths = None
            if self.wavelengths is not None:
                padded = pad_wavelengths(self.wavelengths, self.band_count, length)  # padded like the spectra
                wavelengths = jnp.broadcast_to(jnp.asarray(padded, jnp.float32), (rows, length))
            code = encoder(spectra, band_count, wavelengths)
        if return_code:
            return code
        if code_mean is not None:
            code = (code - code_mean) / code_scale
        if dropout_rate > 0:
            code = nn.Dropout(dropout_rate, deterministic=deterministic)(code)
        hidden = nn.gelu(nn.Dense(HEAD_WIDTH, name="head_hidden")(code))
        return nn.Dense(self.num_classes, name="head_out")(hidden)

    def init_variables(self, seed: int = 0):
        self.check()
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
    """Compiled once per classifier (see `hsijax.models.model._compiled_init`)."""
    buckets = classifier.config.buckets
    length = next((b for b in buckets if b >= (classifier.band_count or 0)), buckets[-1])  # one its spectra fit
    return jax.jit(lambda key: classifier.init(key, jnp.zeros((1, length), jnp.float32)))


def predict(classifier: SpectralClassifier, variables, spectra: np.ndarray, chunk: int = 4096,
            standardisation: tuple | None = None) -> np.ndarray:
    """Class indices (N,) for (N, B) spectra, in fixed-size chunks (one compilation per bucket).
    ``standardisation`` = (code mean, code scale): the fixed affine before the head (see `__call__`)."""
    if standardisation is None:
        apply = _predict_fn(classifier)
    else:
        mean, scale = (jnp.asarray(value, jnp.float32) for value in standardisation)
        apply = functools.partial(_standardised_predict_fn(classifier), mean=mean, scale=scale)
    return _chunked(apply, variables, spectra, chunk, np.zeros((0,), np.int32))


def probabilities(classifier: SpectralClassifier, variables, spectra: np.ndarray, chunk: int = 4096,
                  standardisation: tuple | None = None) -> np.ndarray:
    """Softmax class probabilities (N, num_classes) for (N, B) spectra, chunked like `predict`: what
    an ensemble averages (`hsijax.train.fine_tune.FineTunedRefit.predict`)."""
    mean, scale = (None, None) if standardisation is None else (jnp.asarray(v, jnp.float32) for v in standardisation)
    apply = functools.partial(_probabilities_fn(classifier), mean=mean, scale=scale)
    return _chunked(apply, variables, spectra, chunk, np.zeros((0, classifier.num_classes), np.float32))


def codes(classifier: SpectralClassifier, variables, spectra: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """The encoder's codes (N, code_width) of (N, B) spectra, chunked like `predict`."""
    return _chunked(_codes_fn(classifier), variables, spectra, chunk,
                    np.zeros((0, classifier.config.code_width), np.float32))


def _chunked(apply, variables, spectra: np.ndarray, chunk: int, empty: np.ndarray) -> np.ndarray:
    chunk = min(chunk, 1 << max(0, len(spectra) - 1).bit_length())  # small sets: a small power of two
    out = []
    for start in range(0, len(spectra), chunk):
        part = spectra[start:start + chunk]
        padded = np.zeros((chunk, part.shape[1]), np.float32)
        padded[: len(part)] = part
        out.append(np.asarray(apply(variables, padded))[: len(part)])
    return np.concatenate(out) if out else empty


@functools.lru_cache(maxsize=None)
def _predict_fn(classifier: SpectralClassifier):
    return jax.jit(lambda variables, spectra: classifier.apply(variables, spectra).argmax(axis=-1))


@functools.lru_cache(maxsize=None)
def _standardised_predict_fn(classifier: SpectralClassifier):
    return jax.jit(lambda variables, spectra, mean, scale:
                   classifier.apply(variables, spectra, mean, scale).argmax(axis=-1))


@functools.lru_cache(maxsize=None)
def _probabilities_fn(classifier: SpectralClassifier):
    return jax.jit(lambda variables, spectra, mean, scale:
                   jax.nn.softmax(classifier.apply(variables, spectra, mean, scale), axis=-1))


@functools.lru_cache(maxsize=None)
def _codes_fn(classifier: SpectralClassifier):
    return jax.jit(lambda variables, spectra: classifier.apply(variables, spectra, return_code=True))
