"""Everything hsijax writes to disk as Orbax checkpoints: pretraining runs, saved (exported and
shipped) models, and any other arrays with a JSON record, such as a classifier.

Why one module: a run's step, a saved model and a classifier are the same thing on disk -- arrays, a
JSON record of what they are, and a checksum -- and they fail the same ways (a save cut short, a
truncated or garbled file). Kept in one place, they share one layout, one integrity check
(`verify_checksums`), one list of steps (Orbax's own: `checkpoint_steps`) and one fallback past
damaged steps (`newest_readable`), so `load_model` and a resumed run can never disagree on whether a
step is readable, or on which step is used.

The layout of a folder written by `save_arrays` (a saved model, a classifier):
- ``state``: an Orbax standard pytree, restorable with plain Orbax:
  ``ocp.StandardCheckpointer().restore(...)``. A saved model's holds ``params``; a run's step also
  holds the optimiser state and the step number;
- one JSON item per record: a saved model's ``model_config`` is the network's config, its ``kind``
  first (hsijax 0.1 saved none: its fields say which network it is,
  `hsijax.models.networks.config_from_v01`), enough to rebuild the network without any training
  config;
- ``checksum``: the SHA-256 of each entry of ``state`` (`checksums`), written last, because a
  garbled array file can otherwise restore silently with wrong values. A folder without one is a
  save cut short in object storage, and locally one saved before checksums existed.
Saves are atomic: locally, a hidden sibling folder renamed into place when complete (`new_folder`);
in object storage, which has no folder rename, the folder itself, completed by its checksum.

A pretraining run (`checkpoint_manager`, `save`, `restore_latest`): ``WORKDIR/checkpoints/STEP/``
holds those items and two more, so `load_model` reads any step:
- ``data``: the Grain iterator state, so a resumed run sees exactly the batches it would have seen;
- ``train_config``: the whole training configuration as JSON. A run resumes only with the config it
  was started with: a workdir holding a run of another model, or another schedule, batch, data or
  seed (`RUN_FIELDS`), is refused with one line naming the fields, rather than silently continued
  as something that is neither run.
Orbax writes each step to a temporary directory (``STEP.orbax-checkpoint-tmp``) and renames it when
complete (in object storage: marks it with ``commit_success.txt``), so a run killed mid-save leaves
the previous step as the newest; the manager removes such leftovers in the background when it
starts (a save waits for that) and keeps the last K steps. Steps saved by hsijax 0.2.0 and earlier also hold the
run's RNG key (``state["rng"]``), which nothing read: they still restore, without it.

Shipped models are saved models under ``hsijax/weights``, read from the installed package, so they
load offline, each with its model card:
- ``pretrained`` (``load_pretrained()``, ``--checkpoint pretrained``): the linear network on the
  wavelength grid (``shared_grid_network``, ``MODEL_CARD.md``), the best shared code measured on
  sensors it never saw (docs/leave_out_linear), written by ``hsijax grid-pca --network``;
- ``poster`` (``load_pretrained("poster")``, ``--checkpoint poster``): the poster's CNN, the default
  until the leave-sensor-out evaluation (``shared_encoder``, ``POSTER_MODEL_CARD.md``).
A local folder named like one of them is still reachable as ``./NAME``.

Damage: a step that cannot be read back (a truncated or garbled file, missing metadata, a checksum
that does not match, parameters that do not fit their config) is named in one warning line on
stderr and the step before it is used. `load_model` changes nothing on disk; a resumed run moves the
damaged steps aside to ``STEP.damaged`` so that it can save those steps again. When no step is
readable, `HsijaxError`, and nothing is moved.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import absl.logging
import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from hsijax.errors import HsijaxError, describe, warn
from hsijax.files import is_uri, storage_path
from hsijax.models.model import Model, init_variables
from hsijax.models.networks import NetworkConfig, config_from_dict

# --- the format ------------------------------------------------------------------------------------

STATE, CHECKSUM = "state", "checksum"  # the arrays, and their checksums (written last)
MODEL_CONFIG = "model_config"  # a saved model's record: its network's config
RECORD = "record"  # the record of other arrays saved with `save_arrays` (a classifier)
DATA, TRAIN_CONFIG = "data", "train_config"  # a run's step also holds its iterator and its config
# How the steps of a run are named and found: Orbax's standard names (``WORKDIR/checkpoints/40``),
# the same for the run's manager and for `checkpoint_steps`.
STEP_NAMES = ocp.step.standard_name_format()

# --- the shipped models ----------------------------------------------------------------------------

PRETRAINED = "pretrained"  # what --checkpoint and load_model accept for the shipped default
WEIGHTS_DIRECTORY = Path(__file__).resolve().parents[1] / "weights"
SHIPPED = {PRETRAINED: WEIGHTS_DIRECTORY / "shared_grid_network", "poster": WEIGHTS_DIRECTORY / "shared_encoder"}
MODEL_CARDS = {PRETRAINED: WEIGHTS_DIRECTORY / "MODEL_CARD.md", "poster": WEIGHTS_DIRECTORY / "POSTER_MODEL_CARD.md"}
WEIGHTS, MODEL_CARD = SHIPPED[PRETRAINED], MODEL_CARDS[PRETRAINED]

T = TypeVar("T")


class Damaged(Exception):
    """A checkpoint that cannot be read back; the message says why, on one line."""


@contextlib.contextmanager
def absl_quiet(level=absl.logging.FATAL):
    """absl logging (Orbax's) less severe than ``level`` silenced inside the block."""
    before = absl.logging.get_verbosity()
    absl.logging.set_verbosity(min(before, level))  # absl: the lower the verbosity, the fewer messages
    try:
        yield
    finally:
        absl.logging.set_verbosity(before)


# --- the one integrity check -----------------------------------------------------------------------

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


ENTRY_NAMES = {"params": "parameters", "opt_state": "optimiser state"}


def verify_checksums(state: dict, saved: dict | None, directory) -> None:
    """`Damaged` unless every entry of the restored ``state`` matches the checksum ``saved`` with it.
    Entries saved but not restored (an older step's RNG key) are not read, so not checked. No
    checksum (None): a save cut short in object storage; locally, one saved before checksums."""
    if saved is None:
        if is_uri(directory):  # written in place there, checksum last
            raise Damaged("no checksum: a save cut short")
        return
    if not isinstance(saved, dict):
        raise Damaged("its checksum item holds no checksums")
    now = checksums(state)
    wrong = [key for key in state if saved.get(key) != now[key]]
    if wrong:
        raise Damaged(f"its {' and '.join(ENTRY_NAMES.get(key, key) for key in wrong)} do not match their checksum")


# --- steps -----------------------------------------------------------------------------------------

def checkpoint_path(path) -> epath.Path:
    """``path`` as an absolute local path or an object-store URI (`hsijax.files.storage_path`), or
    a shipped model for its name (``pretrained``, ``poster``; a folder of that name is still
    reachable as ``./pretrained``)."""
    if str(path) not in SHIPPED:
        return storage_path(path)
    folder = SHIPPED[str(path)]
    if not (folder / STATE).is_dir():
        raise HsijaxError(f"{folder}: the shipped model {str(path)!r} is missing from this installation of hsijax")
    return epath.Path(folder)


def checkpoint_steps(folder) -> list[epath.Path]:
    """The complete steps under ``folder``, newest first, as a run's `checkpoint_manager` lists them
    (Orbax's step names and its test of completeness: ``STEP.orbax-checkpoint-tmp``, ``STEP.damaged``
    and, in object storage, a step without ``commit_success.txt`` are not steps)."""
    return [found.path for found in sorted(STEP_NAMES.find_all(folder), key=lambda found: found.step, reverse=True)]


def step_directories(path) -> list[epath.Path]:
    """What `load_model(path)` tries, newest first: ``path`` itself if it holds a ``state`` (one
    step, a saved model, a shipped model's name), else the steps of a workdir or of its checkpoints
    directory (`checkpoint_steps`)."""
    path = checkpoint_path(path)
    try:
        if (path / STATE).is_dir():
            return [path]
        steps = checkpoint_steps(path / "checkpoints" if (path / "checkpoints").is_dir() else path)
    except Exception as error:  # a bucket that cannot be reached, a folder that cannot be listed
        raise HsijaxError(f"{path}: cannot be read ({describe(error)})") from None
    if not steps:
        raise HsijaxError(f"{path}: no checkpoint found (expected WORKDIR/checkpoints/STEP/state)")
    return steps


# --- the one fallback past damaged steps -----------------------------------------------------------

def newest_readable(directories: Sequence[epath.Path], read: Callable[[epath.Path], T],
                    resuming: bool = False) -> tuple[epath.Path, T]:
    """(directory, ``read(directory)``) of the first of ``directories`` (newest first) that ``read``
    reads without `Damaged`. Each newer one is named in one warning line on stderr; ``resuming`` (a
    run), it is also moved aside to ``STEP.damaged``, so that the run can save that step again. When
    none is readable, `HsijaxError` naming the newest, and nothing is moved. Other errors of
    ``read`` (a run of another config) end the search as they are."""
    if not directories:
        raise ValueError("newest_readable needs at least one directory")
    damaged = []
    with absl_quiet():  # Orbax and TensorStore log each failure at length; the warning says it once
        for directory in directories:
            try:
                value = read(directory)
            except Damaged as error:
                damaged.append((directory, str(error)))
                continue
            using = "resuming from" if resuming else "using"
            for bad, reason in damaged:
                aside = f"moved to {bad.name}.damaged, " if resuming else ""
                warn(f"{bad}: unreadable checkpoint ({reason}); {aside}{using} step {directory.name}")
            if resuming and damaged:
                _move_aside([bad for bad, _ in damaged])
            return directory, value
    bad, reason = damaged[0]
    older = ", and no older checkpoint is readable" if len(damaged) > 1 else ""
    hint = "; use a new --workdir" if resuming else ""
    raise HsijaxError(f"{bad}: unreadable checkpoint ({reason}){older}{hint}")


def _move_aside(directories: list[epath.Path]) -> None:
    """Rename damaged step directories to ``STEP.damaged`` (kept for inspection, not a step to Orbax);
    the first process renames, the others wait for it."""
    if jax.process_index() == 0:
        for folder in directories:
            aside = folder.with_name(f"{folder.name}.damaged")
            if aside.exists():
                aside.rmtree()
            folder.rename(aside)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("hsijax: damaged checkpoints moved aside")


# --- arrays with a JSON record: saved models, classifiers ------------------------------------------

@contextlib.contextmanager
def new_folder(directory) -> Iterator[epath.Path]:
    """Where to write the new folder ``directory`` (local or a URI; one already there is
    `HsijaxError`). Locally: a hidden sibling, renamed into place when the block ends, so a save cut
    short leaves no folder of that name. In object storage, which has no folder rename (gcsfs would
    copy every file): the folder itself -- write the item that marks it complete last."""
    directory = storage_path(directory)
    if directory.exists():
        raise HsijaxError(f"{directory}: already exists; this saves to a new folder")
    if is_uri(directory):
        yield directory
        return
    staging = directory.with_name(f".{directory.name}.saving")
    if staging.exists():  # left by a save that was killed
        staging.rmtree()
    yield staging
    staging.rename(directory)


def this_process_checkpointer() -> ocp.StandardCheckpointer:
    """An Orbax checkpointer that writes from this process alone: a saved model or code is written by
    the process that saves it (in a multi-process run, the first), without waiting for the others."""
    process = {jax.process_index()}
    options = ocp.options.MultiprocessingOptions(primary_host=jax.process_index(), active_processes=process)
    return ocp.StandardCheckpointer(multiprocessing_options=options)


def _write_json(directory: epath.Path, record: dict) -> None:
    directory.mkdir()
    ocp.JsonCheckpointHandler().save(directory, args=ocp.args.JsonSave(record))


def save_arrays(directory, arrays: dict, records: dict[str, dict]) -> epath.Path:
    """Write the new folder ``directory`` (local or a URI; atomic, `new_folder`): ``arrays`` (a dict
    of pytrees of arrays) as ``state/``, each of ``records`` as a JSON item of its name, and the
    arrays' ``checksum/`` last. `load_arrays` reads it back; a saved model is one (`save_model`)."""
    with new_folder(directory) as staging:
        checkpointer = this_process_checkpointer()
        checkpointer.save(staging / STATE, arrays)
        checkpointer.wait_until_finished()
        for name, record in records.items():
            _write_json(staging / name, record)
        _write_json(staging / CHECKSUM, checksums(arrays))
    return storage_path(directory)


def restore_on_this_machine(state_directory: epath.Path) -> dict:
    """The saved pytree on this process's first device, whatever mesh it was saved from."""
    checkpointer = ocp.StandardCheckpointer()
    with absl_quiet(absl.logging.ERROR):  # Orbax warns that a step item has no step-level metadata file
        metadata = checkpointer.metadata(state_directory).item_metadata
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device), metadata)
    return checkpointer.restore(state_directory, target)


