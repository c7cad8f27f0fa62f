"""Training pixels/s of `hsijax pretrain` (the `local` config's model and scenes) on 1 and 8 devices.

    .venv/bin/python benchmarks/pretrain_devices.py [--steps 300]

On a CPU the 8 devices are virtual (``XLA_FLAGS=--xla_force_host_platform_device_count=8``) and
share the same cores, so this measures the cost of the data-parallel machinery (sharding,
shard_map, the gradient pmean), not a speed-up. For scale, the same run measures the machine's
float32 matrix-multiply rate and the model's FLOPs per training step (XLA's cost analysis), and
reports the fraction of that rate training achieves. Results: benchmarks/results/pretrain_devices.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

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


def matmul_gflops(size: int = 1024, repeats: int = 20) -> float:
    a = np.random.default_rng(0).standard_normal((size, size), np.float32)
    a @ a
    start = time.perf_counter()
    for _ in range(repeats):
        a @ a
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def step_flops_per_pixel(rows: int = 256, length: int = 256) -> float:
    """XLA's FLOP count of one training step of the local config's model, per pixel."""
    import jax.numpy as jnp

    from hsijax.configs import local
    from hsijax.model import ModelConfig, SharedAutoencoder
    from hsijax.spectral import SpectraBatch
    from hsijax.trainer import initial_state, make_mesh, make_optimizer, make_sharded_step

    config = local.get_config()
    model_config = ModelConfig.from_dict(dict(config.model))
    mesh = make_mesh()
    optimizer = make_optimizer(config.optim, config.train.steps)
    state = initial_state(model_config, optimizer, 0, mesh)
    step = make_sharded_step(SharedAutoencoder(model_config), optimizer, config.optim.weight_decay, mesh)
    batch = SpectraBatch(jnp.zeros((rows, length)), jnp.full((rows,), 200), jnp.zeros((rows, length)),
                         jnp.ones((rows,), bool))
    cost = step.lower(state["params"], state["opt_state"], batch).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost["flops"]) / rows


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
    gflops = matmul_gflops()
    flops_per_pixel = step_flops_per_pixel()
    achieved = rates[1] * flops_per_pixel / 1e9
    report = {
        "machine": platform.platform(), "cpus": os.cpu_count(), "steps": args.steps,
        "pixels_per_second": {"1_device": round(rates[1]), "8_virtual_devices": round(rates[8])},
        "ratio_8_to_1": round(rates[8] / rates[1], 3),
        "matmul_gflops": round(gflops, 1),
        "train_flops_per_pixel": round(flops_per_pixel),
        "train_gflops_1_device": round(achieved, 2),
        "fraction_of_matmul_rate": round(achieved / gflops, 3),
    }
    for key, value in report.items():
        print(f"{key:28s} {value}")
    out = HERE / "results" / "pretrain_devices.json"
    write_json_atomic(out, report)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
