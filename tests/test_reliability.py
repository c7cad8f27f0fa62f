"""Reliability: runs killed at random moments (one inside a checkpoint save), damaged checkpoints,
damaged dataset files, and imports / prepares killed half-way.

The pretraining runs are the `tiny` config of `test_pretrain.py` (Indian Pines, 40 steps of 64
pixels) and are compared with its uninterrupted `reference` run, bit for bit.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import SMALL_PRETRAINING, environment, pretrain_command

from hsijax import HsijaxError, load_model
from hsijax.cli import main
from hsijax.data.storage import load_dataset, read_scene
from hsijax.models.checkpoints import checkpoint_manager, restore_on_this_machine
from hsijax.train.metrics_log import read_metrics

pytestmark = pytest.mark.full  # runs killed and resumed in child processes

DATASETS = Path(__file__).resolve().parents[1] / "datasets"
ORBAX_TMP = ".orbax-checkpoint-tmp"  # Orbax writes STEP.orbax-checkpoint-tmp, renamed to STEP when complete
KILLS = 5
SAVE_EVERY_STEP = "--config.train.checkpoint_every=1"


@pytest.fixture(scope="module")
def cached_environment() -> dict:
    """One device and the session's compilation cache (`conftest.environment`)."""
    return environment(1)


def run_pretrain(workdir: Path, data_dir: Path, env: dict, *extra: str) -> subprocess.CompletedProcess:
    result = subprocess.run(pretrain_command(workdir, data_dir, *extra), env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def leaves(model) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree.leaves(model.variables)]


def params_of(path: Path) -> list[np.ndarray]:
    return leaves(load_model(path))


def temporary_checkpoints(checkpoints: Path) -> list[str]:
    return sorted(name for name in os.listdir(checkpoints) if ORBAX_TMP in name)


def kill_when(process: subprocess.Popen, checkpoints: Path, step: int, during_save: bool, delay: float) -> bool:
    """SIGKILL ``process`` ``delay`` s after checkpoint ``step`` (or a later one) is complete, or,
    ``during_save``, the moment a temporary directory of step >= ``step`` appears (polled every 2 ms).
    Returns whether a temporary checkpoint directory was there when the process died."""
    deadline = time.time() + 240
    while process.poll() is None and time.time() < deadline:
        names = os.listdir(checkpoints) if checkpoints.is_dir() else []
        if during_save and any(ORBAX_TMP in n and int(n.split(".")[0]) >= step for n in names):
            break
        if not during_save and any(n.isdigit() and int(n) >= step for n in names):
            time.sleep(delay)
            break
        time.sleep(0.002)
    assert process.poll() is None, f"the run ended (status {process.returncode}) before it was killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    return bool(temporary_checkpoints(checkpoints))


