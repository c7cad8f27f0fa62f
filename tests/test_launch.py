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


def fake_gcloud(state: str | None, fail: str = "", queued: list[str | None] | None = None, create_error: str = ""):
    """A stand-in for subprocess.run: `tpu-vm describe` answers ``state`` (None: no VM), each
    `queued-resources describe` the next of ``queued`` (the last one repeated), a command containing
    ``fail`` exits 75 (a worker stopped by a preemption notice), a create exits 1 with ``create_error``
    on stderr when one is given; records the commands."""
    calls = []
    queued = list(queued or [None])

    def run(command, check=False, capture_output=False, text=False, **kwargs):
        calls.append(command)
        if "describe" in command:
            answer = (queued.pop(0) if len(queued) > 1 else queued[0]) if "queued-resources" in command else state
            return subprocess.CompletedProcess(command, 0 if answer else 1, stdout=f"{answer or ''}\n", stderr="")
        if create_error and "create" in command:
            return subprocess.CompletedProcess(command, 1, stdout="", stderr=create_error)
        if fail and fail in " ".join(command):
            raise subprocess.CalledProcessError(75, command)
        return subprocess.CompletedProcess(command, 0, stdout="", stderr="")

    return run, calls


def real(*extra: str) -> list[str]:
    return [a for a in BASE if a != "--dry-run"] + ["--data", "gs://b/t", *extra]


@pytest.mark.parametrize("state, first", [(None, ["create"]), ("PREEMPTED", ["delete", "create"]), ("READY", ["scp"])])
def test_the_same_command_again_takes_up_a_preempted_run(state, first):
    """A rerun finds the VM a preemption left: a preempted one is deleted and created again, a READY
    one is used as it is; the workdir (and so the checkpoints to resume from) is the same bucket."""
    run, calls = fake_gcloud(state)
    with mock.patch.object(tpu_pretrain.subprocess, "run", run):
        assert tpu_pretrain.main(real()) == 0
    verbs = [c[4] for c in calls if c[:4] == ["gcloud", "compute", "tpus", "tpu-vm"]]
    assert verbs[0] == "describe" and verbs[1:1 + len(first)] == first
    assert any("--workdir gs://b/hsijax-runs/hx" in c[-2] for c in calls if "ssh" in c)


def test_a_failed_or_preempted_run_still_deletes_the_vm_and_says_how_to_resume(capsys):
    run, calls = fake_gcloud(None, fail="worker.sh pretrain")
    with mock.patch.object(tpu_pretrain.subprocess, "run", run):
        code = tpu_pretrain.main(real())
    assert code == 1
    assert calls[-1][4:6] == ["delete", "hx"] and not any(c[0] == "mkdir" for c in calls)
    err = capsys.readouterr().err
    assert "tpu_pretrain: failed:" in err and "(exit 75)" in err
    assert "checkpoints are in gs://b/hsijax-runs/hx: run the same command again to resume" in err


@pytest.mark.parametrize("accelerator, version", [("v4-32", "tpu-ubuntu2204-base"), ("v5litepod-16", "v2-alpha-tpuv5-lite"),
                                                 ("v5p-8", "v2-alpha-tpuv5"), ("v6e-8", "v2-alpha-tpuv6e")])
def test_the_software_version_follows_the_accelerator_generation(capsys, accelerator, version):
    commands = dry_run(capsys, "--data", "gs://b/t", "--accelerator-type", accelerator)
    assert f"--version={version}" in commands[1] and f"--accelerator-type={accelerator}" in commands[1]
    commands = dry_run(capsys, "--data", "gs://b/t", "--accelerator-type", accelerator, "--queued")
    assert f"--runtime-version={version}" in commands[1]


def test_version_overrides_and_an_unknown_generation_needs_it(capsys):
    commands = dry_run(capsys, "--data", "gs://b/t", "--accelerator-type", "v6e-8", "--version", "my-image")
    assert "--version=my-image" in commands[1]
    commands = dry_run(capsys, "--data", "gs://b/t", "--accelerator-type", "tpu7x-8", "--version", "my-image")
    assert "--version=my-image" in commands[1]
    with pytest.raises(SystemExit) as stopped:
        tpu_pretrain.main([*BASE, "--data", "gs://b/t", "--accelerator-type", "tpu7x-8"])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "tpu7x-8" in err and "pass --version" in err


def test_dry_run_with_queued_prints_the_queued_resource_commands(capsys):
    commands = dry_run(capsys, "--data", "gs://b/t", "--spot", "--queued")
    assert [c[3:5] for c in commands[:3]] == [["queued-resources", "describe"], ["queued-resources", "create"],
                                             ["queued-resources", "describe"]]
    create = commands[1]
    assert create[5] == "hx" and "--node-id=hx" in create and "--zone=us-central2-b" in create
    assert "--accelerator-type=v4-16" in create and "--runtime-version=tpu-ubuntu2204-base" in create
    assert "--spot" in create and "--format=value(state.state)" in commands[2]
    assert commands[-1][3:6] == ["queued-resources", "delete", "hx"] and "--force" in commands[-1]
    assert any("worker.sh pretrain" in c[-2] for c in commands if "ssh" in c)


