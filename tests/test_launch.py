"""`launch/`: the launcher's commands in order (the dry run, a rerun after a preemption, deletion after a
failure), following the detached run (dropped polls, Ctrl-C, --attach, a rerun while it goes on),
the dirty-tree check, against a stand-in for subprocess.run and against a fake `gcloud` on PATH whose
TPU VM is a local folder; and the script every worker runs, for real, with the workdir in an emulated
bucket."""

from __future__ import annotations

import importlib.util
import os
import shlex
import signal
import stat
import subprocess
import sys
import tarfile
import time
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
    return [shlex.split(line[2:].split(" # ")[0]) for line in capsys.readouterr().out.splitlines()
            if line.startswith("+ ")]


def verb(command: list[str]) -> str:
    """`describe`, `create`, `ssh start` (the worker.sh command an ssh runs), `git archive`, `storage rsync`, ..."""
    if command[:2] == ["gcloud", "compute"]:
        words = command[4]
        if words == "ssh":
            script = command[-2] if "--zone" in command[-1] else command[-1]
            words += " " + script.split("worker.sh ")[-1].split(" ")[0]
        return words
    if command[0] == "gcloud":
        return " ".join(command[1:3])
    return " ".join(command[:4:3]) if command[0] == "git" else command[0]


def creates(commands: list[list[str]]) -> list[str]:
    return next(c for c in commands if c[0] == "gcloud" and "create" in c)


def test_dry_run_prints_the_whole_lifecycle(capsys):
    commands = dry_run(capsys, "--data", "gs://bucket/tfds", "--spot", "--override", "train.steps=100")
    assert [verb(c) for c in commands] == ["git status", "describe", "create", "git archive", "scp", "ssh setup",
                                           "ssh start", "ssh poll", "ssh status", "mkdir", "storage rsync", "delete"]
    create = commands[2]
    assert "--accelerator-type=v4-16" in create and "--spot" in create and "--zone=us-central2-b" in create
    install, start, poll, ended = commands[5:9]
    for command in (install, start, ended, commands[4]):
        assert "--worker=all" in command
    assert "--worker=0" in poll  # the log is streamed from worker 0 only
    assert "bash hsijax/launch/worker.sh setup" in install[-2]  # the script the last tests run for real
    script = start[-2]
    assert "bash hsijax/launch/worker.sh start --distributed" in script and "--config poster" in script
    # checkpoints (and the workers' logs) in the data's bucket by default; each worker copies the scenes it needs
    assert "--workdir gs://bucket/hsijax-runs/hx" in script and "--config.data.data_dir=gs://bucket/tfds" in script
    assert script.startswith("--command=HSIJAX_LOGS=gs://bucket/hsijax-runs/hx/logs bash")
    assert "--config.train.steps=100" in script
    # rsync: RESULTS holds the workdir's contents (cp -r put them in RESULTS/hx)
    assert commands[10] == ["gcloud", "storage", "rsync", "-r", "gs://bucket/hsijax-runs/hx", "runs/tpu"]
    assert commands[-1][4:6] == ["delete", "hx"]
    archive = commands[3]
    assert archive[-1] == "HEAD" and archive[-2] != "--output=/tmp/hsijax-src.tar"  # one launch's own file


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


REAL_RUN = subprocess.run
LOG = "steps 0 -> 40\nstep 10\nstep 20\nstep 30\nstep 40\n"


