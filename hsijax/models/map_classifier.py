"""A land-cover classifier on a network's frozen codes: what `hsijax map` trains, saves and reloads.

A pixel's spectrum goes through the scene's normalisation and the network's encoder (its band
centres given) to a code, the code is standardised, and one of two heads classifies it:
- ``svm_rbf``: an RBF support-vector machine fitted by scikit-learn (libsvm), kept as its arrays --
  support vectors, dual coefficients, intercepts, the support count per class, gamma -- and
  evaluated here in JAX exactly as libsvm does (one-vs-one votes, ties to the lower class);
- ``linear``: a multinomial logistic regression (a linear probe): weights and biases.
Everything is arrays and JSON (no pickle): the head and its record in ``head/``
(`hsijax.models.checkpoints.save_arrays`) beside the encoder, a saved model in ``encoder/``, in one
folder written whole or not at all, so `load_classifier` needs nothing else.

Why frozen codes: the shipped linear network's codes are fixed by its fit on many sensors, and a
head on them is chosen and fitted in seconds by cross-validation on a few hundred labels.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from hsijax.errors import HsijaxError
from hsijax.models.checkpoints import load_arrays, load_model, new_folder, save_arrays, save_model
from hsijax.models.inference import encode
from hsijax.models.model import Model
from hsijax.spectral import Normalization

KINDS = ("svm_rbf", "linear")
CHUNK = 65536  # pixels a prediction call takes


@dataclasses.dataclass(frozen=True)
class MapClassifier:
    """An encoder, the standardisation of its codes and a head; ``classes`` are the label numbers
    of the user's label image (``class_names`` when known), ``normalization`` the map from sensor
    values to [0, 1] it was trained with, ``wavelengths_nm`` the band centres of that scene."""

    model: Model
    kind: str
    arrays: dict[str, np.ndarray]
    classes: tuple[int, ...]
    class_names: tuple[str, ...]
    normalization: Normalization
    wavelengths_nm: tuple[float, ...] | None
    record: dict = dataclasses.field(default_factory=dict)

    def codes(self, spectra: np.ndarray, wavelengths=None, normalization: Normalization | None = None) -> np.ndarray:
        """Standardised codes (n, c) of spectra (n, b) in sensor units (``normalization``: another
        than the saved one; ``wavelengths``: another scene's band centres)."""
        norm = normalization or self.normalization
        band_centres = self.wavelengths_nm if wavelengths is None else wavelengths
        codes = encode(self.model, np.asarray(spectra, np.float32), wavelengths=band_centres, normalization=norm)
        return self.standardise(codes)

    def standardise(self, codes: np.ndarray) -> np.ndarray:
        """Codes (n, c) of the encoder, standardised as the head was trained."""
        return (np.asarray(codes, np.float32) - self.arrays["mean"]) / self.arrays["scale"]

    @functools.cached_property
    def _head(self):
        """(the head's function, its parameters on the device): made once, for every block mapped."""
        if self.kind == "svm_rbf":
            head, parameters = _svm_votes, _svm_pairs(self.arrays)
        else:
            head, parameters = _linear_scores, {k: self.arrays[k] for k in ("weights", "bias")}
        return head, {k: jnp.asarray(v) for k, v in parameters.items()}

    def predict_codes(self, codes: np.ndarray) -> np.ndarray:
        """The label numbers of standardised codes (n, c), in chunks of `CHUNK` pixels (`hsijax map`
        gives it one such chunk of the scene at a time)."""
        head, parameters = self._head
        out = np.empty(len(codes), np.int64)
        for start in range(0, len(codes), CHUNK):
            chunk = codes[start:start + CHUNK]
            out[start:start + len(chunk)] = np.asarray(_predict(head, parameters, jnp.asarray(chunk, jnp.float32)))
        return np.asarray(self.classes)[out]

    def predict(self, spectra: np.ndarray, wavelengths=None, normalization: Normalization | None = None) -> np.ndarray:
        """The label numbers of spectra (n, b) in sensor units."""
        return self.predict_codes(self.codes(spectra, wavelengths, normalization))


@jax.jit
def _rbf(features, vectors, gamma):
    squared = (jnp.sum(features**2, 1)[:, None] + jnp.sum(vectors**2, 1)[None, :]
               - 2 * jnp.dot(features, vectors.T, precision=jax.lax.Precision.HIGHEST))
    return jnp.exp(-gamma * jnp.maximum(squared, 0.0))


def _svm_pairs(arrays: dict) -> dict[str, np.ndarray]:
    """libsvm's one-vs-one layout as matrices: for each pair of classes (i < j), in libsvm's order,
    the dual coefficients of its support vectors as one column of ``coefficients`` (n_sv, pairs)
    (class i's vectors carry row j - 1 of ``dual_coef``, class j's row i), and one-hot ``first``
    / ``second`` (pairs, classes) saying which class each pair's sign votes for."""
    counts = np.asarray(arrays["n_support"])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    dual = np.asarray(arrays["dual_coef"])
    pairs = [(i, j) for i in range(len(counts)) for j in range(i + 1, len(counts))]
    coefficients = np.zeros((dual.shape[1], len(pairs)), np.float32)
    first, second = np.zeros((len(pairs), len(counts)), np.int32), np.zeros((len(pairs), len(counts)), np.int32)
    for pair, (i, j) in enumerate(pairs):
        in_i, in_j = slice(starts[i], starts[i] + counts[i]), slice(starts[j], starts[j] + counts[j])
        coefficients[in_i, pair], coefficients[in_j, pair] = dual[j - 1, in_i], dual[i, in_j]
        first[pair, i], second[pair, j] = 1, 1
    return {"support_vectors": arrays["support_vectors"], "gamma": arrays["gamma"], "intercept": arrays["intercept"],
            "coefficients": coefficients, "first": first, "second": second}


def _svm_votes(parameters, features):
    """libsvm's one-vs-one prediction: each pair's decision value (one matrix product for all pairs)
    votes by its sign; the class with most votes wins, ties going to the lower class index."""
    kernel = _rbf(features, parameters["support_vectors"], parameters["gamma"])
    decision = (jnp.dot(kernel, parameters["coefficients"], precision=jax.lax.Precision.HIGHEST)
                + parameters["intercept"])
    wins = (decision > 0).astype(jnp.int32)
    return wins @ parameters["first"] + (1 - wins) @ parameters["second"]


def _linear_scores(parameters, features):
    return jnp.dot(features, parameters["weights"], precision=jax.lax.Precision.HIGHEST) + parameters["bias"]


@functools.partial(jax.jit, static_argnums=0)
def _predict(head, parameters, features):
    return jnp.argmax(head(parameters, features), axis=1)


def head_arrays(estimator) -> tuple[str, dict[str, np.ndarray]]:
    """(kind, arrays) of a fitted scikit-learn ``SVC(kernel="rbf")`` or ``LogisticRegression``."""
    name = type(estimator).__name__
    if name == "SVC":
        return "svm_rbf", {"support_vectors": estimator.support_vectors_.astype(np.float32),
                           "dual_coef": estimator.dual_coef_.astype(np.float32),
                           "intercept": estimator.intercept_.astype(np.float32),
                           "n_support": estimator.n_support_.astype(np.int32),
                           "gamma": np.asarray(estimator._gamma, np.float32)}
    if name == "LogisticRegression":
        weights, bias = estimator.coef_.T, estimator.intercept_
        if weights.shape[1] == 1:  # two classes: one score, the second class's
            weights, bias = np.concatenate([-weights, weights], 1) / 2, np.array([-bias[0], bias[0]]) / 2
        return "linear", {"weights": weights.astype(np.float32), "bias": bias.astype(np.float32)}
    raise HsijaxError(f"a map classifier's head is an RBF SVC or a LogisticRegression, not {name}")


def save_classifier(classifier: MapClassifier, directory) -> Path:
    """The new folder ``directory``: ``head/`` (the head's arrays and record) and ``encoder/``."""
    record = {"kind": classifier.kind, "classes": list(classifier.classes), "class_names": list(classifier.class_names),
              "normalization": {"offset": classifier.normalization.offset, "scale": classifier.normalization.scale},
              "wavelengths_nm": None if classifier.wavelengths_nm is None else list(classifier.wavelengths_nm),
              **classifier.record}
    with new_folder(directory) as staging:
        save_arrays(staging / "head", classifier.arrays, {"record": record})
        save_model(classifier.model, staging / "encoder")
    return Path(directory)


def load_classifier(directory) -> MapClassifier:
    """The classifier `save_classifier` (``hsijax map``) wrote in ``directory``."""
    if not (Path(directory) / "head").is_dir():
        raise HsijaxError(f"{directory}: not a map classifier (no head/; `hsijax map --out DIR` writes DIR/classifier)")
    arrays, records = load_arrays(Path(directory) / "head")
    record = dict(records["record"])
    if record.get("kind") not in KINDS:
        raise HsijaxError(f"{directory}: not a map classifier (its record names no head of {KINDS})")
    norm = record.pop("normalization")
    wavelengths = record.pop("wavelengths_nm")
    return MapClassifier(load_model(Path(directory) / "encoder"), record.pop("kind"),
                         {k: np.asarray(v) for k, v in arrays.items()}, tuple(record.pop("classes")),
                         tuple(record.pop("class_names")), Normalization(norm["offset"], norm["scale"]),
                         None if wavelengths is None else tuple(wavelengths), record)
