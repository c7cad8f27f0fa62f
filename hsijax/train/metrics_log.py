"""Where a training run reports: a JSONL file and TensorBoard event files in the workdir.

Only process 0 writes (every process computes the same numbers). ``metrics.jsonl`` gets one JSON
object per record (``{"step": ..., "kind": "train" | "eval", ...}``) and is appended to across
resumes (steps after the last checkpoint of a killed run are logged again when it resumes: the
later record of a step is the one that counts); TensorBoard files (written with tensorboardX, no TensorFlow) go to ``WORKDIR/tensorboard``.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax


class MetricsLog:
    def __init__(self, workdir):
        self.enabled = jax.process_index() == 0
        if not self.enabled:
            return
        from tensorboardX import SummaryWriter

        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        self.jsonl = open(workdir / "metrics.jsonl", "a", buffering=1)  # line-buffered
        self.tensorboard = SummaryWriter(str(workdir / "tensorboard"))

    def write(self, step: int, kind: str, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        self.jsonl.write(json.dumps({"step": step, "kind": kind, **values}) + "\n")
        for name, value in values.items():
            self.tensorboard.add_scalar(f"{kind}/{name}", value, step)

    def close(self) -> None:
        if self.enabled:
            self.jsonl.close()
            self.tensorboard.close()


def read_metrics(workdir) -> list[dict]:
    """The records of ``WORKDIR/metrics.jsonl`` (a torn last line, from a kill, is skipped)."""
    records = []
    path = Path(workdir) / "metrics.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records
