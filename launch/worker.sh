#!/usr/bin/env bash
# What every TPU VM worker runs, from the unpacked repository: `bash launch/worker.sh setup` installs
# hsijax in .venv with a Python >= 3.11, `bash launch/worker.sh pretrain ARGS...` runs
# `hsijax pretrain ARGS...` with it (exit status 75 when a preemption notice stopped it).
# tests/test_launch.py runs both for real (installs offline).
#
# The TPU VM images' Python is 3.10 (tpu-ubuntu2204-base), below what hsijax and current JAX need:
# then uv installs a CPython 3.11 beside it. Settings (environment):
#   HSIJAX_PYTHON       the interpreter to try first (default python3)
#   HSIJAX_JAX          what to install for JAX (default 'jax[tpu]'; 'jax[cuda12]' on a GPU VM; '' none)
#   HSIJAX_VENV_ARGS    extra `python -m venv` arguments (the test: --system-site-packages)
#   HSIJAX_PIP_ARGS     extra `pip install` arguments (the test: --no-deps --no-index --no-build-isolation)
#   HSIJAX_VERSIONS     a file in the bucket (the launcher: WORKDIR/versions.txt) that pins JAX: when it
#                       exists, setup installs exactly the versions it lists (jax==X jaxlib==Y libtpu==Z)
#                       instead of HSIJAX_JAX; when not, setup installs HSIJAX_JAX and writes the installed
#                       versions there (gcloud storage), so a resumed run gets the same JAX
set -euo pipefail
cd "$(dirname "$0")/.."
command=${1:?usage: worker.sh setup | pretrain ARGS...}
shift

python_at_least_3_11() {
  "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

setup() {
  local python=${HSIJAX_PYTHON:-python3}
  if ! python_at_least_3_11 "$python"; then
    echo "worker: $("$python" --version 2>&1) is below 3.11; installing CPython 3.11 with uv" >&2
    "$python" -m pip install --user --quiet uv
    "$python" -m uv python install 3.11
    python=$("$python" -m uv python find 3.11)
  fi
  # shellcheck disable=SC2086  # the settings are lists of words
  "$python" -m venv ${HSIJAX_VENV_ARGS:-} .venv
  local jax=${HSIJAX_JAX-'jax[tpu]'} pins=""
  if [[ -n ${HSIJAX_VERSIONS:-} ]] && pins=$(gcloud storage cat "$HSIJAX_VERSIONS" 2>/dev/null) && [[ -n $pins ]]; then
    jax=$(echo $pins)  # one line: jax==X jaxlib==Y libtpu==Z
    echo "worker: installing the versions recorded in $HSIJAX_VERSIONS: $jax" >&2
  else
    pins=""
  fi
  # shellcheck disable=SC2086
  .venv/bin/python -m pip install --quiet ${HSIJAX_PIP_ARGS:-} -e '.[gcs]' $jax
  .venv/bin/hsijax --help > /dev/null
  if [[ -n ${HSIJAX_VERSIONS:-} && -z $pins ]]; then
    record_versions "$HSIJAX_VERSIONS"
  fi
  echo "worker: hsijax installed with $(.venv/bin/python --version)"
}

# The installed JAX, one `NAME==VERSION` a line, to the bucket beside the checkpoints (every worker
# writes the same file: they install at the same time from the same index).
record_versions() {
  local versions
  versions=$(mktemp)
  .venv/bin/python -c '
import importlib.metadata as metadata
for name in ("jax", "jaxlib", "libtpu", "libtpu-nightly"):
    try:
        print(f"{name}=={metadata.version(name)}")
    except metadata.PackageNotFoundError:
        pass' > "$versions"
  gcloud storage cp --quiet "$versions" "$1"
  echo "worker: recorded $(tr '\n' ' ' < "$versions")in $1" >&2
  rm -f "$versions"
}

# `hsijax pretrain` exits 0 after a preemption notice (SIGTERM: it saved a checkpoint and stopped),
# as a batch scheduler expects; the launcher must not take that for a finished run, so here it is
# exit status 75 (EX_TEMPFAIL): tpu_pretrain.py then says to run the same command again.
PREEMPTED=75

pretrain() {
  local output
  output=$(mktemp)
  # A VM shutting down sends SIGTERM to every process: hsijax then saves and stops, while this script
  # (a trap: it waits for hsijax, then runs ':') and tee (ignoring the signal) stay to pass on its
  # last line and its status.
  trap ':' TERM
  .venv/bin/hsijax pretrain "$@" | (trap '' TERM; exec tee "$output")
  if grep -q "^preemption notice" "$output"; then
    rm -f "$output"
    exit "$PREEMPTED"
  fi
  rm -f "$output"
}

case "$command" in
  setup) setup ;;
  pretrain) pretrain "$@" ;;
  *) echo "worker.sh: unknown command $command (setup | pretrain ARGS...)" >&2; exit 2 ;;
esac