def test_random_kills_one_inside_a_save_then_resume_bit_identical(tmp_path, data_dir, reference,
                                                                  cached_environment):
    """Five SIGKILLs at seeded random steps, checkpoints every step (so kills land near saves and
    deletions of old checkpoints), at least one while Orbax was writing a checkpoint; each time the
    same command resumes. The end: the reference run's parameters bit for bit, and no temporary
    checkpoint directory left."""
    rng = np.random.default_rng(7)
    checkpoints = tmp_path / "checkpoints"
    command = pretrain_command(tmp_path, data_dir, SAVE_EVERY_STEP)
    targets = sorted(rng.choice(np.arange(2, 34), size=KILLS, replace=False))
    during_save = rng.permutation([True, True] + [False] * (KILLS - 2))
    killed_in_a_save = 0
    for step, in_save in zip(targets, during_save):
        process = subprocess.Popen(command, env=cached_environment, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        killed_in_a_save += kill_when(process, checkpoints, int(step), bool(in_save), rng.uniform(0, 0.05))
    assert killed_in_a_save >= 1, "no kill landed while a checkpoint was being written"
    result = run_pretrain(tmp_path, data_dir, cached_environment, SAVE_EVERY_STEP)
    resumed_from = int(result.stdout.split("steps ")[1].split(" ")[0])
    assert targets[-1] - 1 <= resumed_from < 40
    assert "warning" not in result.stderr  # a kill damages no checkpoint
    for resumed, uninterrupted in zip(params_of(tmp_path), params_of(reference), strict=True):
        np.testing.assert_array_equal(resumed, uninterrupted)
    assert temporary_checkpoints(checkpoints) == []
    assert sorted(os.listdir(checkpoints)) == ["39", "40"]
    assert {r["step"] for r in read_metrics(tmp_path) if r["kind"] == "train"} == set(range(5, 41, 5))


def test_a_leftover_temporary_checkpoint_is_removed_when_a_run_starts(tmp_path, reference):
    """A save cut short of a step the run will not save again (say checkpoint_every changed): the
    checkpoint manager of the next run removes it on start, and restores from the complete ones."""
    shutil.copytree(reference, tmp_path / "work")
    leftover = tmp_path / "work" / "checkpoints" / f"35{ORBAX_TMP}"
    (leftover / "state").mkdir(parents=True)
    (leftover / "state" / "_METADATA").write_text("{")
    manager = checkpoint_manager(tmp_path / "work", every=10, keep=2)
    assert manager.all_steps() == [30, 40]
    deadline = time.time() + 30  # Orbax removes it in a background thread (a save waits for that)
    while leftover.exists() and time.time() < deadline:
        time.sleep(0.01)
    manager.close()
    assert not leftover.exists()


# --- damaged checkpoints -------------------------------------------------------------------------

def largest_file(folder: Path) -> Path:
    return max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garble(path: Path, start: int = 0, every: int = 100, end: float = 1.0) -> None:
    """Invert one byte in every ``every`` from byte ``start`` to the fraction ``end`` of the file."""
    data = bytearray(path.read_bytes())
    for offset in range(start, int(len(data) * end), every):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


CHECKPOINT_DAMAGE = {
    "truncated_array_file": lambda step: truncate(largest_file(step / "state")),
    "garbled_array_file": lambda step: garble(largest_file(step / "state")),
    "no_pytree_metadata": lambda step: (step / "state" / "_METADATA").unlink(),
    "garbled_model_config": lambda step: garble(step / "model_config" / "metadata"),
}


def damaged_copy(reference: Path, folder: Path, damage: str, steps=(40,)) -> Path:
    shutil.copytree(reference, folder)
    for step in steps:
        CHECKPOINT_DAMAGE[damage](folder / "checkpoints" / str(step))
    return folder


@pytest.mark.parametrize("damage", sorted(CHECKPOINT_DAMAGE))
def test_load_model_skips_a_damaged_newest_checkpoint(tmp_path, capsys, reference, damage):
    workdir = damaged_copy(reference, tmp_path / "work", damage)
    model = load_model(workdir)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hsijax: warning: "), lines
    assert f"{workdir / 'checkpoints' / '40'}: unreadable checkpoint" in lines[0]
    assert lines[0].endswith("using step 30")
    for loaded, step_30 in zip(leaves(model), params_of(reference / "checkpoints" / "30"), strict=True):
        np.testing.assert_array_equal(loaded, step_30)
    with pytest.raises(HsijaxError, match="checkpoints/40: unreadable checkpoint"):
        load_model(workdir / "checkpoints" / "40")  # one step given: no other to fall back to


def array_files(folder: Path) -> list[Path]:
    """The checkpoint's data files, largest first (their layout varies from save to save)."""
    return sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: -p.stat().st_size)[:4]


