"""Multi-source pretraining on a device mesh, with checkpoints that survive preemption.

Data parallel over a 1-D `jax.sharding.Mesh` with axis ``"data"`` that holds every device of every
process: each global batch is split over the devices, `shard_map` runs the step on each device's
rows, and the gradients (and the reported loss) are averaged with an explicit ``pmean``. The
parameters and the optimiser state are replicated. Equal rows per device make the mean of the
per-device means the global mean, so 1 device, 8 devices or 2 processes x 4 devices compute the
same update up to float summation order (the tests bound the difference).

Optimiser: Adam with cosine decay, and the poster's alpha * ||theta||^2 *inside the loss* (so it
is differentiated and enters Adam's moments) rather than AdamW's decoupled decay, which would be a
different objective from the poster's.

A run resumes from the newest checkpoint in its workdir: parameters, optimiser state, step, RNG key
and the Grain iterator state come back, so an interrupted and resumed run ends with the same
parameters as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from tqdm.auto import tqdm

from hsijax import checkpoint
from hsijax.data import make_pipeline, split_held_out
from hsijax.datasets import VERSION, SceneDataset, load_dataset
from hsijax.errors import HsijaxError
from hsijax.files import check_output
from hsijax.inference import reconstruct
from hsijax.metrics import mpsnr
from hsijax.model import Model, ModelConfig, SharedAutoencoder, init_variables
from hsijax.observe import MetricsLog
from hsijax.spectral import Normalization, SpectraBatch
from hsijax.train import loss_fn


def make_mesh() -> Mesh:
    """Every device of every process on one ``data`` axis (ordered by process, as JAX lists them)."""
    return Mesh(np.asarray(jax.devices()), ("data",))


def make_optimizer(optim, steps: int) -> optax.GradientTransformation:
    schedule = optax.cosine_decay_schedule(optim.learning_rate, steps, alpha=optim.final_learning_rate_fraction)
    return optax.adam(schedule)


def make_sharded_step(module, optimizer, weight_decay: float, mesh: Mesh):
    """``(params, opt_state, batch) -> (params, opt_state, mse)``; jit compiles it once per bucket."""

    def device_step(params, opt_state, batch):
        grads, mse = jax.grad(loss_fn, has_aux=True)(params, module, batch, weight_decay)
        grads = jax.lax.pmean(grads, "data")
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, jax.lax.pmean(mse, "data")

    sharded = jax.shard_map(
        device_step, mesh=mesh, in_specs=(P(), P(), P("data")), out_specs=(P(), P(), P())
    )
    return jax.jit(sharded, donate_argnums=(0, 1))


def replicate(tree, mesh: Mesh):
    """Host values (the same on every process) -> arrays replicated over the whole mesh."""
    sharding = NamedSharding(mesh, P())
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), tree)


def to_host(tree):
    """A replicated (possibly multi-process) pytree -> NumPy, from this process's first copy."""
    return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)) if isinstance(x, jax.Array) else x, tree)


def global_batch(local: dict, mesh: Mesh) -> SpectraBatch:
    """This process's rows of a batch -> global arrays split over the ``data`` axis."""
    sharding = NamedSharding(mesh, P("data"))
    fields = {name: local[name] for name in SpectraBatch._fields}
    return SpectraBatch(**{k: jax.make_array_from_process_local_data(sharding, v) for k, v in fields.items()})


@dataclasses.dataclass(frozen=True)
class HeldOut:
    """A fixed sample of one scene's pixels, normalised, never trained on."""

    name: str
    spectra: np.ndarray  # (n, b) in [0, 1]
    wavelengths_nm: np.ndarray | None


def held_out_sample(dataset: SceneDataset, indices: np.ndarray) -> HeldOut:
    examples = dataset.source.__getitems__([int(i) for i in indices])
    norm = dataset.metadata["normalization"]
    raw = np.stack([e["spectrum"] for e in examples])
    wavelengths = dataset.metadata.get("wavelengths_nm")
    return HeldOut(
        dataset.name,
        Normalization(norm["offset"], norm["scale"]).apply(raw).astype(np.float32),
        None if wavelengths is None else np.asarray(wavelengths),
    )


