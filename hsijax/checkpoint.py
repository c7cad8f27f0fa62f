"""Orbax checkpoints of a pretraining run, and `load_model` to get a model back from one.

Layout: ``WORKDIR/checkpoints/STEP/`` with four items:
- ``state``: parameters, optimiser state, step and RNG key (Orbax standard pytree, restorable
  with plain Orbax and no hsijax: ``ocp.StandardCheckpointer().restore(".../STEP/state")``);
- ``data``: the Grain iterator state, so a resumed run sees exactly the batches it would have seen;
- ``model_config``: the `ModelConfig` as JSON, enough to rebuild the network without the
  training config;
- ``train_config``: the whole training configuration as JSON, for the record;
- ``checksum``: the SHA-256 of each entry of ``state`` (parameters, optimiser state, step, RNG key),
  because a garbled array file can otherwise restore silently with wrong values.

Orbax writes each checkpoint to a temporary directory (``STEP.orbax-checkpoint-tmp``) and renames it
when complete, so a run killed mid-save leaves the previous checkpoint as the newest; the manager
removes such leftovers in the background when it starts (a save waits for that), and keeps the
last K checkpoints.

Damage: a checkpoint that cannot be read back (a truncated or garbled file, a missing metadata
file, a checksum that does not match) is named in one warning line on stderr and the one before it
is used, both when a run resumes (`restore_latest`, which then moves the damaged ones aside to
``STEP.damaged`` so that the run can save those steps again) and in `load_model` (which changes
nothing on disk). When no checkpoint is readable both raise `HsijaxError`, and nothing is moved.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sys
from pathlib import Path

import absl.logging
import grain
import jax
import numpy as np
import orbax.checkpoint as ocp

from hsijax.errors import HsijaxError, describe
from hsijax.model import Model, ModelConfig, init_variables
from hsijax.pretrained import checkpoint_path


def checkpoint_manager(workdir, every: int, keep: int) -> ocp.CheckpointManager:
    # cleanup_tmp_directories: remove what a save killed half-way left (STEP.orbax-checkpoint-tmp)
    options = ocp.CheckpointManagerOptions(save_interval_steps=every, max_to_keep=keep, create=True,
                                           cleanup_tmp_directories=True)
    return ocp.CheckpointManager(
        Path(workdir).expanduser().resolve() / "checkpoints",
        options=options,
        item_handlers={
            "state": ocp.StandardCheckpointHandler(),
            "data": grain.checkpoint.CheckpointHandler(),
            "model_config": ocp.JsonCheckpointHandler(),
            "train_config": ocp.JsonCheckpointHandler(),
            "checksum": ocp.JsonCheckpointHandler(),
        },
    )


def save(manager: ocp.CheckpointManager, step: int, state: dict, iterator, model_config: ModelConfig,
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


def checksums(state: dict) -> dict[str, str]:
    """SHA-256 of each entry of a state dict: its leaves' dtypes, shapes and bytes, in tree order
    (this process's first copy of each array; the state is replicated)."""
    result = {}
    for key, tree in state.items():
        digest = hashlib.sha256()
        for leaf in jax.tree.leaves(tree):
            array = np.asarray(leaf.addressable_data(0) if isinstance(leaf, jax.Array) else leaf)
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        result[key] = digest.hexdigest()
    return result


class Damaged(Exception):
    """A checkpoint that cannot be read back; the message says why, on one line."""


def _warn(message: str) -> None:
    print(f"hsijax: warning: {message}", file=sys.stderr, flush=True)


def restore_latest(manager: ocp.CheckpointManager, abstract_state: dict, iterator, model_config: ModelConfig):
    """(step, state) from the newest readable checkpoint, restoring ``iterator`` in place; None when
    there is none.

    Unreadable newer checkpoints are named on stderr (one line each) and moved aside to
    ``STEP.damaged``; when none is readable, `HsijaxError` and nothing is moved. A workdir holding a
    run of another model configuration is refused rather than mixed.
    """
    damaged = []
    with absl_quiet():  # Orbax and TensorStore log each failure at length; the warning says it once
        for step in sorted(manager.all_steps(), reverse=True):
            try:
                state = _restore_step(manager, step, abstract_state, iterator, model_config)
            except Damaged as error:
                damaged.append((step, str(error)))
                continue
            for bad, reason in damaged:
                _warn(f"{manager.directory / str(bad)}: unreadable checkpoint ({reason}); "
                      f"moved to {bad}.damaged, resuming from step {step}")
            _move_aside(manager, [bad for bad, _ in damaged])
            return step, state
    if damaged:
        bad, reason = damaged[0]
        raise HsijaxError(f"{manager.directory / str(bad)}: unreadable checkpoint ({reason}), and no older "
                          "checkpoint is readable; use a new --workdir")
    return None


def _restore_step(manager: ocp.CheckpointManager, step: int, abstract_state: dict, iterator,
                  model_config: ModelConfig) -> dict:
    """One checkpoint's state (and ``iterator``'s position); `Damaged` if it cannot be read back."""
    try:
        saved = manager.restore(step, args=ocp.args.Composite(model_config=ocp.args.JsonRestore()))
        saved_config = ModelConfig.from_dict(saved.model_config)
    except Exception as error:  # Orbax, TensorStore and JSON raise many types for damaged files
        raise Damaged(describe(error)) from None
    if saved_config != model_config:
        raise HsijaxError(
            f"{manager.directory}: holds a run of another model ({saved.model_config}); "
            "use a new --workdir or the same config.model"
        )
    items = {"state": ocp.args.StandardRestore(abstract_state), "data": grain.checkpoint.CheckpointRestore(iterator)}
    has_checksum = (Path(manager.directory) / str(step) / "checksum").is_dir()  # older checkpoints have none
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
            folder = Path(manager.directory) / str(step)
            aside = folder.with_name(f"{step}.damaged")
            shutil.rmtree(aside, ignore_errors=True)
            folder.rename(aside)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("hsijax: damaged checkpoints moved aside")
    manager.reload()


def _step_directories(path: Path) -> list[Path]:
    """``path`` if it is one step's directory, else the step directories under a workdir or a
    checkpoints directory, newest first."""
    path = Path(path).expanduser().resolve()  # Orbax wants absolute paths
    if (path / "state").is_dir():
        return [path]
    folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    steps = sorted(((int(p.name), p) for p in folder.glob("*") if p.name.isdigit() and p.is_dir()), reverse=True)
    if not steps:
        raise HsijaxError(f"{path}: no checkpoint found (expected WORKDIR/checkpoints/STEP/state)")
    return [p for _, p in steps]


@contextlib.contextmanager
def absl_quiet(level=absl.logging.FATAL):
    """absl logging (Orbax's) less severe than ``level`` silenced inside the block."""
    before = absl.logging.get_verbosity()
    absl.logging.set_verbosity(min(before, level))  # absl: the lower the verbosity, the fewer messages
    try:
        yield
    finally:
        absl.logging.set_verbosity(before)


def restore_on_this_machine(state_directory: Path) -> dict:
    """The saved pytree on this process's first device, whatever mesh it was saved from."""
    checkpointer = ocp.StandardCheckpointer()
    with absl_quiet(absl.logging.ERROR):  # Orbax warns that a step item has no step-level metadata file
        metadata = checkpointer.metadata(state_directory).item_metadata
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device), metadata)
    return checkpointer.restore(state_directory, target)


