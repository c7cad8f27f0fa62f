"""`launch/`: the launcher's commands in order (the dry run, a rerun after a preemption, deletion after a
failure), and the script every worker runs, for real, with the workdir in an emulated bucket."""

from __future__ import annotations

import importlib.util
import shlex
import subprocess
from pathlib import Path
from unittest import mock

import pytest

pytestmark = pytest.mark.full  # the launcher's worker script in child processes against a GCS emulator

SCRIPT = Path(__file__).resolve().parents[1] / "launch" / "tpu_pretrain.py"
spec = importlib.util.spec_from_file_location("tpu_pretrain", SCRIPT)
tpu_pretrain = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tpu_pretrain)

BASE = ["--name", "hx", "--zone", "us-central2-b", "--accelerator-type", "v4-16", "--dry-run"]


def dry_run(capsys, *extra: str) -> list[list[str]]:
    assert tpu_pretrain.main([*BASE, *extra]) == 0
    return [shlex.split(line[2:]) for line in capsys.readouterr().out.splitlines() if line.startswith("+ ")]


def test_dry_run_prints_the_whole_lifecycle(capsys):
    commands = dry_run(capsys, "--data", "gs://bucket/tfds", "--spot", "--override", "train.steps=100")
    verbs = [c[4] if c[0] == "gcloud" and c[1] == "compute" else " ".join(c[:3]) if c[0] == "gcloud" else c[0]
             for c in commands]
    assert verbs == ["describe", "create", "git", "scp", "ssh", "ssh", "mkdir", "gcloud storage cp", "delete"]
    create = commands[1]
    assert "--accelerator-type=v4-16" in create and "--spot" in create and "--zone=us-central2-b" in create
    install, run = commands[4], commands[5]
    for command in (install, run, commands[3]):
        assert "--worker=all" in command
    assert "bash hsijax/launch/worker.sh setup" in install[-2]  # the script the last tests run for real
    script = run[-2]
    assert "worker.sh pretrain --distributed" in script and "--config poster" in script
    # checkpoints in the data's bucket by default; each worker copies the scenes it needs from it
    assert "--workdir gs://bucket/hsijax-runs/hx" in script and "--config.data.data_dir=gs://bucket/tfds" in script
    assert "--config.train.steps=100" in script
    assert commands[7][-2:] == ["gs://bucket/hsijax-runs/hx", "runs/tpu"] and commands[-1][4:6] == ["delete", "hx"]


def test_local_data_is_uploaded_and_the_workdir_must_be_a_bucket(capsys):
    commands = dry_run(capsys, "--data", "/data/tfds", "--workdir", "gs://runs/poster", "--keep-vm")
    joined = [" ".join(c) for c in commands]
    assert any("scp --recurse /data/tfds hx:~/tensorflow_datasets --worker=all" in c for c in joined)
    assert any("--workdir gs://runs/poster --config.data.data_dir=$HOME/tensorflow_datasets" in c for c in joined)
    assert not any(" delete " in c for c in joined)  # --keep-vm
    for extra, message in ((["--data", "/data/tfds"], "--workdir gs://BUCKET/PATH is needed with local --data"),
                           (["--data", "gs://b/t", "--workdir", "runs/x"], "--workdir runs/x: give a gs:// URI")):
        with pytest.raises(SystemExit):
            tpu_pretrain.main([*BASE, *extra])
        assert message in capsys.readouterr().err


def fake_gcloud(state: str | None, fail: str = ""):
    """A stand-in for subprocess.run: `describe` answers ``state`` (None: no VM), a command
    containing ``fail`` exits 75 (a worker stopped by a preemption notice); records the commands."""
    calls = []

    def run(command, check=False, capture_output=False, text=False):
        calls.append(command)
        if "describe" in command:
            return subprocess.CompletedProcess(command, 0 if state else 1, stdout=f"{state or ''}\n")
        if fail and fail in " ".join(command):
            raise subprocess.CalledProcessError(75, command)
        return subprocess.CompletedProcess(command, 0)

    return run, calls


