"""Pretraining: one loop for the ``hsijax pretrain`` command and for the Python API.

- `train(config, workdir)` pretrains on prepared scenes as an ml_collections config says, holds out
  a fixed sample of each scene's pixels and scores their reconstruction as it goes, logs to the
  workdir, and checkpoints (`hsijax.models.checkpoints`); running it again resumes from the newest
  checkpoint, so an interrupted and resumed run ends with the same parameters as an uninterrupted one.
- `pretrain(model, sets, steps)` pretrains a model on scenes held in memory (`TrainingSet`), with no
  workdir: what a notebook, the demo and the tests use.

Both draw their batches from the same Grain pipeline (`hsijax.data.pipeline`: per-scene batches in
mixed turns, reshuffled every epoch) and run the same data-parallel step (`hsijax.train.step`) in
`run_steps`; they differ only in where the scenes come from and in what is recorded.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm.auto import tqdm

from hsijax.data.loading import open_scenes, scene_names
from hsijax.data.pipeline import TrainingSet, make_pipeline, split_held_out
from hsijax.errors import HsijaxError
from hsijax.files import check_output
from hsijax.metrics import mpsnr
from hsijax.models import checkpoints
from hsijax.models.inference import reconstruct
from hsijax.models.model import Model, init_variables
from hsijax.models.networks import NetworkConfig, config_from_dict, missing_wavelengths_message, network_module
from hsijax.train.mesh import abstract, global_batch, make_mesh, replicate, to_host
from hsijax.train.metrics_log import MetricsLog
from hsijax.train.step import make_optimizer, make_train_step


@dataclasses.dataclass(frozen=True)
class TrainingResult:
    model: Model
    losses: np.ndarray  # reconstruction MSE of each step run now (after ``resumed_from``)
    steps: int
    resumed_from: int
    seconds: float  # wall time, compilation included
    pixels_per_second: float  # leaving out the first logging interval, which includes compilation
    final_eval: dict[str, float]  # held-out reconstruction MPSNR (dB) at the last step; {} without held-out pixels
    stopped_at: int | None = None  # the step a preemption notice stopped the run at (its checkpoint saved)


def pretrain(model: Model, sets: Sequence[TrainingSet], steps: int, batch_size: int = 256,
             learning_rate: float = 1e-3, weight_decay: float = 1e-6, seed: int = 0,
             progress: bool = True) -> TrainingResult:
    """Train ``model`` on the pixels of ``sets`` (scenes take turns in proportion to their pixel
    counts); deterministic for a seed on one machine."""
    mesh = _checked_mesh(batch_size)
    check_wavelengths_listed(model.config, sets)
    optimizer = make_optimizer(learning_rate, steps)
    iterator = iter(make_pipeline(sets, batch_size, seed, "pixels", model.config.buckets))
    state = initial_state(model.variables, optimizer, mesh)
    step_fn = make_train_step(model.module, optimizer, weight_decay, mesh)
    return run_steps(model.config, state, step_fn, iterator, mesh, steps, batch_size, progress=progress,
                     description=f"pretrain {model.config.kind}")


def train(config, workdir, progress: bool = True) -> TrainingResult:
    """Pretrain as ``config`` says, in ``workdir``; resumes from its newest checkpoint."""
    workdir = check_output(workdir, "directory")
    for field in ("steps", "batch_size", "log_every", "eval_every", "checkpoint_every", "keep_checkpoints"):
        if config.train[field] < 1:
            raise HsijaxError(f"config.train.{field} must be at least 1, got {config.train[field]}")
    mesh = _checked_mesh(config.train.batch_size)
    model_config, variables = starting_model(config)
    if not 0 <= config.train.visible_window <= 1:
        raise HsijaxError(f"config.train.visible_window must be in [0, 1], got {config.train.visible_window}")
    if config.train.visible_window and not model_config.needs_wavelengths:
        raise HsijaxError("config.train.visible_window needs a wavelength-grid network "
                          "(config.model.kind grid_cnn or linear_grid)")
    record = {**config.to_dict(), "model": model_config.to_dict()}  # what this run is, saved with it
    iterator, held_out = input_data(config, model_config)
    optimizer = make_optimizer(config.optim.learning_rate, config.train.steps,
                               config.optim.final_learning_rate_fraction)
    state = initial_state(variables, optimizer, mesh)
    manager = checkpoints.checkpoint_manager(workdir, config.train.checkpoint_every, config.train.keep_checkpoints)
    log = MetricsLog(workdir)
    try:
        restored = checkpoints.restore_latest(manager, jax.tree.map(abstract, state), iterator, model_config, record)
        start, state = (0, state) if restored is None else restored
        step_fn = make_train_step(network_module(model_config), optimizer, config.optim.weight_decay, mesh,
                                  config.train.visible_window, config.seed)

        def save(step: int, state: dict, force: bool) -> None:
            checkpoints.save(manager, step, state, iterator, model_config, record, force=force)
            log.sync()

        with PreemptionNotice(manager) as notice:
            return run_steps(model_config, state, step_fn, iterator, mesh, config.train.steps,
                             config.train.batch_size, start=start, log_every=config.train.log_every,
                             eval_every=config.train.eval_every, held_out=held_out, log=log, save=save,
                             should_save=manager.should_save, should_stop=notice.reached, progress=progress)
    finally:
        manager.wait_until_finished()
        manager.close()
        log.close()


def _checked_mesh(batch_size: int) -> Mesh:
    mesh = make_mesh()
    if batch_size % mesh.size:
        raise HsijaxError(f"batch size {batch_size} does not split over {mesh.size} devices")
    return mesh


def starting_model(config) -> tuple[NetworkConfig, dict]:
    """(model config, parameters) a run starts from: ``config.model`` with fresh parameters, or the
    saved model ``config.init_from`` (a workdir, a step or a shipped model's name) with its own config.

    With ``init_from`` the network is the saved one, whatever ``config.model`` says; the fields it
    overrules are named in one line on stderr, so a built-in config works with any saved model.
    """
    init_from = config.get("init_from", "")
    model_config = config_from_dict(dict(config.model))
    if not init_from:
        return model_config, init_variables(model_config, config.seed)
    model = checkpoints.load_model(init_from)
    ours, theirs = model_config.to_dict(), model.config.to_dict()
    if ours["kind"] != theirs["kind"]:
        overruled = [f"kind {ours['kind']} -> {theirs['kind']} ({model.config.description}: "
                     + ", ".join(f"{field} {value}" for field, value in theirs.items() if field != "kind") + ")"]
    else:
        overruled = [f"{field} {ours[field]} -> {theirs[field]}" for field in ours if ours[field] != theirs[field]]
    if overruled and jax.process_index() == 0:
        print(f"hsijax: config.init_from={init_from}: the model is the saved one; config.model overruled: "
              + ", ".join(overruled), file=sys.stderr, flush=True)
    return model.config, model.variables


def check_wavelengths_listed(model_config: NetworkConfig, scenes) -> None:
    """Refuse, before any work, a scene without band centres for a network that needs them."""
    unlisted = [scene.name for scene in scenes if scene.wavelengths_nm is None]
    if model_config.needs_wavelengths and unlisted:
        raise HsijaxError(f"scene {unlisted[0]}: {missing_wavelengths_message(model_config.description)} "
                          f"(for a config: its config.data.imports entry; a prepared dataset: import it again)")


def input_data(config, model_config: NetworkConfig):
    """(batch iterator over the training pixels, held-out samples) of the configured scenes."""
    datasets = open_scenes(scene_names(config.data.scenes), config.data.data_dir, config.data.imports,
                           config.data.get("nominal_wavelengths"), rebuild=config.data.get("rebuild", False),
                           source_dir=config.data.get("source_dir", ""))
    check_wavelengths_listed(model_config, datasets)
    splits = [split_held_out(d, min(config.data.held_out_pixels, len(d) // 2), config.seed) for d in datasets]
    held_out = [held_out_sample(d, held) for d, (_, held) in zip(datasets, splits)]
    pipeline = make_pipeline(datasets, config.train.batch_size, config.seed, config.data.mixing,
                             model_config.buckets, train_indices=[train for train, _ in splits],
                             pipeline_format=config.data.get("pipeline_format", 1))
    return iter(pipeline), held_out


def held_out_sample(dataset, indices: np.ndarray) -> TrainingSet:
    """A scene's held-out pixels, normalised, never trained on."""
    pixels = dataset.normalization.apply(dataset.read(indices)["spectrum"])
    return TrainingSet(dataset.name, pixels, dataset.wavelengths_nm)


def evaluate(model: Model, held_out: Sequence[TrainingSet]) -> dict[str, float]:
    """Reconstruction MPSNR (dB) of each scene's held-out pixels, and their mean."""
    scores = {h.name: mpsnr(h.pixels, reconstruct(model, h.pixels, h.wavelengths_nm)) for h in held_out}
    return {**{f"mpsnr_db/{name}": value for name, value in scores.items()},
            "mpsnr_db/mean": float(np.mean(list(scores.values())))}


def initial_state(variables, optimizer, mesh: Mesh) -> dict:
    params = replicate(variables, mesh)
    return {
        "params": params,
        # Replicated explicitly: left to jit, the state's new arrays land on one device, and a run
        # of several processes resumed into that layout is refused by the step (mixed devices).
        "opt_state": jax.jit(optimizer.init, out_shardings=NamedSharding(mesh, P()))(params),
        "step": replicate(np.int32(0), mesh),
    }


def run_steps(model_config: NetworkConfig, state: dict, step_fn: Callable, iterator, mesh: Mesh, steps: int,
              batch_size: int, *, start: int = 0, log_every: int = 50, eval_every: int = 0,
              held_out: Sequence[TrainingSet] = (), log: MetricsLog | None = None,
              save: Callable | None = None, should_save: Callable[[int], bool] = lambda step: False,
              should_stop: Callable[[int], bool] = lambda step: False, progress: bool = True,
              description: str = "pretrain") -> TrainingResult:
    """The training loop from step ``start`` to ``steps``: log every ``log_every`` steps, score the
    held-out pixels every ``eval_every``, and ``save(step, state, force)`` when ``should_save(step)``
    and at the end -- or at the first step boundary where ``should_stop(step)``, which then ends
    the run there (a preemption notice). Without ``progress`` (no bar: a log file, a detached TPU
    run, a batch job) process 0 writes one line per ``log_every`` steps to stderr instead, so that
    such a log shows how far the run is."""
    params, opt_state = state["params"], state["opt_state"]
    meter = Throughput(batch_size)
    final_eval = {}
    bar = tqdm(total=steps, initial=start, desc=description, disable=not progress or jax.process_index())
    stopping = False
    for step in range(start, steps):
        params, opt_state, mse = step_fn(params, opt_state, global_batch(next(iterator), mesh))
        meter.add(mse)
        done = step + 1
        bar.update()
        if done % log_every == 0 or done == steps:
            values = meter.flush()
            if log:
                log.write(done, "train", values)
            bar.set_postfix(mse=f"{values['mse']:.2e}", px_s=f"{values['pixels_per_second']:,.0f}")
            if not progress and jax.process_index() == 0:
                print(f"{description}: step {done} of {steps}: mse {values['mse']:.3e}, "
                      f"{values['pixels_per_second']:,.0f} px/s", file=sys.stderr, flush=True)
        if held_out and eval_every and (done % eval_every == 0 or done == steps):
            final_eval = evaluate(Model(model_config, to_host(params)), held_out)
            if log:
                log.write(done, "eval", final_eval)
        stopping = done < steps and should_stop(done)
        if save and (done == steps or stopping or should_save(done)):  # the step array is a host-to-device copy
            state = {"params": params, "opt_state": opt_state, "step": replicate(np.int32(done), mesh)}
            save(done, state, done == steps or stopping)
        if stopping:
            break
    bar.close()
    model = Model(model_config, to_host(params))
    if start >= steps and held_out:  # nothing left to train: report the checkpoint's quality
        final_eval = evaluate(model, held_out)
    return TrainingResult(model, np.asarray(meter.losses, np.float64), steps, start, meter.wall_seconds(),
                          meter.steady_rate(), final_eval, done if stopping else None)


class PreemptionNotice:
    """SIGTERM (what a TPU VM or a batch scheduler sends before it kills) asks the run to stop at
    the next step boundary, after saving a checkpoint there.

    One process: a SIGTERM handler sets a flag, installed for the run and restored after it.
    Several: Orbax's preemption sync point (`CheckpointManager.reached_preemption`, JAX's
    preemption service that ``jax.distributed`` starts, which listens for SIGTERM itself), so that
    every process stops and saves at the same step.
    """

    def __init__(self, manager):
        self.manager, self.flag, self.previous = manager, False, None

    def __enter__(self) -> PreemptionNotice:
        if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._notice)
        return self

    def _notice(self, signum, frame) -> None:
        self.flag = True

    def reached(self, step: int) -> bool:
        return self.flag if jax.process_count() == 1 else self.manager.reached_preemption(step)

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