def fake_gcloud(state=None, fail: str = "", queued: list[str | None] | None = None, create_error: str = "",
                polls: list | None = None, probe: str = "", ended: str = "0", git: bool = False,
                interrupt: bool = False):
    """A stand-in for subprocess.run: each `tpu-vm describe` answers the next of ``state`` (a list, the
    last one repeated; one state: always that; None: no VM, NOT_FOUND), each `queued-resources describe`
    the next of ``queued``; a command containing ``fail`` fails (exit 1; with ``interrupt``, a Ctrl-C
    while it runs instead), a create exits 1 with ``create_error`` on stderr when one is given. On the
    VM: each `worker.sh poll OFFSET` takes the next of ``polls`` -- an ssh exit status (255: a dropped
    connection), KeyboardInterrupt (a Ctrl-C while it runs), or (STATE, LOG SO FAR), sent from OFFSET
    as worker.sh does -- the last repeated (default: a run ended with exit 0); `worker.sh status`
    before a run answers ``probe`` on each worker (e.g. "running"), and after it one worker per word
    of ``ended``. git runs for real with ``git=True`` (else a clean tree); every archive sent with scp
    is read into ``calls.archives``. Records the commands."""
    calls = Calls()
    states = list(state) if isinstance(state, list) else [state]
    queued = list(queued or [None])
    polls = list(polls or [("0", LOG)])

    def answer(command, code=0, stdout="", stderr="", text=False):
        if not text:
            stdout, stderr = stdout.encode(), stderr.encode()
        return subprocess.CompletedProcess(command, code, stdout=stdout, stderr=stderr)

    def run(command, check=False, capture_output=False, text=False, **kwargs):
        calls.append(command)
        if command[0] == "git":
            return REAL_RUN(command, check=check, capture_output=capture_output, text=text) if git else \
                answer(command, text=text)
        joined = " ".join(command)
        if "describe" in command:
            answers = queued if "queued-resources" in command else states
            said = answers.pop(0) if len(answers) > 1 else answers[0]
            if said is None:
                return answer(command, 1, stderr="ERROR: (gcloud) NOT_FOUND: Requested entity was not found.\n",
                              text=text)
            return answer(command, stdout=f"{said}\n", text=text)
        if create_error and "create" in command:
            return answer(command, 1, stderr=create_error, text=text)
        if fail and fail in joined:
            if interrupt:
                raise KeyboardInterrupt
            if check:
                raise subprocess.CalledProcessError(1, command)
            return answer(command, 1, text=text)
        if "scp" in command and command[5].endswith(".tar") and Path(command[5]).is_file():
            with tarfile.open(command[5]) as archive:
                calls.archives.append({member.name: archive.extractfile(member).read()
                                       for member in archive.getmembers() if member.isfile()})
        if "worker.sh poll" in joined:
            poll = polls.pop(0) if len(polls) > 1 else polls[0]
            if poll is KeyboardInterrupt:
                raise KeyboardInterrupt
            if isinstance(poll, int):
                return answer(command, poll, stderr="ssh: connect to host 10.0.0.2 port 22: Connection timed out\n",
                              text=text)
            offset = int(joined.split("worker.sh poll ")[1].split()[0])
            return answer(command, stdout=f"hsijax-poll {len(poll[1])} {poll[0]}\n{poll[1][offset:]}", text=text)
        if "worker.sh status" in joined:
            probing = next(a for a in command if a.startswith("--command=")).endswith(" status")
            words = probe.split() if probing else ended.split()
            return answer(command, stdout="".join(f"hsijax-status t1v-w-{i} {w}\n" for i, w in enumerate(words)),
                          text=text)
        return answer(command, text=text)

    return run, calls


class Calls(list):
    """The commands run, in order, and the contents of every archive shipped (name: bytes)."""

    archives: list[dict[str, bytes]]

    def __init__(self):
        super().__init__()
        self.archives = []


def real(*extra: str) -> list[str]:
    return [a for a in BASE if a != "--dry-run"] + ["--data", "gs://b/t", *extra]


@pytest.mark.parametrize("state, first", [(None, ["create"]), ("PREEMPTED", ["delete", "create"]),
                                          ("READY", ["ssh status", "scp"])])
def test_the_same_command_again_takes_up_a_preempted_run(state, first):
    """A rerun finds the VM a preemption left: a preempted one is deleted and created again, a READY
    one is used as it is (once it is known to have no run of ours going); the workdir (and so the
    checkpoints to resume from) is the same bucket."""
    run, calls = fake_gcloud(state)
    with mock.patch.object(tpu_pretrain.subprocess, "run", run):
        assert tpu_pretrain.main(real()) == 0
    verbs = [verb(c) for c in calls if c[0] == "gcloud" and c[1] == "compute"]
    assert verbs[0] == "describe" and verbs[1:1 + len(first)] == first
    assert verbs[-5:] == ["ssh setup", "ssh start", "ssh poll", "ssh status", "delete"]
    assert any("--workdir gs://b/hsijax-runs/hx" in c[-2] for c in calls if "ssh" in c)
    assert ["gcloud", "storage", "rsync", "-r", "gs://b/hsijax-runs/hx", "runs/tpu"] in calls


@pytest.mark.parametrize("ended, said", [
    ("75", "failed: the run on hx was stopped by a preemption notice (exit 75)"),
    ("1", "failed: hsijax pretrain on hx worker 0 ended with exit status 1 (its log: gs://b/hsijax-runs/hx/logs/)"),
    ("lost", "failed: the run on hx ended without an exit status (killed, or the VM restarted)"),
])
def test_a_failed_or_preempted_run_still_deletes_the_vm_and_says_how_to_resume(capsys, ended, said):
    run, calls = fake_gcloud(None, polls=[("running", "steps 0 -> 40\n"), (ended, LOG)])
    with mock.patch.object(tpu_pretrain.subprocess, "run", run), mock.patch.object(tpu_pretrain.time, "sleep"):
        code = tpu_pretrain.main(real())
    assert code == 1
    assert calls[-1][4:6] == ["delete", "hx"] and not any(c[0] == "mkdir" for c in calls)
    out, err = capsys.readouterr()
    assert out.count("steps 0 -> 40\n") == 1 and "step 40\n" in out  # the whole log, each line once
    assert err.count("\n") == 1 and err.startswith(f"tpu_pretrain: {said}; ")
    assert err.endswith("the checkpoints are in gs://b/hsijax-runs/hx: run the same command again to resume\n")


