"""Files: outputs appear whole or not at all (write a temporary sibling, then rename over the
target), and large inputs are read in row blocks that do not pile up in memory.
"""

from __future__ import annotations

import ctypes
import functools
import json
import mmap
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hsijax.errors import HsijaxError


def check_output(path: str | os.PathLike, kind: str = "directory") -> Path:
    """Refuse an output ``path`` (a ``"directory"`` or a ``"file"``) that could not be written,
    before any work is done and without creating anything: a path of the other kind already
    there, or a nearest existing ancestor that is not a writable directory."""
    path = Path(path).expanduser()
    if kind == "file" and path.is_dir():
        raise HsijaxError(f"{path}: is a directory; give a file path for the output")
    if kind == "directory" and path.exists() and not path.is_dir():
        raise HsijaxError(f"{path}: exists and is not a directory")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise HsijaxError(f"{path}: cannot be created, {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise HsijaxError(f"{path}: cannot be created, {ancestor} is not writable")
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` so that a reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_npy_atomic(path: str | os.PathLike, shape: tuple[int, ...], dtype, blocks) -> Path:
    """Write a .npy of ``shape`` and ``dtype`` from ``blocks`` (arrays in C order whose rows fill it
    in turn), streamed to a temporary sibling renamed into place when complete: a large array is
    never whole in memory, and a reader never sees half of it."""
    path = Path(path)
    dtype = np.dtype(dtype)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.lib.format.write_array_header_2_0(stream, header)
            for block in blocks:
                stream.write(np.ascontiguousarray(block, dtype).tobytes())
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path


BLOCK_BYTES = 64 * 2**20


def row_blocks(array: np.ndarray, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, block) over ``array``'s leading axis, about ``block_bytes`` per block.

    For a read-only memory-mapped array each block's pages leave this process's resident set once
    the consumer asks for the next block, so a pass over a scene far larger than memory keeps
    memory flat (the pages stay in the OS page cache; reading them again costs no disk access).
    """
    row_bytes = max(1, array[:1].nbytes)
    rows = max(1, block_bytes // row_bytes)
    for start in range(0, len(array), rows):
        block = array[start:start + rows]
        yield start, block
        release_pages(block)


def release_pages(view: np.ndarray) -> None:
    """Drop a contiguous read-only memmap view's pages from the resident set (Linux; elsewhere a no-op).

    Safe only because the mapping is read-only and file-backed: the pages come back from the file
    on the next access. Anything else (in-memory arrays, writable maps) is left alone.
    """
    if not (isinstance(view, np.memmap) and view.mode == "r" and view.flags.c_contiguous and view.nbytes):
        return
    if not sys.platform.startswith("linux"):
        return
    start = view.ctypes.data // mmap.PAGESIZE * mmap.PAGESIZE
    length = view.ctypes.data + view.nbytes - start
    _libc().madvise(ctypes.c_void_p(start), ctypes.c_size_t(length), MADV_DONTNEED)


MADV_DONTNEED = 4


@functools.lru_cache(maxsize=1)
def _libc():
    return ctypes.CDLL(None, use_errno=True)
