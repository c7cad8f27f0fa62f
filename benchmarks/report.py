"""Render benchmarks/RESULTS.md from the JSON the benchmarks wrote (nothing in it is typed by hand).

    .venv/bin/python benchmarks/report.py          # after encode.py, train.py, pipeline.py --json ...
"""

from __future__ import annotations

import json
from pathlib import Path

from common import HERE

GOALS = {
    "encode_attempts": "keep what is faster at equal accuracy",
    "encode": "the shipped network's `hsijax.encode` at 200 bands >= 1,000,000 px/s and >= 30 % of the same-shape "
              "NumPy matmul's rate; `hsijax encode` of a 2,000 x 2,000 x 200 uint16 file >= 500,000 px/s end to "
              "end with peak RSS <= 1 GiB, ENVI and GeoTIFF; the CNN >= 3x PyTorch eager",
    "train": "a training step >= 20 % of the matmul rate",
    "pipeline": "the pipeline >= 1,000,000 px/s at 10x Indian Pines and >= 2x the training step's pixels/s; "
                "peak RSS growing by < 100 MiB from 1x to 10x the data",
    "storage_formats": "the one on-disk format read at >= 1,000,000 px/s (what the pipeline must keep at 10x Indian "
                       "Pines)",
    "fine_tune": "one compilation per (bucket, batch shape); >= 90 % of fine-tuning time inside compiled steps",
    "map_scene": "`hsijax map` of a 2,000 x 2,000 x 200 uint16 scene within 2.5 GiB peak RSS; Indian Pines at 5 % "
                 "labels in <= 10 minutes",
    "accelerator": "on an H200 (or scaled by the GPU's matmul rate) encoding >= 2e7 px/s at 200 bands, c = 16; a "
                   "training step >= 30 % of the matmul rate in the same precision; the pipeline >= 2x the step",
}


def number(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if 0 < abs(value) < 0.01:
            return f"{value:.1e}"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def markdown_table(rows: list[dict], columns: dict[str, str]) -> list[str]:
    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(number(row.get(key)) for key in columns) + " |" for row in rows]
    return lines


def header(name: str, report: dict) -> list[str]:
    blas = report.get("blas") or {}
    return [f"## {name}", "", f"`{report['command']}` on {report['date']}: {report['processor']}, "
            f"{report['cpus']} CPUs, {report['platform']}, JAX {report['jax']} ({report['backend']}), "
            f"PyTorch {report['torch'] or 'not installed'}."
            + (f" Float32 4096² matmul GFLOP/s: {report['matmul_gflops']}." if "matmul_gflops" in report else "")
            + (f" NumPy's BLAS: {blas.get('library')} {blas.get('version')}, {blas.get('kernel')} kernel, "
               f"{blas.get('threads')} threads." if blas else ""),
            "", f"Goal: {GOALS[name]}.", ""]


def encode_section(report: dict) -> list[str]:
    compilations = report["compilations_for_14_poster_band_counts"]
    return [*header("encode", report),
            f"**Shipped linear network, 200 bands: {number(report['shipped_200_px_s'])} px/s**, "
            f"{number(100 * report['shipped_200_fraction_of_matmul'], 1)} % of NumPy's same-shape float32 product "
            f"on the same array ({number(report['shipped_200_matmul_px_s'])} px/s, best of 5 each). "
            f"**`hsijax encode` end to end**: slowest input format {number(report['end_to_end_slowest_px_s'])} px/s, "
            f"peak RSS at most {report['end_to_end_peak_rss_mib']} MiB. Compilations for the poster's 14 band counts: "
            + ", ".join(f"{name} {count}" for name, count in compilations.items()) + ".", "",
            *markdown_table(report["shipped"], {
                "network": "network", "bands": "bands", "pixels": "pixels", "hsijax_px_s": "hsijax.encode px/s",
                "matmul_px_s": "same-shape NumPy matmul px/s", "fraction_of_matmul": "fraction"}), "",
            *markdown_table(report["end_to_end"], {
                "input": "input", "output": "output", "input_mib": "input MiB", "seconds": "seconds",
                "pixels_per_second": "px/s", "peak_rss_mib": "peak RSS MiB"}), "",
            "The CNN's configurations (random weights), medians: "
            f"**{number(report['cnn_ratio_vs_torch_eager'])}× PyTorch eager**, "
            f"{number(report['cnn_ratio_vs_torch_compile'])}× `torch.compile`, "
            f"{number(100 * report['cnn_fraction_of_matmul_rate'], 1)} % of the 4096² matmul rate.", "",
            *markdown_table(report["configurations"], {
                "bands": "bands", "c": "c", "jax_px_s": "JAX px/s", "torch_eager_px_s": "torch eager px/s",
                "torch_compile_px_s": "torch.compile px/s", "ratio_vs_torch_eager": "× eager",
                "mflop_per_px": "MFLOP/px", "gflop_s": "GFLOP/s", "fraction_of_matmul_rate": "of matmul"}), ""]


