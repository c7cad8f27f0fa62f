"""Orbax checkpoints of a pretraining run: the model, the optimiser, the data iterator and the config.

Layout: ``WORKDIR/checkpoints/STEP/`` holds the three items of a saved model
(`hsijax.models.saved_model`: ``state``, ``model_config``, ``checksum``, so `load_model` reads any
step) and two more:
- ``data``: the Grain iterator state, so a resumed run sees exactly the batches it would have seen;
- ``train_config``: the whole training configuration as JSON. A run resumes only with the config it
  was started with: a workdir holding a run of another model, or another schedule, batch, data or
  seed (`RUN_FIELDS`), is refused with one line naming the fields, rather than silently continued
  as something that is neither run.
``state`` holds the parameters, optimiser state, step and RNG key.

Orbax writes each checkpoint to a temporary directory (``STEP.orbax-checkpoint-tmp``) and renames it
when complete, so a run killed mid-save leaves the previous checkpoint as the newest; the manager
removes such leftovers in the background when it starts (a save waits for that), and keeps the
last K checkpoints.

Damage: a checkpoint that cannot be read back (a truncated or garbled file, a missing metadata
file, a checksum that does not match) is named in one warning line on stderr and the one before it
is used; `restore_latest` then moves the damaged ones aside to ``STEP.damaged`` so that the run can
save those steps again. When no checkpoint is readable, `HsijaxError`, and nothing is moved.
"""

from __future__ import annotations

import json

import grain
import jax
import orbax.checkpoint as ocp

from hsijax.errors import HsijaxError, describe, warn
from hsijax.files import storage_path
from hsijax.models.networks import NetworkConfig, config_from_dict
from hsijax.models.saved_model import Damaged, absl_quiet, checksums

# The training fields that decide what a run computes: a run resumes only with the values it was
# saved with. How often it logs, evaluates or saves, and where its scenes are read from, may change.
RUN_FIELDS = (
    "seed", "train.steps", "train.batch_size", "data.scenes", "data.mixing", "data.held_out_pixels",
    "data.pipeline_format", "optim.learning_rate", "optim.final_learning_rate_fraction", "optim.weight_decay",
    "train.visible_window",
)
# What a checkpoint that lacks a field ran with.
UNRECORDED = {"data.pipeline_format": 1, "train.visible_window": 0.0}


def checkpoint_manager(workdir, every: int, keep: int) -> ocp.CheckpointManager:
    """The manager of ``WORKDIR/checkpoints``; ``workdir`` may be a local path or an object-store URI
    (`hsijax.files.storage_path`): Orbax writes both through epath and TensorStore."""
    # cleanup_tmp_directories: remove what a save killed half-way left (STEP.orbax-checkpoint-tmp)
    options = ocp.CheckpointManagerOptions(save_interval_steps=every, max_to_keep=keep, create=True,
                                           cleanup_tmp_directories=True)
    return ocp.CheckpointManager(
        storage_path(workdir) / "checkpoints",
        options=options,
        item_handlers={
            "state": ocp.StandardCheckpointHandler(),
            "data": grain.checkpoint.CheckpointHandler(),
            "model_config": ocp.JsonCheckpointHandler(),
            "train_config": ocp.JsonCheckpointHandler(),
            "checksum": ocp.JsonCheckpointHandler(),
        },
    )


def save(manager: ocp.CheckpointManager, step: int, state: dict, iterator, model_config: NetworkConfig,
         train_config: dict, force: bool = False) -> bool:
    """Save at ``step`` if the manager's interval says so (or ``force``); returns whether it did."""
    return manager.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=grain.checkpoint.CheckpointSave(iterator),
            model_config=ocp.args.JsonSave(model_config.to_dict()),
            train_config=ocp.args.JsonSave(train_config),
            checksum=ocp.args.JsonSave(checksums(state)),
        ),
        force=force,
    )


