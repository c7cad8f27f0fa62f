"""Pretrain on a Cloud TPU VM: create it (or take up the one a preemption left), install hsijax on
every worker, start the same `hsijax pretrain` on all workers, detached, with the workdir in a bucket,
stream worker 0's log until the run ends, copy the workdir back, delete the VM.

    python launch/tpu_pretrain.py --name hsijax-poster --zone us-central2-b \
        --accelerator-type v4-32 --config poster --data gs://my-bucket/tensorflow_datasets \
        --results runs/poster [--spot] [--workdir gs://my-bucket/runs/poster] [--dry-run] [--attach]

``--dry-run`` prints every command instead of running it. Each worker runs
``hsijax pretrain --distributed``: ``jax.distributed.initialize()`` reads the TPU VM's topology, so
all workers form one device mesh. The workdir is a ``gs://`` URI (default: ``hsijax-runs/NAME`` in
the data's bucket): checkpoints, metrics, TensorBoard files and the workers' logs (``logs/``) outlive
the VM, every worker writes its own checkpoint shards there, and a preempted run -- its VM stopped or
gone -- continues from its last checkpoint when the same command is run again. The VM is deleted at
the end, also after a failure, unless ``--keep-vm``.

The run does not depend on this process: ``launch/worker.sh start`` detaches it from the ssh session
on every worker, and the launcher only polls worker 0 (``worker.sh poll``) every ``FOLLOW_SECONDS``
for the new lines of its log and, at the end, its exit status. A poll that cannot reach the VM is
tried again; after ``FAILED_POLLS`` in a row, or on Ctrl-C, the launcher stops and leaves the VM and
its run alone: ``--attach`` (the same command with it) follows the run again and finishes it like a
normal one. The same command again on a READY VM whose run is still going follows that run instead
of starting a second one.

Only committed code is shipped (``git archive``): uncommitted changes to tracked files stop the
launcher before anything is created, unless ``--allow-uncommitted`` ships the working tree's tracked
files as they are.

The software version (``--version``) follows the accelerator type's generation (``RUNTIME``); a
generation not in that table needs ``--version``. ``--queued`` asks for the TPU through a queued
resource (``gcloud compute tpus queued-resources create``) and waits until it is ACTIVE; a queued
resource a preemption left SUSPENDED (or FAILED) is deleted and queued again. A failure before the
TPU exists (no capacity, no quota, no permission, a VM busy in another state) is one line, and
nothing is deleted.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REMOTE_REPO = "hsijax"
REMOTE_DATA = "tensorflow_datasets"
GONE = ("PREEMPTED", "TERMINATED", "STOPPED")  # states of a VM that will not run the job again
# The TPU VM software version each generation takes (Cloud TPU's "TPU software versions" page);
# the key is the accelerator type without its size: v4-32 -> v4, v5litepod-16 (v5e) -> v5litepod.
RUNTIME = {
    "v2": "tpu-ubuntu2204-base",
    "v3": "tpu-ubuntu2204-base",
    "v4": "tpu-ubuntu2204-base",
    "v5litepod": "v2-alpha-tpuv5-lite",
    "v5p": "v2-alpha-tpuv5",
    "v6e": "v2-alpha-tpuv6e",
}
QUEUED_GONE = ("SUSPENDED", "FAILED")  # a queued resource that must be deleted before it is created again
QUEUED_WAITING = ("CREATING", "ACCEPTED", "WAITING_FOR_RESOURCES", "PROVISIONING")
POLL_SECONDS = 60  # between two looks at a queued resource's state
FOLLOW_SECONDS = 30  # between two polls of the run's log on worker 0
FAILED_POLLS = 5  # polls in a row that cannot reach the VM before the launcher gives up (and leaves it)
END_SECONDS = 120  # how long the other workers may take to end once worker 0 has
PREEMPTED = 75  # worker.sh's exit status for a run stopped by a preemption notice
WORKER = f"{REMOTE_REPO}/launch/worker.sh"


class Stop(Exception):
    """A failure told in one line (no traceback), exit status 1."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="TPU VM name")
    parser.add_argument("--zone", required=True)
    parser.add_argument("--project", help="GCP project (default: gcloud's)")
    parser.add_argument("--accelerator-type", default="v4-8")
    parser.add_argument("--version", help="TPU VM software version (default: the accelerator generation's, "
                                          "e.g. tpu-ubuntu2204-base for v4, v2-alpha-tpuv6e for v6e; its "
                                          "Python may be old: worker.sh installs 3.11 then)")
    parser.add_argument("--spot", action="store_true", help="a spot (preemptible) VM")
    parser.add_argument("--queued", action="store_true",
                        help="ask for the TPU through a queued resource and wait until it is ACTIVE")
    parser.add_argument("--config", default="poster", help="built-in config name or path in the repo")
    parser.add_argument("--data", required=True,
                        help="prepared TFDS data dir: gs://BUCKET/PATH (each worker copies the scenes it "
                             "needs) or a local folder to upload to every worker")
    parser.add_argument("--workdir", help="the run's workdir: gs://BUCKET/PATH (default: "
                                          "gs://DATA_BUCKET/hsijax-runs/NAME; required with local --data)")
    parser.add_argument("--results", type=Path, default=Path("runs/tpu"),
                        help="local folder the workdir's contents are copied to")
    parser.add_argument("--override", action="append", default=[], metavar="FIELD=VALUE",
                        help="config override, e.g. train.steps=1000 (repeatable)")
    parser.add_argument("--keep-vm", action="store_true", help="do not delete the VM at the end")
    parser.add_argument("--attach", action="store_true",
                        help="follow the run already going (or ended) on the VM, then finish it as usual: "
                             "copy back, delete; no create, install or start")
    parser.add_argument("--allow-uncommitted", action="store_true",
                        help="ship uncommitted changes to tracked files too (by default they stop the launcher)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    if args.version is None:
        generation = args.accelerator_type.rsplit("-", 1)[0]
        if generation not in RUNTIME:
            parser.exit(2, f"tpu_pretrain: no known software version for accelerator type {args.accelerator_type} "
                           f"(known: {', '.join(RUNTIME)}): pass --version (see Cloud TPU's TPU software "
                           f"versions page)\n")
        args.version = RUNTIME[generation]
    if args.workdir is None:
        if not args.data.startswith("gs://"):
            parser.error("--workdir gs://BUCKET/PATH is needed with local --data (the workdir must outlive the VM)")
        args.workdir = f"gs://{args.data[len('gs://'):].split('/')[0]}/hsijax-runs/{args.name}"
    if not args.workdir.startswith("gs://"):
        parser.error(f"--workdir {args.workdir}: give a gs:// URI; a worker's disk does not outlive a preemption")
    return args


def tpu(args, *words: str) -> list[str]:
    """A ``gcloud compute tpus tpu-vm`` command with the zone (and project) flags."""
    command = ["gcloud", "compute", "tpus", "tpu-vm", *words, f"--zone={args.zone}"]
    return command + ([f"--project={args.project}"] if args.project else [])


def on_all_workers(args, script: str) -> list[str]:
    return tpu(args, "ssh", args.name, "--worker=all", f"--command={script}")


def describe(args) -> list[str]:
    return tpu(args, "describe", args.name, "--format=value(state)")


def state_of(args, command: list[str], show: bool = True) -> str | None:
    """What a ``describe`` command prints (a state), or None when the thing is not there (or in a dry run)."""
    if show:
        print("+", shlex.join(command), flush=True)
    if args.dry_run:
        return None
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:  # NOT_FOUND
        return None
    return result.stdout.strip() or None


def vm_state(args) -> str | None:
    """The VM's state (READY, PREEMPTED, ...), or None when there is none (or in a dry run)."""
    return state_of(args, describe(args))


def create(args, state: str | None) -> list[list[str]]:
    """Create the VM; a preempted or stopped one of the same name is deleted first, a READY one
    (a rerun while it still exists) is used as it is. A VM in any other state (CREATING, STARTING,
    STOPPING, REPAIRING, DELETING, UNKNOWN, ...) is on its way somewhere: wait and run again."""
    if state == "READY":
        return []
    if state is not None and state not in GONE:
        raise Stop(f"TPU VM {args.name} is {state}: wait a few minutes (`{shlex.join(describe(args))}`) and "
                   f"run the same command again")
    command = tpu(args, "create", args.name, f"--accelerator-type={args.accelerator_type}",
                  f"--version={args.version}")
    return ([tpu(args, "delete", args.name, "--quiet")] if state in GONE else []) + \
        [command + (["--spot"] if args.spot else [])]


def queued(args, *words: str) -> list[str]:
    """A ``gcloud compute tpus queued-resources`` command with the zone (and project) flags."""
    command = ["gcloud", "compute", "tpus", "queued-resources", *words, f"--zone={args.zone}"]
    return command + ([f"--project={args.project}"] if args.project else [])


def describe_queued(args) -> list[str]:
    return queued(args, "describe", args.name, "--format=value(state.state)")


def queued_state(args, show: bool = True) -> str | None:
    """The queued resource's state (WAITING_FOR_RESOURCES, ACTIVE, SUSPENDED, ...), or None when
    there is none (or in a dry run)."""
    return state_of(args, describe_queued(args), show)


def create_queued(args, state: str | None) -> list[list[str]]:
    """Queue the TPU (its node has the same name); one a preemption left SUSPENDED, or a FAILED one,
    is deleted first (a queued resource is not created again while it exists); one still waiting or
    ACTIVE is waited for as it is."""
    if state == "ACTIVE" or state in QUEUED_WAITING:
        return []
    if state is not None and state not in QUEUED_GONE:  # SUSPENDING, DELETING, ...
        raise Stop(f"queued resource {args.name} is {state}: wait a few minutes "
                   f"(`{shlex.join(describe_queued(args))}`) and run the same command again")
    command = queued(args, "create", args.name, f"--node-id={args.name}",
                     f"--accelerator-type={args.accelerator_type}", f"--runtime-version={args.version}")
    return ([queued(args, "delete", args.name, "--quiet", "--force")] if state in QUEUED_GONE else []) + \
        [command + (["--spot"] if args.spot else [])]


def wait_until_active(args) -> None:
    """Poll the queued resource every POLL_SECONDS, one line each time, until it is ACTIVE."""
    print("+", shlex.join(describe_queued(args)), "# until ACTIVE", flush=True)
    if args.dry_run:
        return
    started = time.monotonic()
    while True:
        state = queued_state(args, show=False)
        minutes = (time.monotonic() - started) / 60
        print(f"tpu_pretrain: queued resource {args.name}: {state or 'gone'} after {minutes:.0f} min", flush=True)
        if state == "ACTIVE":
            return
        if state is None or state in QUEUED_GONE:
            raise Stop(f"queued resource {args.name} is {state or 'gone'} instead of ACTIVE: run the same "
                       f"command again to queue it again (the checkpoints are in {args.workdir})")
        time.sleep(POLL_SECONDS)


def why_create_failed(args, stderr: str) -> str:
    """What a failed create means, and what to do, from gcloud's error output."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    said = next((line for line in lines if line.startswith("ERROR")), lines[-1] if lines else "no error output")
    said = said if len(said) <= 300 else said[:297] + "..."
    what = f"{args.accelerator_type} in {args.zone}"
    lowered = stderr.lower()
    if "quota" in lowered:
        return (f"no quota for {what} ({said}): request TPU quota for the project (Cloud TPU quotas page) or "
                f"choose a smaller --accelerator-type; nothing was created")
    if any(word in lowered for word in ("no more capacity", "resource_exhausted", "stockout")):
        return (f"no capacity for {what} now ({said}): try another zone, --queued to wait in line for it, or "
                f"later; nothing was created")
    if "permission_denied" in lowered or "403" in stderr:
        return (f"permission denied creating {what} ({said}): check --project, that the Cloud TPU API is "
                f"enabled, and that your account may create TPUs (e.g. roles/tpu.admin); nothing was created")
    return f"creating {what} failed ({said}); nothing was created"


def acquire(args) -> None:
    """Make the TPU exist (``args.exists`` once it does, so that the end deletes it; ``args.taken_up``
    when it was there, READY or ACTIVE, already: it may still have a run going)."""
    state = queued_state(args) if args.queued else vm_state(args)
    commands = create_queued(args, state) if args.queued else create(args, state)
    args.taken_up = state in ("READY", "ACTIVE")
    if not commands:
        args.exists = True
    for command in commands:
        print("+", shlex.join(command), flush=True)
        if args.dry_run:
            continue
        if "create" not in command:  # deleting a preempted VM or queued resource
            subprocess.run(command, check=True)
            continue
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise Stop(why_create_failed(args, result.stderr))
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
    args.exists = True
    if args.queued:
        wait_until_active(args)


def versions_file(args) -> str:
    """Where the first run records its JAX versions (jax, jaxlib, libtpu) and a resumed run reads them."""
    return f"{args.workdir.rstrip('/')}/versions.txt"


def logs_folder(args) -> str:
    """Where every worker copies its log, beside the checkpoints (and so into --results too)."""
    return f"{args.workdir.rstrip('/')}/logs"


def git(*words: str) -> list[str]:
    return ["git", "-C", str(REPO), *words]


def source(args) -> str:
    """The commit to ship. `git archive HEAD` leaves out uncommitted changes without a word, so that
    the workers would run other code than the user sees: changed tracked files stop the launcher
    (before anything is created) unless --allow-uncommitted, which ships them as they are in a commit
    of the working tree's tracked files (`git stash create`: no branch, no stash entry, the working
    tree untouched). Untracked files are never shipped."""
    status = git("status", "--porcelain", "--untracked-files=no")
    print("+", shlex.join(status), flush=True)
    if args.dry_run:
        return "HEAD"
    result = subprocess.run(status, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        said = (result.stderr.strip().splitlines() or ["no error output"])[-1]
        raise Stop(f"`{shlex.join(status)}` failed ({said}): the launcher ships the repository it is in, a git "
                   f"checkout, with git archive")
    changed = [line[3:] for line in result.stdout.splitlines() if line.strip()]
    if not changed:
        return "HEAD"
    named = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
    if not args.allow_uncommitted:
        raise Stop(f"uncommitted changes in {named}: commit them (the workers get the repository at HEAD), or "
                   f"pass --allow-uncommitted to ship them as they are")
    print("+", shlex.join(git("stash", "create")), flush=True)
    commit = subprocess.run(git("stash", "create"), capture_output=True, text=True, check=True).stdout.strip()
    if not commit:  # nothing git stash takes (e.g. a submodule's changes): HEAD is the tree
        return "HEAD"
    print(f"tpu_pretrain: shipping the uncommitted changes in {named} (--allow-uncommitted), as commit "
          f"{commit[:12]} on no branch", flush=True)
    return commit


def install(args, archive: Path, commit: str) -> list[list[str]]:
    """Ship the repository at ``commit`` (git archive, through a file of this launch's own: two
    launches at once do not overwrite each other's) to every worker and install it with jax[tpu]
    and gcsfs (`launch/worker.sh setup`: a Python >= 3.11, installed with uv where the image's is
    older; the JAX versions the run's first setup recorded in the workdir, when there are any)."""
    setup = (f"rm -rf {REMOTE_REPO} && mkdir -p {REMOTE_REPO} && tar -xf ~/hsijax-src.tar -C {REMOTE_REPO} && "
             f"HSIJAX_VERSIONS={shlex.quote(versions_file(args))} bash {WORKER} setup")
    return [
        git("archive", "--format=tar", f"--output={archive}", commit),
        tpu(args, "scp", str(archive), f"{args.name}:~/hsijax-src.tar", "--worker=all"),
        on_all_workers(args, setup),
    ]


def data_dir(args) -> str:
    """What the workers read: the bucket itself (hsijax copies each scene it trains on to the
    worker's cache) or the uploaded local folder."""
    return args.data.rstrip("/") if args.data.startswith("gs://") else f"$HOME/{REMOTE_DATA}"


def bring_data(args) -> list[list[str]]:
    if args.data.startswith("gs://"):
        return []
    return [tpu(args, "scp", "--recurse", args.data, f"{args.name}:~/{REMOTE_DATA}", "--worker=all")]


def start(args) -> list[list[str]]:
    """Start the run on every worker, detached from the ssh session (`worker.sh start`): it goes on
    when this launcher, or its connection, does not."""
    overrides = " ".join(shlex.quote(f"--config.{o}") for o in args.override)
    script = (f"HSIJAX_LOGS={shlex.quote(logs_folder(args))} bash {WORKER} start --distributed --no-progress "
              f"--config {shlex.quote(args.config)} --workdir {shlex.quote(args.workdir)} "
              f"--config.data.data_dir={data_dir(args)} {overrides}").strip()
    return [on_all_workers(args, script)]


def on_worker(args, worker: str, words: str) -> list[str]:
    """`worker.sh WORDS` on a worker; nothing (exit 0, no output: no run) where it was never installed."""
    return tpu(args, "ssh", args.name, f"--worker={worker}", f"--command=[ ! -f {WORKER} ] || bash {WORKER} {words}")


def attach_command(args) -> str:
    return shlex.join(["python", "launch/tpu_pretrain.py", *[a for a in args.argv if a != "--attach"], "--attach"])


def resume(args) -> str:
    return f"the checkpoints are in {args.workdir}: run the same command again to resume"


def vm_gone(args) -> str | None:
    """The VM's state when it will not run the job again (preempted, stopped, or ``gone``: NOT_FOUND),
    else None (READY, passing through another state, or gcloud could not tell: the laptop offline)."""
    result = subprocess.run(describe(args), capture_output=True, text=True, check=False)
    if result.returncode == 0:
        state = result.stdout.strip()
        return state if state in GONE else None
    return "gone" if "NOT_FOUND" in result.stderr else None


def ask(args, command: list[str]) -> bytes:
    """The output of a short command on the VM. One that cannot reach it (ssh's exit 255: a dropped
    connection, once gcloud's own retries are spent) is tried again every FOLLOW_SECONDS, one line each:
    the run does not depend on this connection. A VM found preempted or gone meanwhile ends the run;
    after FAILED_POLLS failures in a row the launcher gives up and leaves the VM as it is."""
    for failure in range(1, FAILED_POLLS + 1):
        result = subprocess.run(command, capture_output=True, check=False)
        if result.returncode == 0:
            return result.stdout
        gone = vm_gone(args)
        if gone:
            args.leave = False  # no run goes on there
            if gone == "gone" and not args.queued:
                args.exists = False  # nothing to delete
            raise Stop(f"failed: TPU VM {args.name} is {gone}; {resume(args)}")
        said = [line.strip() for line in result.stderr.decode(errors="replace").splitlines() if line.strip()]
        said = f": {said[-1][:200]}" if said else ""
        print(f"tpu_pretrain: cannot reach {args.name} (exit {result.returncode}{said}); try {failure} of "
              f"{FAILED_POLLS}, the next in {FOLLOW_SECONDS} s", flush=True)
        if failure < FAILED_POLLS:
            time.sleep(FOLLOW_SECONDS)
    args.leave = True
    raise Stop(f"lost contact with {args.name} ({FAILED_POLLS} tries in a row failed, the last with exit "
               f"{result.returncode}); the run may still be going there, and the VM is left as it is: reattach with "
               f"`{attach_command(args)}`")


def states(output: bytes) -> list[str]:
    """The run's state on each worker that answered `worker.sh status` (running, an exit status, lost)."""
    return [line.split()[2] for line in output.decode(errors="replace").splitlines()
            if line.startswith("hsijax-status ") and len(line.split()) == 3]


def going(args) -> bool:
    """Whether a VM taken up as it was (READY) still has our detached run going, on any worker: a rerun
    after the launcher was stopped or lost contact, which then follows that run rather than installing
    over it and starting a second one."""
    command = on_all_workers(args, f"[ ! -f {WORKER} ] || bash {WORKER} status")
    print("+", shlex.join(command), flush=True)
    return "running" in states(ask(args, command))


def follow(args) -> str:
    """Print worker 0's log as it grows, from its first byte, until the run there has ended; return how
    it ended: its exit status, ``lost`` (no status: killed, or the VM restarted) or ``none`` (no run)."""
    print("+", shlex.join(on_worker(args, "0", "poll OFFSET")), f"# every {FOLLOW_SECONDS} s, until the run ends",
          flush=True)
    if args.dry_run:
        return "0"
    offset = 0
    while True:
        answer = ask(args, on_worker(args, "0", f"poll {offset}"))
        at = answer.find(b"hsijax-poll ")
        if at < 0:
            return "none"
        header, _, text = answer[at:].partition(b"\n")
        _, size, state = header.decode().split()
        if int(size) < offset:  # a new run's log (worker.sh then sends it from its start)
            offset = 0
        text = text[:int(size) - offset]
        if state == "running":  # whole lines only; the rest comes with the next poll
            text = text[:text.rfind(b"\n") + 1]
        sys.stdout.write(text.decode(errors="replace"))
        sys.stdout.flush()
        offset += len(text)
        if state != "running":
            return state
        time.sleep(FOLLOW_SECONDS)


def finish(args, state: str) -> None:
    """After worker 0's run ended: a success is checked on every worker, then copied back; anything
    else is one line saying how to resume."""
    args.running = False
    if state == "none":
        args.exists = False  # not a VM of this run: left as it is
        again = "without --attach" if args.attach else "again"
        raise Stop(f"no hsijax run on {args.name} (nothing was deleted): run the same command {again} to start one")
    if state == str(PREEMPTED):
        raise Stop(f"failed: the run on {args.name} was stopped by a preemption notice (exit {PREEMPTED}); "
                   f"{resume(args)}")
    if state == "lost":
        raise Stop(f"failed: the run on {args.name} ended without an exit status (killed, or the VM restarted); "
                   f"{resume(args)}")
    if state != "0":
        raise Stop(f"failed: hsijax pretrain on {args.name} worker 0 ended with exit status {state} (its log: "
                   f"{logs_folder(args)}/); {resume(args)}")
    command = on_all_workers(args, f"bash {WORKER} status {END_SECONDS}")
    print("+", shlex.join(command), flush=True)
    if not args.dry_run:
        ended = states(ask(args, command))
        if not ended or any(other != "0" for other in ended):
            raise Stop(f"failed: the run ended on worker 0, but the workers' states are {' '.join(ended) or 'unknown'} "
                       f"after {END_SECONDS} s; {resume(args)}")
    execute(copy_back(args), args.dry_run)


def copy_back(args) -> list[list[str]]:
    """The workdir's contents into --results (rsync: `cp -r` would put them one folder deeper, in
    RESULTS/NAME)."""
    return [["mkdir", "-p", str(args.results)],
            ["gcloud", "storage", "rsync", "-r", args.workdir, str(args.results)]]


def delete(args) -> list[list[str]]:
    if args.keep_vm:
        return []
    if args.queued:  # --force: the queued resource with its node
        return [queued(args, "delete", args.name, "--quiet", "--force")]
    return [tpu(args, "delete", args.name, "--quiet")]


def execute(commands: list[list[str]], dry_run: bool) -> None:
    for command in commands:
        print("+", shlex.join(command), flush=True)
        if not dry_run:
            subprocess.run(command, check=True)


def attach(args) -> None:
    """--attach: take up the VM as it is, for the run on it."""
    state = vm_state(args)
    if not args.dry_run and state != "READY":
        raise Stop(f"TPU VM {args.name} is {state or 'not there'}, with no run to attach to (nothing was deleted): "
                   f"run the same command without --attach to start or resume the run ({args.workdir})")
    args.exists = True


def launch(args) -> None:
    """Create or take up the TPU, install and start the run; or follow the run a READY VM still has."""
    commit = source(args)  # before anything is created
    acquire(args)
    if args.taken_up:
        args.leave = True  # until it is known that no run of ours goes on there (a Ctrl-C now leaves the VM)
        found = going(args)
        args.leave = False
        if found:
            print(f"tpu_pretrain: a run is going on {args.name} already: following it instead of starting another",
                  flush=True)
            return
    with tempfile.TemporaryDirectory(prefix="hsijax-src-") as folder:
        execute(install(args, Path(folder) / "hsijax-src.tar", commit) + bring_data(args), args.dry_run)
    args.running = True
    execute(start(args), args.dry_run)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    args.argv = argv
    args.exists = False  # the TPU is there (created or taken up): the end deletes it
    args.leave = False  # the run may still be going there: the end leaves the VM alone
    args.running = False  # the run was started (or found going), and has not ended on worker 0
    try:
        if args.attach:
            attach(args)
        else:
            launch(args)
        args.running = True
        finish(args, follow(args))
    except Stop as stop:
        print(f"tpu_pretrain: {stop}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.running:
            args.leave = True
            print(f"tpu_pretrain: the run goes on on {args.name}; reattach with `{attach_command(args)}`",
                  file=sys.stderr)
        else:
            print(f"tpu_pretrain: interrupted; {resume(args)}", file=sys.stderr)
        return 130
    except FileNotFoundError as error:  # no gcloud (or git) on PATH
        print(f"tpu_pretrain: {error.filename or error}: not found; install the Google Cloud CLI", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as error:
        print(f"tpu_pretrain: failed: {shlex.join(error.cmd)} (exit {error.returncode}); {resume(args)}",
              file=sys.stderr)
        return 1
    finally:
        if args.exists and not args.leave:
            try:
                execute(delete(args), args.dry_run)
            except (subprocess.CalledProcessError, FileNotFoundError) as error:
                print(f"tpu_pretrain: deleting {args.name} failed ({error}): delete it yourself", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