def silently_wrong(data_file: Path, step: Path, expected) -> bool:
    """Garble one byte of ``data_file`` at a time until Orbax restores wrong parameters without an
    error (True, the file left garbled) or no byte does (False, the file restored)."""
    intact = data_file.read_bytes()
    for offset in range(len(intact) // 200, len(intact), max(1, len(intact) // 200)):
        data_file.write_bytes(intact[:offset] + bytes([intact[offset] ^ 0xFF]) + intact[offset + 1:])
        try:
            restored = restore_on_this_machine(step / "state")["params"]
        except Exception:  # TensorStore noticed this one
            continue
        if any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(restored), expected, strict=True)):
            return True
    data_file.write_bytes(intact)
    return False


def test_orbax_alone_restores_a_garbled_array_file_the_checksum_refuses_it(tmp_path, reference):
    """Why checkpoints carry checksums: most single garbled bytes of an array file restore through
    Orbax without an error, as wrong values. Bytes are tried one at a time until one does so."""
    shutil.copytree(reference / "checkpoints" / "40", step := tmp_path / "40")
    expected = params_of(reference / "checkpoints" / "40")
    if not any(silently_wrong(path, step, expected) for path in array_files(step / "state")):
        pytest.fail("no garbled byte got through Orbax with wrong parameters")
    with pytest.raises(HsijaxError, match="parameters do not match their checksum"):
        load_model(step)


def test_load_model_with_every_checkpoint_damaged_is_one_error(tmp_path, reference):
    workdir = damaged_copy(reference, tmp_path / "work", "garbled_array_file", steps=(30, 40))
    with pytest.raises(HsijaxError, match="checkpoints/40: unreadable checkpoint"):
        load_model(workdir)


def test_pretrain_resumes_from_the_checkpoint_before_a_garbled_one(tmp_path, data_dir, reference,
                                                                  cached_environment):
    """`hsijax pretrain` as a command: one warning line naming checkpoint 40, resumed from 30, the
    damaged one kept aside as 40.damaged, and the reference run's parameters bit for bit."""
    workdir = damaged_copy(reference, tmp_path / "work", "garbled_array_file")
    result = run_pretrain(workdir, data_dir, cached_environment)
    progress = [line for line in result.stderr.splitlines() if line.startswith("pretrain: step ")]
    assert progress and progress[-1].startswith("pretrain: step 40 of 40: mse ")  # --no-progress: a line a log
    lines = [line for line in result.stderr.strip().splitlines() if line not in progress]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"hsijax: warning: {workdir / 'checkpoints' / '40'}: unreadable checkpoint")
    assert lines[0].endswith("moved to 40.damaged, resuming from step 30")
    assert result.stdout.startswith("steps 30 -> 40")
    assert sorted(os.listdir(workdir / "checkpoints")) == ["30", "40", "40.damaged"]
    for resumed, uninterrupted in zip(params_of(workdir), params_of(reference), strict=True):
        np.testing.assert_array_equal(resumed, uninterrupted)