def train_section(report: dict) -> list[str]:
    return [*header("train", report),
            f"Faithful decoder, medians: **{number(report['ratio_vs_torch_eager'])}× PyTorch eager**, "
            f"**{number(100 * report['fraction_of_matmul_rate'], 1)} % of the matmul rate**; "
            f"batch {report['batch']}.", "",
            *markdown_table(report["configurations"], {
                "bands": "bands", "decoder": "decoder", "jax_px_s": "JAX px/s",
                "torch_eager_px_s": "torch eager px/s", "ratio_vs_torch_eager": "× eager",
                "mflop_per_px": "MFLOP/px", "gflop_s": "GFLOP/s", "fraction_of_matmul_rate": "of matmul"}), ""]


def pipeline_section(report: dict) -> list[str]:
    return [*header("pipeline", report),
            f"Format 2 at 10× Indian Pines: **{number(report['pipeline_px_s'])} px/s** (format 1, hsijax 0.1's "
            f"per-pixel records: {number(report.get('format_1_px_s'))} px/s). Training step (c = 16, conditioned, "
            f"200 bands): {number(report['training_step_px_s'])} px/s; the pipeline delivers "
            f"**{number(report['ratio_to_training_step'])}×** that; peak RSS grows "
            f"**{report['peak_rss_growth_10x_mib']} MiB** from 1× to 10× the data.", "",
            *markdown_table(report["datasets"], {
                "format": "format", "copies": "× Indian Pines", "pixels": "pixels", "pixels_per_second": "px/s",
                "peak_rss_mib": "peak RSS MiB", "ratio_to_training_step": "× training step"}), ""]


def storage_formats_section(report: dict) -> list[str]:
    rates = report["px_s"]
    return [*header("storage_formats", report),
            f"{report['copies']}× Indian Pines ({report['copies'] * 145} × 145 × 200 float32), read in blocks of "
            f"{report['block_rows']} image rows: TFDS's per-pixel examples {number(rates['tfds_pixel_examples'])} px/s, "
            f"row examples {number(rates['tfds_row_examples'])}, bare rows in TFDS's ArrayRecord (zstd) "
            f"{number(rates['array_record_rows'])}, uncompressed {number(rates['array_record_rows_uncompressed'])}, "
            f"the dense copy **{number(rates['dense_npy'])} px/s**.", "",
            *markdown_table(report["formats"], {"format": "format", "pixels_read": "pixels read",
                                                "mib_on_disk": "MiB on disk", "pixels_per_second": "px/s"}), ""]


def fine_tune_section(report: dict) -> list[str]:
    return [*header("fine_tune", report),
            f"Indian Pines, 5 % labels, {report['train_pixels']} fitting pixels, {report['steps']} steps, the "
            f"scratch network: compiled chunks take **{number(report['chunked_s_per_step'], 3)} s/step**, "
            f"{number(report['speedup_over_per_step'])}× faster than one jitted call per step, with "
            f"**{number(100 * report['chunked_compiled_share'], 1)} %** of the time inside compiled calls; "
            f"the same steps in `lax.scan` take {number(report['scan_s_per_step'], 2)} s/step on this backend.", "",
            *markdown_table(report["rows"], {"method": "method", "seconds": "seconds", "s_per_step": "s/step",
                                             "compiled_share": "inside compiled calls"}), ""]


def map_scene_section(report: dict) -> list[str]:
    height, width, bands = report["scene_shape"]
    synthetic = report["runs"][0]
    return [*header("map_scene", report),
            f"`hsijax map` (the shipped network, `--checkpoint pretrained`) of a {height:,} × {width:,} × {bands} "
            f"uint16 GeoTIFF, {synthetic['labelled_pixels']} labelled pixels in 8 classes: "
            f"**{number(report['scene_seconds'], 1)} s, {number(report['scene_px_s'])} px/s, peak RSS "
            f"{number(report['scene_peak_rss_mib'])} MiB**; the map agrees with the regions the scene was made of on "
            f"{number(100 * report['scene_agreement'], 1)} % of its pixels. Indian Pines with 5 % of its labels: "
            f"**{number(report['indian_pines_5pct_seconds'], 1)} s**, peak RSS "
            f"{number(report['indian_pines_5pct_peak_rss_mib'])} MiB, OA "
            f"{number(100 * report['indian_pines_5pct_test_oa'], 2)} % on its other labelled pixels. Each in a child "
            "process, warm page cache, wall time including start-up and compilation.", "",
            *markdown_table(report["runs"], {
                "scene": "scene", "labelled_pixels": "labelled pixels", "seconds": "seconds",
                "pixels_per_second": "px/s", "peak_rss_mib": "peak RSS MiB", "agreement": "agreement"}), ""]


