"""Where a dataset came from, so that a stale one is never taken for what a command asks for.

Every dataset records in its metadata the files it was read from (`FileRecord`: path, size, mtime,
SHA-256) and how (``import_options``: the `hsijax import` options, or ``{"catalogue": NAME}`` for a
catalogued scene). A command or config that names a dataset with other options, or whose files
changed since, is refused in one line naming what differs and ``--rebuild``
(`check_provenance`): cheap checks first -- a file whose size and mtime are unchanged is taken as
unchanged, and only one whose stat differs is hashed.

Datasets written before hsijax recorded these (0.1), or built from an array in memory
(`hsijax.data.builders.build_dataset` without options), carry neither: they are used as they are,
with one line saying that their origin cannot be checked.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from pathlib import Path

from hsijax.errors import HsijaxError, warn

HASH_BLOCK = 16 * 2**20
REBUILD = "pass --rebuild to build it again from them, or give another --name"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class FileRecord:
    """One file a dataset was read from."""

    path: str
    size: int
    mtime_ns: int
    sha256: str

    @classmethod
    def of(cls, path, sha256: str | None = None) -> FileRecord:
        """The record of ``path`` now (``sha256``: a hash already checked, not computed again)."""
        path = Path(path).expanduser().resolve()
        stat = path.stat()
        return cls(str(path), stat.st_size, stat.st_mtime_ns, sha256 or sha256_of(path))

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def change(self) -> str | None:
        """How the file differs from this record now (None: unchanged). Size and mtime first; a file
        whose stat changed but whose bytes did not (a copy, a touch) is unchanged."""
        path = Path(self.path)
        if not path.is_file():
            return "is gone"
        stat = path.stat()
        if (stat.st_size, stat.st_mtime_ns) == (self.size, self.mtime_ns):
            return None
        if stat.st_size != self.size:
            return f"has {stat.st_size:,} bytes, {self.size:,} when the dataset was built"
        if sha256_of(path) != self.sha256:
            return "has other contents than when the dataset was built (SHA-256)"
        return None


def catalogue_options(name: str) -> dict:
    """The ``import_options`` of a catalogued scene built by its builder."""
    return {"catalogue": name}


def option_differences(recorded: Mapping, wanted: Mapping) -> list[str]:
    """``KEY: RECORDED -> WANTED`` for each option that differs (or what each was built from, when
    one is a catalogued scene and the other a file)."""
    if ("catalogue" in recorded) != ("catalogue" in wanted):
        built, asked = (_origin(options) for options in (recorded, wanted))
        return [f"built from {built}, asked for {asked}"]
    keys = sorted(set(recorded) | set(wanted))
    return [f"{key}: {recorded.get(key)!r} -> {wanted.get(key)!r}" for key in keys
            if recorded.get(key) != wanted.get(key)]


def _origin(options: Mapping) -> str:
    return f"the catalogue's {options['catalogue']}" if "catalogue" in options else f"the file {options.get('file')}"


def check_provenance(directory, metadata: Mapping, wanted_options: Mapping, check_files: bool = True) -> None:
    """Refuse the dataset in ``directory`` when it was built with other options than
    ``wanted_options`` or (``check_files``) from files that changed since; a dataset that records
    neither (hsijax 0.1) is used with one line."""
    name = Path(directory).parent.name
    recorded = metadata.get("import_options")
    if recorded is None:
        warn(f"{directory}: records no import options or source files (written by hsijax 0.1, or from an "
             f"array in memory), so it cannot be checked against what is asked for {name}; --rebuild builds "
             "it again")
        return
    differences = option_differences(recorded, wanted_options)
    if differences:
        raise HsijaxError(f"{directory}: dataset {name} was built with other options ({'; '.join(differences)}); "
                          + REBUILD)
    if not check_files:
        return
    for file in metadata.get("source_files") or ():
        change = FileRecord(**file).change()
        if change is not None:
            raise HsijaxError(f"{file['path']}: {change} (dataset {name} in {directory} was built from it); "
                              + REBUILD)
