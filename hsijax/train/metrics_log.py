"""Where a training run reports: a JSONL file and TensorBoard event files in the workdir.

Only process 0 writes (every process computes the same numbers). ``metrics.jsonl`` gets one JSON
object per record (``{"step": ..., "kind": "train" | "eval", ...}``) and is appended to across
resumes (steps after the last checkpoint of a killed run are logged again when it resumes: the
later record of a step is the one that counts); TensorBoard files (written with tensorboardX, no
TensorFlow) go to ``WORKDIR/tensorboard``.

A workdir in object storage (``gs://...``) cannot be appended to: the log is then written to a
local staging folder and copied to the workdir by `sync` (at every checkpoint and at the end), each
file replaced whole, so the bucket's log lags the run by at most one checkpoint interval -- the
steps a resumed run computes again anyway.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import jax

from hsijax.files import is_uri, storage_path


def summary_writer():
    """tensorboardX's ``SummaryWriter``, imported without PyTorch. tensorboardX imports torch when it
    is installed, for its type hints only (hsijax logs floats), and that took 1.5-3 s of the start of
    every pretraining; a torch imported already is left as it is."""
    if "torch" in sys.modules or "tensorboardX" in sys.modules:
        from tensorboardX import SummaryWriter
    else:
        sys.modules["torch"] = None  # `import torch` raises ImportError meanwhile, which tensorboardX expects
        try:
            from tensorboardX import SummaryWriter
        finally:
            del sys.modules["torch"]
    return SummaryWriter


class MetricsLog:
    def __init__(self, workdir):
        self.enabled = jax.process_index() == 0
        if not self.enabled:
            return
        SummaryWriter = summary_writer()
        self.remote = storage_path(workdir) if is_uri(workdir) else None
        if self.remote:
            self.staging = tempfile.TemporaryDirectory(prefix="hsijax-metrics-")
            local = Path(self.staging.name)
            if (self.remote / "metrics.jsonl").exists():
                (local / "metrics.jsonl").write_bytes((self.remote / "metrics.jsonl").read_bytes())
        else:
            local = Path(workdir)
            local.mkdir(parents=True, exist_ok=True)
        self.local = local
        self.jsonl = open(local / "metrics.jsonl", "a", buffering=1)  # line-buffered
        self.tensorboard = SummaryWriter(str(local / "tensorboard"))

    def write(self, step: int, kind: str, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        self.jsonl.write(json.dumps({"step": step, "kind": kind, **values}) + "\n")
        for name, value in values.items():
            self.tensorboard.add_scalar(f"{kind}/{name}", value, step)

    def sync(self) -> None:
        """Copy the staged log to an object-store workdir (nothing to do for a local one)."""
        if not (self.enabled and self.remote):
            return
        self.tensorboard.flush()
        for file in sorted(self.local.rglob("*")):
            if file.is_file():
                target = self.remote / file.relative_to(self.local).as_posix()
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(file.read_bytes())

    def close(self) -> None:
        if self.enabled:
            self.jsonl.close()
            self.tensorboard.close()
            self.sync()
            if self.remote:
                self.staging.cleanup()


def read_metrics(workdir) -> list[dict]:
    """The records of ``WORKDIR/metrics.jsonl`` (a torn last line, from a kill, is skipped); the
    workdir may be a local path or an object-store URI."""
    records = []
    path = storage_path(workdir) / "metrics.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records
