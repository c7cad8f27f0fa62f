"""A pretraining run's checkpoints: moved to hsijax.models.checkpoints after 0.2.0; kept for one release.

`hsijax.models.checkpoints` is now the one module for everything saved as an Orbax checkpoint (runs,
saved and shipped models, other arrays with a JSON record), with one integrity check and one
fallback past damaged steps, which `restore_latest` and `load_model` share. The names this module
exported resolve to the same objects there with a `DeprecationWarning`. To be removed in hsijax 0.3.
"""

from __future__ import annotations

import importlib
import warnings

NEW = "hsijax.models.checkpoints"
MOVED = ("RUN_FIELDS", "UNRECORDED", "checkpoint_manager", "save", "restore_latest", "changed_run_fields",
         "Damaged", "absl_quiet", "checksums")


def __getattr__(name: str):
    if name in MOVED:
        warnings.warn(f"hsijax.train.checkpoint.{name} is deprecated: use {NEW}.{name}", DeprecationWarning,
                      stacklevel=2)
        return getattr(importlib.import_module(NEW), name)
    raise AttributeError(f"module 'hsijax.train.checkpoint' has no attribute {name!r}")