def read_arrays(directory: epath.Path, records: Sequence[str]) -> tuple[dict, dict[str, dict]]:
    """(arrays, {name: record}) of one folder or step, the arrays checked against their checksum
    (`verify_checksums`); `Damaged` if it cannot be read back."""
    handler = ocp.JsonCheckpointHandler()
    try:
        saved = {name: handler.restore(directory / name) for name in records}
        arrays = restore_on_this_machine(directory / STATE)
        saved_checksum = handler.restore(directory / CHECKSUM) if (directory / CHECKSUM).is_dir() else None
    except Exception as error:  # Orbax, TensorStore and JSON raise many types for damaged files
        raise Damaged(describe(error)) from None
    if not isinstance(arrays, dict):
        raise Damaged(f"its {STATE} is not a dict of arrays")
    verify_checksums(arrays, saved_checksum, directory)
    return arrays, saved


def load_arrays(path, records: Sequence[str] = (RECORD,)) -> tuple[dict, dict[str, dict]]:
    """(arrays, {name: record}) saved by `save_arrays` (on this process's first device), from a
    folder, or the newest readable step of a workdir (`newest_readable`); `HsijaxError` in one line
    when nothing is readable (a garbled array: its checksum)."""
    return newest_readable(step_directories(path), lambda directory: read_arrays(directory, records))[1]


