"""The `hsijax` command: the demo end to end (few steps), and how user errors are reported."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import environment

from hsijax import HsijaxError, cli


@pytest.mark.full
def test_demo_runs_end_to_end_and_writes_its_report(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "hsijax.cli", "demo", "--steps", "3", "--batch-size", "32", "--seeds", "1",
         "--classify-steps", "3", "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=environment(),
    )
    assert result.returncode == 0, result.stderr
    assert "| faithful |" in result.stdout and "| conditioned |" in result.stdout and "| svm |" in result.stdout
    report = json.loads((tmp_path / "demo.json").read_text())
    assert set(report["decoders"]) == {"faithful", "conditioned"}
    assert report["bands"] == 200
    for row in report["decoders"].values():
        assert 0 < row["mpsnr_db"] < 100
    shipped = report["shipped"]
    assert set(shipped["classification"]["methods"]) == {"pretrained", "map", "scratch", "svm"}
    assert shipped["classification"]["train_pixels"] == 505 and 0 < shipped["reconstruction"]["mssim"] < 1
    assert shipped["encoding"]["pixels"] == 145 * 145 and shipped["model"]["network"] == "linear_grid"
    assert f"MPSNR {shipped['reconstruction']['mpsnr_db']:.2f} dB" in result.stdout
    markdown = (tmp_path / "report.md").read_text()
    for figure in ("reconstruction/false_colour.png", "reconstruction/per_band_psnr.png",
                   "reconstruction/spectra.png", "classification/classification_maps.png", "map/map.png"):
        assert f"]({figure})" in markdown and (tmp_path / figure).is_file()
    assert markdown.rstrip().endswith("![the map](map/map.png)")  # the demo ends on the user's map
    land_cover = report["map"]
    assert land_cover["training_pixels"] == 505 and 0.3 < land_cover["oa"] <= 1
    assert (tmp_path / "map" / "map.tif").is_file() and (tmp_path / "map" / "classifier").is_dir()
    assert (tmp_path / "model" / "state").is_dir()  # usable as --checkpoint
    hidden = [p for p in tmp_path.rglob(".*")]
    assert not hidden, hidden  # no temporary files left


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


def test_orbax_leftovers_are_dropped_and_other_unraisable_errors_kept():
    """What Orbax's reads leave behind a failed restore, reported by Python as unraisable errors (a CI
    rehearsal saw them beside the damaged-checkpoint warning): "Event loop is closed" from their
    callbacks, and its coroutines' errors when collected unfinished. Nothing else is dropped."""
    import types

    seen = []
    hook = cli.without_orbax_leftovers(seen.append)
    namespace = {}
    exec(compile("async def read(): pass", "/x/orbax/checkpoint/serialization.py", "exec"), namespace)
    orbax_coroutine = namespace["read"]()
    own = types.SimpleNamespace(cr_code=compile("1", "/x/hsijax/a.py", "eval"))
    unraisable = lambda error, obj=None: types.SimpleNamespace(exc_type=type(error), exc_value=error, object=obj)
    kept = [unraisable(RuntimeError("something else")), unraisable(ValueError("Event loop is closed")),
            unraisable(ValueError("x"), own)]
    for report in [unraisable(RuntimeError("Event loop is closed")), unraisable(ValueError("x"), orbax_coroutine),
                   *kept]:
        hook(report)
    orbax_coroutine.close()
    assert seen == kept