def queued_verbs(calls) -> list[str]:
    return [c[4] for c in calls if c[:4] == ["gcloud", "compute", "tpus", "queued-resources"]]


def test_queued_waits_until_active_with_a_line_per_poll(capsys):
    run, calls = fake_gcloud(None, queued=[None, "ACCEPTED", "WAITING_FOR_RESOURCES", "PROVISIONING", "ACTIVE"])
    with mock.patch.object(tpu_pretrain.subprocess, "run", run), mock.patch.object(tpu_pretrain.time, "sleep") as sleep:
        assert tpu_pretrain.main(real("--queued", "--spot")) == 0
    assert queued_verbs(calls) == ["describe", "create"] + ["describe"] * 4 + ["delete"]
    assert sleep.call_count == 3
    polls = [line for line in capsys.readouterr().out.splitlines() if line.startswith("tpu_pretrain: queued resource hx")]
    assert [line.split(": ")[2].split(" ")[0] for line in polls] == ["ACCEPTED", "WAITING_FOR_RESOURCES",
                                                                     "PROVISIONING", "ACTIVE"]
    assert not any(c[:4] == ["gcloud", "compute", "tpus", "tpu-vm"] and c[4] in ("create", "delete") for c in calls)


@pytest.mark.parametrize("state, verbs", [("SUSPENDED", ["describe", "delete", "create", "describe"]),
                                          ("FAILED", ["describe", "delete", "create", "describe"]),
                                          ("WAITING_FOR_RESOURCES", ["describe", "describe"]),
                                          ("ACTIVE", ["describe", "describe"])])
def test_a_rerun_queues_a_preempted_queued_resource_again(state, verbs):
    """A preempted queued resource (SUSPENDED) must itself be deleted (with its node: --force) before
    it is created again; one still waiting, or ACTIVE, is taken up as it is."""
    run, calls = fake_gcloud(None, queued=[state, "ACTIVE"])
    with mock.patch.object(tpu_pretrain.subprocess, "run", run), mock.patch.object(tpu_pretrain.time, "sleep"):
        assert tpu_pretrain.main(real("--queued")) == 0
    assert queued_verbs(calls)[:len(verbs)] == verbs
    if "delete" in verbs:
        delete = next(c for c in calls if "delete" in c)
        assert delete[5] == "hx" and "--quiet" in delete and "--force" in delete


def test_a_queued_resource_that_fails_while_waiting_is_one_line(capsys):
    run, calls = fake_gcloud(None, queued=[None, "WAITING_FOR_RESOURCES", "FAILED"])
    with mock.patch.object(tpu_pretrain.subprocess, "run", run), mock.patch.object(tpu_pretrain.time, "sleep"):
        assert tpu_pretrain.main(real("--queued")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "queued resource hx is FAILED" in err[0] and "run the same command again" in err[0]
    assert queued_verbs(calls)[-1] == "delete"  # it was created: the end deletes it
    assert not any("ssh" in c for c in calls)


@pytest.mark.parametrize("stderr, said", [
    ("ERROR: (gcloud.compute.tpus.tpu-vm.create) There is no more capacity in the zone \"us-central2-b\"",
     "no capacity for v4-16 in us-central2-b"),
    ("ERROR: (gcloud.compute.tpus.tpu-vm.create) RESOURCE_EXHAUSTED: stockout", "no capacity"),
    ("ERROR: (gcloud.compute.tpus.tpu-vm.create) Quota limit 'TPUV4sPerProjectPerZoneForTPUAPI' exceeded",
     "no quota for v4-16 in us-central2-b"),
    ("ERROR: (gcloud.compute.tpus.tpu-vm.create) PERMISSION_DENIED: Permission 'tpu.nodes.create' denied",
     "permission denied"),
    ("ERROR: (gcloud.compute.tpus.tpu-vm.create) HTTPError 403: Forbidden", "permission denied"),
    ("ERROR: (gcloud.compute.tpus.tpu-vm.create) INVALID_ARGUMENT: bad", "creating v4-16 in us-central2-b failed"),
])
@pytest.mark.parametrize("queued", [False, True])
def test_a_create_that_fails_says_why_in_one_line_and_deletes_nothing(capsys, stderr, said, queued):
    run, calls = fake_gcloud(None, create_error=f"Request issued\n{stderr}\n")
    with mock.patch.object(tpu_pretrain.subprocess, "run", run), mock.patch.object(tpu_pretrain.time, "sleep"):
        assert tpu_pretrain.main(real(*(["--queued"] if queued else []))) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"tpu_pretrain: {said}") and "nothing was created" in err[0]
    assert "run the same command again" not in err[0] and "Traceback" not in err[0]
    assert not any("delete" in c for c in calls) and not any("ssh" in c for c in calls)