def test_the_log_is_streamed_line_by_line_and_dropped_polls_are_tried_again(capsys):
    """The launcher polls worker 0 every FOLLOW_SECONDS from the last byte it printed (whole lines only);
    a poll whose ssh fails (255: the connection dropped) is one line and tried again, the run unharmed."""
    polls = [("running", "steps 0 -> 40\nstep 10\nst"), 255, 255, ("running", "steps 0 -> 40\nstep 10\nstep 20\n"),
             ("0", LOG)]
    run, calls = fake_gcloud([None, "READY"], polls=polls)
    with mock.patch.object(tpu_pretrain.subprocess, "run", run), mock.patch.object(tpu_pretrain.time, "sleep") as sleep:
        assert tpu_pretrain.main(real()) == 0
    out = capsys.readouterr().out
    log = [line for line in out.splitlines() if line.startswith("step")]
    assert log == ["steps 0 -> 40", "step 10", "step 20", "step 30", "step 40"]  # each once, none cut
    retries = [line for line in out.splitlines() if line.startswith("tpu_pretrain: cannot reach hx")]
    assert len(retries) == 2 and "(exit 255: ssh: connect to host" in retries[0] and "try 1 of 5" in retries[0]
    offsets = [c[-2].split("poll ")[1] for c in calls if "worker.sh poll" in " ".join(c)]
    assert offsets == ["0", "22", "22", "22", "30"]  # "st" is sent again with the line it belongs to
    assert all(c[c.index("ssh") + 2] == "--worker=0" for c in calls if "worker.sh poll" in " ".join(c))
    assert sleep.call_args_list == [mock.call(tpu_pretrain.FOLLOW_SECONDS)] * 4
    assert ["gcloud", "storage", "rsync", "-r", "gs://b/hsijax-runs/hx", "runs/tpu"] in calls
    assert calls[-1][4:6] == ["delete", "hx"]


