"""The Grain pipeline: bucket purity, determinism, restore-to-next-batch, sharding, mixing weights."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from hsijax.data.pipeline import make_pipeline, mixing_weights, split_held_out
from hsijax.data.scene import Scene
from hsijax.data.storage import build_dataset, load_dataset
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


def pipeline(datasets, **options):
    options = {"batch_size": 16, "seed": 3, "shard_index": 0, "shard_count": 1, **options}
    return make_pipeline(datasets, **options)


def test_every_batch_is_one_bucket_and_correctly_padded(datasets):
    bands = {index: scene[3] for index, scene in enumerate(SCENES)}
    for batch in take(pipeline(datasets), 40):
        width = batch["spectra"].shape[1]
        scene = int(batch["scene"][0])
        assert (batch["scene"] == scene).all()
        assert (batch["band_count"] == bands[scene]).all()
        assert width == bucket_for(bands[scene])
        band_count = bands[scene]  # reflection padding: band b + k mirrors band b - 2 - k
        np.testing.assert_array_equal(batch["spectra"][:, band_count], batch["spectra"][:, band_count - 2])
        assert batch["spectra"].dtype == np.float32 and batch["spectra"].shape[0] == 16


def test_spectra_are_the_stored_pixels_normalised(datasets):
    batch = take(pipeline(datasets, mixing="uniform"), 1)[0]
    scene = datasets[int(batch["scene"][0])]
    norm = scene.metadata["normalization"]
    for row in range(4):
        flat = int(batch["row"][row]) * scene.metadata["width"] + int(batch["col"][row])
        stored = scene.source[flat]
        expected = (stored["spectrum"] - norm["offset"]) / norm["scale"]
        bands = scene.metadata["bands"]
        np.testing.assert_allclose(batch["spectra"][row, :bands], expected, rtol=1e-6)
        assert batch["label"][row] == stored["label"]


def test_same_seed_same_batches_other_seed_other_batches(datasets):
    first, again = take(pipeline(datasets), 12), take(pipeline(datasets), 12)
    other = take(pipeline(datasets, seed=4), 12)
    for a, b in zip(first, again):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert any(not np.array_equal(a["spectra"], c["spectra"]) for a, c in zip(first, other))


def test_restored_iterator_yields_exactly_the_next_batch(datasets):
    iterator = iter(pipeline(datasets))
    for _ in range(7):  # past the end of the smallest scene's first epoch (60 px / 16)
        next(iterator)
    state = iterator.get_state()
    expected = [next(iterator) for _ in range(3)]
    restored = iter(pipeline(datasets))
    restored.set_state(state)
    for want in expected:
        got = next(restored)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])


def test_epochs_cover_every_pixel_and_reshuffle(datasets):
    only_a = pipeline(datasets, mixing={"a": 1.0}, batch_size=20)
    batches = take(only_a, 12)  # 120 pixels = two epochs of 6 batches
    pixels = [tuple(zip(b["row"], b["col"])) for b in batches]
    first_epoch = {p for batch in pixels[:6] for p in batch}
    assert len(first_epoch) == 120
    assert pixels[:6] != pixels[6:12]  # a new order each epoch


def test_shards_are_blocks_of_the_same_global_batches(datasets):
    whole = take(pipeline(datasets, batch_size=16), 10)
    shards = [take(pipeline(datasets, shard_index=i, shard_count=2, batch_size=16), 10) for i in (0, 1)]
    for global_batch, left, right in zip(whole, *shards):
        assert left["spectra"].shape[0] == right["spectra"].shape[0] == 8
        for key in global_batch:  # process i holds rows [8i, 8i + 8): any process count, same data
            np.testing.assert_array_equal(np.concatenate([left[key], right[key]]), global_batch[key])
    with pytest.raises(HsijaxError, match="does not split evenly"):
        pipeline(datasets, batch_size=15, shard_index=0, shard_count=2)


def test_held_out_pixels_never_reach_training(datasets):
    train, held = split_held_out(datasets[0], 20, seed=1)
    assert len(held) == 20 and len(train) == 100 and not set(train) & set(held)
    np.testing.assert_array_equal(split_held_out(datasets[0], 20, seed=1)[1], held)
    indices = [train] + [np.arange(len(d.source)) for d in datasets[1:]]
    width = datasets[0].metadata["width"]
    seen = set()
    for batch in take(pipeline(datasets, mixing={"a": 1.0}, train_indices=indices, batch_size=20), 15):
        seen |= {int(r) * width + int(c) for r, c in zip(batch["row"], batch["col"])}
    assert seen == set(train.tolist())


def test_mixing_weights_set_each_scenes_share(datasets):
    pixels = mixing_weights(datasets, "pixels")
    assert pixels == pytest.approx([120 / 360, 80 / 360, 100 / 360, 60 / 360])
    assert mixing_weights(datasets, "uniform") == pytest.approx([0.25] * 4)
    counts = collections.Counter(int(b["scene"][0]) for b in take(pipeline(datasets), 180))
    for index, weight in enumerate(pixels):
        assert counts[index] / 180 == pytest.approx(weight, abs=0.02)
    weighted = take(pipeline(datasets, mixing={"a": 3, "c": 1}), 40)
    assert collections.Counter(int(b["scene"][0]) for b in weighted) == {0: 30, 2: 10}


@pytest.mark.parametrize("mixing, message", [
    ({"nope": 1.0}, "unknown scenes"),
    ({"a": -1.0, "b": 2.0}, "must be >= 0"),
    ("by-size", "expected 'pixels', 'uniform'"),
])
def test_bad_mixing_is_a_clear_error(datasets, mixing, message):
    with pytest.raises(HsijaxError, match=message):
        pipeline(datasets, mixing=mixing)


def test_batch_larger_than_a_scene_is_a_clear_error(datasets):
    with pytest.raises(HsijaxError, match="fewer than the batch size"):
        pipeline(datasets, batch_size=100)
