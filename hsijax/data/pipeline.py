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
How a scene's pixels are shuffled and read is the pipeline's format (`PIPELINE_FORMATS`): format 2
(`WindowBatches`) reads the dataset's dense copy in shuffled windows of blocks, bounded memory and
about a million pixels a second on two CPU cores; format 1, hsijax 0.1's, draws pixel by pixel from
the per-pixel records. A checkpoint records the format its iterator state belongs to.

Sharded: every process computes the same sequence of global batches, then reads only its own
contiguous block of rows, so process ``i`` of ``n`` holds rows
``[i * B/n, (i + 1) * B/n)`` of global batch ``B``. The global batches are therefore the same
whatever the number of processes (1 process x 8 devices trains exactly like 2 x 4), and all
processes pick the same scene, hence the same bucket, at every step.

Held out: ``split_held_out`` sets aside a fixed random sample of each scene's pixels for
evaluation (the one held-out split of hsijax: the pretraining command, the Python API and the
demo all use it); pass the remaining indices as ``train_indices`` and training never sees them.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence

import grain
import numpy as np

from hsijax.errors import HsijaxError
from hsijax.spectral import (
    DEFAULT_BUCKETS,
    Normalization,
    check_band_count,
    make_batch,
    pad_wavelengths,
    reflect_indices,
)


@dataclasses.dataclass(frozen=True)
class TrainingSet:
    """Normalised pixels of one scene held in memory, (P, b) float32, with the band centres in nm
    if known: a scene for the pipeline without a prepared dataset."""

    name: str
    pixels: np.ndarray
    wavelengths_nm: np.ndarray | None = None

    normalization = Normalization(offset=0.0, scale=1.0)  # the pixels are normalised already
    width = 1  # a pixel's "row" is its index, its "col" 0

    def __len__(self) -> int:
        return len(self.pixels)

    @property
    def bands(self) -> int:
        return self.pixels.shape[-1]

    def dense(self) -> TrainingSet:
        return self  # already dense, in memory

    @functools.cached_property
    def labels(self) -> np.ndarray:
        return np.zeros(len(self.pixels), np.int32)

    def rows(self, start: int, stop: int) -> np.ndarray:
        return np.asarray(self.pixels[start:stop], np.float32)

    def spectra(self, indices) -> np.ndarray:
        """The pixels ``indices`` (n, b) float32, in ascending order (as `SceneDataset.spectra`)."""
        return np.asarray(self.pixels[np.sort(np.asarray(indices, np.int64))], np.float32)

    def read(self, indices) -> dict[str, np.ndarray]:
        """Pixels ``indices``: ``spectrum`` (n, b) float32; ``label`` 0; ``row`` the pixel's index."""
        indices = np.asarray(indices, np.int64)
        zeros = np.zeros(len(indices), np.int32)
        return {"spectrum": np.asarray(self.pixels[indices], np.float32), "label": zeros,
                "row": indices.astype(np.int32), "col": zeros}