def test_polls_that_keep_failing_leave_the_vm_and_say_how_to_reattach(capsys):
    run, calls = fake_gcloud("READY", polls=[255])
    with mock.patch.object(tpu_pretrain.subprocess, "run", run), mock.patch.object(tpu_pretrain.time, "sleep"):
        assert tpu_pretrain.main(real("--spot")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tpu_pretrain: lost contact with hx (5 tries in a row failed, the last "
                                               "with exit 255); the run may still be going there")
    assert err[0].endswith(f"reattach with `python launch/tpu_pretrain.py {shlex.join(real('--spot'))} --attach`")
    assert not any("delete" in c for c in calls)
    assert sum("worker.sh poll" in " ".join(c) for c in calls) == tpu_pretrain.FAILED_POLLS


def test_ctrl_c_while_following_leaves_the_run_going(capsys):
    run, calls = fake_gcloud(None, polls=[("running", "steps 0 -> 40\n"), KeyboardInterrupt])
    with mock.patch.object(tpu_pretrain.subprocess, "run", run), mock.patch.object(tpu_pretrain.time, "sleep"):
        assert tpu_pretrain.main(real()) == 130
    out, err = capsys.readouterr()
    assert "steps 0 -> 40" in out and err.count("\n") == 1
    assert err == f"tpu_pretrain: the run goes on on hx; reattach with `python launch/tpu_pretrain.py " \
                  f"{shlex.join(real())} --attach`\n"
    assert not any("delete" in c for c in calls) and not any(c[0] == "mkdir" for c in calls)


def test_ctrl_c_before_the_run_started_deletes_the_vm(capsys):
    run, calls = fake_gcloud(None, fail="worker.sh setup", interrupt=True)
    with mock.patch.object(tpu_pretrain.subprocess, "run", run):
        assert tpu_pretrain.main(real()) == 130
    assert capsys.readouterr().err == ("tpu_pretrain: interrupted; the checkpoints are in gs://b/hsijax-runs/hx: run "
                                       "the same command again to resume\n")
    assert calls[-1][4:6] == ["delete", "hx"] and not any("worker.sh start" in " ".join(c) for c in calls)


def test_attach_follows_the_run_and_finishes_it_like_a_normal_one(capsys):
    run, calls = fake_gcloud("READY", polls=[("running", "steps 0 -> 40\nstep 10\n"), ("0", LOG)])
    with mock.patch.object(tpu_pretrain.subprocess, "run", run), mock.patch.object(tpu_pretrain.time, "sleep"):
        assert tpu_pretrain.main(real("--attach")) == 0
    assert [verb(c) for c in calls] == ["describe", "ssh poll", "ssh poll", "ssh status", "mkdir", "storage rsync",
                                        "delete"]  # no git, create, install or start
    assert capsys.readouterr().out.count("step 10\n") == 1
    assert [verb(c) for c in dry_run(capsys, "--data", "gs://b/t", "--attach")] == [
        "describe", "ssh poll", "ssh status", "mkdir", "storage rsync", "delete"]


@pytest.mark.parametrize("state", [None, "PREEMPTED", "CREATING"])
def test_attach_to_a_vm_without_a_run_is_one_line_and_deletes_nothing(capsys, state):
    run, calls = fake_gcloud(state)
    with mock.patch.object(tpu_pretrain.subprocess, "run", run):
        assert tpu_pretrain.main(real("--attach")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"TPU VM hx is {state or 'not there'}, with no run to attach to" in err[0]
    assert "run the same command without --attach" in err[0] and [verb(c) for c in calls] == ["describe"]


def test_attach_to_a_ready_vm_that_never_ran_one_deletes_nothing(capsys):
    run, calls = fake_gcloud("READY", polls=[("none", "")])
    with mock.patch.object(tpu_pretrain.subprocess, "run", run):
        assert tpu_pretrain.main(real("--attach")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [("tpu_pretrain: no hsijax run on hx (nothing was deleted): run the same command without --attach "
                    "to start one")]
    assert [verb(c) for c in calls] == ["describe", "ssh poll"]


def test_a_rerun_on_a_ready_vm_whose_run_goes_on_follows_it_instead_of_starting_another(capsys):
    run, calls = fake_gcloud("READY", probe="running running")
    with mock.patch.object(tpu_pretrain.subprocess, "run", run):
        assert tpu_pretrain.main(real()) == 0
    assert [verb(c) for c in calls] == ["git status", "describe", "ssh status", "ssh poll", "ssh status", "mkdir",
                                        "storage rsync", "delete"]
    assert "tpu_pretrain: a run is going on hx already: following it instead of starting another" in \
        capsys.readouterr().out


def test_a_run_that_did_not_end_well_on_every_worker_is_a_failure(capsys):
    run, calls = fake_gcloud(None, ended="0 running")
    with mock.patch.object(tpu_pretrain.subprocess, "run", run):
        assert tpu_pretrain.main(real()) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the workers' states are 0 running after 120 s" in err[0]
    assert "run the same command again to resume" in err[0] and not any(c[0] == "mkdir" for c in calls)


def test_a_vm_preempted_while_followed_is_rerun_through_its_queued_resource(capsys):
    """Spot TPUs through --queued: polls fail, the node is PREEMPTED: the launcher says to rerun and
    deletes the queued resource; the rerun finds it SUSPENDED, deletes it, queues it again, and the run
    resumes (the same workdir)."""
    run, calls = fake_gcloud("PREEMPTED", queued=[None, "ACTIVE"], polls=[255])
    with mock.patch.object(tpu_pretrain.subprocess, "run", run), mock.patch.object(tpu_pretrain.time, "sleep"):
        assert tpu_pretrain.main(real("--queued", "--spot")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [("tpu_pretrain: failed: TPU VM hx is PREEMPTED; the checkpoints are in gs://b/hsijax-runs/hx: "
                    "run the same command again to resume")]
    assert calls[-1][3:6] == ["queued-resources", "delete", "hx"] and "--force" in calls[-1]
    run, calls = fake_gcloud("READY", queued=["SUSPENDED", "ACTIVE"])
    with mock.patch.object(tpu_pretrain.subprocess, "run", run), mock.patch.object(tpu_pretrain.time, "sleep"):
        assert tpu_pretrain.main(real("--queued", "--spot")) == 0
    assert [verb(c) for c in calls if c[0] == "gcloud"][:8] == ["describe", "delete", "create", "describe", "scp",
                                                                "ssh setup", "ssh start", "ssh poll"]
    assert any("--workdir gs://b/hsijax-runs/hx" in c[-2] for c in calls if "ssh" in c)


def committed_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("a.py", "b.py", "c.py", "d.py"):
        (repo / name).write_text("old\n")
    commit(repo)
    return repo


def commit(repo: Path) -> None:
    """A repository of everything in ``repo``, committed (by a made-up author: none may be configured)."""
    for words in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit",
                                                 "-qm", "files"]):
        REAL_RUN(["git", "-C", str(repo), *words], check=True)


def test_uncommitted_changes_stop_the_launcher_before_anything_is_created(tmp_path, capsys):
    repo = committed_repo(tmp_path)
    for name in ("a.py", "b.py", "c.py", "d.py"):
        (repo / name).write_text("new\n")
    (repo / "untracked.txt").write_text("never shipped\n")
    run, calls = fake_gcloud(None, git=True)
    with mock.patch.object(tpu_pretrain.subprocess, "run", run), mock.patch.object(tpu_pretrain, "REPO", repo):
        assert tpu_pretrain.main(real()) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [("tpu_pretrain: uncommitted changes in a.py, b.py, c.py and 1 more: commit them (the workers get "
                    "the repository at HEAD), or pass --allow-uncommitted to ship them as they are")]
    assert not any(c[0] == "gcloud" for c in calls)


def test_allow_uncommitted_ships_the_working_tree_through_a_file_of_its_own(tmp_path, capsys):
    repo = committed_repo(tmp_path)
    (repo / "a.py").write_text("new\n")
    run, calls = fake_gcloud(None, git=True)
    with mock.patch.object(tpu_pretrain.subprocess, "run", run), mock.patch.object(tpu_pretrain, "REPO", repo):
        assert tpu_pretrain.main(real("--allow-uncommitted")) == 0
        (repo / "a.py").write_text("old\n")
        (repo / "untracked.txt").write_text("not a change to ship\n")
        assert tpu_pretrain.main(real()) == 0  # a clean tree (untracked files aside): HEAD
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("tpu_pretrain: shipping")]
    first, second = [c for c in calls if c[:4] == ["git", "-C", str(repo), "archive"]]
    assert said == [f"tpu_pretrain: shipping the uncommitted changes in a.py (--allow-uncommitted), as commit "
                    f"{first[-1][:12]} on no branch"]
    assert len(first[-1]) == 40 and first[-1] != "HEAD" and second[-1] == "HEAD"
    assert calls.archives[0]["a.py"] == b"new\n" and calls.archives[1]["a.py"] == b"old\n"
    assert "untracked.txt" not in calls.archives[1]
    paths = [Path(c[-2].removeprefix("--output=")) for c in (first, second)]
    assert paths[0] != paths[1] and all(p.parent.name.startswith("hsijax-src-") and not p.exists() for p in paths)
    assert REAL_RUN(["git", "-C", str(repo), "stash", "list"], capture_output=True, text=True).stdout == ""


@pytest.mark.parametrize("accelerator, version", [("v4-32", "tpu-ubuntu2204-base"), ("v5litepod-16", "v2-alpha-tpuv5-lite"),
                                                 ("v5p-8", "v2-alpha-tpuv5"), ("v6e-8", "v2-alpha-tpuv6e")])
def test_the_software_version_follows_the_accelerator_generation(capsys, accelerator, version):
    create = creates(dry_run(capsys, "--data", "gs://b/t", "--accelerator-type", accelerator))
    assert f"--version={version}" in create and f"--accelerator-type={accelerator}" in create
    create = creates(dry_run(capsys, "--data", "gs://b/t", "--accelerator-type", accelerator, "--queued"))
    assert f"--runtime-version={version}" in create


def test_version_overrides_and_an_unknown_generation_needs_it(capsys):
    commands = dry_run(capsys, "--data", "gs://b/t", "--accelerator-type", "v6e-8", "--version", "my-image")
    assert "--version=my-image" in creates(commands)
    commands = dry_run(capsys, "--data", "gs://b/t", "--accelerator-type", "tpu7x-8", "--version", "my-image")
    assert "--version=my-image" in creates(commands)
    with pytest.raises(SystemExit) as stopped:
        tpu_pretrain.main([*BASE, "--data", "gs://b/t", "--accelerator-type", "tpu7x-8"])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "tpu7x-8" in err and "pass --version" in err


def test_dry_run_with_queued_prints_the_queued_resource_commands(capsys):
    commands = [c for c in dry_run(capsys, "--data", "gs://b/t", "--spot", "--queued") if c[0] == "gcloud"]
    assert [c[3:5] for c in commands[:3]] == [["queued-resources", "describe"], ["queued-resources", "create"],
                                             ["queued-resources", "describe"]]
    create = commands[1]
    assert create[5] == "hx" and "--node-id=hx" in create and "--zone=us-central2-b" in create
    assert "--accelerator-type=v4-16" in create and "--runtime-version=tpu-ubuntu2204-base" in create
    assert "--spot" in create and "--format=value(state.state)" in commands[2]
    assert commands[-1][3:6] == ["queued-resources", "delete", "hx"] and "--force" in commands[-1]
    assert any("worker.sh start" in c[-2] for c in commands if "ssh" in c)


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
    assert [c[4] for c in calls if c[0] == "gcloud"] == ["describe"]  # no create, no delete


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
    the same command again, started detached as the launcher starts it (`worker.sh start`), resumes
    and ends with the uninterrupted run's parameters, bit for bit."""
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
    environment["HOME"] = str(tmp_path / "home")  # where a started run keeps its log and status
    command[2] = "start"
    started = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)
    assert started.returncode == 0 and "detached" in started.stdout, started.stderr
    ended = subprocess.run(["bash", clean / "launch" / "worker.sh", "status", "600"], env=environment,
                           capture_output=True, text=True, timeout=660)
    log = (tmp_path / "home" / "hsijax-run" / "run.log").read_text()
    assert ended.stdout.split()[2:] == ["0"], log[-3000:]
    assert any(line.startswith(f"steps {stopped} -> 40") for line in log.splitlines()), log[-3000:]
    for got, want in zip(jax.tree.leaves(load_model(workdir).variables), jax.tree.leaves(load_model(reference).variables)):
        np.testing.assert_array_equal(got, want)


