"""Shared test helpers. Real scenes from ../shared/data are optional: tests that need them skip."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
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


def environment(devices: int) -> dict:
    return {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
            "JAX_PLATFORMS": "cpu"}


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
    from hsijax.published import prepare_scene

    folder = tmp_path_factory.mktemp("tfds")
    with mock.patch("hsijax.published.server_reachable", return_value=False):
        prepare_scene("indian_pines", folder)
    return folder


@pytest.fixture(scope="session")
def reference(tmp_path_factory, data_dir) -> Path:
    """The workdir of one uninterrupted tiny pretraining run on one device."""
    workdir = tmp_path_factory.mktemp("reference")
    pretrain(workdir, data_dir)
    return workdir