def load_model(path) -> Model:
    """The model saved in a workdir, its checkpoints directory (newest readable step), one step's
    directory, or ``"pretrained"``: the weights shipped with hsijax (`hsijax.pretrained`).

    An unreadable newer step of a workdir is named in a one-line warning on stderr and the one before
    it is used (nothing on disk changes); when no step is readable, or the one step given is not,
    `HsijaxError`.
    """
    directories = _step_directories(checkpoint_path(path))
    errors = []
    for directory in directories:
        try:
            model = _load_step(directory)
        except HsijaxError as error:
            errors.append(error)
            continue
        for error in errors:
            _warn(f"{error}; using step {directory.name}")
        return model
    raise errors[0]


def newest_step_directory(path) -> Path:
    """The one checkpoint step that `load_model(path)` tries first (a step directory is itself)."""
    return _step_directories(checkpoint_path(path))[0]


def _load_step(directory: Path) -> Model:
    handler = ocp.JsonCheckpointHandler()
    try:
        with absl_quiet():
            config = ModelConfig.from_dict(handler.restore(directory / "model_config"))
            state = restore_on_this_machine(directory / "state")
            saved_checksum = handler.restore(directory / "checksum") if (directory / "checksum").is_dir() else None
        params = state.get("params") if isinstance(state, dict) else None
        if saved_checksum is not None and saved_checksum["params"] != checksums({"params": params})["params"]:
            raise Damaged("its parameters do not match their checksum")
    except Damaged as error:
        raise HsijaxError(f"{directory}: unreadable checkpoint ({error})") from None
    except Exception as error:  # Orbax, TensorStore and JSON raise many types for damaged files
        raise HsijaxError(f"{directory}: unreadable checkpoint ({describe(error)})") from None
    if _shapes(params) != _shapes(jax.eval_shape(lambda: init_variables(config, 0))):
        raise HsijaxError(f"{directory}: the saved parameters do not match its model_config "
                          f"({config.to_dict()}); the checkpoint is damaged or mixed")
    return Model(config, params)


def _shapes(tree) -> tuple:
    """The structure of a pytree with the shape of every leaf, to compare two parameter trees."""
    leaves, structure = jax.tree.flatten(tree)
    return structure, tuple(tuple(getattr(leaf, "shape", ())) for leaf in leaves)


def save_model(model: Model, directory) -> Path:
    """Write ``model`` in the layout of one checkpoint step (``state/`` with its parameters,
    ``model_config/`` and ``checksum/``), so that `load_model`, `SpectralClassifier.from_pretrained` and the
    ``--checkpoint`` options read it like a pretraining checkpoint."""
    directory = Path(directory).expanduser().resolve()
    if directory.exists():
        raise HsijaxError(f"{directory}: already exists")
    staging = directory.with_name(f".{directory.name}.saving")
    shutil.rmtree(staging, ignore_errors=True)  # left by a save that was killed
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(staging / "state", {"params": model.variables})
    checkpointer.wait_until_finished()
    (staging / "model_config").mkdir()
    ocp.JsonCheckpointHandler().save(staging / "model_config", args=ocp.args.JsonSave(model.config.to_dict()))
    (staging / "checksum").mkdir()
    ocp.JsonCheckpointHandler().save(staging / "checksum", args=ocp.args.JsonSave(checksums({"params": model.variables})))
    staging.rename(directory)
    return directory