FAKE_PYTHON = """#!/usr/bin/env bash
# a Python 3.11 that logs what it is asked; `-m venv` makes a .venv of itself (and of $FAKE_HSIJAX, when
# set, its hsijax), `-c` prints the JAX versions
echo "python $*" >> "$FAKE_LOG"
case "$1" in
  --version) echo "Python 3.11.9" ;;
  -m) if [[ $2 == venv ]]; then mkdir -p .venv/bin && cp "$0" .venv/bin/python
        if [[ -n ${FAKE_HSIJAX:-} ]]; then cp "$FAKE_HSIJAX" .venv/bin/hsijax
        else printf '#!/bin/sh\\n' > .venv/bin/hsijax && chmod +x .venv/bin/hsijax; fi; fi ;;
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


# The launcher against a fake Google Cloud: a `gcloud` on PATH whose TPU VM is one worker, a local
# folder (its home), and whose bucket is another; the launcher runs as a child process (it is
# interrupted, or killed, as a laptop's launcher is) and the run it starts on the "worker" is
# detached for real (setsid) by worker.sh, with a fake hsijax that prints a step a tenth of a second
# until the test lets it finish.
CLOUD = """#!/usr/bin/env bash
# gcloud: TPU VM NAME is the worker $FAKE/worker (its state in $FAKE/state), gs://X is $FAKE/bucket/X;
# the polls (worker.sh poll) fail with ssh's 255 while $FAKE/drops counts down
echo "gcloud $*" >> "$FAKE/calls"
in_bucket() { if [[ $1 == gs://* ]]; then echo "$FAKE/bucket/${1#gs://}"; else echo "$1"; fi; }
if [[ $1 == storage ]]; then
  verb=$2; shift 2; paths=()
  for word in "$@"; do [[ $word == -* ]] || paths+=("$(in_bucket "$word")"); done
  case $verb in
    cat) exec cat "${paths[0]}" ;;
    cp) mkdir -p "$(dirname "${paths[1]}")" && exec cp "${paths[0]}" "${paths[1]}" ;;
    rsync) mkdir -p "${paths[1]}" && exec cp -r "${paths[0]}/." "${paths[1]}/" ;;
  esac
  exit 2
