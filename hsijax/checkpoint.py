"""Orbax checkpoints of a pretraining run, and `load_model` to get a model back from one.

Layout: ``WORKDIR/checkpoints/STEP/`` with four items:
- ``state``: parameters, optimiser state, step and RNG key (Orbax standard pytree, restorable
  with plain Orbax and no hsijax: ``ocp.StandardCheckpointer().restore(".../STEP/state")``);
- ``data``: the Grain iterator state, so a resumed run sees exactly the batches it would have seen;
- ``model_config``: the `ModelConfig` as JSON, enough to rebuild the network without the
  training config;
- ``train_config``: the whole training configuration as JSON, for the record.

Orbax writes each checkpoint to a temporary directory and renames it when complete, so a run
killed mid-save leaves the previous checkpoint as the newest; `CheckpointManager` keeps the last K.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import absl.logging
import grain
import jax
import orbax.checkpoint as ocp

from hsijax.errors import HsijaxError
from hsijax.model import Model, ModelConfig, init_variables


def checkpoint_manager(workdir, every: int, keep: int) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(save_interval_steps=every, max_to_keep=keep, create=True)
    return ocp.CheckpointManager(
        Path(workdir).expanduser().resolve() / "checkpoints",
        options=options,
        item_handlers={
            "state": ocp.StandardCheckpointHandler(),
            "data": grain.checkpoint.CheckpointHandler(),
            "model_config": ocp.JsonCheckpointHandler(),
            "train_config": ocp.JsonCheckpointHandler(),
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
        ),
        force=force,
    )


def restore_latest(manager: ocp.CheckpointManager, abstract_state: dict, iterator, model_config: ModelConfig):
    """(step, state) from the newest checkpoint, restoring ``iterator`` in place; None when there is none.

    A workdir holding a run of another model configuration is refused rather than mixed.
    """
    step = manager.latest_step()
    if step is None:
        return None
    saved = manager.restore(step, args=ocp.args.Composite(model_config=ocp.args.JsonRestore()))
    if ModelConfig.from_dict(saved.model_config) != model_config:
        raise HsijaxError(
            f"{manager.directory}: holds a run of another model ({saved.model_config}); "
            "use a new --workdir or the same config.model"
        )
    restored = manager.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state),
            data=grain.checkpoint.CheckpointRestore(iterator),
        ),
    )
    return step, restored.state


def _step_directory(path: Path) -> Path:
    """The newest step directory under a workdir or a checkpoints directory, or ``path`` itself."""
    path = Path(path).expanduser().resolve()  # Orbax wants absolute paths
    if (path / "state").is_dir():
        return path
    folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    steps = sorted((int(p.name), p) for p in folder.glob("*") if p.name.isdigit() and (p / "state").is_dir())
    if not steps:
        raise HsijaxError(f"{path}: no checkpoint found (expected WORKDIR/checkpoints/STEP/state)")
    return steps[-1][1]


@contextlib.contextmanager
def absl_errors_only():
    level = absl.logging.get_verbosity()
    absl.logging.set_verbosity(absl.logging.ERROR)
    try:
        yield
    finally:
        absl.logging.set_verbosity(level)


def restore_on_this_machine(state_directory: Path) -> dict:
    """The saved pytree on this process's first device, whatever mesh it was saved from."""
    checkpointer = ocp.StandardCheckpointer()
    with absl_errors_only():  # Orbax warns that a step item has no step-level metadata file
        metadata = checkpointer.metadata(state_directory).item_metadata
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device), metadata)
    return checkpointer.restore(state_directory, target)


def load_model(path) -> Model:
    """The model saved in a workdir, its checkpoints directory, or one step's directory (newest step)."""
    directory = _step_directory(Path(path))
    handler = ocp.JsonCheckpointHandler()
    try:
        config = ModelConfig.from_dict(handler.restore(directory / "model_config"))
        state = restore_on_this_machine(directory / "state")
    except (OSError, ValueError, KeyError) as error:
        raise HsijaxError(f"{directory}: unreadable checkpoint ({type(error).__name__}: {error})") from None
    params = state.get("params") if isinstance(state, dict) else None
    if _shapes(params) != _shapes(jax.eval_shape(lambda: init_variables(config, 0))):
        raise HsijaxError(f"{directory}: the saved parameters do not match its model_config "
                          f"({config.to_dict()}); the checkpoint is damaged or mixed")
    return Model(config, params)


def _shapes(tree) -> tuple:
    """The structure of a pytree with the shape of every leaf, to compare two parameter trees."""
    leaves, structure = jax.tree.flatten(tree)
    return structure, tuple(tuple(getattr(leaf, "shape", ())) for leaf in leaves)


def save_model(model: Model, directory) -> Path:
    """Write ``model`` in the layout of one checkpoint step (``state/`` with its parameters and
    ``model_config/``), so that `load_model`, `SpectralClassifier.from_pretrained` and the
    ``--checkpoint`` options read it like a pretraining checkpoint."""
    directory = Path(directory).expanduser().resolve()
    if directory.exists():
        raise HsijaxError(f"{directory}: already exists")
    staging = directory.with_name(f".{directory.name}.saving")
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(staging / "state", {"params": model.variables})
    checkpointer.wait_until_finished()
    (staging / "model_config").mkdir()
    ocp.JsonCheckpointHandler().save(staging / "model_config", args=ocp.args.JsonSave(model.config.to_dict()))
    staging.rename(directory)
    return directory
