"""Input pipeline: Grain over several scenes, batches padded to band-count buckets.

A scene is a prepared dataset (`hsijax.data.storage.SceneDataset`) or pixels in memory
(`TrainingSet`, what `hsijax.pretrain` takes); both give ``len()``, ``read(indices)``, their
``normalization`` and their ``wavelengths_nm``, so one pipeline, and one training loop, serves both.

Each batch holds pixels of one scene, normalised with that scene's statistics (`Normalization` in
the dataset metadata) and reflection-padded to its bucket, so a batch never mixes buckets and the
jit-compiled train step sees one shape per bucket. Scenes take turns according to mixing weights
(proportional to pixel count, uniform, or given per scene); Grain's ``MapDataset.mix`` interleaves
them deterministically in those proportions.

Deterministic: the same datasets, seed and sharding give the same batches, on any machine.
Resumable: ``iterator.get_state()`` / ``set_state()`` restore an iterator so that it yields exactly
the batch that would have come next (the state is a small dict, saved with each checkpoint).
Sharded: every process draws the same sequence of global batches of pixel *indices* (cheap), then
reads only its own contiguous block of rows, so process ``i`` of ``n`` holds rows
``[i * B/n, (i + 1) * B/n)`` of global batch ``B``. The global batches are therefore the same
whatever the number of processes (1 process x 8 devices trains exactly like 2 x 4), and all
processes pick the same scene, hence the same bucket, at every step.

Held out: ``split_held_out`` sets aside a fixed random sample of each scene's pixels for
evaluation (the one held-out split of hsijax: the pretraining command, the Python API and the
demo all use it); pass the remaining indices as ``train_indices`` and training never sees them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import grain
import numpy as np

from hsijax.errors import HsijaxError
from hsijax.spectral import DEFAULT_BUCKETS, Normalization, check_band_count, make_batch


@dataclasses.dataclass(frozen=True)
class TrainingSet:
    """Normalised pixels of one scene held in memory, (P, b) float32, with the band centres in nm
    if known: a scene for the pipeline without a prepared dataset."""

    name: str
    pixels: np.ndarray
    wavelengths_nm: np.ndarray | None = None

    normalization = Normalization(offset=0.0, scale=1.0)  # the pixels are normalised already

    def __len__(self) -> int:
        return len(self.pixels)

    @property
    def bands(self) -> int:
        return self.pixels.shape[-1]

    def read(self, indices) -> dict[str, np.ndarray]:
        """Pixels ``indices``: ``spectrum`` (n, b) float32; ``label`` 0; ``row`` the pixel's index."""
        indices = np.asarray(indices, np.int64)
        zeros = np.zeros(len(indices), np.int32)
        return {"spectrum": np.asarray(self.pixels[indices], np.float32), "label": zeros,
                "row": indices.astype(np.int32), "col": zeros}


