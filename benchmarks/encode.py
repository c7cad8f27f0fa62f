"""Encoding speed of every network hsijax ships, against a matrix product of the same shape in one run.

    make bench                                   # alone on the machine; or just this script:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/encode.py --json benchmarks/results/encode.json
    .venv/bin/pip install torch==2.13.0          # optional: the PyTorch reference for the CNN

1. **Shipped networks** (`hsijax.load_pretrained()`, the linear network; ``"poster"``, the CNN): pixels/s
   of `hsijax.encode(model, spectra, wavelengths=...)` from host NumPy float32 (best of 5) at 103,
   200 and 436 bands -- 200 bands: Indian Pines tiled ten times (210,250 pixels) -- against NumPy's
   float32 ``(N, b) @ (b, c)`` on the same contiguous array (best of 5, default threads, the BLAS
   kernel named in the report): the rate a product of the encoder's shape reaches on this machine.
2. **The CNN's configurations** (random weights, c = 8, 16, 32): the jitted encoder on padded batches
   against the same weights in PyTorch eager (and ``torch.compile``), outputs checked equal to
   1e-4; XLA's FLOPs per pixel and their fraction of this run's float32 4096^2 matmul rate.
3. **Compilations** while `hsijax.encode` meets the poster's fourteen band counts, each network.
4. **End to end**: `hsijax encode` of a 2,000 x 2,000 x 200 uint16 scene (1.5 GiB) stored as .npy,
   ENVI (BSQ) and GeoTIFF, with the shipped network, into .npy (and GeoTIFF into GeoTIFF): reading,
   normalising, encoding, writing; warm page cache, uncompressed output; pixels/s and the command's
   peak RSS, in a child process.
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
    best_seconds,
    compiled_flops,
    finish,
    fresh_code_width,
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
SHIPPED = ("pretrained", "poster")


def test_spectra(bands: int, pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """(spectra (pixels, bands) float32 in [0, 1], band centres): Indian Pines (tiled) at 200 bands,
    smooth random spectra over 400-2500 nm otherwise."""
    from hsijax import fit_normalization, load_indian_pines

    if bands == 200:
        scene = load_indian_pines()
        spectra = fit_normalization(scene.cube).apply(scene.cube).reshape(-1, 200)
        return np.ascontiguousarray(np.resize(spectra, (pixels, 200))), scene.wavelengths_nm
    rng = np.random.default_rng(bands)
    spectra = np.cumsum(rng.normal(size=(pixels, bands)), axis=1).astype(np.float32)
    spectra -= spectra.min()
    return spectra / spectra.max(), np.linspace(400, 2500, bands)


def shipped_rows(pixels: int, cnn_pixels: int, repeats: int, bands_measured=BANDS) -> list[dict]:
    """Table 1: each shipped network's `hsijax.encode` against the same-shape NumPy product."""
    import hsijax

    rows = []
    for name in SHIPPED:
        model = hsijax.load_pretrained(name)
        count = pixels if model.config.folds_per_sensor else cnn_pixels
        for bands in bands_measured:
            spectra, wavelengths = test_spectra(bands, count)
            hsijax.encode(model, spectra[:1024], wavelengths=wavelengths)  # fold and compile
            seconds = best_seconds(lambda: hsijax.encode(model, spectra, wavelengths=wavelengths), repeats)
            product = np.random.default_rng(0).standard_normal((bands, model.config.code_width)).astype(np.float32)
            matmul = best_seconds(lambda: spectra @ product, repeats)
            rows.append({"network": name, "kind": model.config.kind, "bands": bands, "pixels": count,
                         "hsijax_px_s": count / seconds, "matmul_px_s": count / matmul,
                         "fraction_of_matmul": matmul / seconds})
    return rows


def chunks_of(batch, rows: int) -> list:
    return [type(batch)(*(array[start:start + rows] for array in batch)) for start in range(0, len(batch[0]), rows)]