fi
[[ "$1 $2 $3" == "compute tpus tpu-vm" ]] || exit 2
case $4 in
  describe) [[ -f $FAKE/state ]] && exec cat "$FAKE/state"
            echo "ERROR: (gcloud.compute.tpus.tpu-vm.describe) NOT_FOUND: Requested entity was not found." >&2
            exit 1 ;;
  create) mkdir -p "$FAKE/worker" && echo READY > "$FAKE/state" ;;
  delete) rm -f "$FAKE/state" ;;
  scp) exec cp "$5" "$FAKE/worker/${6#*:~/}" ;;
  ssh) for word in "$@"; do [[ $word == --command=* ]] && script=${word#--command=}; done
       drops=$(cat "$FAKE/drops" 2> /dev/null || echo 0)
       if [[ $script == *"worker.sh poll"* ]] && (( drops > 0 )); then
         echo $((drops - 1)) > "$FAKE/drops"
         echo "ssh: connect to host 10.130.0.2 port 22: Connection timed out" >&2
         exit 255
       fi
       cd "$FAKE/worker" && HOME=$FAKE/worker exec bash -c "$script" ;;
esac
"""

HSIJAX = """#!/usr/bin/env bash
# hsijax: `pretrain ARGS` prints a step every 0.1 s until $FAKE/finish exists (30 s at most), then
# writes metrics.jsonl to its --workdir; on SIGTERM it stops as hsijax does, with a preemption notice
[[ $1 == --help ]] && exit 0
echo "$$ $*" >> "$FAKE/starts"
trap 'echo "preemption notice (SIGTERM): stopped at step $step of 40 and saved"; exit 0' TERM
for word in "$@"; do [[ ${previous:-} == --workdir ]] && workdir=$word; previous=$word; done
echo "steps 0 -> 40"
for ((step = 1; step <= 1200; step++)); do
  echo "step $step"
  [[ -f $FAKE/finish ]] && break
  sleep 0.1
done
echo '{"step": 40}' > "$FAKE/metrics.jsonl"
gcloud storage cp --quiet "$FAKE/metrics.jsonl" "$workdir/metrics.jsonl"
echo "pretrain: done"
"""

SUDO = """#!/usr/bin/env bash
# sudo -n COMMAND: COMMAND (as this user), except the removal of libtpu's lock file, only logged
[[ $1 == -n ]] && shift
[[ "$*" == "rm -f /tmp/libtpu_lockfile" ]] && { echo "sudo $*" >> "$FAKE/calls"; exit 0; }
exec "$@"
"""

LAUNCHER = """import importlib.util, sys
spec = importlib.util.spec_from_file_location("tpu_pretrain", sys.argv[1])
launcher = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launcher)
launcher.FOLLOW_SECONDS = 0.1
sys.exit(launcher.main(sys.argv[2:]))
"""


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def until(condition, seconds: float = 120) -> None:
    """Wait for ``condition`` (generous: the suite's other worker may load both cores)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


class FakeCloud:
    """The fake gcloud, sudo, Python and hsijax on PATH, a committed copy of launch/ to launch from."""

    def __init__(self, tmp_path: Path):
        self.dir = tmp_path / "cloud"
        self.worker = self.dir / "worker"
        self.bin = tmp_path / "bin"
        self.repo = tmp_path / "repo"
        self.results = tmp_path / "results"
        for folder in (self.dir, self.bin, self.repo / "launch"):
            folder.mkdir(parents=True)
        for name in ("tpu_pretrain.py", "worker.sh"):
            (self.repo / "launch" / name).write_text((SCRIPT.parent / name).read_text())
        commit(self.repo)
        executable(self.bin / "gcloud", CLOUD)
        executable(self.bin / "sudo", SUDO)
        python = executable(self.bin / "python3", FAKE_PYTHON)
        self.environment = {**os.environ, "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}", "FAKE": str(self.dir),
                            "FAKE_LOG": str(self.dir / "python.log"), "HSIJAX_PYTHON": str(python),
                            "FAKE_HSIJAX": str(executable(self.dir / "hsijax", HSIJAX)), "HSIJAX_LOG_EVERY": "0.2"}
        self.command = ["--name", "hx", "--zone", "us-central2-b", "--data", "gs://b/tfds", "--results",
                        str(self.results)]
        self.outputs = 0

    def launch(self, *extra: str) -> tuple[subprocess.Popen, Path, Path]:
        """The launcher, in the background: the process and the files its stdout and stderr go to."""
        self.outputs += 1
        out, err = self.dir / f"launcher-{self.outputs}.out", self.dir / f"launcher-{self.outputs}.err"
        with out.open("w") as stdout, err.open("w") as stderr:
            # a process group of its own, as in a terminal: a Ctrl-C (or a closed terminal) reaches the whole group
            process = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(self.repo / "launch" / "tpu_pretrain.py"),
                                        *self.command, *extra], env=self.environment, stdout=stdout, stderr=stderr,
                                       start_new_session=True)
        return process, out, err

    def calls(self) -> str:
        return (self.dir / "calls").read_text()

    def run_status(self) -> str | None:
        status = self.worker / "hsijax-run" / "status"
        return status.read_text().strip() if status.exists() else None

    def bucket_log(self) -> str:
        logs = list((self.dir / "bucket" / "b" / "hsijax-runs" / "hx" / "logs").glob("worker-*.log"))
        return logs[0].read_text() if logs else ""

    def finish(self) -> None:
        (self.dir / "finish").touch()


