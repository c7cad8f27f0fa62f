"""Shared test helpers. Real scenes from ../shared/data are optional: tests that need them skip."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import jax
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))  # the tests share the table of ../shared/data scenes with benchmarks/

# One band count per sensor of the poster's table (Botswana ... Pavia University).
POSTER_BAND_COUNTS = (145, 144, 220, 200, 176, 250, 224, 204, 436, 274, 270, 128, 191, 103)

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
