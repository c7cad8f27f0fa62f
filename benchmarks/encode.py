"""Batch encoding speed: hsijax's jit-compiled encoder against the same network in PyTorch.

    .venv/bin/pip install torch==2.13.0          # optional: the PyTorch reference
    .venv/bin/python benchmarks/encode.py --json benchmarks/results/encode.json

For 103, 200 and 436 bands (buckets 128, 256, 512) and c in {8, 16, 32}: pixels/s of the jitted
encoder on padded batches, the same weights in PyTorch eager (and ``torch.compile`` when it works
here) on the same inputs, outputs checked equal to 1e-4; XLA's FLOPs per pixel, the achieved
GFLOP/s and its fraction of this run's float32 4096^2 matmul rate. Then the number of XLA
compilations for the poster's fourteen band counts, and the peak RSS of ``hsijax encode`` on a
large memory-mapped uint16 scene (2000 x 2000 x 200 by default, 1.5 GiB) in a child process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import (
    compiled_flops,
    finish,
    machine,
    matmul_rates,
    median_of,
    optional_torch,
    parser,
    seconds_per_call,
    table,
)

BANDS = (103, 200, 436)
CODE_WIDTHS = (8, 16, 32)


def chunks_of(padded: np.ndarray, rows: int) -> list[np.ndarray]:
    return [padded[start:start + rows] for start in range(0, len(padded), rows)]


def jax_rate(encode, variables, padded: np.ndarray, rows: int, repeats: int) -> float:
    """pixels/s of a jitted ``encode(variables, chunk)`` over ``padded`` in chunks of ``rows``,
    dispatched as hsijax does (all chunks, then wait)."""
    import jax

    chunks = [jax.device_put(chunk) for chunk in chunks_of(padded, rows)]
    run = lambda: jax.block_until_ready([encode(variables, chunk) for chunk in chunks])
    return len(padded) / seconds_per_call(run, repeats)


def jax_codes_and_flops(model, padded: np.ndarray) -> tuple[np.ndarray, float]:
    """(codes, XLA's FLOPs per pixel) of the jitted encoder."""
    from hsijax.models.inference import jitted_encode

    encode = jitted_encode(model.config)
    return np.asarray(encode(model.variables, padded)), compiled_flops(encode, model.variables, padded) / len(padded)


def torch_rates(torch, model, padded: np.ndarray, want: np.ndarray, batches, repeats: int) -> dict:
    """Best pixels/s over ``batches`` of PyTorch eager (and torch.compile if it compiles here)."""
    from torch_mirror import build, check_equal, encode_fn

    encoder, _ = build(torch, model)
    inputs = torch.from_numpy(padded)
    eager = encode_fn(encoder)

    def best_rate(function) -> float:
        rates = []
        for rows in batches:
            chunks = list(inputs.split(rows))
            rates.append(len(padded) / seconds_per_call(lambda: [function(c) for c in chunks], repeats))
        return max(rates)

    found = {}
    with torch.inference_mode():
        found["torch_eager_difference"] = check_equal(torch, eager(inputs), want, "eager encoder")
        found["torch_eager"] = best_rate(eager)
        try:
            torch._dynamo.reset()  # a new module per configuration: start from a clean cache
            compiled = torch.compile(eager, dynamic=False)
            check_equal(torch, compiled(inputs), want, "compiled encoder")
            found["torch_compile"] = best_rate(compiled)
        except Exception as error:  # noqa: BLE001 -- a missing compiler toolchain is a result here
            found["torch_compile_error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    return found


def configuration(torch, bands: int, code_width: int, pixels: int, batches, repeats: int,
                  matmul: float) -> dict:
    """One row of the table: each framework at its best batch size, on the same pixels."""
    from hsijax.models.autoencoder import create_model
    from hsijax.models.inference import chunk_rows, jitted_encode
    from hsijax.spectral import pad_to_bucket

    model = create_model(code_width=code_width, seed=0)
    spectra = np.random.default_rng(bands).random((pixels, bands), np.float32)
    padded, _ = pad_to_bucket(spectra, model.config.buckets)
    codes, flops = jax_codes_and_flops(model, padded)
    batches = sorted({*batches, chunk_rows(padded.shape[1])})
    encode = jitted_encode(model.config)
    jax_by_batch = {rows: jax_rate(encode, model.variables, padded, rows, repeats) for rows in batches}
    rate = jax_by_batch[chunk_rows(padded.shape[1])]  # what hsijax.encode uses
    row = {"bands": bands, "bucket": padded.shape[1], "c": code_width, "jax_px_s": rate,
           "jax_px_s_by_batch": {str(k): round(v) for k, v in jax_by_batch.items()},
           "hsijax_batch": chunk_rows(padded.shape[1]), "mflop_per_px": flops / 1e6, "gflop_s": rate * flops / 1e9}
    row["fraction_of_matmul_rate"] = row["gflop_s"] / matmul
    if torch is not None:
        found = torch_rates(torch, model, padded, codes, batches, repeats)
        row["torch_eager_px_s"] = found.pop("torch_eager")
        row["torch_compile_px_s"] = found.pop("torch_compile", None)
        row.update(found)
        row["ratio_vs_torch_eager"] = rate / row["torch_eager_px_s"]
        if row["torch_compile_px_s"]:
            row["ratio_vs_torch_compile"] = rate / row["torch_compile_px_s"]
    return row


def poster_band_count_compilations() -> int:
    """XLA compilations while `hsijax.encode` meets the poster's fourteen band counts (fresh config)."""
    import jax

    import hsijax
    from hsijax.spectral import POSTER_BAND_COUNTS

    count = {"compiles": 0}

    def listen(event: str, duration: float, **kwargs) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            count["compiles"] += 1

    model = hsijax.create_model(code_width=12, seed=0)  # a configuration nothing else compiled
    jax.monitoring.register_event_duration_secs_listener(listen)
    for bands in POSTER_BAND_COUNTS:
        hsijax.encode(model, np.random.default_rng(bands).random((3000, bands), np.float32))
    return count["compiles"]


# Runs `hsijax encode` and writes its peak RSS (VmHWM, kB). Not getrusage: a child's ru_maxrss keeps
# the RSS of the forked parent (this benchmark, with PyTorch loaded) from before its exec.
MEASURED_ENCODE = """
import sys
from hsijax.cli import main
code = main(sys.argv[2:])
peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
open(sys.argv[1], "w").write(peak)
sys.exit(code)
"""


def large_scene_rss(shape: tuple[int, int, int], folder: Path) -> dict:
    """Peak RSS of `hsijax encode` on a memory-mapped uint16 .npy of ``shape``, in a child process."""
    import hsijax

    cube = np.lib.format.open_memmap(folder / "cube.npy", mode="w+", dtype=np.uint16, shape=shape)
    rng = np.random.default_rng(0)
    for start in range(0, shape[0], 100):
        cube[start:start + 100] = rng.integers(0, 10000, (min(100, shape[0] - start), *shape[1:]), np.uint16)
    cube.flush()
    del cube
    model_dir = folder / "model"
    hsijax.save_model(hsijax.create_model(), model_dir)  # here: only the encode child is measured
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", MEASURED_ENCODE, str(folder / "peak.txt"), "encode", "--checkpoint",
                    str(model_dir), str(folder / "cube.npy"), "--output", str(folder / "codes.npy"),
                    "--no-progress"], check=True, stdout=subprocess.DEVNULL)
    rss = int((folder / "peak.txt").read_text()) / 1024
    seconds = time.perf_counter() - start
    input_mib = os.path.getsize(folder / "cube.npy") / 2**20
    return {"shape": list(shape), "input_mib": round(input_mib), "peak_rss_mib": round(rss),
            "rss_minus_input_mib": round(rss - input_mib), "seconds": round(seconds, 1),
            "pixels_per_second": round(shape[0] * shape[1] / seconds)}


