"""A model on disk: `save_model`, `load_model`, and the pretrained weights that ship with hsijax.

One layout serves a saved model and every step of a pretraining run's checkpoints
(`hsijax.train.checkpoint`), so whatever `load_model` is given it reads the same three items:
- ``state``: an Orbax standard pytree holding ``params`` (a training step also holds the optimiser
  state, step and RNG key), restorable with plain Orbax: ``ocp.StandardCheckpointer().restore(...)``;
- ``model_config``: the network's config as JSON, its ``kind`` first (hsijax 0.1 saved none: its
  fields say which network it is, `hsijax.models.networks.config_from_v01`), enough to rebuild the
  network without any training config;
- ``checksum``: the SHA-256 of each entry of ``state``, because a garbled array file can otherwise
  restore silently with wrong values.

Shipped models are saved models under ``hsijax/weights``, read from the installed package, so they
load offline, each with its model card:
- ``pretrained`` (``load_pretrained()``, ``--checkpoint pretrained``): the linear network on the
  wavelength grid (``shared_grid_network``, ``MODEL_CARD.md``), the best shared code measured on
  sensors it never saw (docs/leave_out_linear), written by ``hsijax grid-pca --network``;
- ``poster`` (``load_pretrained("poster")``, ``--checkpoint poster``): the poster's CNN, the default
  until the leave-sensor-out evaluation (``shared_encoder``, ``POSTER_MODEL_CARD.md``).
A local folder named like one of them is still reachable as ``./NAME``.

Damage: a step that cannot be read back (a truncated or garbled file, missing metadata, a checksum
that does not match) is named in one warning line on stderr and the step before it is used; nothing
on disk changes. When no step is readable, `HsijaxError`.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

import absl.logging
import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from hsijax.errors import HsijaxError, describe, warn
from hsijax.files import is_uri, storage_path
from hsijax.models.model import Model, init_variables
from hsijax.models.networks import config_from_dict

PRETRAINED = "pretrained"  # what --checkpoint and load_model accept for the shipped default
WEIGHTS_DIRECTORY = Path(__file__).resolve().parents[1] / "weights"
SHIPPED = {PRETRAINED: WEIGHTS_DIRECTORY / "shared_grid_network", "poster": WEIGHTS_DIRECTORY / "shared_encoder"}
MODEL_CARDS = {PRETRAINED: WEIGHTS_DIRECTORY / "MODEL_CARD.md", "poster": WEIGHTS_DIRECTORY / "POSTER_MODEL_CARD.md"}
WEIGHTS, MODEL_CARD = SHIPPED[PRETRAINED], MODEL_CARDS[PRETRAINED]


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


def checkpoint_path(path) -> epath.Path:
    """``path`` as an absolute local path or an object-store URI (`hsijax.files.storage_path`), or
    a shipped model for its name (``pretrained``, ``poster``; a folder of that name is still
    reachable as ``./pretrained``)."""
    if str(path) not in SHIPPED:
        return storage_path(path)
    folder = SHIPPED[str(path)]
    if not (folder / "state").is_dir():
        raise HsijaxError(f"{folder}: the shipped model {str(path)!r} is missing from this installation of hsijax")
    return epath.Path(folder)


def step_directories(path) -> list[epath.Path]:
    """``path`` if it is one step's directory (or a saved model), else the step directories under a
    workdir or a checkpoints directory, newest first; ``pretrained`` is the shipped weights."""
    path = checkpoint_path(path)
    try:
        if (path / "state").is_dir():
            return [path]
        folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        found = [p for p in folder.glob("*") if p.name.isdigit() and p.is_dir()] if folder.is_dir() else []
    except OSError as error:  # a bucket that cannot be reached, a folder that cannot be listed
        raise HsijaxError(f"{path}: cannot be read ({describe(error)})") from None
    steps = sorted(((int(p.name), p) for p in found), reverse=True)
    if not steps:
        raise HsijaxError(f"{path}: no checkpoint found (expected WORKDIR/checkpoints/STEP/state)")
    return [p for _, p in steps]


def newest_step_directory(path) -> epath.Path:
    """The one checkpoint step that `load_model(path)` tries first (a step directory is itself)."""
    return step_directories(path)[0]


def restore_on_this_machine(state_directory: epath.Path) -> dict:
    """The saved pytree on this process's first device, whatever mesh it was saved from."""
    checkpointer = ocp.StandardCheckpointer()
    with absl_quiet(absl.logging.ERROR):  # Orbax warns that a step item has no step-level metadata file
        metadata = checkpointer.metadata(state_directory).item_metadata
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device), metadata)
    return checkpointer.restore(state_directory, target)


def load_model(path) -> Model:
    """The model saved in a workdir, its checkpoints directory (newest readable step), one step's
    directory, a saved model, or the name of a shipped model (``"pretrained"``, ``"poster"``).

    An unreadable newer step of a workdir is named in a one-line warning on stderr and the one before
    it is used (nothing on disk changes); when no step is readable, or the one step given is not,
    `HsijaxError`.
    """
    errors = []
    for directory in step_directories(path):
        try:
            model = _load_step(directory)
        except HsijaxError as error:
            errors.append(error)
            continue
        for error in errors:
            warn(f"{error}; using step {directory.name}")
        return model
    raise errors[0]


def load_pretrained(name: str = PRETRAINED) -> Model:
    """A shipped `Model` (its model card says what it was fitted on and what it scores): by default
    the linear network on the wavelength grid; ``"poster"``: the poster's CNN, shipped before it."""
    if name not in SHIPPED:
        raise HsijaxError(f"no shipped model {name!r}; shipped: {', '.join(SHIPPED)}")
    return load_model(name)


def _load_step(directory: epath.Path) -> Model:
    handler = ocp.JsonCheckpointHandler()
    try:
        with absl_quiet():
            config = config_from_dict(handler.restore(directory / "model_config"))
            state = restore_on_this_machine(directory / "state")
            saved_checksum = handler.restore(directory / "checksum") if (directory / "checksum").is_dir() else None
        if saved_checksum is None and is_uri(directory):  # written in place there, checksum last
            raise Damaged("no checksum: a save cut short")
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


def save_model(model: Model, directory) -> epath.Path:
    """Write ``model`` in the layout of one checkpoint step (``state/`` with its parameters,
    ``model_config/`` and ``checksum/``, written last), so that `load_model`,
    `SpectralClassifier.from_pretrained` and the ``--checkpoint`` options read it like a pretraining
    checkpoint. A step in object storage without its checksum is refused as a save cut short
    (`new_folder`); locally, older saved models have none."""
    with new_folder(directory) as staging:
        checkpointer = this_process_checkpointer()
        checkpointer.save(staging / "state", {"params": model.variables})
        checkpointer.wait_until_finished()
        (staging / "model_config").mkdir()
        ocp.JsonCheckpointHandler().save(staging / "model_config", args=ocp.args.JsonSave(model.config.to_dict()))
        (staging / "checksum").mkdir()
        ocp.JsonCheckpointHandler().save(staging / "checksum",
                                         args=ocp.args.JsonSave(checksums({"params": model.variables})))
    return storage_path(directory)
