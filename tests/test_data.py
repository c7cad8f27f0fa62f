"""The Grain pipeline: bucket purity, determinism, restore-to-next-batch, sharding, mixing weights."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from hsijax.data.pipeline import make_pipeline, mixing_weights, split_held_out
from hsijax.data.scene import Scene
from hsijax.data.builders import build_dataset
from hsijax.data.storage import load_dataset
from hsijax.errors import HsijaxError
from hsijax.spectral import bucket_for

# (name, height, width, bands): two scenes share the 128 bucket, one is in 256, one in 64.
SCENES = [("a", 12, 10, 100), ("b", 8, 10, 120), ("c", 10, 10, 200), ("d", 6, 10, 30)]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    prepared = []
    for name, height, width, bands in SCENES:
        cube = rng.integers(100, 5000, (height, width, bands)).astype(np.uint16)
        labels = rng.integers(0, 4, (height, width))
        wavelengths = np.linspace(400, 2500, bands) if name != "b" else None
        scene = Scene(name, "test", cube, labels, wavelengths, ("x", "y", "z"))
        prepared.append(load_dataset(build_dataset(scene, data_dir)))
    return prepared


def take(pipeline, count: int) -> list[dict]:
    iterator = iter(pipeline)
    return [next(iterator) for _ in range(count)]


@pytest.fixture(params=[2, 1], ids=["format2", "format1"])
def fmt(request) -> int:
    """Every pipeline promise holds for the dense windows (2) and for hsijax 0.1's records (1)."""
    return request.param


def pipeline(datasets, fmt: int = 2, **options):
    options = {"batch_size": 16, "seed": 3, "shard_index": 0, "shard_count": 1, **options}
    return make_pipeline(datasets, pipeline_format=fmt, **options)


def test_every_batch_is_one_bucket_and_correctly_padded(datasets, fmt):
    bands = {index: scene[3] for index, scene in enumerate(SCENES)}
    for batch in take(pipeline(datasets, fmt), 40):
        width = batch["spectra"].shape[1]
        scene = int(batch["scene"][0])
        assert (batch["scene"] == scene).all()
        assert (batch["band_count"] == bands[scene]).all()
        assert width == bucket_for(bands[scene])
        band_count = bands[scene]  # reflection padding: band b + k mirrors band b - 2 - k
        np.testing.assert_array_equal(batch["spectra"][:, band_count], batch["spectra"][:, band_count - 2])
        assert batch["spectra"].dtype == np.float32 and batch["spectra"].shape[0] == 16


def test_spectra_are_the_stored_pixels_normalised(datasets, fmt):
    batch = take(pipeline(datasets, fmt, mixing="uniform"), 1)[0]
    scene = datasets[int(batch["scene"][0])]
    norm = scene.metadata["normalization"]
    for row in range(4):
        flat = int(batch["row"][row]) * scene.metadata["width"] + int(batch["col"][row])
        stored = scene.source[flat]
        expected = (stored["spectrum"] - norm["offset"]) / norm["scale"]
        bands = scene.metadata["bands"]
        np.testing.assert_allclose(batch["spectra"][row, :bands], expected, rtol=1e-6)
        assert batch["label"][row] == stored["label"]


def test_same_seed_same_batches_other_seed_other_batches(datasets, fmt):
    first, again = take(pipeline(datasets, fmt), 12), take(pipeline(datasets, fmt), 12)
    other = take(pipeline(datasets, fmt, seed=4), 12)
    for a, b in zip(first, again):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert any(not np.array_equal(a["spectra"], c["spectra"]) for a, c in zip(first, other))


def test_restored_iterator_yields_exactly_the_next_batch(datasets, fmt):
    iterator = iter(pipeline(datasets, fmt))
    for _ in range(7):  # past the end of the smallest scene's first epoch (60 px / 16)
        next(iterator)
    state = iterator.get_state()
    expected = [next(iterator) for _ in range(3)]
    restored = iter(pipeline(datasets, fmt))
    restored.set_state(state)
    for want in expected:
        got = next(restored)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])


def test_epochs_cover_every_pixel_and_reshuffle(datasets, fmt):
    only_a = pipeline(datasets, fmt, mixing={"a": 1.0}, batch_size=20)
    batches = take(only_a, 12)  # 120 pixels = two epochs of 6 batches
    pixels = [tuple(zip(b["row"], b["col"])) for b in batches]
    first_epoch = {p for batch in pixels[:6] for p in batch}
    assert len(first_epoch) == 120
    assert pixels[:6] != pixels[6:12]  # a new order each epoch