@pytest.fixture
def cloud(tmp_path):
    cloud = FakeCloud(tmp_path)
    yield cloud
    cloud.finish()  # a run a failed test left going ends (at most 0.1 s later)


def steps(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("step")]


def test_a_detached_run_outlives_dropped_polls_and_a_killed_launcher_and_attach_finishes_it(cloud):
    """A run started on a (fake) TPU VM goes on while the launcher's polls cannot reach it (ssh exit
    255, twice) and after the launcher is killed (the VM kept); it ends on its own,
    with its status and its log in the bucket; `--attach` then streams that log from its start,
    copies the workdir back (its contents in --results) and deletes the VM."""
    (cloud.dir / "drops").write_text("2")
    launcher, out, err = cloud.launch()
    until(lambda: "step 3\n" in out.read_text())
    assert [line.split(" (exit ")[1][:4] for line in out.read_text().splitlines()
            if line.startswith("tpu_pretrain: cannot reach hx")] == ["255:", "255:"]
    # The laptop gone: the launcher and whatever ssh it has going killed (its Ctrl-C message: the
    # stand-in test_ctrl_c_while_following_leaves_the_run_going; a real SIGINT here hung the launcher
    # twice in twenty loaded CI runs, not understood yet).
    os.killpg(launcher.pid, signal.SIGKILL)
    assert launcher.wait(timeout=120) == -signal.SIGKILL
    assert (cloud.dir / "state").read_text() == "READY\n" and cloud.run_status() is None
    until(lambda: "step 5\n" in cloud.bucket_log())  # copied while it runs
    cloud.finish()
    until(lambda: cloud.run_status() == "0")
    assert "pretrain: done" in cloud.bucket_log()
    calls_before = cloud.calls()

    attach, out, err = cloud.launch("--attach")
    assert attach.wait(timeout=120) == 0, err.read_text()
    streamed = out.read_text()
    log = (cloud.worker / "hsijax-run" / "run.log").read_text()
    assert streamed.count("steps 0 -> 40\n") == 1 and steps(streamed) == steps(log) and "pretrain: done" in streamed
    new_calls = cloud.calls()[len(calls_before):]
    assert " create " not in new_calls and " scp " not in new_calls and "worker.sh start" not in new_calls
    assert (cloud.results / "metrics.jsonl").exists() and not (cloud.results / "hx").exists()
    assert "pretrain: done" in next((cloud.results / "logs").glob("worker-*.log")).read_text()
    assert not (cloud.dir / "state").exists()  # deleted
    assert len((cloud.dir / "starts").read_text().splitlines()) == 1