def attempts_section(report: dict) -> list[str]:
    return ["## encode: what was tried", "",
            f"`{report['command']}` on {report['date']}, same machine; c = 16, pixels/s. `conv 2048` is "
            "hsijax before (XLA's convolution, 2048 rows per call), `conv chunk` hsijax now (rows per call "
            "by bucket, `hsijax.models.inference.chunk_rows`); `im2col` writes each convolution as one matrix "
            "product over shifted slices; `bf16` does that in bfloat16 (float32 accumulation). Code "
            "errors are the largest absolute difference from the float32 codes.", "",
            *markdown_table(report["attempts"], {
                "bands": "bands", "chunk_rows": "rows/call", "conv_2048": "conv 2048", "conv_chunk": "conv chunk",
                "im2col": "im2col", "im2col_bf16": "im2col bf16", "im2col_bf16_max_code_error": "bf16 code error",
                "code_range": "largest |code|"}), ""]


def accelerator_section(report: dict | None) -> list[str]:
    if report is None:
        return ["## accelerator", "", f"Goal: {GOALS['accelerator']}.", "",
                "Not yet measured: no GPU has been lent to this project's sessions. The script is ready "
                "(`benchmarks/accelerator.py`, checked on a CPU with `--quick` in a Python 3.12 environment "
                "holding only the GPU machine's packages and `benchmarks/accelerator_wheels.sh`'s wheels).", ""]
    return [*header("accelerator", report),
            f"Device: **{report['device']}** ({report['device_count']}). Matmul TFLOP/s: {report['matmul_tflop_s']}. "
            f"Encoding at 200 bands, c = 16, on-device batches: float32 **{number(report['encode_200_float32_px_s'])} "
            f"px/s**; fastest within a code error of {report['code_error_limit']} (p99 relative): "
            f"{report['encode_200_fastest_precision']}, **{number(report['encode_200_fastest_px_s'])} px/s**. "
            f"Training step (float32): {number(report['training_step_float32_px_s'])} px/s, "
            f"**{number(100 * report['training_step_float32_share_of_matmul'], 1)} %** of the float32 matmul rate. "
            f"Pipeline: {number(report['pipeline_px_s'])} px/s, {number(report['pipeline_over_training_step'])}× "
            f"the step. Compilations for the poster's 14 band counts: {report['poster_band_count_compilations']}. "
            f"Short pretraining on Indian Pines: {report['pretraining']}.", "",
            *markdown_table(report.get("linear_encode", []), {
                "bands": "bands", "pixels": "pixels", "device_px_s": "linear network, on-device px/s",
                "host_numpy_px_s": "hsijax.encode px/s"}),
            "", *markdown_table(report["encode"], {
                "bands": "bands", "precision": "precision", "device_px_s": "on-device px/s",
                "host_numpy_px_s": "hsijax.encode px/s", "code_error_p99": "code error p99", "chunk_rows": "rows/call"}),
            "", *markdown_table(report["chunk_sweep"], {"chunk_rows": "rows/call", "host_numpy_px_s": "hsijax.encode px/s"}),
            "", *markdown_table(report["training"], {
                "precision": "precision", "batch": "batch", "train_px_s": "px/s", "mflop_per_px": "MFLOP/px",
                "tflop_s": "TFLOP/s", "share_of_matmul_rate": "of matmul"}), ""]


def main() -> None:
    import argparse

    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--results", type=Path, default=HERE / "results", help="the benchmarks' JSON files")
    arguments.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    arguments.add_argument("--quick", action="store_true", help="the same (rendering takes no time)")
    args = arguments.parse_args()
    lines = ["# Benchmark results", "",
             "Written by `benchmarks/report.py` from `benchmarks/results/*.json`; rerun with `make bench`.", ""]
    sections = (("encode", encode_section), ("encode_attempts", attempts_section), ("train", train_section),
                ("pipeline", pipeline_section), ("storage_formats", storage_formats_section),
                ("fine_tune", fine_tune_section), ("map_scene", map_scene_section))
    for name, section in sections:
        path = args.results / f"{name}.json"
        if path.is_file():
            lines += section(json.loads(path.read_text()))
    accelerator = args.results / "accelerator.json"
    lines += accelerator_section(json.loads(accelerator.read_text()) if accelerator.is_file() else None)
    from hsijax.files import write_text_atomic

    write_text_atomic(args.output, "\n".join(lines).rstrip() + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
