"""Shared test helpers. Real scenes from ../shared/data are optional: tests that need them skip."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from unittest import mock

import jax
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))  # the tests share the table of ../shared/data scenes with benchmarks/

from hsijax.spectral import POSTER_BAND_COUNTS  # noqa: E402,F401  (the tests import it from here)

_COMPILES = {"active": False, "count": 0}


def _count_backend_compiles(event: str, duration: float, **kwargs) -> None:
    if _COMPILES["active"] and event == "/jax/core/compile/backend_compile_duration":
        _COMPILES["count"] += 1


jax.monitoring.register_event_duration_secs_listener(_count_backend_compiles)


@contextlib.contextmanager
def count_compilations():
    """Counts XLA backend compilations inside the block: ``with count_compilations() as n: ...; n()``."""
    _COMPILES.update(active=True, count=0)
    try:
        yield lambda: _COMPILES["count"]
    finally:
        _COMPILES["active"] = False


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real scenes not available at {SHARED_DATA}")
    return SHARED_DATA


# A persistent XLA compilation cache for the hsijax subprocesses the tests start, shared by all of
# them: the same programs give the same executables and the same numbers, and most runs then skip
# most of their compilation. (Not in this process: compilation counts must see real compilations.)
SUBPROCESS_XLA_CACHE = tempfile.mkdtemp(prefix="hsijax-test-xla-cache-")
atexit.register(shutil.rmtree, SUBPROCESS_XLA_CACHE, ignore_errors=True)


def environment(devices: int = 1) -> dict:
    """The environment of an hsijax subprocess: ``devices`` CPU devices, the shared compilation cache."""
    return {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
            "JAX_PLATFORMS": "cpu", "JAX_COMPILATION_CACHE_DIR": SUBPROCESS_XLA_CACHE,
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1"}


def pretrain_command(workdir: Path, data_dir: Path, *extra: str) -> list[str]:
    """`hsijax pretrain` with the tiny config (Indian Pines, 40 steps of 64 pixels), no progress bar."""
    return [sys.executable, "-m", "hsijax.cli", "pretrain", "--config", "tiny", "--workdir", str(workdir),
            "--no-progress", f"--config.data.data_dir={data_dir}", *extra]


def pretrain(workdir: Path, data_dir: Path, devices: int = 1, *extra: str) -> subprocess.CompletedProcess:
    result = subprocess.run(pretrain_command(workdir, data_dir, *extra), env=environment(devices),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A TFDS data dir holding Indian Pines, prepared from the tensorly wheel (no network)."""
    from hsijax.data.builders import prepare_scene

    folder = tmp_path_factory.mktemp("tfds")
    with mock.patch("hsijax.data.builders.server_reachable", return_value=False):
        prepare_scene("indian_pines", folder)
    return folder


BUCKET_DATA = "gs://bucket/tensorflow_datasets"


@pytest.fixture(scope="session")
def bucket(data_dir, tmp_path_factory) -> dict:
    """A GCS emulator on 127.0.0.1 (`hsijax_testing.gcs_emulator`) holding a copy of the prepared
    Indian Pines under `BUCKET_DATA`, this process pointed at it; yields the environment of an
    hsijax subprocess that uses it (one device, an empty dataset cache of its own)."""
    from etils import epath
    from hsijax_testing.gcs_emulator import gcs_emulator

    with gcs_emulator() as variables:
        for file in (data_dir / "indian_pines" / "1.0.0").iterdir():
            (epath.Path(BUCKET_DATA) / "indian_pines" / "1.0.0" / file.name).write_bytes(file.read_bytes())
        cache = tmp_path_factory.mktemp("dataset_cache")
        yield {**environment(1), **variables, "HSIJAX_DATA_CACHE": str(cache)}


@pytest.fixture(scope="session")
def reference(tmp_path_factory, data_dir) -> Path:
    """The workdir of one uninterrupted tiny pretraining run on one device."""
    workdir = tmp_path_factory.mktemp("reference")
    pretrain(workdir, data_dir)
    return workdir


SMALL_PRETRAINING = ["--config", "tiny", "--no-progress", "--config.data.scenes=small", "--config.train.steps=2",
                     "--config.train.batch_size=8", "--config.model.code_width=4"]


def small_pretraining(root: Path) -> Path:
    """`hsijax pretrain` in-process: the tiny config for 2 steps on a 6 x 5 x 12 scene ``small``,
    imported into ``root/data``; returns the workdir ``root/work``."""
    import numpy as np

    from hsijax.cli import main

    root.mkdir(parents=True, exist_ok=True)
    cube = np.random.default_rng(0).uniform(0, 1000, size=(6, 5, 12)).astype(np.float32)
    np.save(root / "small.npy", cube)
    assert main(["import", str(root / "small.npy"), "--name", "small", "--data-dir", str(root / "data")]) == 0
    assert main(["pretrain", *SMALL_PRETRAINING, "--workdir", str(root / "work"),
                 f"--config.data.data_dir={root / 'data'}"]) == 0
    return root / "work"


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> Path:
    """The root of one `small_pretraining` (``data/`` and ``work/``), shared by the tests."""
    root = tmp_path_factory.mktemp("small_run")
    small_pretraining(root)
    return root