def jax_rate(encode, variables, batch, rows: int, repeats: int) -> float:
    """pixels/s of a jitted ``encode(variables, SpectraBatch)`` over ``batch`` in chunks of ``rows``,
    dispatched as hsijax does (all chunks, then wait)."""
    import jax

    chunks = [jax.device_put(chunk) for chunk in chunks_of(batch, rows)]
    run = lambda: jax.block_until_ready([encode(variables, chunk) for chunk in chunks])
    return len(batch[0]) / seconds_per_call(run, repeats)


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


def cnn_configuration(torch, bands: int, code_width: int, pixels: int, batches, repeats: int, matmul: float) -> dict:
    """Table 2: one CNN configuration, each framework at its best batch size, on the same pixels."""
    from hsijax.models.inference import chunk_rows, jitted_encode
    from hsijax.models.model import create_model
    from hsijax.spectral import make_batch

    model = create_model(code_width=code_width, seed=0)
    batch = make_batch(np.random.default_rng(bands).random((pixels, bands), np.float32), None, model.config.buckets)
    encode = jitted_encode(model.config)
    codes = np.asarray(encode(model.variables, batch))
    flops = compiled_flops(encode, model.variables, batch) / pixels
    bucket = batch.spectra.shape[1]
    batches = sorted({*batches, chunk_rows(bucket)})
    jax_by_batch = {rows: jax_rate(encode, model.variables, batch, rows, repeats) for rows in batches}
    rate = jax_by_batch[chunk_rows(bucket)]  # what hsijax.encode uses
    row = {"bands": bands, "bucket": bucket, "c": code_width, "jax_px_s": rate,
           "jax_px_s_by_batch": {str(k): round(v) for k, v in jax_by_batch.items()},
           "hsijax_batch": chunk_rows(bucket), "mflop_per_px": flops / 1e6, "gflop_s": rate * flops / 1e9}
    row["fraction_of_matmul_rate"] = row["gflop_s"] / matmul
    if torch is not None:
        found = torch_rates(torch, model, batch.spectra, codes, batches, repeats)
        row["torch_eager_px_s"] = found.pop("torch_eager")
        row["torch_compile_px_s"] = found.pop("torch_compile", None)
        row.update(found)
        row["ratio_vs_torch_eager"] = rate / row["torch_eager_px_s"]
        if row["torch_compile_px_s"]:
            row["ratio_vs_torch_compile"] = rate / row["torch_compile_px_s"]
    return row


def poster_band_count_compilations(names=SHIPPED, in_process: bool = False) -> dict[str, int]:
    """{network: XLA compilations while `hsijax.encode` meets the poster's fourteen band counts, 3,000
    pixels each}, in a fresh process (each network warmed up on another band count first);
    ``in_process`` (--quick): here, each shipped network's config at a code width nothing has
    compiled yet, with the persistent compilation cache off."""
    if in_process:
        return {name: _compilations_here(name) for name in names}
    code = (
        "import jax, numpy as np, hsijax\n"
        "from hsijax.spectral import POSTER_BAND_COUNTS\n"
        "count = [0]\n"
        "jax.monitoring.register_event_duration_secs_listener(lambda event, duration, **kw: "
        "count.__setitem__(0, count[0] + (event == '/jax/core/compile/backend_compile_duration')))\n"
        f"for name in {tuple(names)!r}:\n"
        "    model = hsijax.load_pretrained(name)\n"
        "    hsijax.encode(model, np.ones((8, 10), np.float32), wavelengths=np.linspace(400, 900, 10))\n"
        "    count[0] = 0\n"
        "    for bands in POSTER_BAND_COUNTS:\n"
        "        hsijax.encode(model, np.random.default_rng(bands).random((3000, bands), np.float32), "
        "wavelengths=np.linspace(400, 2500, bands))\n"
        "    print(name, count[0])\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {name: int(count) for name, count in (line.split() for line in result.stdout.splitlines()[-len(names):])}


def _compilations_here(name: str, pixels: int = 64) -> int:
    import dataclasses

    import jax

    import hsijax
    from hsijax.spectral import POSTER_BAND_COUNTS

    shipped = hsijax.load_pretrained(name)
    model = hsijax.create_model(kind=shipped.config.kind, seed=0,
                                **{**dataclasses.asdict(shipped.config), "code_width": fresh_code_width()})
    hsijax.encode(model, np.ones((8, 10), np.float32), wavelengths=np.linspace(400, 900, 10))
    count = [0]
    listen = lambda event, duration, **kwargs: count.__setitem__(  # noqa: E731
        0, count[0] + (event == "/jax/core/compile/backend_compile_duration"))
    jax.monitoring.register_event_duration_secs_listener(listen)
    cached = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)  # a cache hit is no compilation to count
    try:
        for bands in POSTER_BAND_COUNTS:
            hsijax.encode(model, np.random.default_rng(bands).random((pixels, bands), np.float32),
                          wavelengths=np.linspace(400, 2500, bands))
    finally:
        jax.config.update("jax_enable_compilation_cache", cached)
        jax.monitoring.unregister_event_duration_listener(listen)
    return count[0]


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


