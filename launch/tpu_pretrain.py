"""Pretrain on a Cloud TPU VM: create it (or take up the one a preemption left), install hsijax on
every worker, run the same `hsijax pretrain` on all workers with the workdir in a bucket, copy the
workdir back, delete the VM.

    python launch/tpu_pretrain.py --name hsijax-poster --zone us-central2-b \
        --accelerator-type v4-32 --config poster --data gs://my-bucket/tensorflow_datasets \
        --results runs/poster [--spot] [--workdir gs://my-bucket/runs/poster] [--dry-run]

``--dry-run`` prints every command instead of running it. Each worker runs
``hsijax pretrain --distributed``: ``jax.distributed.initialize()`` reads the TPU VM's topology, so
all workers form one device mesh. The workdir is a ``gs://`` URI (default: ``hsijax-runs/NAME`` in
the data's bucket): checkpoints, metrics and TensorBoard files outlive the VM, every worker writes
its own checkpoint shards there, and a preempted run -- its VM stopped or gone -- continues from its
last checkpoint when the same command is run again. The VM is deleted at the end, also after a
failure, unless ``--keep-vm``.

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
    parser.add_argument("--results", type=Path, default=Path("runs/tpu"), help="local copy of the workdir")
    parser.add_argument("--override", action="append", default=[], metavar="FIELD=VALUE",
                        help="config override, e.g. train.steps=1000 (repeatable)")
    parser.add_argument("--keep-vm", action="store_true", help="do not delete the VM at the end")
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
    """Make the TPU exist (``args.exists`` once it does, so that the end deletes it)."""
    commands = create_queued(args, queued_state(args)) if args.queued else create(args, vm_state(args))
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


def install(args) -> list[list[str]]:
    """Ship the repository at HEAD (git archive) to every worker and install it with jax[tpu] and
    gcsfs (`launch/worker.sh setup`: a Python >= 3.11, installed with uv where the image's is older;
    the JAX versions the run's first setup recorded in the workdir, when there are any)."""
    archive = "/tmp/hsijax-src.tar"
    setup = (f"rm -rf {REMOTE_REPO} && mkdir -p {REMOTE_REPO} && tar -xf ~/hsijax-src.tar -C {REMOTE_REPO} && "
             f"HSIJAX_VERSIONS={shlex.quote(versions_file(args))} bash {REMOTE_REPO}/launch/worker.sh setup")
    return [
        ["git", "-C", str(REPO), "archive", "--format=tar", f"--output={archive}", "HEAD"],
        tpu(args, "scp", archive, f"{args.name}:~/hsijax-src.tar", "--worker=all"),
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


def run(args) -> list[list[str]]:
    overrides = " ".join(shlex.quote(f"--config.{o}") for o in args.override)
    script = (f"bash {REMOTE_REPO}/launch/worker.sh pretrain --distributed --no-progress "
              f"--config {shlex.quote(args.config)} --workdir {shlex.quote(args.workdir)} "
              f"--config.data.data_dir={data_dir(args)} {overrides}").strip()
    return [on_all_workers(args, script)]


def copy_back(args) -> list[list[str]]:
    return [["mkdir", "-p", str(args.results)],
            ["gcloud", "storage", "cp", "-r", args.workdir, str(args.results)]]


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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.exists = False  # the TPU is there (created or taken up): the end deletes it
    try:
        acquire(args)
        execute(install(args) + bring_data(args) + run(args) + copy_back(args), args.dry_run)
    except Stop as stop:
        print(f"tpu_pretrain: {stop}", file=sys.stderr)
        return 1
    except FileNotFoundError as error:  # no gcloud (or git) on PATH
        print(f"tpu_pretrain: {error.filename or error}: not found; install the Google Cloud CLI", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as error:
        print(f"tpu_pretrain: failed: {shlex.join(error.cmd)} (exit {error.returncode}); the checkpoints "
              f"are in {args.workdir}: run the same command again to resume", file=sys.stderr)
        return 1
    finally:
        if args.exists:
            try:
                execute(delete(args), args.dry_run)
            except (subprocess.CalledProcessError, FileNotFoundError) as error:
                print(f"tpu_pretrain: deleting {args.name} failed ({error}): delete it yourself", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