def run_main(capfd, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    return code, out, err


def test_pretrain_with_no_readable_checkpoint_is_one_error(tmp_path, capfd, data_dir, reference):
    """(Resuming past a truncated file is `load_model`'s case above; past a garbled one, the test before.)"""
    broken = damaged_copy(reference, tmp_path / "broken", "truncated_array_file", steps=(30, 40))
    code, _, err = run_main(capfd, *pretrain_command(broken, data_dir)[3:])  # in-process: it stops before compiling
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "checkpoints/40: unreadable checkpoint" in err and "no older checkpoint is readable" in err
    assert sorted(os.listdir(broken / "checkpoints")) == ["30", "40"]  # nothing moved


# --- damaged dataset files -------------------------------------------------------------------------

def small_dataset(root: Path) -> Path:
    """A 6 x 5 x 12 scene imported as dataset ``small`` under ``root/data``; returns its directory."""
    root.mkdir(parents=True, exist_ok=True)
    cube = np.random.default_rng(0).uniform(0, 1000, size=(6, 5, 12)).astype(np.float32)
    np.save(root / "small.npy", cube)
    assert main(["import", str(root / "small.npy"), "--name", "small", "--data-dir", str(root / "data")]) == 0
    return root / "data" / "small" / "1.0.0"


def test_a_workdir_of_another_pipeline_format_is_refused(tmp_path, capsys, small_run):
    """A checkpoint's iterator state belongs to the pipeline format it ran with (none recorded: 1,
    hsijax 0.1's records); resuming it with another is one line, and nothing is written."""
    import json

    work = tmp_path / "work"
    shutil.copytree(small_run / "work", work)
    command = ["pretrain", *SMALL_PRETRAINING, "--workdir", str(work), f"--config.data.data_dir={small_run / 'data'}"]
    assert main([*command, "--config.data.pipeline_format=1"]) == 2
    assert "data.pipeline_format 2 saved, 1 now" in capsys.readouterr().err
    for record in work.glob("checkpoints/*/train_config/metadata"):  # as hsijax 0.1 wrote it
        saved = json.loads(record.read_text())
        del saved["data"]["pipeline_format"]
        record.write_text(json.dumps(saved))
    assert main(command) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "data.pipeline_format 1 saved, 2 now" in error, error


def test_resuming_with_another_training_config_is_refused_naming_the_fields(tmp_path, capsys, small_run):
    """Steps and batch size changed on a resume: one line naming both, nothing written (before: the run
    went on silently with another schedule and another pipeline). Logging intervals may change."""
    work = tmp_path / "work"
    shutil.copytree(small_run / "work", work)
    before = sorted(p.name for p in (work / "checkpoints").iterdir())
    command = ["pretrain", *SMALL_PRETRAINING, "--workdir", str(work), f"--config.data.data_dir={small_run / 'data'}"]
    assert main([*command, "--config.train.steps=4", "--config.train.batch_size=4"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "another training config" in error, error
    assert "train.steps 2 saved, 4 now" in error and "train.batch_size 8 saved, 4 now" in error
    assert sorted(p.name for p in (work / "checkpoints").iterdir()) == before
    assert main([*command, "--config.train.log_every=1"]) == 0  # how often it logs is not what it computes


@pytest.mark.parametrize("damage", [truncate, garble], ids=["truncated", "garbled"])
def test_a_damaged_dataset_shard_is_one_error_naming_it(tmp_path, capfd, damage):
    directory = small_dataset(tmp_path)
    capfd.readouterr()
    (shard,) = directory.glob("*.array_record*")
    damage(shard)
    with pytest.raises(HsijaxError, match=re.escape(f"{shard}: damaged dataset file")):
        read_scene(load_dataset(directory))
    commands = {
        "classify": ["classify", "--dataset", "small", "--data-dir", tmp_path / "data", "--out", tmp_path / "out"],
        "pretrain": ["pretrain", *SMALL_PRETRAINING, "--workdir", tmp_path / "work",
                     f"--config.data.data_dir={tmp_path / 'data'}"],
    }
    for command, args in commands.items():
        code, _, err = run_main(capfd, *args)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and "Traceback" not in err, (command, err)
        assert lines[0].startswith(f"hsijax {command}: error: {shard}: damaged dataset file"), lines


# --- imports and prepares killed half-way ----------------------------------------------------------

def staging_folders(data_dir: Path) -> list[Path]:
    return sorted(p for p in data_dir.glob(".*") if p.name.startswith((".building-", ".starting-")))


def kill_while_building(command: list[str], data_dir: Path, delay: float) -> None:
    """Run ``command``, SIGKILL it ``delay`` s after its staging folder appears, and check that it
    died half-way: the staging folder there, no dataset."""
    process = subprocess.Popen(command, env=environment(1), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while process.poll() is None and time.time() < deadline and not staging_folders(data_dir):
        time.sleep(0.002)
    time.sleep(delay)
    assert process.poll() is None, f"the build ended (status {process.returncode}) before it was killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert staging_folders(data_dir)
    assert not [p for p in data_dir.glob("*/1.0.0")]


def assert_same_dataset(directory: Path, reference: Path) -> None:
    built, expected = load_dataset(directory), load_dataset(reference)
    assert built.metadata == expected.metadata
    scene, expected_scene = read_scene(built), read_scene(expected)
    np.testing.assert_array_equal(scene.cube, expected_scene.cube)
    np.testing.assert_array_equal(scene.labels, expected_scene.labels)


def test_an_import_killed_half_way_is_redone_whole(tmp_path):
    rng = np.random.default_rng(3)
    np.save(tmp_path / "cube.npy", rng.integers(0, 4000, size=(120, 100, 30)).astype(np.uint16))
    np.save(tmp_path / "gt.npy", rng.integers(0, 5, size=(120, 100)).astype(np.uint8))
    args = ["import", str(tmp_path / "cube.npy"), "--gt", str(tmp_path / "gt.npy"), "--name", "cube"]
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    kill_while_building([sys.executable, "-m", "hsijax.cli", *args, "--data-dir", str(killed)], killed,
                        rng.uniform(0.2, 0.6))
    assert main([*args, "--data-dir", str(killed)]) == 0  # the rerun
    assert main([*args, "--data-dir", str(clean)]) == 0  # an uninterrupted run
    assert staging_folders(killed) == []
    assert sorted(os.listdir(killed)) == sorted(os.listdir(clean))
    assert_same_dataset(killed / "cube" / "1.0.0", clean / "cube" / "1.0.0")


def test_a_prepare_killed_half_way_is_redone_whole(tmp_path):
    """(WHU-Hi-LongKou: manual files only, none with a recorded hash, so its dummy files are accepted.)"""
    manual = tmp_path / "manual"
    shutil.copytree(DATASETS / "whu_hi_longkou" / "dummy_data", manual)
    args = ["prepare", "whu_hi_longkou", "--manual-dir", str(manual)]
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    kill_while_building([sys.executable, "-m", "hsijax.cli", *args, "--data-dir", str(killed)], killed,
                        np.random.default_rng(4).uniform(0, 0.02))
    assert main([*args, "--data-dir", str(killed)]) == 0
    assert main([*args, "--data-dir", str(clean)]) == 0
    assert staging_folders(killed) == []
    assert sorted(os.listdir(killed)) == sorted(os.listdir(clean))
    assert_same_dataset(killed / "whu_hi_longkou" / "1.0.0", clean / "whu_hi_longkou" / "1.0.0")


def test_sigterm_saves_at_the_next_step_and_the_rerun_resumes_bit_identical(tmp_path, data_dir, reference):
    """A preemption notice: the run saves a checkpoint at the next step boundary and exits 0 with one
    line saying so; the same command again ends with the uninterrupted run's parameters."""
    process = subprocess.Popen(pretrain_command(tmp_path, data_dir), env=environment(1), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not (tmp_path / "metrics.jsonl").is_file() or not (tmp_path / "metrics.jsonl").read_text():
        assert process.poll() is None and time.monotonic() < deadline  # the run logs its step 5 first
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, err[-2000:]
    stopped = int(re.search(r"stopped at step (\d+) of 40 and saved its checkpoint", out).group(1))
    assert out.strip().splitlines() == [f"preemption notice (SIGTERM): stopped at step {stopped} of 40 and saved "
                                        "its checkpoint; run the same command again to resume"]
    assert stopped < 40 and (tmp_path / "checkpoints" / str(stopped) / "state").is_dir()
    result = subprocess.run(pretrain_command(tmp_path, data_dir), env=environment(1), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0 and f"steps {stopped} -> 40" in result.stdout, result.stderr[-2000:]
    for got, want in zip(jax.tree.leaves(load_model(tmp_path).variables), jax.tree.leaves(load_model(reference).variables)):
        np.testing.assert_array_equal(got, want)
