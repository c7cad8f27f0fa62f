"""An experiment's workdir records the settings it ran with, so that a resume never mixes two runs.

`hsijax study` and `hsijax leave-out` resume by keeping every result already on disk. Rerun in the
same workdir with other seeds, steps or scenes, they would otherwise hand back the old numbers as
if they were the new ones. The first run writes its config to ``WORKDIR/experiment_config.json``;
a later one with other settings is refused in one line naming the fields that differ. Where the
scenes are read from (``data_dir``) and whether they are rebuilt may change, and a list an
experiment names as ``growing`` (its methods: each result is computed on its own) may gain entries,
so a study extended by a method runs only that method; a list that loses or renames an entry is
other settings. A workdir of hsijax 0.1 records none: its results are kept with one line, and the
settings of this run recorded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from hsijax.errors import HsijaxError, warn
from hsijax.files import write_json_atomic

SETTINGS = "experiment_config.json"
# Fields that say where data is read from, not what is computed.
UNCHECKED = ("pretrain.data.data_dir", "pretrain.data.rebuild", "pretrain.data.source_dir", "data.data_dir",
             "data.rebuild", "data.source_dir")


def flat(config: Mapping, prefix: str = "") -> dict:
    """{"a.b.c": value} for every leaf of a nested mapping."""
    leaves = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and value:
            leaves.update(flat(value, f"{prefix}{key}."))
        else:
            leaves[f"{prefix}{key}"] = value
    return leaves


def settings_of(config) -> dict:
    """The config's fields as JSON values (tuples as lists), less `UNCHECKED`."""
    leaves = flat(json.loads(config.to_json_best_effort()))
    return {key: value for key, value in sorted(leaves.items()) if key not in UNCHECKED}


def entries(value) -> list[str]:
    """A list field's entries, given as a list or (the comma-joined form) one string."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    return [str(item).strip() for item in items if str(item).strip()]


def check_settings(workdir: Path, config, command: str, growing: tuple[str, ...] = ()) -> None:
    """Record ``config`` in a new ``workdir``; refuse one that ran with other settings (a ``growing``
    list may gain entries: the settings recorded then become this run's)."""
    path, now = Path(workdir) / SETTINGS, settings_of(config)
    if path.is_file():
        saved = json.loads(path.read_text())

        def same(key) -> bool:
            if key in growing and key in saved and key in now:
                return set(entries(saved[key])) <= set(entries(now[key]))
            return saved.get(key) == now.get(key)

        changed = [f"{key}: {saved.get(key)!r} -> {now.get(key)!r}" for key in sorted(set(saved) | set(now))
                   if key not in UNCHECKED and not same(key)]
        if changed:
            shown = "; ".join(changed[:6]) + (f"; and {len(changed) - 6} more" if len(changed) > 6 else "")
            raise HsijaxError(f"{workdir}: holds an {command} run with other settings ({shown}); give another "
                              "--workdir, or the settings it ran with")
        if saved != now:  # a growing list gained entries
            write_json_atomic(path, now)
        return
    if any(Path(workdir).iterdir()):
        warn(f"{workdir}: records no settings (written before hsijax 0.2), so its results are kept as they "
             f"are; the settings of this run are recorded in {SETTINGS}")
    write_json_atomic(path, now)
