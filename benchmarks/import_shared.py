"""Time and disk size of importing every image in ../shared/data with `hsijax import`.

    .venv/bin/python benchmarks/import_shared.py [--data-dir DIR] --json benchmarks/results/import_shared.json
    .venv/bin/python benchmarks/import_shared.py --quick        # one scene (Jasper Ridge) only

Each scene is imported in-process (the command's own code path) into a fresh data directory; the
table gives seconds, pixels per second and the dataset's size on disk next to the source file's.
Without ../shared/data it says so and exits 0 (a fresh machine has nothing to import).
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.shared_scenes import REAL_SCENES  # noqa: E402
from hsijax.cli import main  # noqa: E402

SHARED_DATA = HERE.parent.parent / "shared" / "data"


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def import_one(file: str, options: list[str], data_dir: Path) -> dict:
    options = [str(SHARED_DATA / o) if o.endswith((".mat", ".npy")) else o for o in options]
    name = Path(file).stem.lower().replace("-", "_").replace(".", "_")
    start = time.perf_counter()
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull), \
            contextlib.redirect_stdout(devnull):
        code = main(["import", str(SHARED_DATA / file), *options, "--name", f"s_{name}",
                     "--data-dir", str(data_dir)])
    seconds = time.perf_counter() - start
    row = {"file": file, "exit_code": code, "seconds": round(seconds, 2),
           "source_bytes": (SHARED_DATA / file).stat().st_size}
    if code == 0:
        dataset = data_dir / f"s_{name}"
        row["dataset_bytes"] = folder_bytes(dataset)
    return row


def main_benchmark(data_dir: Path, scenes=REAL_SCENES) -> dict:
    rows = []
    for file, options, shape, _, _ in scenes:
        row = import_one(file, options, data_dir)
        row["pixels"] = shape[0] * shape[1]
        row["bands"] = shape[2]
        rows.append(row)
        done = row.get("dataset_bytes")
        print(f"{file:45s} {row['seconds']:6.2f} s  {row['pixels'] / row['seconds']:8.0f} px/s  "
              f"{(done or 0) / 1e6:6.1f} MB  (exit {row['exit_code']})")
    imported = [r for r in rows if r["exit_code"] == 0]
    total = {
        "scenes_imported": len(imported),
        "scenes_refused": len(rows) - len(imported),
        "seconds": round(sum(r["seconds"] for r in rows), 1),
        "dataset_megabytes": round(sum(r["dataset_bytes"] for r in imported) / 1e6, 1),
        "source_megabytes": round(sum(r["source_bytes"] for r in imported) / 1e6, 1),
        "pixels_per_second": round(sum(r["pixels"] for r in imported) / sum(r["seconds"] for r in imported)),
    }
    print(f"\ntotal: {total}")
    return {"machine": platform.platform(), "cpus": os.cpu_count(), "total": total, "scenes": rows}


if __name__ == "__main__":
    from benchmarks.common import finish, parser

    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--data-dir", type=Path)
    args = arguments.parse_args()
    if not SHARED_DATA.is_dir():
        print(f"import_shared: {SHARED_DATA} not found: nothing to import (this benchmark reads the shared scenes)")
        sys.exit(0)
    with tempfile.TemporaryDirectory() as scratch:
        report = main_benchmark(args.data_dir or Path(scratch), REAL_SCENES[1:2] if args.quick else REAL_SCENES)
    report["command"] = "python benchmarks/import_shared.py" + (" --quick" if args.quick else "")
    finish(report, args.json)
