"""Saved models and the shipped weights: moved to hsijax.models.checkpoints after 0.2.0; kept for one release.

`hsijax.models.checkpoints` is now the one module for everything saved as an Orbax checkpoint (runs,
saved and shipped models, other arrays with a JSON record), with one integrity check and one
fallback past damaged steps. The names this module exported resolve to the same objects there with a
`DeprecationWarning`; ``newest_step_directory``, which had no fallback, raises an `ImportError`
naming what replaced it. To be removed in hsijax 0.3.
"""

from __future__ import annotations

import importlib
import warnings

NEW = "hsijax.models.checkpoints"
MOVED = (
    "PRETRAINED", "WEIGHTS_DIRECTORY", "SHIPPED", "MODEL_CARDS", "WEIGHTS", "MODEL_CARD", "Damaged", "absl_quiet",
    "checksums", "checkpoint_path", "step_directories", "restore_on_this_machine", "load_model", "load_pretrained",
    "new_folder", "this_process_checkpointer", "save_model",
)
# Names whose successors take other arguments or return more: importing them says what to use.
REPLACED = {
    "newest_step_directory": f"{NEW}.load_model_and_step (the model and the newest readable step) "
                             f"or {NEW}.step_directories(path)[0]",
}


def __getattr__(name: str):
    if name in MOVED:
        warnings.warn(f"hsijax.models.saved_model.{name} is deprecated: use {NEW}.{name}", DeprecationWarning,
                      stacklevel=2)
        return getattr(importlib.import_module(NEW), name)
    if name in REPLACED:
        raise ImportError(f"hsijax.models.saved_model.{name} was removed after hsijax 0.2.0: use {REPLACED[name]}")
    raise AttributeError(f"module 'hsijax.models.saved_model' has no attribute {name!r}")