def restore_latest(manager: ocp.CheckpointManager, abstract_state: dict, iterator, model_config: NetworkConfig,
                   train_config: dict):
    """(step, state) from the newest readable checkpoint, restoring ``iterator`` in place; None when
    there is none.

    Unreadable newer checkpoints are named on stderr (one line each) and moved aside to
    ``STEP.damaged``; when none is readable, `HsijaxError` and nothing is moved. A workdir holding a
    run of another model configuration or of another ``train_config`` (`RUN_FIELDS`) is refused.
    """
    damaged = []
    with absl_quiet():  # Orbax and TensorStore log each failure at length; the warning says it once
        for step in sorted(manager.all_steps(), reverse=True):
            try:
                state = _restore_step(manager, step, abstract_state, iterator, model_config, train_config)
            except Damaged as error:
                damaged.append((step, str(error)))
                continue
            for bad, reason in damaged:
                warn(f"{manager.directory / str(bad)}: unreadable checkpoint ({reason}); "
                      f"moved to {bad}.damaged, resuming from step {step}")
            _move_aside(manager, [bad for bad, _ in damaged])
            return step, state
    if damaged:
        bad, reason = damaged[0]
        raise HsijaxError(f"{manager.directory / str(bad)}: unreadable checkpoint ({reason}), and no older "
                          "checkpoint is readable; use a new --workdir")
    return None


def _restore_step(manager: ocp.CheckpointManager, step: int, abstract_state: dict, iterator,
                  model_config: NetworkConfig, train_config: dict) -> dict:
    """One checkpoint's state (and ``iterator``'s position); `Damaged` if it cannot be read back."""
    try:
        saved = manager.restore(step, args=ocp.args.Composite(model_config=ocp.args.JsonRestore(),
                                                              train_config=ocp.args.JsonRestore()))
        saved_config = config_from_dict(saved.model_config)
    except Exception as error:  # Orbax, TensorStore and JSON raise many types for damaged files
        raise Damaged(describe(error)) from None
    if saved_config != model_config:
        raise HsijaxError(
            f"{manager.directory}: holds a run of another model ({saved.model_config}); "
            "use a new --workdir or the same config.model"
        )
    changed = changed_run_fields(saved.train_config, train_config)
    if changed:
        raise HsijaxError(f"{manager.directory.parent}: holds a run with another training config ("
                          + ", ".join(f"{field} {old!r} saved, {new!r} now" for field, old, new in changed)
                          + "); resume with the saved values or use a new --workdir")
    items = {"state": ocp.args.StandardRestore(abstract_state), "data": grain.checkpoint.CheckpointRestore(iterator)}
    has_checksum = (manager.directory / str(step) / "checksum").is_dir()  # older checkpoints have none
    if has_checksum:
        items["checksum"] = ocp.args.JsonRestore()
    try:
        restored = manager.restore(step, args=ocp.args.Composite(**items))
    except Exception as error:  # as above
        raise Damaged(describe(error)) from None
    if has_checksum and checksums(restored.state) != restored.checksum:
        raise Damaged("its arrays do not match their checksums")
    return restored.state


def _move_aside(manager: ocp.CheckpointManager, steps: list[int]) -> None:
    """Rename damaged step directories to ``STEP.damaged`` (kept for inspection, ignored by Orbax)."""
    if not steps:
        return
    if jax.process_index() == 0:
        for step in steps:
            folder = manager.directory / str(step)
            aside = folder.with_name(f"{step}.damaged")
            if aside.exists():
                aside.rmtree()
            folder.rename(aside)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("hsijax: damaged checkpoints moved aside")
    manager.reload()


def changed_run_fields(saved: dict, now: dict) -> list[tuple[str, object, object]]:
    """(field, saved value, value now) for each of `RUN_FIELDS` that differs between two configs."""

    def value(config: dict, field: str):
        for key in field.split("."):
            config = config.get(key) if isinstance(config, dict) else None
        config = UNRECORDED.get(field) if config is None else config
        return json.loads(json.dumps(config))  # tuples and lists alike, as JSON stores them

    return [(field, value(saved, field), value(now, field)) for field in RUN_FIELDS
            if value(saved, field) != value(now, field)]
