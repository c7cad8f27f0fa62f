"""Row blocks and page release: large memory-mapped scenes are scanned with flat memory."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from hsijax.files import release_pages, row_blocks


def resident_mib() -> float:
    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return kib / 1024


def test_row_blocks_cover_every_row_once():
    array = np.arange(7 * 3 * 5, dtype=np.uint16).reshape(7, 3, 5)
    blocks = list(row_blocks(array, block_bytes=2 * array[:1].nbytes))
    assert [start for start, _ in blocks] == [0, 2, 4, 6]
    np.testing.assert_array_equal(np.concatenate([block for _, block in blocks]), array)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="page release is Linux only")
def test_released_pages_leave_memory_and_the_values_stay(tmp_path):
    values = np.random.default_rng(0).integers(0, 60000, (64, 1024, 512), dtype=np.uint16)  # 64 MiB
    np.save(tmp_path / "cube.npy", values)
    mapped = np.load(tmp_path / "cube.npy", mmap_mode="r")
    before = resident_mib()
    total = int(mapped.sum(dtype=np.int64))  # touches every page
    touched = resident_mib()
    release_pages(mapped[:])
    assert touched - before > 48 and touched - resident_mib() > 48
    assert int(mapped.sum(dtype=np.int64)) == total == int(values.sum(dtype=np.int64))


def test_arrays_in_memory_are_never_released():
    values = np.ones((1024, 1024), np.float32)
    release_pages(values)
    assert values.sum() == 1024 * 1024