class Throughput:
    """Losses, and pixels/s per logging interval; the steady rate leaves out the first interval
    after a (re)start, which includes compilation."""

    def __init__(self, batch_size: int):
        self.batch_size = batch_size
        self.pending, self.losses = [], []
        self.began = self.interval_start = time.perf_counter()
        self.timed_pixels, self.timed_seconds, self.intervals = 0, 0.0, 0

    def add(self, mse) -> None:
        self.pending.append(mse)  # a device array: fetching it now would stall the pipeline

    def flush(self) -> dict[str, float]:
        interval = [float(to_host(m)) for m in self.pending]  # waits for the interval's steps to finish
        seconds = time.perf_counter() - self.interval_start
        self.losses.extend(interval)
        pixels = len(interval) * self.batch_size
        if self.intervals:
            self.timed_pixels, self.timed_seconds = self.timed_pixels + pixels, self.timed_seconds + seconds
        self.intervals += 1
        self.pending, self.interval_start = [], time.perf_counter()
        return {"mse": float(np.mean(interval)), "pixels_per_second": pixels / seconds}

    def steady_rate(self) -> float:
        return self.timed_pixels / self.timed_seconds if self.timed_seconds else float("nan")

    def wall_seconds(self) -> float:
        return time.perf_counter() - self.began
