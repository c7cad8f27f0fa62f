"""Training pixels/s of `hsijax pretrain` (the `local` config's model and scenes) on 1 and 8 devices.

    .venv/bin/python benchmarks/pretrain_devices.py [--steps 300]

On a CPU the 8 devices are virtual (``XLA_FLAGS=--xla_force_host_platform_device_count=8``) and
share the same cores, so this measures the cost of the data-parallel machinery (sharding,
shard_map, the gradient pmean), not a speed-up. The scenes mix buckets (48 to 224 bands), so
these pixels/s are not comparable with one bucket's: `benchmarks/train.py` measures the step per
bucket against PyTorch and the matmul rate. Results: benchmarks/results/pretrain_devices.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def pretrain_rate(devices: int, steps: int, workdir: Path) -> float:
    """Steady pixels/s reported by `hsijax pretrain` (compilation and the first interval left out)."""
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-m", "hsijax.cli", "pretrain", "--config", "local", "--workdir", str(workdir),
               "--no-progress", f"--config.train.steps={steps}", "--config.train.eval_every=1000000",
               "--config.train.checkpoint_every=1000000", "--config.train.log_every=50"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return float(re.search(r"([\d,]+) pixels/s", result.stdout).group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    from hsijax.files import write_json_atomic

    with tempfile.TemporaryDirectory() as scratch:
        rates = {}
        for devices in (1, 8):
            rates[devices] = pretrain_rate(devices, args.steps, Path(scratch) / f"d{devices}")
            print(f"{devices} device(s): {rates[devices]:,.0f} pixels/s", flush=True)
    report = {
        "machine": platform.platform(), "cpus": os.cpu_count(), "steps": args.steps,
        "pixels_per_second": {"1_device": round(rates[1]), "8_virtual_devices": round(rates[8])},
        "ratio_8_to_1": round(rates[8] / rates[1], 3),
    }
    for key, value in report.items():
        print(f"{key:28s} {value}")
    out = HERE / "results" / "pretrain_devices.json"
    write_json_atomic(out, report)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