def main() -> None:
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--pixels", type=int, default=16384, help="pixels per timed call")
    arguments.add_argument("--batches", type=int, nargs="+", default=(256, 2048),
                           help="batch sizes tried for both frameworks (hsijax's own is added)")
    arguments.add_argument("--repeats", type=int, default=5)
    arguments.add_argument("--scene", type=int, nargs=3, default=(2000, 2000, 200), metavar=("H", "W", "B"))
    args = arguments.parse_args()
    if args.quick:
        args.pixels, args.repeats, args.scene, args.batches = 1024, 2, (100, 100, 200), (256,)
    torch = optional_torch()
    matmul = matmul_rates(1024 if args.quick else 4096)
    best = max(matmul.values())
    print(f"float32 matmul GFLOP/s: {matmul}", flush=True)
    rows = [configuration(torch, b, c, args.pixels, args.batches, args.repeats, best)
            for b in BANDS for c in CODE_WIDTHS]
    print(table(rows, ["bands", "c", "hsijax_batch", "jax_px_s", "torch_eager_px_s", "torch_compile_px_s", "ratio_vs_torch_eager",
                       "mflop_per_px", "gflop_s", "fraction_of_matmul_rate"]), flush=True)
    compilations = poster_band_count_compilations()
    with tempfile.TemporaryDirectory() as folder:
        rss = large_scene_rss(tuple(args.scene), Path(folder))
    report = {
        **machine(), "command": "python benchmarks/encode.py" + (" --quick" if args.quick else ""),
        "matmul_gflops": matmul, "pixels_per_batch": args.pixels,
        "ratio_vs_torch_eager": median_of(rows, "ratio_vs_torch_eager"),
        "ratio_vs_torch_compile": median_of(rows, "ratio_vs_torch_compile"),
        "fraction_of_matmul_rate": median_of(rows, "fraction_of_matmul_rate"),
        "compilations_for_14_poster_band_counts": compilations,
        "large_scene_peak_rss_mib": rss["peak_rss_mib"], "large_scene_input_mib": rss["input_mib"],
        "large_scene": rss, "configurations": rows,
    }
    finish(report, args.json)


if __name__ == "__main__":
    main()
