"""Training pixels/s of `hsijax pretrain` (the `local` config's model and scenes) on 1 and 8 devices.

    .venv/bin/python benchmarks/pretrain_devices.py [--steps 300] --json benchmarks/results/pretrain_devices.json
    .venv/bin/python benchmarks/pretrain_devices.py --quick      # the tiny config, 1 and 2 devices, 3 steps,
                                                                 # a crop of Indian Pines

On a CPU the 8 devices are virtual (``XLA_FLAGS=--xla_force_host_platform_device_count=8``) and
share the same cores, so this measures the cost of the data-parallel machinery (sharding,
shard_map, the gradient pmean), not a speed-up. The scenes mix buckets (48 to 224 bands), so
these pixels/s are not comparable with one bucket's: `benchmarks/train.py` measures the step per
bucket against PyTorch and the matmul rate. Results: benchmarks/results/pretrain_devices.json.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def pretrain_rate(devices: int, steps: int, workdir: Path, config: str = "local", extra=()) -> float:
    """Steady pixels/s reported by `hsijax pretrain` (compilation and the first interval left out)."""
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-m", "hsijax.cli", "pretrain", "--config", config, "--workdir", str(workdir),
               "--no-progress", f"--config.train.steps={steps}", "--config.train.eval_every=1000000",
               "--config.train.checkpoint_every=1000000", f"--config.train.log_every={min(50, steps // 3)}", *extra]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return float(re.search(r"([\d,]+) pixels/s", result.stdout).group(1).replace(",", ""))


def main() -> None:
    from common import finish, parser

    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--steps", type=int, default=300)
    args = arguments.parse_args()
    devices = (1, 2) if args.quick else (1, 8)
    with tempfile.TemporaryDirectory() as scratch:
        config, extra = "local", []
        if args.quick:  # the tiny config on the first 24 rows of Indian Pines from the tensorly wheel (all 200
            # bands: the same compiled step; building the whole scene took 4 s), in a scratch data dir
            from hsijax.data.builders import build_dataset
            from hsijax.data.scene import Scene, load_indian_pines

            scene = load_indian_pines()
            build_dataset(Scene(scene.name, scene.sensor, scene.cube[:24], scene.labels[:24], scene.wavelengths_nm),
                          data_dir=Path(scratch) / "data")
            config, extra, args.steps = "tiny", [f"--config.data.data_dir={scratch}/data"], 3
        rates = {}
        for count in devices:
            rates[count] = pretrain_rate(count, args.steps, Path(scratch) / f"d{count}", config, extra)
            print(f"{count} device(s): {rates[count]:,.0f} pixels/s", flush=True)
    report = {
        "command": "python benchmarks/pretrain_devices.py" + (" --quick" if args.quick else ""),
        "machine": platform.platform(), "cpus": os.cpu_count(), "steps": args.steps, "config": config,
        "pixels_per_second": {f"{count}_device(s)": round(rate) for count, rate in rates.items()},
        f"ratio_{devices[1]}_to_1": round(rates[devices[1]] / rates[1], 3),
    }
    finish(report, args.json)


if __name__ == "__main__":
    main()
