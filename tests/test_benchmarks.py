"""Every benchmark stays runnable: each script in benchmarks/ runs here in its --quick mode (small sizes,
on the CPU; two processes, each running its scripts one after another), writes every figure its
RESULTS.md section reads, and `report.py` renders them. None can break unseen again (encode.py
once failed unseen)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHARED_DATA, environment

pytestmark = pytest.mark.full  # every benchmark script run in its quick mode, in child processes

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
# About 60 s each here with --quick (pretrain_devices' two child pretrainings are half of the second)
GROUPS = (("accelerator", "encode", "encode_attempts", "import_shared", "map_scene", "fine_tune"),
          ("pretrain_devices", "pipeline", "storage_formats", "train"))
SCRIPTS = tuple(name for group in GROUPS for name in group)
# Runs each script's __main__ with --quick --json OUT/NAME.json, in turn; names the one that fails.
RUNNER = """
import runpy, sys, time
folder, names = sys.argv[1], sys.argv[2:]
for name in names:
    sys.argv = [f"{name}.py", "--quick", "--json", f"{folder}/{name}.json"]
    began = time.perf_counter()
    try:
        runpy.run_path(f"{name}.py", run_name="__main__")
    except SystemExit as exit:
        if exit.code:
            raise SystemExit(f"benchmark {name} exited with {exit.code}")
    print(f"BENCHMARK {name} {time.perf_counter() - began:.1f} s", flush=True)
"""


def test_every_benchmark_runs_in_its_quick_mode_and_its_report_renders(tmp_path):
    """(The scripts that test themselves -- torch_mirror, shared_scenes, common -- are modules.)"""
    listed = {path.stem for path in BENCHMARKS.glob("*.py")} - {"__init__", "common", "torch_mirror",
                                                                 "shared_scenes", "report"}
    assert listed == set(SCRIPTS), listed  # a new script joins this test
    # Two runners side by side: the scripts are mostly compilation and child processes, one core each.
    runners = [subprocess.Popen([sys.executable, "-c", RUNNER, str(tmp_path), *group], cwd=BENCHMARKS,
                                env=environment(1), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for group in GROUPS]
    outputs = [runner.communicate(timeout=900) for runner in runners]
    for runner, (out, err) in zip(runners, outputs):
        assert runner.returncode == 0, (out[-3000:], err[-3000:])
    timings = [line for out, _ in outputs for line in out.splitlines() if line.startswith("BENCHMARK ")]
    assert len(timings) == len(SCRIPTS), timings
    reports = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in SCRIPTS
               if name != "import_shared" or SHARED_DATA.is_dir()}  # without the scenes it says so, writes nothing

    encode = reports["encode"]
    assert encode["shipped_200_px_s"] > 0 and encode["shipped_200_fraction_of_matmul"] > 0
    assert encode["compilations_for_14_poster_band_counts"]["poster"] == 3  # the 14 band counts fall in 3 buckets
    assert {(row["input"], row["output"]) for row in encode["end_to_end"]} == {("envi", "npy"), ("geotiff", "tif")}
    assert all(row["peak_rss_mib"] > 0 for row in encode["end_to_end"]) and encode["blas"]["library"]
    accelerator = reports["accelerator"]
    assert set(accelerator["matmul_tflop_s"]) == {"float32", "tf32", "bfloat16"}
    assert {row["precision"] for row in accelerator["encode"]} == {"float32", "bfloat16"}  # --quick: two of three
    assert accelerator["encode_200_fastest_code_error_p99"] <= accelerator["code_error_limit"]
    assert accelerator["linear_encode_200_host_px_s"] > 0 and accelerator["poster_band_count_compilations"] == 3
    assert accelerator["pretraining"]["steps"] == 10 and accelerator["pretraining"]["held_out_mpsnr_db"] > 0
    assert reports["pipeline"]["pipeline_px_s"] > 0 and reports["fine_tune"]["chunked_s_per_step"] > 0
    assert reports["train"]["fraction_of_matmul_rate"] > 0 and reports["encode_attempts"]["attempts"]
    assert reports["pretrain_devices"]["ratio_2_to_1"] > 0
    check_map_scene(reports["map_scene"])
    assert set(reports["storage_formats"]["px_s"]) == {"tfds_pixel_examples", "tfds_row_examples", "array_record_rows",
                                                       "array_record_rows_uncompressed", "dense_npy"}

    for name, report in reports.items():
        (tmp_path / "results").mkdir(exist_ok=True)
        (tmp_path / "results" / f"{name}.json").write_text(json.dumps(report))
    rendered = subprocess.run([sys.executable, "report.py", "--results", str(tmp_path / "results"), "--output",
                               str(tmp_path / "RESULTS.md")], cwd=BENCHMARKS, env=environment(1), capture_output=True,
                              text=True, timeout=120)
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    page = (tmp_path / "RESULTS.md").read_text()
    assert "Shipped linear network, 200 bands" in page and "| 200 | bfloat16 |" in page and "Device: **cpu**" in page
    for section in ("## encode", "## encode: what was tried", "## train", "## pipeline", "## storage_formats",
                    "## fine_tune", "## map_scene"):
        assert section in page


def check_map_scene(report: dict) -> None:
    assert report["scene_shape"] == [48, 40, 200] and report["scene_px_s"] > 0 and report["scene_peak_rss_mib"] > 0
    assert report["scene_agreement"] > 0.9  # eight smooth materials: learnable from a few labels
    assert report["indian_pines_5pct_seconds"] > 0 and report["indian_pines_5pct_test_oa"] > 0.3
    assert [row["scene"] for row in report["runs"]] == ["synthetic", "indian_pines_5pct"]

