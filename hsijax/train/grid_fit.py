"""The shared-grid PCA fitted across hosts: per-device float64 sums, summed over the mesh.

`fit_on_mesh` fits what `SharedGridPCA.fit` fits in memory -- the same sample of each scene's
pixels (`sample_indices`, drawn from one seed in scene order, identically on every process), the
same estimator (`SharedGridPCA.from_moments`) -- but never holds a scene: each process takes every
P-th pixel of each scene's sample, reads them through the dataset reader a chunk at a time
(`SceneDataset.spectra`, whatever its on-disk format), normalises them with the scene's own
normalisation and hands them to its devices; each device resamples its rows onto the shared grid
and sums them and their outer products in float64 (`SceneMoments`), and a ``psum`` over the
``data`` axis of the mesh -- the `jax.distributed` mesh `hsijax pretrain` uses -- gives every
process the totals. Memory per process is one chunk and a (G x G) sum, whatever the data; N
processes fit what one does, up to float64 summation order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from hsijax.data.shared_grid import to_grid_matrix
from hsijax.models.linear_code import SceneMoments, SharedGridPCA, sample_indices
from hsijax.train.mesh import make_mesh

ROWS_PER_DEVICE = 4096  # pixels each device sums per call


def _moments_step(mesh: Mesh):
    """(spectra (rows, b), valid (rows,), to-grid matrix (b, G)) -> replicated (count, total, outer),
    each device summing its rows and the sums added over the mesh."""

    def device_sums(spectra, valid, to_grid):
        grid = (spectra @ to_grid) * valid[:, None]
        sums = (valid.sum(), grid.sum(axis=0), grid.T @ grid)
        return jax.tree.map(lambda value: jax.lax.psum(value, "data"), sums)

    sharded = jax.shard_map(device_sums, mesh=mesh, in_specs=(P("data"), P("data"), P()), out_specs=P())
    return jax.jit(sharded)


def scene_moments_on_mesh(scene, indices: np.ndarray, mesh: Mesh) -> SceneMoments:
    """`SceneMoments` of the pixels ``indices`` of ``scene`` (anything with ``spectra(indices)``,
    ``normalization`` and ``wavelengths_nm``), this process reading its share of them."""
    processes, index = jax.process_count(), jax.process_index()
    local_devices = len(mesh.local_devices)
    mine = np.sort(indices)[index::processes]
    per_process = math.ceil(len(indices) / processes)
    rows = min(ROWS_PER_DEVICE * local_devices, -(-per_process // local_devices) * local_devices)
    calls = -(-per_process // rows)  # the same on every process: shares differ by one pixel at most
    sharding = NamedSharding(mesh, P("data"))
    with jax.enable_x64(True):
        matrix, covered = to_grid_matrix(np.asarray(scene.wavelengths_nm, np.float64), dtype=np.float64)
        to_grid = jax.device_put(matrix, NamedSharding(mesh, P()))
        step = _moments_step(mesh)
        totals = None
        for call in range(calls):
            chunk = mine[call * rows:(call + 1) * rows]
            spectra = np.zeros((rows, len(scene.wavelengths_nm)), np.float64)
            valid = np.zeros(rows, np.float64)
            if len(chunk):
                spectra[: len(chunk)] = scene.normalization.apply(scene.spectra(chunk))
                valid[: len(chunk)] = 1.0
            sums = step(jax.make_array_from_process_local_data(sharding, spectra),
                        jax.make_array_from_process_local_data(sharding, valid), to_grid)
            sums = [np.asarray(value.addressable_data(0), np.float64) for value in sums]
            totals = sums if totals is None else [a + b for a, b in zip(totals, sums)]
    count, total, outer = totals
    return SceneMoments(float(count), total, outer, np.asarray(covered))


def fit_on_mesh(scenes: Sequence, code_width: int, seed: int = 0, mesh: Mesh | None = None) -> SharedGridPCA:
    """The shared-grid PCA of ``scenes`` (each with ``len()``, ``spectra(indices)``,
    ``normalization``, ``wavelengths_nm``: prepared datasets, or `TrainingSet`s of spectra in
    memory such as the library mixtures), fitted over ``mesh`` (default: every device of every
    process). Every process returns the same fit."""
    mesh = mesh or make_mesh()
    rng = np.random.default_rng(seed)
    moments = [scene_moments_on_mesh(scene, sample_indices(len(scene), rng), mesh) for scene in scenes]
    return SharedGridPCA.from_moments(moments, code_width)