def evaluate(model: Model, held_out: list[HeldOut]) -> dict[str, float]:
    """Reconstruction MPSNR (dB) of each scene's held-out pixels, and their mean."""
    scores = {h.name: mpsnr(h.spectra, reconstruct(model, h.spectra, h.wavelengths_nm)) for h in held_out}
    return {**{f"mpsnr_db/{name}": value for name, value in scores.items()},
            "mpsnr_db/mean": float(np.mean(list(scores.values())))}


def open_scenes(data) -> list[SceneDataset]:
    """The configured scenes, building any that is missing (one process only; see `ensure_scene`)."""
    data_dir = Path(data.data_dir).expanduser()
    names = [n.strip() for n in data.scenes.split(",") if n.strip()]
    if not names:
        raise HsijaxError("config.data.scenes is empty")
    return [load_dataset(ensure_scene(name, data_dir, data.imports)) for name in names]


def ensure_scene(name: str, data_dir: Path, imports) -> Path:
    """``data_dir/NAME/VERSION``, prepared (catalogued scene) or imported (``imports[name]``) if missing."""
    from hsijax.catalog import SCENES

    directory = data_dir / name / VERSION
    if (directory / "dataset_info.json").is_file():
        return directory
    if jax.process_count() > 1:
        raise HsijaxError(f"{directory}: not prepared; prepare every scene before a multi-process run")
    if name in imports:
        from hsijax.cli import import_from_options

        return import_from_options(imports[name], name, data_dir)
    if name in SCENES:
        from hsijax.published import prepare_scene

        return prepare_scene(name, data_dir)
    raise HsijaxError(f"scene {name!r} is not prepared in {data_dir}, not catalogued, and has no "
                      f"config.data.imports entry; run `hsijax import FILE --name {name}` first")


@dataclasses.dataclass(frozen=True)
class TrainSummary:
    model: Model
    steps: int
    resumed_from: int
    seconds: float
    pixels_per_second: float
    final_eval: dict[str, float]


def train(config, workdir, progress: bool = True) -> TrainSummary:
    """Pretrain as ``config`` says, in ``workdir``; resumes from its newest checkpoint."""
    workdir = check_output(Path(workdir).expanduser(), "directory")
    for field in ("steps", "batch_size", "log_every", "eval_every", "checkpoint_every", "keep_checkpoints"):
        if config.train[field] < 1:
            raise HsijaxError(f"config.train.{field} must be at least 1, got {config.train[field]}")
    model_config = ModelConfig.from_dict(dict(config.model))
    mesh = make_mesh()
    if config.train.batch_size % mesh.size:
        raise HsijaxError(f"batch size {config.train.batch_size} does not split over {mesh.size} devices")
    iterator, held_out = input_data(config, model_config)
    optimizer = make_optimizer(config.optim, config.train.steps)
    state = initial_state(model_config, optimizer, config.seed, mesh, config.get("init_from", ""))
    manager = checkpoint.checkpoint_manager(workdir, config.train.checkpoint_every, config.train.keep_checkpoints)
    restored = checkpoint.restore_latest(manager, jax.tree.map(ocp_abstract, state), iterator, model_config)
    start, state = (0, state) if restored is None else restored
    step_fn = make_sharded_step(SharedAutoencoder(model_config), optimizer, config.optim.weight_decay, mesh)
    log = MetricsLog(workdir)
    try:
        return run_steps(config, model_config, state, step_fn, iterator, mesh, manager, log,
                         held_out, start, progress)
    finally:
        manager.wait_until_finished()
        manager.close()
        log.close()