# --- models ----------------------------------------------------------------------------------------

def save_model(model: Model, directory) -> epath.Path:
    """Write ``model`` in the layout of one checkpoint step (``state/`` with its parameters,
    ``model_config/`` and ``checksum/``, written last; `save_arrays`), so that `load_model`,
    `SpectralClassifier.from_pretrained` and the ``--checkpoint`` options read it like a pretraining
    checkpoint."""
    return save_arrays(directory, {"params": model.variables}, {MODEL_CONFIG: model.config.to_dict()})


def load_model(path) -> Model:
    """The model saved in a workdir, its checkpoints directory (newest readable step), one step's
    directory, a saved model, or the name of a shipped model (``"pretrained"``, ``"poster"``).

    An unreadable newer step of a workdir is named in a one-line warning on stderr and the one before
    it is used (nothing on disk changes); when no step is readable, or the one step given is not,
    `HsijaxError`.
    """
    return load_model_and_step(path)[0]


def load_model_and_step(path) -> tuple[Model, epath.Path]:
    """`load_model`, and the directory it was read from (the step used, or the saved model)."""
    directory, model = newest_readable(step_directories(path), _read_model)
    return model, directory


def load_pretrained(name: str = PRETRAINED) -> Model:
    """A shipped `Model` (its model card says what it was fitted on and what it scores): by default
    the linear network on the wavelength grid; ``"poster"``: the poster's CNN, shipped before it."""
    if name not in SHIPPED:
        raise HsijaxError(f"no shipped model {name!r}; shipped: {', '.join(SHIPPED)}")
    return load_model(name)


