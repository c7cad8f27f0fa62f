"""Accelerator checks in one run (under 5 minutes on a GPU): matmul rates, encoding, the training step,
the pipeline that feeds it, compilations per bucket and a short pretraining, written as JSON.

    python benchmarks/accelerator.py --json benchmarks/results/accelerator.json    # on the GPU machine
    python benchmarks/accelerator.py --quick     # checks the script on a CPU (200 bands; encoding in
                                                 # float32 and bfloat16, training in float32; a third
                                                 # of Indian Pines, built once for the pipeline and the
                                                 # pretraining; small batches, one timed call each)

What it measures, on whatever backend JAX finds:
- the device's matmul rate (8192^2 products) in float32 (precision "highest"), TF32
  ("tensorfloat32": float32 inputs, 10-bit mantissa products) and bfloat16 inputs;
- the shipped linear network's encoding pixels/s (103 / 200 / 436 bands, float32): its folded matrix
  product on a batch already on the device, and `hsijax.encode` from host NumPy;
- the poster CNN's encoding pixels/s for 103 / 200 / 436 bands at c = 16 under each matmul precision: the compiled
  encoder on a batch already on the device, and `hsijax.encode` from host NumPy (padding, chunks,
  transfers included) with this backend's chunk size; and each precision's code error against
  float32 (99th percentile over pixels of |code - code_f32| / |code_f32|). The precision reported
  as fastest is the fastest whose error stays within ``CODE_ERROR_LIMIT``;
- the training step's pixels/s (c = 16, conditioned decoder, 200 bands) at a batch that fills the
  device, and its share of the matmul rate of the same precision (XLA's FLOP count);
- the input pipeline (Grain over the dense copy of 10x Indian Pines, one host) in pixels/s, and its
  ratio to the training step;
- XLA compilations while encoding the poster's fourteen band counts (one per bucket expected);
- a short pretraining (`hsijax.train.loop.train`, the tiny model widened to c = 16) on Indian Pines
  from the tensorly wheel: wall time, steady pixels/s and held-out MPSNR.

The packages a bare GPU machine lacks travel as wheels: `benchmarks/accelerator_wheels.sh`.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path

import numpy as np
from common import finish, machine, parser, seconds_per_call, table

PRECISIONS = {"float32": "highest", "tf32": "tensorfloat32", "bfloat16": "bfloat16"}
CODE_ERROR_LIMIT = 1e-2  # 99th-percentile relative code error a faster precision may add
ENCODE_BANDS = (103, 200, 436)


@contextlib.contextmanager
def matmul_precision(name: str):
    import jax

    with jax.default_matmul_precision(PRECISIONS[name]):
        yield


def matmul_rates(size: int, repeats: int) -> dict[str, float]:
    """TFLOP/s of a size x size matrix product in each precision."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    rates = {}
    for name in PRECISIONS:
        operand = a.astype(jnp.bfloat16) if name == "bfloat16" else a
        with matmul_precision(name):
            dot = jax.jit(jnp.dot)
            seconds = seconds_per_call(lambda: dot(operand, operand).block_until_ready(), repeats, warmup=2)
        rates[name] = round(2 * size**3 / seconds / 1e12, 3)
    return rates


