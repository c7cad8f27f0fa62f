"""The baseline every shared code must beat: PCA on the shared wavelength grid.

Fitted on the pretraining scenes' spectra resampled onto `hsijax.data.shared_grid` (each scene
weighted equally, so a large scene does not outvote a small one; grid points a scene does not cover
are filled with the mean of the scenes that do). A spectrum of any sensor with known wavelengths is
encoded by least squares on the grid points its sensor covers -- so a VNIR-only sensor is fitted on
its own range, not on zeros -- then decoded on the whole grid and resampled back to its bands.
Nothing is fitted to the scene being encoded: it is the linear counterpart of the shared encoder.

A fitted code is saved as a small .npz (`save`, `load`). One ships with hsijax
(`SharedGridPCA.load_pretrained()`, offline): 32 components fitted by ``hsijax grid-pca`` on every
real scene with wavelengths here plus the USGS library mixtures -- on sensors it never saw, the best
shared code this project has measured (docs/leave_out). Principal components are nested, so the
first c of them are the width-c fit.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hsijax.data.shared_grid import GRID_POINTS, from_grid, grid_interpolation, to_grid
from hsijax.errors import HsijaxError
from hsijax.files import atomic_output

MAX_PIXELS_PER_SCENE = 20_000  # enough for a 32-component basis; keeps the fit under a second
SHIPPED = Path(__file__).resolve().parents[1] / "weights" / "shared_grid_pca.npz"


@dataclasses.dataclass(frozen=True)
class SharedGridPCA:
    """Mean (G,) and orthonormal basis (c, G) on the shared grid."""

    mean: np.ndarray
    basis: np.ndarray

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
        _, _, components = np.linalg.svd(centred, full_matrices=False)
        if code_width > len(components):
            raise HsijaxError(f"code width {code_width} is more than the {len(components)} spectra fitted")
        return cls(mean, components[:code_width])

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

    def save(self, path, record: dict | None = None) -> Path:
        """Write the code (and ``record``: what it was fitted on, as JSON) to the .npz ``path``,
        whole or not at all."""
        with atomic_output(path) as temporary, open(temporary, "wb") as stream:
            np.savez(stream, mean=self.mean.astype(np.float32), basis=self.basis.astype(np.float32),
                     record=np.asarray(json.dumps(record or {}, sort_keys=True)))
        return Path(path)

    @classmethod
    def load(cls, path, code_width: int | None = None) -> SharedGridPCA:
        """A saved code, its first ``code_width`` components (default: all)."""
        try:
            with np.load(path, allow_pickle=False) as saved:
                mean, basis = saved["mean"].astype(np.float64), saved["basis"].astype(np.float64)
        except (OSError, KeyError, ValueError) as error:
            raise HsijaxError(f"{path}: not a saved shared-grid PCA ({error})") from None
        if mean.shape != (GRID_POINTS,) or basis.ndim != 2 or basis.shape[1] != GRID_POINTS:
            raise HsijaxError(f"{path}: its arrays do not have the shared grid's {GRID_POINTS} points")
        width = basis.shape[0] if code_width is None else code_width
        if not 1 <= width <= basis.shape[0]:
            raise HsijaxError(f"code width {width}: {path} holds 1 to {basis.shape[0]} components")
        return cls(mean, basis[:width])

    @classmethod
    def load_pretrained(cls, code_width: int = 16) -> SharedGridPCA:
        """The shipped code (see the module docstring), its first ``code_width`` components (<= 32)."""
        if not SHIPPED.is_file():
            raise HsijaxError(f"{SHIPPED}: the shipped shared-grid PCA is missing from this installation")
        return cls.load(SHIPPED, code_width)


def saved_record(path) -> dict:
    """What a saved code was fitted on (the ``record`` given to `SharedGridPCA.save`)."""
    with np.load(path, allow_pickle=False) as saved:
        return json.loads(str(saved["record"]))


def own_pca_reconstruction(spectra: np.ndarray, code_width: int) -> np.ndarray:
    """The scene's own PCA at ``code_width`` (fitted on the scene it reconstructs): a transductive
    ceiling for any linear code of that width, not a method a user could apply to a new sensor."""
    shape = spectra.shape
    flat = spectra.reshape(-1, shape[-1]).astype(np.float64)
    mean = flat.mean(axis=0)
    _, _, components = np.linalg.svd(flat - mean, full_matrices=False)
    basis = components[:code_width]
    return (mean + (flat - mean) @ basis.T @ basis).reshape(shape).astype(np.float32)