@dataclasses.dataclass(frozen=True)
class ReadBatch:
    """Grain map: a batch of pixel indices -> one padded, normalised batch (a dict of arrays).

    Reads this process's rows with one ``scene.read`` call (for an ArrayRecord dataset, several
    times faster than one read per pixel).
    """

    scene: object  # a SceneDataset or a TrainingSet
    rows: slice  # this process's block of the global batch
    scene_index: int
    buckets: tuple[int, ...]

    def __call__(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        pixels = self.scene.read(indices[self.rows])
        spectra = self.scene.normalization.apply(pixels.pop("spectrum"))
        batch = make_batch(spectra, self.scene.wavelengths_nm, self.buckets)._asdict()
        batch.update(pixels)
        batch["scene"] = np.full((len(spectra),), self.scene_index, np.int32)
        return batch


def mixing_weights(datasets: Sequence, mixing: str | Mapping[str, float] = "pixels",
                   pixel_counts: Sequence[int] | None = None) -> list[float]:
    """Each scene's share of the batches: ``"pixels"`` (by pixel count), ``"uniform"``, or {name: weight}."""
    names = [d.name for d in datasets]
    if mixing == "pixels":
        weights = [float(n) for n in (pixel_counts or [len(d) for d in datasets])]
    elif mixing == "uniform":
        weights = [1.0] * len(datasets)
    elif isinstance(mixing, Mapping):
        unknown = set(mixing) - set(names)
        if unknown:
            raise HsijaxError(f"mixing weights name unknown scenes {sorted(unknown)}; scenes: {names}")
        weights = [float(mixing.get(name, 0.0)) for name in names]
    else:
        raise HsijaxError(f"mixing {mixing!r}: expected 'pixels', 'uniform' or a mapping of scene weights")
    if min(weights) < 0 or sum(weights) <= 0:
        raise HsijaxError(f"mixing weights must be >= 0 with a positive sum, got {dict(zip(names, weights))}")
    return [w / sum(weights) for w in weights]


def split_held_out(scene, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(training indices, held-out indices) into ``scene`` (anything with a length): a fixed random
    sample of ``count`` pixels set aside."""
    total = len(scene)
    if not 0 <= count < total:
        raise HsijaxError(f"{getattr(scene, 'name', 'pixels')}: cannot hold out {count} of its {total} pixels")
    order = np.random.default_rng([seed, total]).permutation(total)
    return np.sort(order[count:]), np.sort(order[:count])


def scene_batches(scene, scene_index: int, indices: np.ndarray, batch_size: int,
                  seed: int, rows: slice, buckets: Sequence[int]) -> grain.MapDataset:
    """An endless, shuffled (reshuffled every epoch) sequence of one scene's batches, this process's rows."""
    if len(indices) < batch_size:
        raise HsijaxError(
            f"{scene.name}: {len(indices)} training pixels, fewer than the batch size {batch_size}"
        )
    check_band_count(scene.bands, buckets, f"scene {scene.name}")
    return (
        grain.MapDataset.source(np.asarray(indices, np.int64))
        .shuffle(seed=seed * 1_000_003 + scene_index)
        .repeat()
        .batch(batch_size, drop_remainder=True)
        .map(ReadBatch(scene, rows, scene_index, tuple(buckets)))
    )


def make_pipeline(
    datasets: Sequence,
    batch_size: int,
    seed: int = 0,
    mixing: str | Mapping[str, float] = "pixels",
    buckets: Sequence[int] = DEFAULT_BUCKETS,
    shard_index: int | None = None,
    shard_count: int | None = None,
    train_indices: Sequence[np.ndarray] | None = None,
) -> grain.IterDataset:
    """Endless batches from ``datasets``: this process's ``batch_size / shard_count`` rows of each
    global batch of ``batch_size`` pixels; see the module docstring.

    ``shard_index``/``shard_count`` default to ``jax.process_index()``/``jax.process_count()``;
    ``train_indices`` (one array per dataset) default to every pixel.
    """
    if not datasets:
        raise HsijaxError("the pipeline needs at least one prepared dataset")
    if shard_index is None or shard_count is None:
        import jax

        shard_index, shard_count = jax.process_index(), jax.process_count()
    if batch_size % shard_count:
        raise HsijaxError(f"batch size {batch_size} does not split evenly over {shard_count} processes")
    local = batch_size // shard_count
    rows = slice(shard_index * local, (shard_index + 1) * local)
    if train_indices is None:
        train_indices = [np.arange(len(d)) for d in datasets]
    weights = mixing_weights(datasets, mixing, [len(i) for i in train_indices])
    parts = [
        scene_batches(dataset, index, indices, batch_size, seed, rows, buckets)
        for index, (dataset, indices) in enumerate(zip(datasets, train_indices))
    ]
    kept = [(part, weight) for part, weight in zip(parts, weights) if weight > 0]
    mixed = grain.MapDataset.mix([p for p, _ in kept], [w for _, w in kept])
    return mixed.to_iter_dataset()