def test_a_rerun_while_the_run_goes_on_follows_it_instead_of_starting_a_second(cloud):
    """The launcher killed (SIGKILL, with its process group: no word from it), the same command again
    finds the READY VM with the run still going: it installs nothing, starts nothing, follows that run
    and finishes it."""
    launcher, out, _ = cloud.launch()
    until(lambda: "step 2\n" in out.read_text())
    os.killpg(launcher.pid, signal.SIGKILL)  # the launcher and its children
    launcher.wait(timeout=120)
    assert (cloud.dir / "state").read_text() == "READY\n" and cloud.run_status() is None
    rerun, out, err = cloud.launch()
    until(lambda: "following it instead of starting another" in out.read_text())
    cloud.finish()
    assert rerun.wait(timeout=120) == 0, err.read_text()
    assert cloud.calls().count("worker.sh setup") == 1 and cloud.calls().count("worker.sh start") == 1
    assert len((cloud.dir / "starts").read_text().splitlines()) == 1
    assert "steps 0 -> 40\n" in out.read_text() and "pretrain: done" in out.read_text()
    assert (cloud.results / "metrics.jsonl").exists() and not (cloud.dir / "state").exists()


def test_the_worker_stops_leftovers_holding_the_tpu_never_starts_two_runs_and_tells_how_a_run_ended(cloud):
    """`worker.sh start` with no run of ours going kills what holds the TPU's device files (a stray
    process: "TPU is already in use", jax-ml/jax#13260); a second start while the run goes starts
    nothing; a run stopped by SIGTERM (a VM shutting down: every process gets it) saves and ends with
    status 75; one killed outright (no exit status written) polls as `lost`."""
    repo = cloud.worker / "hsijax"
    (repo / "launch").mkdir(parents=True)
    (repo / "launch" / "worker.sh").write_text((SCRIPT.parent / "worker.sh").read_text())
    (repo / ".venv" / "bin").mkdir(parents=True)
    executable(repo / ".venv" / "bin" / "hsijax", HSIJAX)
    device = cloud.dir / "accel0"
    device.touch()
    with device.open() as held:
        stray = subprocess.Popen(["sleep", "60"], stdin=held)
    environment = {**cloud.environment, "HOME": str(cloud.worker), "HSIJAX_TPU_DEVICES": str(cloud.dir / "accel*")}

    def worker(*words: str) -> str:
        result = subprocess.run(["bash", "hsijax/launch/worker.sh", *words], cwd=cloud.worker, env=environment,
                                capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        return result.stdout

    try:
        started = worker("start", "--config", "tiny")
        assert f"stopping processes left holding the TPU (jax-ml/jax#13260): {stray.pid} sleep 60" in started
        assert stray.wait(timeout=60) == -signal.SIGKILL
        assert "sudo rm -f /tmp/libtpu_lockfile" in cloud.calls()
        assert "not starting another" in worker("start", "--config", "tiny")
        until(lambda: "step 2\n" in worker("poll", "0"))
        assert worker("poll", "0").split("\n")[0].split()[2] == "running"
        assert len((cloud.dir / "starts").read_text().splitlines()) == 1
        hsijax = int((cloud.dir / "starts").read_text().split()[0])
        os.killpg(os.getpgid(hsijax), signal.SIGTERM)  # the detached run's every process, as at a shutdown
        assert worker("status", "10").split()[2:] == ["75"]
        log = worker("poll", "0")
        assert log.startswith(f"hsijax-poll {len(log.split(chr(10), 1)[1].encode())} 75\n")  # the whole log
        assert "\npreemption notice (SIGTERM)" in log and log.endswith("ended with exit status 75 on " +
                                                                       os.uname().nodename + "\n")

        assert "stopping" not in worker("start", "--config", "tiny")  # a new run: nothing holds the TPU now
        until(lambda: "step 1\n" in worker("poll", "0"))
        assert "preemption notice" not in worker("poll", "0")  # the new run's log
        hsijax = int((cloud.dir / "starts").read_text().splitlines()[1].split()[0])
        os.killpg(os.getpgid(hsijax), signal.SIGKILL)  # the detached run, all of it: no status written
        until(lambda: worker("status").split()[2:] == ["lost"])
        assert worker("poll", "0").split("\n")[0].split()[2] == "lost"
    finally:
        stray.kill()