def test_shards_are_blocks_of_the_same_global_batches(datasets, fmt):
    whole = take(pipeline(datasets, fmt, batch_size=16), 10)
    shards = [take(pipeline(datasets, fmt, shard_index=i, shard_count=2, batch_size=16), 10) for i in (0, 1)]
    for global_batch, left, right in zip(whole, *shards):
        assert left["spectra"].shape[0] == right["spectra"].shape[0] == 8
        for key in global_batch:  # process i holds rows [8i, 8i + 8): any process count, same data
            np.testing.assert_array_equal(np.concatenate([left[key], right[key]]), global_batch[key])
    with pytest.raises(HsijaxError, match="does not split evenly"):
        pipeline(datasets, fmt, batch_size=15, shard_index=0, shard_count=2)


def test_held_out_pixels_never_reach_training(datasets, fmt):
    train, held = split_held_out(datasets[0], 20, seed=1)
    assert len(held) == 20 and len(train) == 100 and not set(train) & set(held)
    np.testing.assert_array_equal(split_held_out(datasets[0], 20, seed=1)[1], held)
    indices = [train] + [np.arange(len(d.source)) for d in datasets[1:]]
    width = datasets[0].metadata["width"]
    seen = set()
    for batch in take(pipeline(datasets, fmt, mixing={"a": 1.0}, train_indices=indices, batch_size=20), 15):
        seen |= {int(r) * width + int(c) for r, c in zip(batch["row"], batch["col"])}
    assert seen == set(train.tolist())


def test_mixing_weights_set_each_scenes_share(datasets, fmt):
    pixels = mixing_weights(datasets, "pixels")
    assert pixels == pytest.approx([120 / 360, 80 / 360, 100 / 360, 60 / 360])
    assert mixing_weights(datasets, "uniform") == pytest.approx([0.25] * 4)
    counts = collections.Counter(int(b["scene"][0]) for b in take(pipeline(datasets, fmt), 180))
    for index, weight in enumerate(pixels):
        assert counts[index] / 180 == pytest.approx(weight, abs=0.02)
    weighted = take(pipeline(datasets, fmt, mixing={"a": 3, "c": 1}), 40)
    assert collections.Counter(int(b["scene"][0]) for b in weighted) == {0: 30, 2: 10}


@pytest.mark.parametrize("mixing, message", [
    ({"nope": 1.0}, "unknown scenes"),
    ({"a": -1.0, "b": 2.0}, "must be >= 0"),
    ("by-size", "expected 'pixels', 'uniform'"),
])
def test_bad_mixing_is_a_clear_error(datasets, fmt, mixing, message):
    with pytest.raises(HsijaxError, match=message):
        pipeline(datasets, fmt, mixing=mixing)


def test_batch_larger_than_a_scene_is_a_clear_error(datasets, fmt):
    with pytest.raises(HsijaxError, match="fewer than the batch size"):
        pipeline(datasets, fmt, batch_size=100)


def test_a_dataset_written_without_a_dense_copy_gets_one_on_first_use(tmp_path, datasets):
    """Datasets written by hsijax 0.1 (records only) still feed format 2: the dense copy is written
    from the records, and the batches are the stored pixels."""
    import shutil

    from hsijax.data.storage import DENSE_LABELS, DENSE_PIXELS

    copy = tmp_path / "a" / "1.0.0"
    shutil.copytree(datasets[0].directory, copy)
    (copy / DENSE_PIXELS).unlink()
    (copy / DENSE_LABELS).unlink()
    old = load_dataset(copy)
    batch = take(pipeline([old], 2), 1)[0]
    assert (copy / DENSE_PIXELS).is_file() and (copy / DENSE_LABELS).is_file()
    norm = old.metadata["normalization"]
    for row, col, spectrum, label in zip(batch["row"], batch["col"], batch["spectra"], batch["label"]):
        stored = old.source[int(row) * old.metadata["width"] + int(col)]
        np.testing.assert_allclose(spectrum[:100], (stored["spectrum"] - norm["offset"]) / norm["scale"], rtol=1e-6)
        assert label == stored["label"]


def test_each_batch_draws_on_many_places_of_the_scene(datasets):
    """Format 2 shuffles blocks of 64 pixels and then pixels within a window: a batch is not a run of
    neighbours (this scene has two blocks; a 16-pixel batch takes from both)."""
    batch = take(pipeline(datasets, 2, mixing={"a": 1.0}), 1)[0]
    flat = batch["row"] * 10 + batch["col"]
    assert (flat < 64).any() and (flat >= 64).any() and len(set(flat.tolist())) == 16
