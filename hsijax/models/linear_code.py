"""The baseline every shared code must beat: PCA on the shared wavelength grid.

Fitted on the pretraining scenes' spectra resampled onto `hsijax.data.shared_grid` (each scene
weighted equally, so a large scene does not outvote a small one; grid points a scene does not cover
are filled with the mean of the scenes that do). A spectrum of any sensor with known wavelengths is
encoded by least squares on the grid points its sensor covers -- so a VNIR-only sensor is fitted on
its own range, not on zeros -- then decoded on the whole grid and resampled back to its bands.
Nothing is fitted to the scene being encoded: it is the linear counterpart of the shared encoder.

A fitted code is saved in Orbax's layout, locally or to a bucket (`save`, `load`), with each
component's standard deviation over the fitted spectra (``scale``), which `to_model` uses to
whiten the network form's codes. One ships with
hsijax (`SharedGridPCA.load_pretrained()`, offline): 32 components fitted by ``hsijax grid-pca`` on
every real scene with wavelengths here plus the USGS library mixtures -- on sensors it never saw,
the best shared code this project has measured (docs/leave_out). Principal components are nested,
so the first c of them are the width-c fit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from hsijax.data.shared_grid import GRID_POINTS, from_grid, grid_interpolation, to_grid
from hsijax.errors import HsijaxError, describe
from hsijax.files import storage_path
from hsijax.models.autoencoder import Model, ModelConfig
from hsijax.models.saved_model import absl_quiet, new_folder

MAX_PIXELS_PER_SCENE = 20_000  # enough for a 32-component basis; keeps the fit under a second
SHIPPED = Path(__file__).resolve().parents[1] / "weights" / "shared_grid_pca"


@dataclasses.dataclass(frozen=True)
class SharedGridPCA:
    """Mean (G,) and orthonormal basis (c, G) on the shared grid; ``scale`` (c,) is each
    component's standard deviation over the fitted spectra (None for a code saved without it)."""

    mean: np.ndarray
    basis: np.ndarray
    scale: np.ndarray | None = None

    def truncated(self, code_width: int) -> SharedGridPCA:
        """The first ``code_width`` components (principal components are nested)."""
        if not 1 <= code_width <= self.code_width:
            raise HsijaxError(f"code width {code_width}: this code holds 1 to {self.code_width} components")
        return SharedGridPCA(self.mean, self.basis[:code_width], None if self.scale is None else self.scale[:code_width])

    @property
    def code_width(self) -> int:
        return self.basis.shape[0]

    @classmethod
    def fit(cls, scenes: Sequence[tuple[np.ndarray, np.ndarray]], code_width: int, seed: int = 0) -> SharedGridPCA:
        """``scenes``: (spectra (N, b) in [0, 1], band centres (b,) nm) per scene."""
        if not scenes:
            raise HsijaxError("the shared-grid PCA needs at least one scene with wavelengths")
        rng = np.random.default_rng(seed)
        values, covered, weights = [], [], []
        for spectra, wavelengths in scenes:
            spectra = np.asarray(spectra, np.float64).reshape(-1, len(wavelengths))
            if len(spectra) > MAX_PIXELS_PER_SCENE:
                spectra = spectra[rng.choice(len(spectra), MAX_PIXELS_PER_SCENE, replace=False)]
            interpolation = grid_interpolation(wavelengths)
            values.append(to_grid(spectra, interpolation))
            covered.append(np.broadcast_to(interpolation.covered, (len(spectra), GRID_POINTS)))
            weights.append(np.full(len(spectra), 1.0 / len(spectra)))
        values, covered, weights = np.concatenate(values), np.concatenate(covered), np.concatenate(weights)
        coverage = (covered * weights[:, None]).sum(axis=0)
        weighted_sum = (values * covered * weights[:, None]).sum(axis=0)
        mean = np.where(coverage > 0, weighted_sum / np.maximum(coverage, 1e-12), 0.0)
        filled = np.where(covered, values, mean)
        centred = (filled - mean) * np.sqrt(weights)[:, None]
        _, singular, components = np.linalg.svd(centred, full_matrices=False)
        if code_width > len(components):
            raise HsijaxError(f"code width {code_width} is more than the {len(components)} spectra fitted")
        spread = singular[:code_width] / np.sqrt(weights.sum())  # the weighted std of each component's code
        return cls(mean, components[:code_width], np.maximum(spread, 1e-12))

    def encode(self, spectra: np.ndarray, wavelengths: np.ndarray) -> np.ndarray:
        """(N, b) spectra of one sensor -> (N, c) codes: least squares on the covered grid points."""
        interpolation = grid_interpolation(wavelengths)
        covered = interpolation.covered
        if covered.sum() < self.code_width:
            raise HsijaxError(f"the sensor covers {int(covered.sum())} grid points, fewer than the code "
                              f"width {self.code_width}")
        grid = to_grid(np.asarray(spectra, np.float64), interpolation)
        codes, *_ = np.linalg.lstsq(self.basis[:, covered].T, (grid - self.mean)[:, covered].T, rcond=None)
        return codes.T

    def decode(self, codes: np.ndarray, wavelengths: np.ndarray) -> np.ndarray:
        """(N, c) codes -> (N, b) spectra at the band centres ``wavelengths``."""
        return from_grid(self.mean + codes @ self.basis, wavelengths)

    def reconstruct(self, spectra: np.ndarray, wavelengths: np.ndarray) -> np.ndarray:
        shape = np.shape(spectra)
        flat = np.reshape(spectra, (-1, shape[-1]))
        return self.decode(self.encode(flat, wavelengths), wavelengths).reshape(shape).astype(np.float32)

    def to_model(self, whiten: bool = True, **config) -> Model:
        """This code as the linear network (`autoencoder.LinearGridCode`), usable wherever a `Model`
        is -- `hsijax.encode`, `save_model`, a classifier's encoder. ``config``: other `ModelConfig`
        fields (e.g. ``buckets``).

        Whitened (the default): each basis vector is multiplied by its component's standard deviation,
        so the network's code numbers have unit variance over the fitted spectra -- the same subspace
        and the same reconstructions, codes divided by `scale`. A classifier head (Dense layers,
        Adam at 1e-3) learns from unit-variance inputs; the raw codes' standard deviations are
        0.04-0.5 on Indian Pines, and fine-tuned on them it classified validation pixels about 10
        points worse than on codes standardised on the scene. ``whiten=False``: exactly `encode`'s
        codes."""
        if whiten and self.scale is None:
            raise HsijaxError("this shared-grid PCA was saved without its component scales; refit it to whiten")
        basis = self.basis * self.scale[:, None] if whiten else self.basis
        model_config = ModelConfig(code_width=self.code_width, axis="wavelength_grid", network="linear", **config)
        encoder = {"mean": np.asarray(self.mean, np.float32), "basis": np.asarray(basis, np.float32)}
        return Model(model_config, {"params": {"encoder": encoder}})

    def save(self, directory, record: dict | None = None) -> epath.Path:
        """Write the code to the new folder ``directory`` (local or an object-store URI) in Orbax's
        layout, as the shipped network's weights are: ``arrays`` (mean and basis, float32) and
        ``record`` (JSON: what it was fitted on), written last."""
        with new_folder(directory) as staging:
            checkpointer = ocp.StandardCheckpointer()
            arrays = {"mean": self.mean, "basis": self.basis, **({} if self.scale is None else {"scale": self.scale})}
            checkpointer.save(staging / "arrays", {key: np.asarray(value, np.float32) for key, value in arrays.items()})
            checkpointer.wait_until_finished()
            (staging / "record").mkdir()
            ocp.JsonCheckpointHandler().save(staging / "record", args=ocp.args.JsonSave(record or {}))
        return storage_path(directory)

    @classmethod
    def load(cls, directory, code_width: int | None = None) -> SharedGridPCA:
        """A saved code, its first ``code_width`` components (default: all)."""
        directory = storage_path(directory)
        try:
            with absl_quiet():
                arrays = ocp.StandardCheckpointer().restore(directory / "arrays")
            mean, basis = (np.asarray(arrays[key], np.float64) for key in ("mean", "basis"))
            scale = np.asarray(arrays["scale"], np.float64) if "scale" in arrays else None
        except Exception as error:  # Orbax and TensorStore raise many types for a missing or damaged folder
            raise HsijaxError(f"{directory}: not a saved shared-grid PCA ({describe(error)})") from None
        if mean.shape != (GRID_POINTS,) or basis.ndim != 2 or basis.shape[1] != GRID_POINTS:
            raise HsijaxError(f"{directory}: its arrays do not have the shared grid's {GRID_POINTS} points")
        width = basis.shape[0] if code_width is None else code_width
        if not 1 <= width <= basis.shape[0]:
            raise HsijaxError(f"code width {width}: {directory} holds 1 to {basis.shape[0]} components")
        return cls(mean, basis, scale).truncated(width)

    @classmethod
    def load_pretrained(cls, code_width: int = 16) -> SharedGridPCA:
        """The shipped code (see the module docstring), its first ``code_width`` components (<= 32)."""
        if not (SHIPPED / "arrays").is_dir():
            raise HsijaxError(f"{SHIPPED}: the shipped shared-grid PCA is missing from this installation")
        return cls.load(SHIPPED, code_width)


def saved_record(directory) -> dict:
    """What a saved code was fitted on (the ``record`` given to `SharedGridPCA.save`)."""
    return ocp.JsonCheckpointHandler().restore(storage_path(directory) / "record")


def own_pca_reconstruction(spectra: np.ndarray, code_width: int) -> np.ndarray:
    """The scene's own PCA at ``code_width`` (fitted on the scene it reconstructs): a transductive
    ceiling for any linear code of that width, not a method a user could apply to a new sensor."""
    shape = spectra.shape
    flat = spectra.reshape(-1, shape[-1]).astype(np.float64)
    mean = flat.mean(axis=0)
    _, _, components = np.linalg.svd(flat - mean, full_matrices=False)
    basis = components[:code_width]
    return (mean + (flat - mean) @ basis.T @ basis).reshape(shape).astype(np.float32)