def _read_model(directory: epath.Path) -> Model:
    arrays, records = read_arrays(directory, (MODEL_CONFIG,))
    try:
        config = config_from_dict(records[MODEL_CONFIG])
    except Exception as error:  # not a config at all, or one of no known network
        raise Damaged(describe(error)) from None
    params = arrays.get("params")
    if _shapes(params) != _shapes(jax.eval_shape(lambda: init_variables(config, 0))):
        raise Damaged(f"its parameters do not match its model_config {config.to_dict()}: damaged or mixed")
    return Model(config, params)


def _shapes(tree) -> tuple:
    """The structure of a pytree with the shape of every leaf, to compare two parameter trees."""
    leaves, structure = jax.tree.flatten(tree)
    return structure, tuple(tuple(getattr(leaf, "shape", ())) for leaf in leaves)


# --- pretraining runs ------------------------------------------------------------------------------

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
                                           cleanup_tmp_directories=True, step_name_format=STEP_NAMES)
    return ocp.CheckpointManager(
        storage_path(workdir) / "checkpoints",
        options=options,
        item_handlers={
            STATE: ocp.StandardCheckpointHandler(),
            DATA: grain.checkpoint.CheckpointHandler(),
            MODEL_CONFIG: ocp.JsonCheckpointHandler(),
            TRAIN_CONFIG: ocp.JsonCheckpointHandler(),
            CHECKSUM: ocp.JsonCheckpointHandler(),
        },
    )


def save(manager: ocp.CheckpointManager, step: int, state: dict, iterator, model_config: NetworkConfig,
         train_config: dict, force: bool = False) -> bool:
    """Save at ``step`` if the manager's interval says so (or ``force``); returns whether it did."""
    return manager.save(
        step,
        args=ocp.args.Composite(**{
            STATE: ocp.args.StandardSave(state),
            DATA: grain.checkpoint.CheckpointSave(iterator),
            MODEL_CONFIG: ocp.args.JsonSave(model_config.to_dict()),
            TRAIN_CONFIG: ocp.args.JsonSave(train_config),
            CHECKSUM: ocp.args.JsonSave(checksums(state)),
        }),
        force=force,
    )


