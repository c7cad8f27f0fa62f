"""The accelerator checks (`benchmarks/accelerator.py`) stay runnable on the day a GPU is lent: the
script runs here in its --quick mode, on the CPU, and writes every figure its report section reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import environment

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_the_accelerator_checks_run_and_report_every_figure(tmp_path):
    result = subprocess.run([sys.executable, "accelerator.py", "--quick", "--json", str(tmp_path / "a.json")],
                            cwd=BENCHMARKS, env=environment(1), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "a.json").read_text())
    assert set(report["matmul_tflop_s"]) == {"float32", "tf32", "bfloat16"}
    assert {row["precision"] for row in report["encode"]} == {"float32", "bfloat16"}  # --quick: two of three
    assert all(row["device_px_s"] > 0 and row["code_error_p99"] >= 0 for row in report["encode"])
    assert report["encode_200_fastest_code_error_p99"] <= report["code_error_limit"]
    assert [row["precision"] for row in report["training"]] == ["float32"]
    assert 0 < report["training_step_float32_share_of_matmul"] and report["pipeline_px_s"] > 0
    assert report["poster_band_count_compilations"] == 3  # the 14 band counts fall in 3 buckets
    assert report["pretraining"]["steps"] == 10 and report["pretraining"]["held_out_mpsnr_db"] > 0

    sys.path.insert(0, str(BENCHMARKS))
    import report as rendering

    section = "\n".join(rendering.accelerator_section(report))
    assert "| 200 | bfloat16 |" in section and "Device: **cpu**" in section