def input_data(config, model_config: ModelConfig):
    """(batch iterator over the training pixels, held-out samples) of the configured scenes."""
    datasets = open_scenes(config.data)
    splits = [split_held_out(d, min(config.data.held_out_pixels, len(d.source) // 2), config.seed)
              for d in datasets]
    held_out = [held_out_sample(d, held) for d, (_, held) in zip(datasets, splits)]
    pipeline = make_pipeline(datasets, config.train.batch_size, config.seed, config.data.mixing,
                             model_config.buckets, train_indices=[train for train, _ in splits])
    return iter(pipeline), held_out


def ocp_abstract(x):
    return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding) if isinstance(x, jax.Array) else x


def starting_parameters(model_config: ModelConfig, seed: int, init_from: str):
    """Fresh parameters, or those of a saved model (``init_from``: a workdir, a step or
    ``pretrained``), which must be of the same model configuration."""
    if not init_from:
        return init_variables(model_config, seed)
    model = checkpoint.load_model(init_from)
    if model.config != model_config:
        raise HsijaxError(f"config.init_from={init_from}: a model of another configuration "
                          f"({model.config.to_dict()}); set config.model to match it")
    return model.variables


def initial_state(model_config: ModelConfig, optimizer, seed: int, mesh: Mesh, init_from: str = "") -> dict:
    params = replicate(starting_parameters(model_config, seed, init_from), mesh)
    return {
        "params": params,
        "opt_state": jax.jit(optimizer.init)(params),
        "step": replicate(np.int32(0), mesh),
        # The base key of the run; the autoencoder itself draws no random numbers while training.
        "rng": replicate(jax.random.key_data(jax.random.key(seed)), mesh),
    }


def run_steps(config, model_config, state, step_fn, iterator, mesh, manager, log, held_out,
              start: int, progress: bool) -> TrainSummary:
    """The training loop from step ``start``: log, evaluate and checkpoint as the config says."""
    steps, train = config.train.steps, config.train
    params, opt_state = state["params"], state["opt_state"]
    meter = Throughput(train.batch_size, start)
    final_eval = {}
    bar = tqdm(total=steps, initial=start, desc="pretrain", disable=not progress or jax.process_index())
    for step in range(start, steps):
        params, opt_state, mse = step_fn(params, opt_state, global_batch(next(iterator), mesh))
        meter.add(mse)
        done = step + 1
        bar.update()
        if done % train.log_every == 0 or done == steps:
            values = meter.flush(done)
            log.write(done, "train", values)
            bar.set_postfix(mse=f"{values['mse']:.2e}", px_s=f"{values['pixels_per_second']:,.0f}")
        if done % train.eval_every == 0 or done == steps:
            final_eval = evaluate(Model(model_config, to_host(params)), held_out)
            log.write(done, "eval", final_eval)
        if done == steps or manager.should_save(done):  # only then: the step array is a host-to-device copy
            state = {"params": params, "opt_state": opt_state, "step": replicate(np.int32(done), mesh),
                     "rng": state["rng"]}
            checkpoint.save(manager, done, state, iterator, model_config, config.to_dict(), force=done == steps)
    bar.close()
    model = Model(model_config, to_host(params))
    if start >= steps:  # nothing left to train: report the checkpoint's quality
        final_eval = evaluate(model, held_out)
    return TrainSummary(model, steps, start, meter.wall_seconds(), meter.steady_rate(), final_eval)


class Throughput:
    """Mean loss and pixels/s per logging interval; the steady rate leaves out the first interval
    after a (re)start, which includes compilation."""

    def __init__(self, batch_size: int, start: int):
        self.batch_size, self.start = batch_size, start
        self.losses, self.began = [], time.perf_counter()
        self.interval_start = self.began
        self.timed_pixels, self.timed_seconds, self.intervals = 0, 0.0, 0

    def add(self, mse) -> None:
        self.losses.append(mse)  # a device array: fetching it now would stall the pipeline

    def flush(self, step: int) -> dict[str, float]:
        seconds = time.perf_counter() - self.interval_start
        mean_mse = float(np.mean([to_host(m) for m in self.losses]))
        pixels = len(self.losses) * self.batch_size
        if self.intervals:
            self.timed_pixels, self.timed_seconds = self.timed_pixels + pixels, self.timed_seconds + seconds
        self.intervals += 1
        self.losses, self.interval_start = [], time.perf_counter()
        return {"mse": mean_mse, "pixels_per_second": pixels / seconds}

    def steady_rate(self) -> float:
        return self.timed_pixels / self.timed_seconds if self.timed_seconds else float("nan")

    def wall_seconds(self) -> float:
        return time.perf_counter() - self.began
