"""The `hsijax` command: the demo end to end (few steps), and how user errors are reported."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hsijax import HsijaxError, cli


def test_demo_runs_end_to_end_and_writes_its_metrics(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "hsijax.cli", "demo", "--steps", "3", "--batch-size", "32",
         "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "| faithful |" in result.stdout and "| conditioned |" in result.stdout
    report = json.loads((tmp_path / "demo.json").read_text())
    assert set(report["decoders"]) == {"faithful", "conditioned"}
    assert report["bands"] == 200
    for row in report["decoders"].values():
        assert 0 < row["mpsnr_db"] < 100
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_user_error_is_one_line_without_traceback(monkeypatch, capsys):
    def fail(args):
        raise HsijaxError("spectra: has zero bands")

    monkeypatch.setattr(cli, "run_demo_command", fail)
    assert cli.main(["demo"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "hsijax demo: error: spectra: has zero bands"


def test_bad_flag_value_exits_non_zero(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", "--steps", "0"])
    assert exit_info.value.code == 2
    assert "--steps: must be a positive integer" in capsys.readouterr().err
