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
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REMOTE_REPO = "hsijax"
REMOTE_DATA = "tensorflow_datasets"
GONE = ("PREEMPTED", "TERMINATED", "STOPPED")  # states of a VM that will not run the job again


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="TPU VM name")
    parser.add_argument("--zone", required=True)
    parser.add_argument("--project", help="GCP project (default: gcloud's)")
    parser.add_argument("--accelerator-type", default="v4-8")
    parser.add_argument("--version", default="tpu-ubuntu2204-base",
                        help="TPU VM software version (its Python may be old: worker.sh installs 3.11 then)")
    parser.add_argument("--spot", action="store_true", help="a spot (preemptible) VM")
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


def vm_state(args) -> str | None:
    """The VM's state (READY, PREEMPTED, ...), or None when there is none (or in a dry run)."""
    print("+", shlex.join(describe(args)), flush=True)
    if args.dry_run:
        return None
    result = subprocess.run(describe(args), capture_output=True, text=True)
    if result.returncode != 0:  # NOT_FOUND
        return None
    return result.stdout.strip() or None


def create(args, state: str | None) -> list[list[str]]:
    """Create the VM; a preempted or stopped one of the same name is deleted first, a READY one
    (a rerun while it still exists) is used as it is."""
    if state == "READY":
        return []
    command = tpu(args, "create", args.name, f"--accelerator-type={args.accelerator_type}",
                  f"--version={args.version}")
    return ([tpu(args, "delete", args.name, "--quiet")] if state in GONE else []) + \
        [command + (["--spot"] if args.spot else [])]


def install(args) -> list[list[str]]:
    """Ship the repository at HEAD (git archive) to every worker and install it with jax[tpu] and
    gcsfs (`launch/worker.sh setup`: a Python >= 3.11, installed with uv where the image's is older)."""
    archive = "/tmp/hsijax-src.tar"
    setup = (f"rm -rf {REMOTE_REPO} && mkdir -p {REMOTE_REPO} && tar -xf ~/hsijax-src.tar -C {REMOTE_REPO} && "
             f"bash {REMOTE_REPO}/launch/worker.sh setup")
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
    return [] if args.keep_vm else [tpu(args, "delete", args.name, "--quiet")]


def execute(commands: list[list[str]], dry_run: bool) -> None:
    for command in commands:
        print("+", shlex.join(command), flush=True)
        if not dry_run:
            subprocess.run(command, check=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        execute(create(args, vm_state(args)), args.dry_run)
        execute(install(args) + bring_data(args) + run(args) + copy_back(args), args.dry_run)
    except subprocess.CalledProcessError as error:
        print(f"tpu_pretrain: failed: {shlex.join(error.cmd)} (exit {error.returncode}); the checkpoints "
              f"are in {args.workdir}: run the same command again to resume", file=sys.stderr)
        return 1
    finally:
        execute(delete(args), args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