def write_inputs(shape: tuple[int, int, int], folder: Path) -> dict[str, Path]:
    """The same random uint16 scene as .npy, ENVI (BSQ) and GeoTIFF (band-interleaved, striped, with a
    CRS), written a block of rows at a time; its band centres as a text file."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    height, width, bands = shape
    rng = np.random.default_rng(0)
    cube = np.lib.format.open_memmap(folder / "cube.npy", mode="w+", dtype=np.uint16, shape=shape)
    envi = np.memmap(folder / "cube.img", mode="w+", dtype=np.uint16, shape=(bands, height, width))
    profile = {"driver": "GTiff", "height": height, "width": width, "count": bands, "dtype": "uint16",
               "crs": "EPSG:32615", "transform": from_origin(500000, 4000000, 30, 30), "interleave": "band"}
    with rasterio.open(folder / "cube.tif", "w", **profile) as tiff:
        for start in range(0, height, 100):
            block = rng.integers(0, 10000, (min(100, height - start), width, bands), np.uint16)
            cube[start:start + len(block)] = block
            envi[:, start:start + len(block)] = np.moveaxis(block, -1, 0)
            tiff.write(np.moveaxis(block, -1, 0), window=Window(0, start, width, len(block)))
    cube.flush()
    envi.flush()
    del cube, envi
    wavelengths = np.linspace(400, 2500, bands)
    np.savetxt(folder / "wavelengths.txt", wavelengths)
    (folder / "cube.hdr").write_text(
        f"ENVI\nsamples = {width}\nlines = {height}\nbands = {bands}\nheader offset = 0\nfile type = ENVI Standard\n"
        "data type = 12\ninterleave = bsq\nbyte order = 0\nwavelength units = Nanometers\n"
        "wavelength = {" + ", ".join(f"{w:.3f}" for w in wavelengths) + "}\n")
    return {"npy": folder / "cube.npy", "envi": folder / "cube.hdr", "geotiff": folder / "cube.tif"}


def end_to_end(shape: tuple[int, int, int], folder: Path, runs, in_process: bool = False) -> list[dict]:
    """Table 4: `hsijax encode` of each (input format, output suffix) of ``runs``, in a child process
    each (after one warm-up read of the input); ``in_process`` (--quick): here, the peak RSS then
    this process's."""
    inputs = write_inputs(shape, folder)
    rows = []
    for kind, suffix in runs:
        path = inputs[kind]
        for data in (path, path.with_suffix(".img") if kind == "envi" else path):  # warm the page cache
            with open(data, "rb") as stream:
                while stream.read(64 * 2**20):
                    pass
        output = folder / f"codes_{kind}{suffix}"
        wavelengths = [] if kind == "envi" else ["--wavelengths", str(folder / "wavelengths.txt")]
        command = ["encode", "--checkpoint", "pretrained", str(path), *wavelengths, "--output", str(output),
                   "--no-progress"]
        start = time.perf_counter()
        if in_process:
            from hsijax.cli import main as hsijax_main

            assert hsijax_main(command) == 0
            status = Path("/proc/self/status").read_text()
            (folder / "peak.txt").write_text(status.split("VmHWM:")[1].split()[0])
        else:
            subprocess.run([sys.executable, "-c", MEASURED_ENCODE, str(folder / "peak.txt"), *command], check=True,
                           stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        rss = int((folder / "peak.txt").read_text()) / 1024
        rows.append({"input": kind, "output": suffix[1:], "shape": list(shape),
                     "input_mib": round(os.path.getsize(path if kind != "envi" else path.with_suffix(".img")) / 2**20),
                     "seconds": round(seconds, 2), "pixels_per_second": round(shape[0] * shape[1] / seconds),
                     "peak_rss_mib": round(rss)})
        output.unlink()
    return rows


def main() -> None:
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--pixels", type=int, default=210_250, help="pixels per call, linear network")
    arguments.add_argument("--cnn-pixels", type=int, default=16384, help="pixels per call, CNNs")
    arguments.add_argument("--batches", type=int, nargs="+", default=(256, 2048),
                           help="CNN batch sizes tried for both frameworks (hsijax's own is added)")
    arguments.add_argument("--repeats", type=int, default=5)
    arguments.add_argument("--scene", type=int, nargs=3, default=(2000, 2000, 200), metavar=("H", "W", "B"))
    args = arguments.parse_args()
    bands, widths = BANDS, CODE_WIDTHS
    runs = [("npy", ".npy"), ("envi", ".npy"), ("geotiff", ".npy"), ("geotiff", ".tif")]
    if args.quick:  # checks the script: small sizes, one band count, two end-to-end runs, no PyTorch
        args.pixels, args.cnn_pixels, args.repeats, args.scene, args.batches = 4096, 512, 2, (60, 50, 200), (256,)
        bands, widths, runs = (200,), (16,), [("envi", ".npy"), ("geotiff", ".tif")]
    torch = None if args.quick else optional_torch()
    matmul = matmul_rates(1024 if args.quick else 4096, with_torch=torch is not None)
    print(f"float32 matmul GFLOP/s: {matmul}", flush=True)
    shipped = shipped_rows(args.pixels, args.cnn_pixels, args.repeats, bands)
    print(table(shipped, ["network", "bands", "pixels", "hsijax_px_s", "matmul_px_s", "fraction_of_matmul"]),
          flush=True)
    cnn = [cnn_configuration(torch, b, c, args.cnn_pixels, args.batches, args.repeats, max(matmul.values()))
           for b in bands for c in widths]
    print(table(cnn, ["bands", "c", "hsijax_batch", "jax_px_s", "torch_eager_px_s", "torch_compile_px_s",
                      "ratio_vs_torch_eager", "mflop_per_px", "gflop_s", "fraction_of_matmul_rate"]), flush=True)
    # --quick: the CNN's count only (one per bucket, what the test checks), here; the linear network's
    # (two per band count, with the compilation cache off: 28, ~10 s of compiling) is the full run's
    compilations = poster_band_count_compilations(("poster",) if args.quick else SHIPPED, in_process=args.quick)
    with tempfile.TemporaryDirectory() as folder:
        scene = end_to_end(tuple(args.scene), Path(folder), runs, in_process=args.quick)
    print(table(scene, ["input", "output", "seconds", "pixels_per_second", "peak_rss_mib"]), flush=True)
    linear_200 = next(row for row in shipped if row["network"] == "pretrained" and row["bands"] == 200)
    report = {
        **machine(), "command": "python benchmarks/encode.py" + (" --quick" if args.quick else ""),
        "matmul_gflops": matmul,
        "shipped_200_px_s": round(linear_200["hsijax_px_s"]), "shipped_200_matmul_px_s": round(linear_200["matmul_px_s"]),
        "shipped_200_fraction_of_matmul": round(linear_200["fraction_of_matmul"], 3),
        "end_to_end_slowest_px_s": min(row["pixels_per_second"] for row in scene),
        "end_to_end_peak_rss_mib": max(row["peak_rss_mib"] for row in scene),
        "cnn_ratio_vs_torch_eager": median_of(cnn, "ratio_vs_torch_eager"),
        "cnn_ratio_vs_torch_compile": median_of(cnn, "ratio_vs_torch_compile"),
        "cnn_fraction_of_matmul_rate": median_of(cnn, "fraction_of_matmul_rate"),
        "compilations_for_14_poster_band_counts": compilations,
        "shipped": shipped, "configurations": cnn, "end_to_end": scene,
    }
    finish(report, args.json)


if __name__ == "__main__":
    main()