def encode_rows(bands: int, pixels: int, repeats: int, precisions=tuple(PRECISIONS)) -> list[dict]:
    """Encode pixels/s and code error per precision for one band count."""
    import jax

    import hsijax
    from hsijax.models.inference import chunk_rows, jitted_encode
    from hsijax.spectral import make_batch

    model = hsijax.create_model(code_width=16, seed=0)
    spectra = np.random.default_rng(bands).random((pixels, bands), np.float32)
    batch = make_batch(spectra, None, model.config.buckets)
    on_device = jax.device_put(batch)
    variables = jax.device_put(model.variables)
    rows, reference = [], None
    for name in precisions:  # float32 first: the reference of the code error
        with matmul_precision(name):
            encode = jitted_encode(model.config)  # jit keys its cache on the matmul precision too
            device_seconds = seconds_per_call(lambda: encode(variables, on_device).block_until_ready(), repeats)
            codes = np.asarray(encode(variables, on_device), np.float32)
            host_seconds = seconds_per_call(lambda: hsijax.encode(model, spectra), max(1, repeats // 3), warmup=1)
        if reference is None:
            reference = codes
        error = np.linalg.norm(codes - reference, axis=1) / np.maximum(np.linalg.norm(reference, axis=1), 1e-12)
        rows.append({"bands": bands, "precision": name, "pixels": pixels,
                     "device_px_s": pixels / device_seconds, "host_numpy_px_s": pixels / host_seconds,
                     "code_error_p99": float(np.quantile(error, 0.99)),
                     "chunk_rows": chunk_rows(batch.spectra.shape[1])})
    return rows


def linear_rows(bands: int, pixels: int, repeats: int) -> dict:
    """The shipped linear network at one band count: its folded product on a batch already on the
    device, and `hsijax.encode` from host NumPy (chunks, transfers included), float32 throughout."""
    import jax

    import hsijax
    from hsijax.models.inference import _affine, sensor_operators

    model = hsijax.load_pretrained()
    spectra = np.random.default_rng(bands).random((pixels, bands), np.float32)
    wavelengths = np.linspace(400, 2500, bands)
    operators = sensor_operators(model, wavelengths)
    on_device = jax.device_put(spectra)
    device = seconds_per_call(lambda: _affine(on_device, operators.encode, operators.offset).block_until_ready(),
                              repeats)
    host = seconds_per_call(lambda: hsijax.encode(model, spectra, wavelengths=wavelengths), max(1, repeats // 3))
    return {"bands": bands, "pixels": pixels, "device_px_s": pixels / device, "host_numpy_px_s": pixels / host}


def chunk_sweep(pixels: int, rows_options: tuple[int, ...]) -> list[dict]:
    """`hsijax.encode` pixels/s from host NumPy (200 bands, float32) by rows per jitted call: what
    `hsijax.models.inference.CHUNK_ELEMENTS` is chosen from, per backend."""
    import hsijax

    model = hsijax.create_model(code_width=16, seed=0)
    spectra = np.random.default_rng(0).random((pixels, 200), np.float32)
    with matmul_precision("float32"):
        return [{"chunk_rows": rows, "host_numpy_px_s": pixels / seconds_per_call(
                    lambda: hsijax.encode(model, spectra, batch_size=rows), 2, warmup=1)}
                for rows in rows_options]


def training_rows(rows_per_step: int, repeats: int, rates: dict[str, float],
                  precisions=tuple(PRECISIONS)) -> list[dict]:
    """Training-step pixels/s (`benchmarks/train.py`'s timing of hsijax's step) and its share of the
    matmul rate of the same precision."""
    from train import batch_of, jax_step_rate

    from hsijax.models.model import create_model

    model = create_model(code_width=16, decoder="conditioned", seed=0)
    batch = batch_of(200, rows_per_step, model.config.buckets)
    result = []
    for name in precisions:
        with matmul_precision(name):
            pixels_per_second, flops_per_pixel = jax_step_rate(model, batch, repeats)
        tflop_s = pixels_per_second * flops_per_pixel / 1e12
        result.append({"precision": name, "batch": rows_per_step, "train_px_s": pixels_per_second,
                       "mflop_per_px": flops_per_pixel / 1e6, "tflop_s": tflop_s,
                       "share_of_matmul_rate": tflop_s / rates[name]})
    return result


def pipeline_rate(batches: int, copies: int, in_process: bool = False, dataset: Path | None = None) -> float:
    """pixels/s of the training pipeline over Indian Pines tiled ``copies`` times, in a child
    process (pipeline.py; ``in_process``: here, for --quick); ``dataset``: that dataset's directory,
    already built."""
    from pipeline import measure_child, write_datasets

    if dataset is not None:
        return measure_child(dataset, batches, in_process=in_process)["pixels_per_second"]
    with tempfile.TemporaryDirectory() as folder:
        directory = write_datasets(Path(folder), (copies,))[copies]
        return measure_child(directory, batches, in_process=in_process)["pixels_per_second"]


def bucket_compilations(in_process: bool = False) -> int:
    """The poster CNN's compilations for the poster's 14 band counts (one per bucket expected)."""
    from encode import poster_band_count_compilations

    return poster_band_count_compilations(("poster",), in_process)["poster"]


def indian_pines_data(folder: Path, rows: int | None = None) -> Path:
    """Indian Pines from the tensorly wheel (its first ``rows`` image rows: --quick) as a dataset in
    ``folder`` (a TFDS data dir); returns its directory."""
    from hsijax.data.builders import build_dataset
    from hsijax.data.scene import Scene, load_indian_pines

    scene = load_indian_pines()
    if rows is not None:
        scene = Scene(scene.name, scene.sensor, scene.cube[:rows], scene.labels[:rows], scene.wavelengths_nm)
    return build_dataset(scene, data_dir=folder)


def short_pretraining(steps: int, batch_size: int, data_dir: Path) -> dict:
    """The tiny config (c = 16) on Indian Pines in ``data_dir`` (`indian_pines_data`), in a temporary
    workdir."""
    from hsijax.configs import load_config
    from hsijax.train.loop import train

    with tempfile.TemporaryDirectory() as folder:
        config = load_config("tiny", [f"--config.data.data_dir={data_dir}", f"--config.train.steps={steps}",
                                      f"--config.train.batch_size={batch_size}", "--config.model.code_width=16",
                                      f"--config.train.log_every={max(1, steps // 10)}",
                                      f"--config.train.eval_every={steps}", f"--config.train.checkpoint_every={steps}"])
        start = time.perf_counter()
        result = train(config, Path(folder) / "work", progress=False)
        return {"steps": steps, "batch": batch_size, "wall_s": round(time.perf_counter() - start, 1),
                "steady_px_s": round(result.pixels_per_second),
                "held_out_mpsnr_db": round(result.final_eval["mpsnr_db/mean"], 2)}


def main() -> None:
    import jax
    import tensorflow_datasets as tfds

    arguments = parser(__doc__.splitlines()[0])
    args = arguments.parse_args()
    quick = args.quick
    tfds.disable_progress_bar()  # building the 10x dataset: one line, not a bar per split
    began = time.perf_counter()
    scratch = tempfile.TemporaryDirectory()
    rates = matmul_rates(1024 if quick else 8192, 3 if quick else 10)
    print(f"matmul TFLOP/s: {rates}", flush=True)
    pixels = 1024 if quick else 1 << 18  # quick: the CNN encodes ~20,000 px/s on a CPU core
    repeats = 1 if quick else 10
    bands_measured = (200,) if quick else ENCODE_BANDS
    precisions = ("float32", "bfloat16") if quick else tuple(PRECISIONS)  # quick: each code path once
    encode = [row for bands in bands_measured for row in encode_rows(bands, pixels, repeats, precisions)]
    print(table(encode, ["bands", "precision", "device_px_s", "host_numpy_px_s", "code_error_p99", "chunk_rows"]),
          flush=True)
    linear = [linear_rows(bands, pixels * (4 if quick else 16), repeats) for bands in bands_measured]
    print(table(linear, ["bands", "pixels", "device_px_s", "host_numpy_px_s"]), flush=True)
    chunks = chunk_sweep(pixels, (256, 1024) if quick else (2048, 8192, 32768, 131072))
    print(table(chunks, ["chunk_rows", "host_numpy_px_s"]), flush=True)
    training = training_rows(64 if quick else 16384, 1 if quick else 20, rates,
                             precisions[:1] if quick else precisions)
    print(table(training, ["precision", "batch", "train_px_s", "mflop_per_px", "tflop_s", "share_of_matmul_rate"]),
          flush=True)
    # quick's pipeline and the pretraining read one dataset: 48 rows of Indian Pines (its 200 bands)
    indian_pines = indian_pines_data(Path(scratch.name) / "data", 48 if quick else None)
    pipeline = pipeline_rate(50 if quick else 3000, 1 if quick else 10, in_process=quick,
                             dataset=indian_pines if quick else None)
    fastest = {}
    for bands in bands_measured:
        allowed = [r for r in encode if r["bands"] == bands and r["code_error_p99"] <= CODE_ERROR_LIMIT]
        fastest[bands] = max(allowed, key=lambda r: r["device_px_s"])
    float32_step = training[0]["train_px_s"]
    report = {
        **machine(), "command": "python benchmarks/accelerator.py" + (" --quick" if quick else ""),
        "device": str(jax.devices()[0].device_kind), "device_count": jax.device_count(),
        "matmul_tflop_s": rates, "code_error_limit": CODE_ERROR_LIMIT,
        "encode_200_float32_px_s": round(next(r["device_px_s"] for r in encode
                                              if r["bands"] == 200 and r["precision"] == "float32")),
        "encode_200_fastest_px_s": round(fastest[200]["device_px_s"]),
        "encode_200_fastest_precision": fastest[200]["precision"],
        "encode_200_fastest_code_error_p99": fastest[200]["code_error_p99"],
        "linear_encode_200_device_px_s": round(next(r["device_px_s"] for r in linear if r["bands"] == 200)),
        "linear_encode_200_host_px_s": round(next(r["host_numpy_px_s"] for r in linear if r["bands"] == 200)),
        "training_step_float32_px_s": round(float32_step),
        "training_step_float32_share_of_matmul": round(training[0]["share_of_matmul_rate"], 4),
        "pipeline_px_s": round(pipeline), "pipeline_over_training_step": round(pipeline / float32_step, 2),
        "poster_band_count_compilations": bucket_compilations(in_process=quick),
        "pretraining": short_pretraining(10 if quick else 400, 64 if quick else 4096, Path(scratch.name) / "data"),
        "encode": encode, "linear_encode": linear, "chunk_sweep": chunks, "training": training,
    }
    scratch.cleanup()
    report["seconds"] = round(time.perf_counter() - began, 1)
    finish(report, args.json)


if __name__ == "__main__":
    main()
