"""Files: outputs appear whole or not at all (write a temporary sibling, then rename over the
target), large inputs are read in row blocks that do not pile up in memory, and a run's workdir or a
checkpoint may live in object storage.

Storage anywhere: `storage_path` turns what a user typed into an `etils.epath.Path`, local
(``~`` expanded, absolute: Orbax wants absolute paths) or a URI of the object stores epath reaches
through fsspec (``gs://``, ``s3://``, ``az://``, ``hf://``; ``gcsfs`` or ``s3fs`` installed). Orbax
writes checkpoints through epath and TensorStore, so the same code path saves to a bucket and to a
local folder; an unknown scheme is refused with one line rather than being read as a local folder
named ``gs:``.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.util
import json
import mmap
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from etils import epath

from hsijax.errors import HsijaxError, describe

# What etils.epath reaches through fsspec, and the fsspec package each needs.
URI_SCHEMES = {"gs": "gcsfs", "s3": "s3fs", "az": "adlfs", "hf": "huggingface_hub"}


def _no_stale_listings() -> None:
    """fsspec's object-store clients cache directory listings for the life of the process, so a
    process would not see the checkpoints another one (or a resumed run) wrote since it last looked;
    hsijax's storage is shared by processes, so listings are asked for every time (unless the user
    configured fsspec otherwise)."""
    import fsspec.config

    for protocol in ("gs", "gcs", "s3", "az", "hf"):
        fsspec.config.conf.setdefault(protocol, {}).setdefault("use_listings_cache", False)


_no_stale_listings()


def is_uri(path: str | os.PathLike) -> bool:
    """Whether ``path`` names object storage (``SCHEME://...``) rather than a local file."""
    return "://" in os.fspath(path)


def storage_path(path: str | os.PathLike) -> epath.Path:
    """``path`` as an epath: a local path expanded and made absolute, ``file://`` stripped, or an
    object-store URI; any other scheme is `HsijaxError`."""
    text = os.fspath(path)
    if is_uri(text):
        scheme = text.split("://", 1)[0]
        if scheme == "file":
            return epath.Path(Path(text[len("file://"):]).expanduser().resolve())
        if scheme not in URI_SCHEMES:
            raise HsijaxError(f"{text}: unsupported storage {scheme}://; use a local path or a URI of "
                              + ", ".join(f"{s}://" for s in URI_SCHEMES))
        if importlib.util.find_spec(URI_SCHEMES[scheme]) is None:
            extra = " (pip install 'hsijax[gcs]')" if scheme == "gs" else ""
            raise HsijaxError(f"{text}: {scheme}:// needs the package {URI_SCHEMES[scheme]}{extra}")
        return epath.Path(text)
    return epath.Path(Path(text).expanduser().resolve())


def check_output(path: str | os.PathLike, kind: str = "directory") -> Path:
    """Refuse an output ``path`` (a ``"directory"`` or a ``"file"``) that could not be written,
    before any work is done and without creating anything: a path of the other kind already
    there, or a nearest existing ancestor that is not a writable directory. A URI (a ``"directory"``
    only) is returned as an `epath.Path` once its store answered: an unreachable bucket or missing
    credentials are one error here, not a traceback at the first checkpoint."""
    if is_uri(path):
        path = storage_path(path)  # file:// becomes a local path
        if is_uri(path):
            if kind != "directory":
                raise HsijaxError(f"{path}: give a local file for this output (object storage holds workdirs "
                                  "and checkpoints)")
            return _check_uri_directory(path)
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


def _check_uri_directory(path: epath.Path) -> epath.Path:
    scheme, rest = os.fspath(path).split("://", 1)
    bucket = epath.Path(f"{scheme}://{rest.split('/', 1)[0]}")
    try:
        if not bucket.exists():
            raise HsijaxError(f"{path}: the bucket {bucket} does not exist or cannot be seen with these credentials")
        if path.exists() and not path.is_dir():
            raise HsijaxError(f"{path}: exists and is not a directory")
    except HsijaxError:
        raise
    except Exception as error:  # fsspec backends raise their own types (no credentials, no bucket, no network)
        raise HsijaxError(f"{path}: cannot be reached ({describe(error)})") from None
    return path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary sibling of ``path`` to write; renamed over ``path`` when the block ends without
    an error (with the permissions a new file gets here, not mkstemp's owner-only ones), removed
    otherwise. A reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(handle)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` so that a reader never sees a half-written file."""
    with atomic_output(path) as temporary:
        temporary.write_text(text)
    return Path(path)


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_npy_atomic(path: str | os.PathLike, shape: tuple[int, ...], dtype, blocks) -> Path:
    """Write a .npy of ``shape`` and ``dtype`` from ``blocks`` (arrays in C order whose rows fill it
    in turn), streamed to a temporary sibling renamed into place when complete: a large array is
    never whole in memory, and a reader never sees half of it."""
    dtype = np.dtype(dtype)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
    with atomic_output(path) as temporary, open(temporary, "wb") as stream:
        np.lib.format.write_array_header_2_0(stream, header)
        for block in blocks:
            stream.write(np.ascontiguousarray(block, dtype).tobytes())
    return Path(path)


BLOCK_BYTES = 16 * 2**20  # per block of rows; a block read by windows may be copied once more (band-last)


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
