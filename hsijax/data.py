"""Input pipeline: Grain over several prepared scenes, batches padded to band-count buckets.

Each batch holds pixels of one scene, normalised with that scene's statistics (`Normalization` in
the dataset metadata) and reflection-padded to its bucket, so a batch never mixes buckets and the
jit-compiled train step sees one shape per bucket. Scenes take turns according to mixing weights
(proportional to pixel count, uniform, or given per scene); Grain's ``MapDataset.mix`` interleaves
them deterministically in those proportions.

Deterministic: the same datasets, seed and sharding give the same batches, on any machine.
Resumable: ``iterator.get_state()`` / ``set_state()`` restore an iterator so that it yields exactly
the batch that would have come next (the state is a small dict, saved with each checkpoint).
Sharded: process ``i`` of ``n`` reads pixels ``i, i+n, ...`` of every scene and builds its own part
of every global batch; all processes pick the same scene, hence the same bucket, at every step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import grain
import numpy as np

from hsijax.datasets import SceneDataset
from hsijax.errors import HsijaxError
from hsijax.spectral import DEFAULT_BUCKETS, Normalization, make_batch


@dataclasses.dataclass(frozen=True)
class ReadBatch:
    """Grain map: a batch of pixel indices -> one padded, normalised batch (a dict of arrays).

    Reads the indices with one ``__getitems__`` call on the ArrayRecord source (several times
    faster than one read per pixel).
    """

    source: object
    scene_index: int
    normalization: Normalization
    wavelengths_nm: tuple[float, ...] | None
    buckets: tuple[int, ...]

    def __call__(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        examples = self.source.__getitems__([int(i) for i in indices])
        spectra = self.normalization.apply(np.stack([e["spectrum"] for e in examples]))
        batch = make_batch(spectra.astype(np.float32), self.wavelengths_nm, self.buckets)._asdict()
        for key in ("label", "row", "col"):
            batch[key] = np.asarray([e[key] for e in examples], np.int32)
        batch["scene"] = np.full((len(examples),), self.scene_index, np.int32)
        return batch


def mixing_weights(datasets: Sequence[SceneDataset], mixing: str | Mapping[str, float] = "pixels") -> list[float]:
    """Each scene's share of the batches: ``"pixels"`` (by pixel count), ``"uniform"``, or {name: weight}."""
    names = [scene_name(d) for d in datasets]
    if mixing == "pixels":
        weights = [float(len(d.source)) for d in datasets]
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


def scene_name(dataset: SceneDataset) -> str:
    return dataset.directory.parent.name


def scene_batches(dataset: SceneDataset, scene_index: int, batch_size: int, seed: int,
                  shard_index: int, shard_count: int, buckets: Sequence[int]) -> grain.MapDataset:
    """An endless, shuffled (reshuffled every epoch) sequence of one scene's batches for one shard."""
    pixels = grain.MapDataset.range(len(dataset.source))[shard_index::shard_count]
    if len(pixels) < batch_size:
        raise HsijaxError(
            f"{scene_name(dataset)}: {len(pixels)} pixels per process, fewer than the batch size {batch_size}"
        )
    meta = dataset.metadata
    norm = meta["normalization"]
    wavelengths = meta.get("wavelengths_nm")
    read = ReadBatch(
        dataset.source, scene_index, Normalization(norm["offset"], norm["scale"]),
        None if wavelengths is None else tuple(wavelengths), tuple(buckets),
    )
    return (
        pixels.shuffle(seed=seed * 1_000_003 + scene_index)
        .repeat()
        .batch(batch_size, drop_remainder=True)
        .map(read)
    )


def make_pipeline(
    datasets: Sequence[SceneDataset],
    batch_size: int,
    seed: int = 0,
    mixing: str | Mapping[str, float] = "pixels",
    buckets: Sequence[int] = DEFAULT_BUCKETS,
    shard_index: int | None = None,
    shard_count: int | None = None,
) -> grain.IterDataset:
    """Endless batches of ``batch_size`` pixels (per process) from ``datasets``; see the module docstring.

    ``shard_index``/``shard_count`` default to ``jax.process_index()``/``jax.process_count()``.
    """
    if not datasets:
        raise HsijaxError("the pipeline needs at least one prepared dataset")
    if shard_index is None or shard_count is None:
        import jax

        shard_index, shard_count = jax.process_index(), jax.process_count()
    weights = mixing_weights(datasets, mixing)
    parts = [
        scene_batches(dataset, index, batch_size, seed, shard_index, shard_count, buckets)
        for index, dataset in enumerate(datasets)
    ]
    kept = [(part, weight) for part, weight in zip(parts, weights) if weight > 0]
    mixed = grain.MapDataset.mix([p for p, _ in kept], [w for _, w in kept])
    return mixed.to_iter_dataset()
