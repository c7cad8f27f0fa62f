"""Pretrain on a Cloud TPU VM: create it, install hsijax on every worker, bring the data, run the
same `hsijax pretrain` on all workers, copy the workdir back, delete the VM.

    python launch/tpu_pretrain.py --name hsijax-poster --zone us-central2-b \
        --accelerator-type v4-32 --config poster --data gs://my-bucket/tensorflow_datasets \
        --results runs/poster [--spot] [--mount-bucket my-bucket] [--dry-run]

``--dry-run`` prints every command instead of running it. Each worker runs
``hsijax pretrain --distributed``: ``jax.distributed.initialize()`` reads the TPU VM's topology, so
all workers form one device mesh. The VM is deleted at the end, also after a failure, unless
``--keep-vm``. With ``--mount-bucket``, the workdir lives in that bucket (gcsfuse on every worker):
checkpoints outlive a preempted spot VM, and running the same command again resumes the run.
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="TPU VM name")
    parser.add_argument("--zone", required=True)
    parser.add_argument("--project", help="GCP project (default: gcloud's)")
    parser.add_argument("--accelerator-type", default="v4-8")
    parser.add_argument("--version", default="tpu-ubuntu2204-base", help="TPU VM software version")
    parser.add_argument("--spot", action="store_true", help="a spot (preemptible) VM")
    parser.add_argument("--config", default="poster", help="built-in config name or path in the repo")
    parser.add_argument("--data", required=True,
                        help="prepared TFDS data dir: gs://BUCKET/PATH or a local folder to upload")
    parser.add_argument("--workdir", default="runs/pretrain", help="workdir on the workers")
    parser.add_argument("--mount-bucket", help="mount this bucket with gcsfuse and keep the workdir in it")
    parser.add_argument("--results", type=Path, default=Path("runs/tpu"), help="local copy of the workdir")
    parser.add_argument("--override", action="append", default=[], metavar="FIELD=VALUE",
                        help="config override, e.g. train.steps=1000 (repeatable)")
    parser.add_argument("--keep-vm", action="store_true", help="do not delete the VM at the end")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    return parser.parse_args(argv)


def tpu(args, *words: str) -> list[str]:
    """A ``gcloud compute tpus tpu-vm`` command with the zone (and project) flags."""
    command = ["gcloud", "compute", "tpus", "tpu-vm", *words, f"--zone={args.zone}"]
    return command + ([f"--project={args.project}"] if args.project else [])


def on_all_workers(args, script: str) -> list[str]:
    return tpu(args, "ssh", args.name, "--worker=all", f"--command={script}")


def remote_workdir(args) -> str:
    return f"~/bucket/{args.workdir}" if args.mount_bucket else f"~/{args.workdir}"


def create(args) -> list[list[str]]:
    command = tpu(args, "create", args.name, f"--accelerator-type={args.accelerator_type}",
                  f"--version={args.version}")
    return [command + (["--spot"] if args.spot else [])]


def install(args) -> list[list[str]]:
    """Ship the repository at HEAD (git archive) to every worker and install it with jax[tpu]
    (`launch/worker.sh setup`: a Python >= 3.11, installed with uv where the image's is older)."""
    archive = "/tmp/hsijax-src.tar"
    setup = f"mkdir -p {REMOTE_REPO} && tar -xf ~/hsijax-src.tar -C {REMOTE_REPO} && bash {REMOTE_REPO}/launch/worker.sh setup"
    return [
        ["git", "-C", str(REPO), "archive", "--format=tar", f"--output={archive}", "HEAD"],
        tpu(args, "scp", archive, f"{args.name}:~/hsijax-src.tar", "--worker=all"),
        on_all_workers(args, setup),
    ]


def bring_data(args) -> list[list[str]]:
    """Copy the prepared TFDS datasets to every worker's local disk (read many times per epoch)."""
    if args.data.startswith("gs://"):
        return [on_all_workers(args, f"mkdir -p ~/{REMOTE_DATA} && gcloud storage cp -r "
                                     f"{shlex.quote(args.data.rstrip('/'))}/* ~/{REMOTE_DATA}/")]
    return [tpu(args, "scp", "--recurse", args.data, f"{args.name}:~/{REMOTE_DATA}", "--worker=all")]


def mount(args) -> list[list[str]]:
    if not args.mount_bucket:
        return []
    return [on_all_workers(args, f"mkdir -p ~/bucket && gcsfuse --implicit-dirs {args.mount_bucket} ~/bucket")]


def run(args) -> list[list[str]]:
    overrides = " ".join(shlex.quote(f"--config.{o}") for o in args.override)
    script = (f"bash {REMOTE_REPO}/launch/worker.sh pretrain --distributed --no-progress "
              f"--config {shlex.quote(args.config)} --workdir {remote_workdir(args)} "
              f"--config.data.data_dir=$HOME/{REMOTE_DATA} {overrides}").strip()
    return [on_all_workers(args, script)]


def copy_back(args) -> list[list[str]]:
    return [
        ["mkdir", "-p", str(args.results)],
        tpu(args, "scp", "--recurse", f"{args.name}:{remote_workdir(args)}", str(args.results), "--worker=0"),
    ]


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
        execute(create(args), args.dry_run)
        execute(install(args) + bring_data(args) + mount(args) + run(args) + copy_back(args), args.dry_run)
    except subprocess.CalledProcessError as error:
        print(f"tpu_pretrain: failed: {shlex.join(error.cmd)} (exit {error.returncode})", file=sys.stderr)
        return 1
    finally:
        execute(delete(args), args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
