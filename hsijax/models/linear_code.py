"""The shared-grid PCA: the parameters of the linear network on the wavelength grid, and the
baseline every shared code must beat.

Fitted on the pretraining scenes' spectra resampled onto `hsijax.data.shared_grid` (each scene
weighted equally, so a large scene does not outvote a small one; grid points a scene does not cover
are filled with the mean of the scenes that do), from float64 sums per scene (`SceneMoments`), so
the same estimator runs in memory (`SharedGridPCA.fit`) and summed over a mesh of hosts
(`hsijax.train.grid_fit`). A spectrum of any sensor with known wavelengths is encoded by least
squares on the grid points its sensor covers -- so a VNIR-only sensor is fitted on its own range,
not on zeros -- then decoded on the whole grid and resampled back to its bands; that is the linear
network (`hsijax.models.networks.linear_grid`), which `encode` and `reconstruct` run (one
implementation). Nothing is fitted to the scene being encoded.

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
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from hsijax.data.shared_grid import GRID_POINTS, from_grid, grid_interpolation, to_grid
from hsijax.errors import HsijaxError, describe
from hsijax.files import storage_path
from hsijax.models.checkpoints import RECORD, STATE, Damaged, absl_quiet, read_arrays, save_arrays
from hsijax.models.inference import encode, reconstruct
from hsijax.models.model import Model
from hsijax.models.networks import LinearGridConfig

MAX_PIXELS_PER_SCENE = 20_000  # enough for a 32-component basis; keeps the fit under a second
SHIPPED = Path(__file__).resolve().parents[1] / "weights" / "shared_grid_pca"


class SceneMoments(NamedTuple):
    """What the fit needs of one scene: float64 sums over its (sampled) spectra resampled onto the
    shared grid -- zero where its sensor does not cover it. Sums of any split of the pixels add up
    to the whole's, so they are accumulated per device and summed over a mesh
    (`hsijax.train.grid_fit`)."""

    count: float
    total: np.ndarray  # (G,) sum of the grid values
    outer: np.ndarray  # (G, G) sum of their outer products
    covered: np.ndarray  # (G,) bool, the grid points the scene's sensor covers


def sample_indices(count: int, rng: np.random.Generator) -> np.ndarray:
    """The pixels of a scene of ``count`` that the fit uses: all of them, or `MAX_PIXELS_PER_SCENE`
    drawn without replacement from ``rng`` (scenes draw in turn from one generator)."""
    if count > MAX_PIXELS_PER_SCENE:
        return rng.choice(count, MAX_PIXELS_PER_SCENE, replace=False)
    return np.arange(count)


def scene_moments(spectra: np.ndarray, wavelengths: np.ndarray) -> SceneMoments:
    """`SceneMoments` of spectra (N, b) of one sensor, in float64."""
    interpolation = grid_interpolation(wavelengths)
    grid = to_grid(np.asarray(spectra, np.float64), interpolation)
    return SceneMoments(float(len(grid)), grid.sum(axis=0), grid.T @ grid, np.asarray(interpolation.covered))


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
        """``scenes``: (spectra (N, b) in [0, 1], band centres (b,) nm) per scene, in memory; each
        scene's `sample_indices` (at most `MAX_PIXELS_PER_SCENE`, drawn in turn from one ``seed``)."""
        rng = np.random.default_rng(seed)
        moments = []
        for spectra, wavelengths in scenes:
            spectra = np.asarray(spectra).reshape(-1, len(wavelengths))
            moments.append(scene_moments(spectra[sample_indices(len(spectra), rng)], wavelengths))
        return cls.from_moments(moments, code_width)

    @classmethod
    def from_moments(cls, moments: Sequence[SceneMoments], code_width: int) -> SharedGridPCA:
        """The estimator, from each scene's sums (`SceneMoments`, however they were accumulated):
        every scene weighs the same (its pixels 1 / n each); the mean of a grid point is the mean of
        the scenes that cover it; a scene's spectra are centred on it where they cover the grid and
        filled with it (contributing nothing) where they do not; the components are the leading
        eigenvectors of that weighted covariance, each signed so that its largest entry is positive,
        and ``scale`` their standard deviations (sqrt(eigenvalue / scenes))."""
        if not moments:
            raise HsijaxError("the shared-grid PCA needs at least one scene with wavelengths")
        covered = np.stack([m.covered for m in moments]).astype(np.float64)
        means = np.stack([m.total / m.count for m in moments])
        coverage = covered.sum(axis=0)
        mean = np.where(coverage > 0, (covered * means).sum(axis=0) / np.maximum(coverage, 1.0), 0.0)
        covariance = np.zeros((GRID_POINTS, GRID_POINTS))
        for m, mask in zip(moments, covered):
            centred = m.outer - np.outer(m.total, mean) - np.outer(mean, m.total) + m.count * np.outer(mean, mean)
            covariance += centred * mask[:, None] * mask[None, :] / m.count
        rank = min(int(sum(m.count for m in moments)), GRID_POINTS)
        if code_width > rank:
            raise HsijaxError(f"code width {code_width} is more than the {rank} spectra fitted")
        eigenvalues, vectors = np.linalg.eigh(covariance)
        components = vectors[:, ::-1][:, :code_width].T
        largest = components[np.arange(code_width), np.abs(components).argmax(axis=1)]
        components = components * np.sign(largest)[:, None]
        spread = np.sqrt(np.maximum(eigenvalues[::-1][:code_width], 0.0) / len(moments))
        return cls(mean, components, np.maximum(spread, 1e-12))

    @functools.cached_property
    def _network(self) -> Model:
        return self.to_model(whiten=False)

    def encode(self, spectra: np.ndarray, wavelengths: np.ndarray) -> np.ndarray:
        """(..., b) spectra of one sensor -> (..., c) codes: least squares on the covered grid points,
        computed by the linear network (`to_model(whiten=False)`), the one implementation."""
        return encode(self._network, spectra, wavelengths)

    def decode(self, codes: np.ndarray, wavelengths: np.ndarray) -> np.ndarray:
        """(N, c) codes -> (N, b) spectra at the band centres ``wavelengths``."""
        return from_grid(self.mean + np.asarray(codes, np.float64) @ self.basis, np.asarray(wavelengths))

    def reconstruct(self, spectra: np.ndarray, wavelengths: np.ndarray) -> np.ndarray:
        """(..., b) -> (..., b) float32, through the linear network (the same as the whitened one's)."""
        return reconstruct(self._network, spectra, wavelengths)

    def to_model(self, whiten: bool = True, **config) -> Model:
        """This code as the linear network (`hsijax.models.networks.linear_grid`), usable wherever a
        `Model` is -- `hsijax.encode`, `save_model`, a classifier's encoder. ``config``: other
        `LinearGridConfig` fields (``buckets``).

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
        model_config = LinearGridConfig(code_width=self.code_width, **config)
        encoder = {"mean": np.asarray(self.mean, np.float32), "basis": np.asarray(basis, np.float32)}
        return Model(model_config, {"params": {"encoder": encoder}})

    def save(self, directory, record: dict | None = None) -> epath.Path:
        """Write the code to the new folder ``directory`` (local or an object-store URI) as the
        checkpoint module writes arrays (`hsijax.models.checkpoints.save_arrays`): ``state/`` (mean,
        basis and scale, float32), ``record`` (JSON: what it was fitted on) and the arrays'
        ``checksum/``, written last, so a damaged or cut-short copy is refused, not read."""
        arrays = {"mean": self.mean, "basis": self.basis, **({} if self.scale is None else {"scale": self.scale})}
        return save_arrays(directory, {key: np.asarray(value, np.float32) for key, value in arrays.items()},
                           {RECORD: record or {}})

    @classmethod
    def load(cls, directory, code_width: int | None = None) -> SharedGridPCA:
        """A saved code, its first ``code_width`` components (default: all). Also reads hsijax 0.2's
        layout (``arrays/`` and ``record/``, written before this file had a checksum)."""
        directory = storage_path(directory)
        try:
            if (directory / STATE).is_dir():
                arrays, _ = read_arrays(directory, ())
            else:  # 0.2
                with absl_quiet():
                    arrays = ocp.StandardCheckpointer().restore(directory / "arrays")
            mean, basis = (np.asarray(arrays[key], np.float64) for key in ("mean", "basis"))
            scale = np.asarray(arrays["scale"], np.float64) if "scale" in arrays else None
        except Damaged as error:
            raise HsijaxError(f"{directory}: not a readable shared-grid PCA ({error})") from None
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
        if not (SHIPPED / RECORD).is_dir():
            raise HsijaxError(f"{SHIPPED}: the shipped shared-grid PCA is missing from this installation")
        return cls.load(SHIPPED, code_width)


def saved_record(directory) -> dict:
    """What a saved code was fitted on (the ``record`` given to `SharedGridPCA.save`)."""
    return ocp.JsonCheckpointHandler().restore(storage_path(directory) / RECORD)


def own_pca_reconstruction(spectra: np.ndarray, code_width: int) -> np.ndarray:
    """The scene's own PCA at ``code_width`` (fitted on the scene it reconstructs): a transductive
    ceiling for any linear code of that width, not a method a user could apply to a new sensor."""
    shape = spectra.shape
    flat = spectra.reshape(-1, shape[-1]).astype(np.float64)
    mean = flat.mean(axis=0)
    _, _, components = np.linalg.svd(flat - mean, full_matrices=False)
    basis = components[:code_width]
    return (mean + (flat - mean) @ basis.T @ basis).reshape(shape).astype(np.float32)