def restore_latest(manager: ocp.CheckpointManager, abstract_state: dict, iterator, model_config: NetworkConfig,
                   train_config: dict):
    """(step, state) from the newest readable checkpoint, restoring ``iterator`` in place; None when
    there is none.

    Unreadable newer checkpoints are named on stderr (one line each) and moved aside to
    ``STEP.damaged`` (`newest_readable`); when none is readable, `HsijaxError` and nothing is moved.
    A workdir holding a run of another model configuration or of another ``train_config``
    (`RUN_FIELDS`) is refused.
    """
    steps = {ocp.step.build_step_path(manager.directory, STEP_NAMES, step): step
             for step in sorted(manager.all_steps(), reverse=True)}
    if not steps:
        return None
    directory, state = newest_readable(
        list(steps), lambda directory: _read_run_step(manager, steps[directory], abstract_state, iterator,
                                                      model_config, train_config),
        resuming=True)
    if directory != next(iter(steps)):  # newer steps were moved aside
        manager.reload()
    return steps[directory], state


def _read_run_step(manager: ocp.CheckpointManager, step: int, abstract_state: dict, iterator,
                   model_config: NetworkConfig, train_config: dict) -> dict:
    """One step's state (and ``iterator``'s position); `Damaged` if it cannot be read back,
    `HsijaxError` if it is a run of another config."""
    directory = ocp.step.build_step_path(manager.directory, STEP_NAMES, step)
    try:
        saved = manager.restore(step, args=ocp.args.Composite(**{MODEL_CONFIG: ocp.args.JsonRestore(),
                                                                 TRAIN_CONFIG: ocp.args.JsonRestore()}))
        saved_config = config_from_dict(saved[MODEL_CONFIG])
    except Exception as error:  # Orbax, TensorStore and JSON raise many types for damaged files
        raise Damaged(describe(error)) from None
    if saved_config != model_config:
        raise HsijaxError(
            f"{manager.directory}: holds a run of another model ({saved[MODEL_CONFIG]}); "
            "use a new --workdir or the same config.model"
        )
    changed = changed_run_fields(saved[TRAIN_CONFIG], train_config)
    if changed:
        raise HsijaxError(f"{manager.directory.parent}: holds a run with another training config ("
                          + ", ".join(f"{field} {old!r} saved, {new!r} now" for field, old, new in changed)
                          + "); resume with the saved values or use a new --workdir")
    has_checksum = (directory / CHECKSUM).is_dir()  # checkpoints older than checksums have none
    try:
        items = {STATE: ocp.args.StandardRestore(_with_retired_entries(directory / STATE, abstract_state)),
                 DATA: grain.checkpoint.CheckpointRestore(iterator)}
        if has_checksum:
            items[CHECKSUM] = ocp.args.JsonRestore()
        restored = manager.restore(step, args=ocp.args.Composite(**items))
    except Exception as error:  # as above
        raise Damaged(describe(error)) from None
    verify_checksums(restored[STATE], restored[CHECKSUM] if has_checksum else None, directory)
    return {key: restored[STATE][key] for key in abstract_state}  # an older step's RNG key dropped


def _with_retired_entries(state_directory: epath.Path, abstract_state: dict) -> dict:
    """``abstract_state`` plus the entries an older step saved that runs no longer keep (``rng``,
    by 0.2.0 and earlier), replicated like the rest: Orbax restores a whole tree or nothing, and the checksum
    covers them."""
    with absl_quiet(absl.logging.ERROR):
        saved = ocp.StandardCheckpointer().metadata(state_directory).item_metadata
    retired = [key for key in saved if key not in abstract_state]
    if not retired:
        return abstract_state
    sharding = jax.tree.leaves(abstract_state)[0].sharding

    def as_target(leaf):
        return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)

    return {**abstract_state, **{key: jax.tree.map(as_target, saved[key]) for key in retired}}


def changed_run_fields(saved: dict, now: dict) -> list[tuple[str, object, object]]:
    """(field, saved value, value now) for each of `RUN_FIELDS` that differs between two configs."""

    def value(config: dict, field: str):
        for key in field.split("."):
            config = config.get(key) if isinstance(config, dict) else None
        config = UNRECORDED.get(field) if config is None else config
        return json.loads(json.dumps(config))  # tuples and lists alike, as JSON stores them

    return [(field, value(saved, field), value(now, field)) for field in RUN_FIELDS
            if value(saved, field) != value(now, field)]