@pytest.mark.parametrize("state", ["CREATING", "STARTING", "STOPPING", "REPAIRING", "DELETING", "UNKNOWN"])
def test_a_vm_in_a_passing_state_is_wait_and_rerun(capsys, state):
    run, calls = fake_gcloud(state)
    with mock.patch.object(tpu_pretrain.subprocess, "run", run):
        assert tpu_pretrain.main(real()) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"TPU VM hx is {state}: wait" in err[0] and "run the same command again" in err[0]
    assert [c[4] for c in calls] == ["describe"]  # no create, no delete


@pytest.mark.parametrize("state", ["SUSPENDING", "DELETING"])
def test_a_queued_resource_in_a_passing_state_is_wait_and_rerun(capsys, state):
    run, calls = fake_gcloud(None, queued=[state])
    with mock.patch.object(tpu_pretrain.subprocess, "run", run):
        assert tpu_pretrain.main(real("--queued")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"queued resource hx is {state}: wait" in err[0]
    assert queued_verbs(calls) == ["describe"]


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


FAKE_PYTHON = """#!/usr/bin/env bash
# a Python 3.11 that logs what it is asked; `-m venv` makes a .venv of itself, `-c` prints the JAX versions
echo "python $*" >> "$FAKE_LOG"
case "$1" in
  --version) echo "Python 3.11.9" ;;
  -m) if [[ $2 == venv ]]; then mkdir -p .venv/bin && cp "$0" .venv/bin/python
        printf '#!/bin/sh\\n' > .venv/bin/hsijax && chmod +x .venv/bin/hsijax; fi ;;
  -c) case "$2" in *metadata*) printf 'jax==0.6.2\\njaxlib==0.6.2\\nlibtpu==0.0.17\\n' ;; esac ;;
esac
"""

FAKE_GCLOUD = """#!/usr/bin/env bash
# `gcloud storage cat|cp` on a local folder standing in for gs://
echo "gcloud $*" >> "$FAKE_LOG"
[[ $1 == storage ]] || exit 2
local_path() { echo "$FAKE_BUCKET/${1#gs://}"; }
case "$2" in
  cat) cat "$(local_path "$3")" ;;
  cp) dest=$(local_path "${@: -1}"); mkdir -p "$(dirname "$dest")"; cp "${@: -2:1}" "$dest" ;;
esac
"""


def test_the_worker_setup_records_the_jax_versions_and_a_later_setup_installs_exactly_those(tmp_path):
    """`worker.sh setup` with HSIJAX_VERSIONS (what the launcher passes: WORKDIR/versions.txt): the
    first run installs jax[tpu] and writes the installed versions to the bucket; a resumed run
    installs exactly those, and does not write them again."""
    import os
    import shutil
    import stat

    repo = tmp_path / "hsijax"
    (repo / "launch").mkdir(parents=True)
    shutil.copy2(SCRIPT.parent / "worker.sh", repo / "launch" / "worker.sh")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("python3", FAKE_PYTHON), ("gcloud", FAKE_GCLOUD)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod((bin_dir / name).stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "log"
    environment = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_LOG": str(log),
                   "FAKE_BUCKET": str(tmp_path / "bucket"), "HSIJAX_PYTHON": str(bin_dir / "python3"),
                   "HSIJAX_VERSIONS": "gs://b/hsijax-runs/hx/versions.txt"}
    environment.pop("HSIJAX_JAX", None)

    def setup() -> list[str]:
        log.write_text("")
        result = subprocess.run(["bash", repo / "launch" / "worker.sh", "setup"], env=environment,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return log.read_text().splitlines()

    first = setup()
    assert any(line.endswith("pip install --quiet -e .[gcs] jax[tpu]") for line in first), first
    recorded = tmp_path / "bucket" / "b" / "hsijax-runs" / "hx" / "versions.txt"
    assert recorded.read_text().split() == ["jax==0.6.2", "jaxlib==0.6.2", "libtpu==0.0.17"]
    assert any(line.startswith("gcloud storage cp") and line.endswith(" gs://b/hsijax-runs/hx/versions.txt")
               for line in first)
    again = setup()
    assert any(line.endswith("pip install --quiet -e .[gcs] jax==0.6.2 jaxlib==0.6.2 libtpu==0.0.17")
               for line in again), again
    assert not any("jax[tpu]" in line for line in again)
    assert not any(line.startswith("gcloud storage cp") for line in again)


def test_the_launcher_passes_the_versions_file_beside_the_checkpoints(capsys):
    commands = dry_run(capsys, "--data", "gs://bucket/tfds")
    install = next(c for c in commands if "ssh" in c and "worker.sh setup" in c[-2])
    assert "HSIJAX_VERSIONS=gs://bucket/hsijax-runs/hx/versions.txt bash hsijax/launch/worker.sh setup" in install[-2]


def test_the_worker_script_refuses_an_unknown_command():
    result = subprocess.run(["bash", SCRIPT.parent / "worker.sh", "train"], capture_output=True, text=True)
    assert result.returncode == 2 and "unknown command train" in result.stderr
