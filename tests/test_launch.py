"""`launch/tpu_pretrain.py`: the dry run prints every command, in order; the VM is deleted even after a failure."""

from __future__ import annotations

import importlib.util
import shlex
import subprocess
from pathlib import Path
from unittest import mock

import pytest

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
    verbs = [c[4] if c[0] == "gcloud" else c[0] for c in commands]
    assert verbs == ["create", "git", "scp", "ssh", "ssh", "ssh", "mkdir", "scp", "delete"]
    create, *_ = commands
    assert "--accelerator-type=v4-16" in create and "--spot" in create and "--zone=us-central2-b" in create
    install, data, run = commands[3], commands[4], commands[5]
    for command in (install, data, run, commands[2]):
        assert "--worker=all" in command
    assert "bash hsijax/launch/worker.sh setup" in install[-2]  # the script the last test runs for real
    assert "gcloud storage cp -r gs://bucket/tfds/*" in data[-2]
    script = run[-2]
    assert "worker.sh pretrain --distributed" in script and "--config poster" in script
    assert "--config.train.steps=100" in script and "--config.data.data_dir=$HOME/tensorflow_datasets" in script
    assert "--worker=0" in commands[7] and commands[-1][4:6] == ["delete", "hx"]


def test_local_data_is_uploaded_and_bucket_mounted(capsys):
    commands = dry_run(capsys, "--data", "/data/tfds", "--mount-bucket", "runs-bucket", "--keep-vm")
    joined = [" ".join(c) for c in commands]
    assert any("scp --recurse /data/tfds hx:~/tensorflow_datasets --worker=all" in c for c in joined)
    assert any("gcsfuse --implicit-dirs runs-bucket ~/bucket" in c for c in joined)
    assert any("--workdir ~/bucket/runs/pretrain" in c for c in joined)
    assert not any(" delete " in c for c in joined)  # --keep-vm


def test_a_failed_run_still_deletes_the_vm(capsys):
    calls = []

    def fake_run(command, check):
        calls.append(command)
        if "--command=" in command[-2] and "worker.sh pretrain" in command[-2]:
            raise subprocess.CalledProcessError(255, command)

    with mock.patch.object(tpu_pretrain.subprocess, "run", fake_run):
        code = tpu_pretrain.main([a for a in BASE if a != "--dry-run"] + ["--data", "gs://b/t"])
    assert code == 1
    assert calls[-1][4:6] == ["delete", "hx"] and not any(c[0] == "mkdir" for c in calls)
    assert "tpu_pretrain: failed:" in capsys.readouterr().err


def test_the_data_argument_is_required(capsys):
    with pytest.raises(SystemExit):
        tpu_pretrain.main(BASE)


def test_the_worker_script_installs_hsijax_and_pretrains(tmp_path, data_dir):
    """`launch/worker.sh` for real, in a clean copy of the repository: everything but the network
    installs (the packages come from this environment: --system-site-packages, --no-index)."""
    import os
    import shutil
    import site
    import sys

    repo = SCRIPT.parents[1]
    clean = tmp_path / "hsijax"
    for name in subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True, check=True).stdout.split():
        if (repo / name).is_file():
            (clean / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / name, clean / name)
    environment = {**os.environ, "HSIJAX_PYTHON": str(Path(sys.base_prefix) / "bin" / "python3"),
                   "HSIJAX_VENV_ARGS": "--system-site-packages", "HSIJAX_JAX": "",
                   "HSIJAX_PIP_ARGS": "--no-deps --no-index --no-build-isolation",
                   "PYTHONPATH": os.pathsep.join(site.getsitepackages()), "JAX_PLATFORMS": "cpu"}
    setup = subprocess.run(["bash", clean / "launch" / "worker.sh", "setup"], env=environment, capture_output=True,
                           text=True, timeout=600)
    assert setup.returncode == 0, setup.stderr[-3000:]
    assert setup.stdout.strip().startswith("worker: hsijax installed with Python 3.1")
    run = subprocess.run(["bash", clean / "launch" / "worker.sh", "pretrain", "--config", "tiny", "--no-progress",
                          "--workdir", tmp_path / "work", f"--config.data.data_dir={data_dir}",
                          "--config.train.steps=4"], env=environment, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and run.stdout.startswith("steps 0 -> 4"), run.stderr[-3000:]
    assert (tmp_path / "work" / "checkpoints" / "4" / "state").is_dir()


def test_the_worker_script_refuses_an_unknown_command():
    result = subprocess.run(["bash", SCRIPT.parent / "worker.sh", "train"], capture_output=True, text=True)
    assert result.returncode == 2 and "unknown command train" in result.stderr