@pytest.mark.parametrize("state, first", [(None, ["create"]), ("PREEMPTED", ["delete", "create"]), ("READY", ["scp"])])
def test_the_same_command_again_takes_up_a_preempted_run(state, first):
    """A rerun finds the VM a preemption left: a preempted one is deleted and created again, a READY
    one is used as it is; the workdir (and so the checkpoints to resume from) is the same bucket."""
    run, calls = fake_gcloud(state)
    with mock.patch.object(tpu_pretrain.subprocess, "run", run):
        assert tpu_pretrain.main([a for a in BASE if a != "--dry-run"] + ["--data", "gs://b/t"]) == 0
    verbs = [c[4] for c in calls if c[:4] == ["gcloud", "compute", "tpus", "tpu-vm"]]
    assert verbs[0] == "describe" and verbs[1:1 + len(first)] == first
    assert any("--workdir gs://b/hsijax-runs/hx" in c[-2] for c in calls if "ssh" in c)


def test_a_failed_or_preempted_run_still_deletes_the_vm_and_says_how_to_resume(capsys):
    run, calls = fake_gcloud(None, fail="worker.sh pretrain")
    with mock.patch.object(tpu_pretrain.subprocess, "run", run):
        code = tpu_pretrain.main([a for a in BASE if a != "--dry-run"] + ["--data", "gs://b/t"])
    assert code == 1
    assert calls[-1][4:6] == ["delete", "hx"] and not any(c[0] == "mkdir" for c in calls)
    err = capsys.readouterr().err
    assert "tpu_pretrain: failed:" in err and "(exit 75)" in err
    assert "checkpoints are in gs://b/hsijax-runs/hx: run the same command again to resume" in err


def test_the_data_argument_is_required(capsys):
    with pytest.raises(SystemExit):
        tpu_pretrain.main(BASE)


def test_the_worker_script_installs_hsijax_and_a_preempted_run_in_the_bucket_resumes(tmp_path, bucket, reference):
    """`launch/worker.sh` for real, in a clean copy of the repository: everything but the network
    installs (the packages come from this environment: --system-site-packages, --no-index). Then
    what the launcher runs: a pretraining with its workdir and data in the (emulated) bucket, sent
    SIGTERM as a VM shutting down sends it to every process: the run saves, the script exits 75;
    the same command again resumes and ends with the uninterrupted run's parameters, bit for bit."""
    import os
    import shutil
    import signal
    import site
    import sys
    import time

    import jax
    import numpy as np
    from conftest import BUCKET_DATA
    from hsijax_testing.gcs_emulator import committed_steps

    from hsijax import load_model

    repo = SCRIPT.parents[1]
    clean = tmp_path / "hsijax"
    for name in subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True, check=True).stdout.split():
        if (repo / name).is_file():
            (clean / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / name, clean / name)
    environment = {**bucket, "HSIJAX_PYTHON": str(Path(sys.base_prefix) / "bin" / "python3"),
                   "HSIJAX_VENV_ARGS": "--system-site-packages", "HSIJAX_JAX": "",
                   "HSIJAX_PIP_ARGS": "--no-deps --no-index --no-build-isolation",
                   "PYTHONPATH": os.pathsep.join(site.getsitepackages())}
    setup = subprocess.run(["bash", clean / "launch" / "worker.sh", "setup"], env=environment, capture_output=True,
                           text=True, timeout=600)
    assert setup.returncode == 0, setup.stderr[-3000:]
    assert setup.stdout.strip().startswith("worker: hsijax installed with Python 3.1")
    workdir = "gs://bucket/worker"
    command = ["bash", clean / "launch" / "worker.sh", "pretrain", "--config", "tiny", "--no-progress",
               "--workdir", workdir, f"--config.data.data_dir={BUCKET_DATA}"]
    process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    deadline = time.monotonic() + 240
    while not any(committed_steps(workdir).values()):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1][-3000:]
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGTERM)  # the script, hsijax and tee alike
    out, err = process.communicate(timeout=240)
    assert process.returncode == 75, err[-3000:]
    stopped = int(out.split("stopped at step ")[1].split(" ")[0])
    assert stopped < 40 and committed_steps(workdir)[str(stopped)]
    rerun = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0 and rerun.stdout.startswith(f"steps {stopped} -> 40"), rerun.stderr[-3000:]
    for got, want in zip(jax.tree.leaves(load_model(workdir).variables), jax.tree.leaves(load_model(reference).variables)):
        np.testing.assert_array_equal(got, want)


def test_the_worker_script_refuses_an_unknown_command():
    result = subprocess.run(["bash", SCRIPT.parent / "worker.sh", "train"], capture_output=True, text=True)
    assert result.returncode == 2 and "unknown command train" in result.stderr
