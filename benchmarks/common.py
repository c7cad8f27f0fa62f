"""What every performance benchmark shares: the machine's matmul rate, timing, peak memory, output.

The reference rate is the best float32 4096 x 4096 matrix product this machine does in the same
run, through NumPy (OpenBLAS), XLA and PyTorch when it is installed: "fraction of the matmul rate"
is measured against the fastest of them, so it is never flattered by a slow library.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def seconds_per_call(function: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``function()`` (which must block until its result is ready)."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def best_seconds(function: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """The fastest of ``repeats`` wall times of ``function()`` (which must block until done): the
    rate a machine reaches, for a reference like a matrix product on a quiet machine."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def blas() -> dict:
    """Which BLAS NumPy uses and which of its kernels runs here (OpenBLAS picks one per CPU, unless
    OPENBLAS_CORETYPE forces one: the benchmarks are run with it and OPENBLAS_L2_SIZE unset)."""
    from threadpoolctl import threadpool_info

    found = [info for info in threadpool_info() if info.get("user_api") == "blas"]
    first = found[0] if found else {}
    return {"library": first.get("internal_api"), "version": first.get("version"),
            "kernel": first.get("architecture"), "threads": first.get("num_threads"),
            **{name: os.environ[name] for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if name in os.environ}}


def matmul_rates(size: int = 4096, repeats: int = 3, with_torch: bool = True) -> dict[str, float]:
    """GFLOP/s of a float32 size x size matrix product in each library available here (PyTorch only
    ``with_torch``: a --quick run, which checks the script, leaves it out, as it leaves out every
    PyTorch reference)."""
    import jax
    import jax.numpy as jnp

    a = np.random.default_rng(0).standard_normal((size, size), np.float32)
    flops = 2 * size**3
    rates = {"numpy": flops / seconds_per_call(lambda: a @ a, repeats) / 1e9}
    x = jnp.asarray(a)
    dot = jax.jit(jnp.dot)
    rates["xla"] = flops / seconds_per_call(lambda: dot(x, x).block_until_ready(), repeats) / 1e9
    torch = optional_torch() if with_torch else None
    if torch is not None:
        t = torch.from_numpy(a)
        with torch.inference_mode():
            rates["torch"] = flops / seconds_per_call(lambda: t @ t, repeats) / 1e9
    return {name: round(rate, 1) for name, rate in rates.items()}


def optional_torch():
    """torch when installed (``pip install torch==2.13.0``), else None: it is not a dependency."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    return torch


_FRESH_WIDTHS = itertools.count(33)


def fresh_code_width() -> int:
    """A code width no earlier call in this process returned, above every width the benchmarks
    create (8 to 32): the config of a network nothing has compiled yet. Counted here, not in the
    script that asks, which one process may load twice (the benchmark test runs `encode.py` as
    __main__ after `accelerator.py` imported it: two counters gave one width twice, and no
    compilation to count the second time)."""
    return next(_FRESH_WIDTHS)


def torch_version() -> str | None:
    """PyTorch's version when it is installed, from its package's metadata: importing torch to ask
    would cost every benchmark seconds, --quick ones included."""
    from importlib import metadata

    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


def peak_rss_mib() -> float:
    """Peak resident memory so far of this process, MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def compiled_flops(jitted, *args) -> float:
    """XLA's FLOP count for one call of a jitted function on these arguments."""
    cost = jitted.lower(*args).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost["flops"])


def machine() -> dict:
    import jax

    return {"date": datetime.date.today().isoformat(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "jax": jax.__version__, "backend": jax.default_backend(),
            "torch": torch_version(), "blas": blas()}


def parser(description: str) -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(description=description)
    result.add_argument("--json", type=Path, help="write the figures here as JSON")
    result.add_argument("--quick", action="store_true", help="small sizes: checks the script, not the machine")
    return result


def median_of(rows: list[dict], key: str) -> float | None:
    values = [row[key] for row in rows if row.get(key) is not None]
    return round(statistics.median(values), 3) if values else None


def finish(report: dict, path: Path | None) -> None:
    """Print the top-level figures and write the whole report atomically."""
    for key, value in report.items():
        if not isinstance(value, (list, dict)):
            print(f"{key:32s} {value}")
    if path is not None:
        from hsijax.files import write_json_atomic

        write_json_atomic(path, report)
        print(f"wrote {path}")


def table(rows: list[dict], columns: list[str]) -> str:
    """Rows as a fixed-width text table (None shows as '-')."""
    cell = lambda v: "-" if v is None else (f"{v:,.3f}" if isinstance(v, float) and abs(v) < 10
                                            else f"{v:,.0f}" if isinstance(v, float) else str(v))
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)