@dataclasses.dataclass(frozen=True)
class ReadBatch:
    """Grain map (format 1): a batch of pixel indices -> one padded, normalised batch (a dict of arrays).

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


PIPELINE_FORMATS = {
    1: "per-pixel records, shuffled pixel by pixel (hsijax 0.1)",
    2: "dense copy, shuffled blocks read in windows and shuffled within each window",
}
PIPELINE_FORMAT = 2  # what new runs use; a checkpoint's iterator state belongs to the format it ran
BLOCK_PIXELS = 64  # consecutive training pixels read together
WINDOW_BLOCKS = 64  # blocks shuffled together: 4096 pixels, 3.2 MB at 200 bands


class WindowBatches:
    """Grain source (format 2): batch ``i`` of one scene, for any ``i`` (random access, so a Grain
    iterator's position is all a checkpoint needs).

    Each epoch shuffles the scene's training pixels in blocks of `BLOCK_PIXELS` consecutive ones;
    windows of `WINDOW_BLOCKS` blocks are read from the dense copy (one ``pread`` a block), normalised
    and shuffled within the window; the epoch's batches are that stream, ``batch_size`` pixels at a
    time (the last incomplete batch of an epoch is dropped: fewer than ``batch_size`` pixels, others
    each epoch). Memory holds two windows, whatever the scene's size; each batch draws on about 64
    places of the scene.
    """

    def __init__(self, scene, scene_index: int, indices: np.ndarray, batch_size: int, seed: int,
                 rows: slice, buckets: Sequence[int]):
        self.scene, self.scene_index, self.seed = scene, scene_index, seed
        self.indices = np.sort(np.asarray(indices, np.int64))
        self.batch_size, self.rows, self.buckets = batch_size, rows, tuple(buckets)
        self.block_starts = np.arange(0, len(self.indices), BLOCK_PIXELS)
        self.block_sizes = np.diff(np.append(self.block_starts, len(self.indices)))
        self.batches_per_epoch = len(self.indices) // batch_size
        bands = scene.bands
        self.bucket = check_band_count(bands, buckets, f"scene {scene.name}")
        self.padding = reflect_indices(bands, self.bucket)  # every window is padded once, whole
        wavelengths = scene.wavelengths_nm
        self.wavelengths = (np.zeros(self.bucket, np.float32) if wavelengths is None else
                            pad_wavelengths(wavelengths, bands, self.bucket).astype(np.float32))
        self.reader = None  # opened on first use, in whichever process Grain reads in
        self._epochs, self._windows = {}, {}

    def __len__(self) -> int:
        return 2**62  # endless: epochs follow each other

    def _epoch(self, epoch: int):
        """(block order, first stream position of each window) of an epoch, kept for the latest one."""
        if epoch not in self._epochs:
            order = np.random.default_rng([self.seed, self.scene_index, epoch]).permutation(len(self.block_starts))
            sizes = self.block_sizes[order]
            windows = np.add.reduceat(sizes, np.arange(0, len(order), WINDOW_BLOCKS))
            self._epochs = {epoch: (order, np.concatenate([[0], np.cumsum(windows)]))}
        return self._epochs[epoch]

    def _window(self, epoch: int, window: int) -> tuple[np.ndarray, np.ndarray]:
        """(normalised spectra, pixel indices) of one window, shuffled; the last two are kept."""
        key = (epoch, window)
        if key not in self._windows:
            if self.reader is None:
                self.reader = self.scene.dense()
            order, _ = self._epoch(epoch)
            spectra, pixels = [], []
            for block in order[window * WINDOW_BLOCKS:(window + 1) * WINDOW_BLOCKS]:
                start = self.block_starts[block]
                chosen = self.indices[start:start + self.block_sizes[block]]
                span = self.reader.rows(int(chosen[0]), int(chosen[-1]) + 1)
                spectra.append(span[chosen - chosen[0]] if len(span) != len(chosen) else span)
                pixels.append(chosen)
            spectra, pixels = np.concatenate(spectra), np.concatenate(pixels)
            shuffle = np.random.default_rng([self.seed, self.scene_index, epoch, window]).permutation(len(pixels))
            norm = self.scene.normalization
            spectra = spectra[shuffle]
            spectra -= np.float32(norm.offset)
            spectra /= np.float32(norm.scale)
            spectra = spectra[:, self.padding]
            self._windows = {k: v for k, v in self._windows.items() if k == (epoch, window - 1)}
            self._windows[key] = (spectra, pixels[shuffle])
        return self._windows[key]

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        epoch, batch = divmod(int(index), self.batches_per_epoch)
        _, bounds = self._epoch(epoch)
        first = batch * self.batch_size + self.rows.start
        last = batch * self.batch_size + self.rows.stop  # this process's block of the global batch
        spectra, pixels = [], []
        window = int(np.searchsorted(bounds, first, side="right")) - 1
        while first < last:
            stop = min(last, int(bounds[window + 1]))
            window_spectra, window_pixels = self._window(epoch, window)
            spectra.append(window_spectra[first - bounds[window]:stop - bounds[window]])
            pixels.append(window_pixels[first - bounds[window]:stop - bounds[window]])
            first, window = stop, window + 1
        spectra = spectra[0] if len(spectra) == 1 else np.concatenate(spectra)
        pixels = pixels[0] if len(pixels) == 1 else np.concatenate(pixels)
        count = len(pixels)
        row, col = np.divmod(pixels, self.scene.width)
        return {  # the fields of `hsijax.spectral.SpectraBatch`, then the pixels' own
            "spectra": spectra, "band_count": np.full(count, self.scene.bands, np.int32),
            "wavelengths": np.broadcast_to(self.wavelengths, (count, self.bucket)),
            "has_wavelengths": np.full(count, self.scene.wavelengths_nm is not None),
            "label": self.reader.labels[pixels], "row": row.astype(np.int32), "col": col.astype(np.int32),
            "scene": np.full(count, self.scene_index, np.int32),
        }


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
                  seed: int, rows: slice, buckets: Sequence[int], pipeline_format: int = PIPELINE_FORMAT
                  ) -> grain.MapDataset:
    """An endless, shuffled (reshuffled every epoch) sequence of one scene's batches, this process's rows."""
    if len(indices) < batch_size:
        raise HsijaxError(
            f"{scene.name}: {len(indices)} training pixels, fewer than the batch size {batch_size}"
        )
    check_band_count(scene.bands, buckets, f"scene {scene.name}")
    if pipeline_format == 2:
        return grain.MapDataset.source(WindowBatches(scene, scene_index, indices, batch_size, seed, rows, buckets))
    if pipeline_format != 1:
        raise HsijaxError(f"pipeline format {pipeline_format}: expected one of {sorted(PIPELINE_FORMATS)}")
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
    pipeline_format: int = PIPELINE_FORMAT,
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
        scene_batches(dataset, index, indices, batch_size, seed, rows, buckets, pipeline_format)
        for index, (dataset, indices) in enumerate(zip(datasets, train_indices))
    ]
    kept = [(part, weight) for part, weight in zip(parts, weights) if weight > 0]
    mixed = grain.MapDataset.mix([p for p, _ in kept], [w for _, w in kept])
    if pipeline_format == 1:
        return mixed.to_iter_dataset()
    # Format 2 reads each window once, in order: Grain's reader threads would take batches out of
    # order (and fight over the GIL), so batches are made in the iterating thread.
    return mixed.to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0))
