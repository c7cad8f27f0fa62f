"""Input-pipeline speed and memory: Grain over the dense copy (format 2) into padded bucket batches.

    .venv/bin/python benchmarks/pipeline.py --json benchmarks/results/pipeline.json

Writes two datasets with `hsijax.data.builders.build_dataset` -- Indian Pines (145 x 145 x 200, from
tensorly) and the same scene tiled ten times (1450 x 145 x 200) -- then, each in its own child
process, iterates `hsijax.data.pipeline.make_pipeline` exactly as the trainer does (shuffled, batches of
256 pixels, normalised and reflection-padded) and reports pixels/s and the child's peak RSS; the
per-pixel records of hsijax 0.1 (format 1) run at 10x as the reference. The goals: at least
1,000,000 pixels/s at 10x Indian Pines (``pipeline_px_s``) and twice the pixels/s of the training
step (timed in this run with `benchmarks/train.py`'s code), with memory that does not grow with the
dataset.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import finish, machine, parser, peak_rss_mib, table

BATCH = 256


def write_datasets(folder: Path, copies: tuple[int, ...], rows: int | None = None) -> dict[int, Path]:
    """{copies: dataset directory} of Indian Pines tiled ``copies`` times along the rows (its first
    ``rows`` image rows only: --quick, where building the whole scene was a third of the run)."""
    from hsijax.data.scene import Scene, load_indian_pines
    from hsijax.data.builders import build_dataset

    scene = load_indian_pines()
    cube, labels = scene.cube[:rows], scene.labels[:rows]
    written = {}
    for count in copies:
        tiled = Scene(f"indian_pines_x{count}", scene.sensor, np.tile(cube, (count, 1, 1)),
                      np.tile(labels, (count, 1)), scene.wavelengths_nm)
        written[count] = build_dataset(tiled, data_dir=folder)
    return written


def measure_child(directory: Path, batches: int, pipeline_format: int = 2, in_process: bool = False) -> dict:
    """Run the pipeline in a child process (its own peak RSS; ``in_process``: here, for --quick);
    returns its figures."""
    if in_process:
        return child(directory, batches, pipeline_format)
    output = subprocess.run([sys.executable, __file__, "--child", str(directory), "--batches", str(batches),
                             "--format", str(pipeline_format)], check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def child(directory: Path, batches: int, pipeline_format: int) -> dict:
    """Iterate the pipeline: the first 20 batches warm up, the next ``batches`` are timed."""
    from hsijax.data.pipeline import make_pipeline
    from hsijax.data.storage import load_dataset

    dataset = load_dataset(directory)
    iterator = iter(make_pipeline([dataset], BATCH, seed=0, shard_index=0, shard_count=1,
                                  pipeline_format=pipeline_format))
    for _ in range(20):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        batch = next(iterator)
    seconds = time.perf_counter() - start
    assert batch["spectra"].shape == (BATCH, 256) and batch["spectra"].dtype == np.float32
    figures = {"pixels": len(dataset.source), "pixels_per_second": batches * BATCH / seconds,
               "peak_rss_mib": peak_rss_mib()}
    print(json.dumps(figures))
    return figures


def training_step_rate(repeats: int, rows: int = BATCH) -> float:
    """pixels/s of the training step the pipeline feeds (c = 16, conditioned decoder, 200 bands),
    on batches of ``rows`` pixels."""
    from train import batch_of, jax_step_rate

    from hsijax.models.model import create_model

    model = create_model(code_width=16, decoder="conditioned", seed=0)
    return jax_step_rate(model, batch_of(200, rows, model.config.buckets), repeats)[0]


def main() -> None:
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--batches", type=int, default=3000)
    arguments.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # internal: measure here
    arguments.add_argument("--format", type=int, default=2, help=argparse.SUPPRESS)
    args = arguments.parse_args()
    if args.child:
        return child(args.child, args.batches, args.format)
    copies, image_rows = (1, 10), None
    if args.quick:  # checks the script: 48 rows of the 1x dataset stand in for the 10x one, read here, not in a child
        args.batches, copies, image_rows = 10, (1, 1), 48
    with tempfile.TemporaryDirectory() as folder:
        datasets = write_datasets(Path(folder), tuple(sorted(set(copies))), image_rows)
        rows = [{"format": 2, "copies": count, **measure_child(datasets[count], args.batches, in_process=args.quick)}
                for count in copies]
        rows.append({"format": 1, "copies": copies[1], **measure_child(datasets[copies[1]], min(args.batches, 200), 1,
                                                                        in_process=args.quick)})
    # --quick: one timed step of `train.py --quick`'s conditioned configuration (the same compiled step)
    train_rate = training_step_rate(1, rows=32) if args.quick else training_step_rate(20)
    for row in rows:
        row["ratio_to_training_step"] = row["pixels_per_second"] / train_rate
    print(table(rows, ["format", "copies", "pixels", "pixels_per_second", "peak_rss_mib", "ratio_to_training_step"]))
    report = {
        **machine(), "command": "python benchmarks/pipeline.py" + (" --quick" if args.quick else ""),
        "batch": BATCH, "training_step_px_s": round(train_rate),
        "pipeline_px_s": round(rows[1]["pixels_per_second"]),  # format 2, 10x Indian Pines
        "ratio_to_training_step": round(min(row["ratio_to_training_step"] for row in rows[:2]), 2),
        "format_1_px_s": round(rows[2]["pixels_per_second"]),
        "peak_rss_growth_10x_mib": round(rows[1]["peak_rss_mib"] - rows[0]["peak_rss_mib"]),
        "datasets": rows,
    }
    finish(report, args.json)


if __name__ == "__main__":
    main()
