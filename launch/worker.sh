#!/usr/bin/env bash
# What every TPU VM worker runs, from the unpacked repository:
#   bash launch/worker.sh setup            installs hsijax in .venv with a Python >= 3.11
#   bash launch/worker.sh pretrain ARGS... runs `hsijax pretrain ARGS...` in the foreground (exit status
#                                          75 when a preemption notice stopped it)
#   bash launch/worker.sh start ARGS...    starts `hsijax pretrain ARGS...` detached from the ssh session
#                                          (what tpu_pretrain.py does: the run outlives the laptop's
#                                          connection); its output goes to ~/hsijax-run/run.log, its exit
#                                          status (75 as above) to ~/hsijax-run/status when it ends; a
#                                          second start while it goes starts nothing
#   bash launch/worker.sh poll OFFSET      prints `hsijax-poll SIZE STATE`, then the log from byte OFFSET
#                                          to SIZE (what tpu_pretrain.py streams)
#   bash launch/worker.sh status [SECONDS] prints `hsijax-status HOST STATE`, after waiting up to SECONDS
#                                          for the run to end
# STATE is `running`, the run's exit status once it ended, `lost` (it ended without one: killed, or
# the VM restarted) or `none` (no run here). tests/test_launch.py runs all of them (setup and
# pretrain for real, installs offline).
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
#   HSIJAX_LOGS         a folder in the bucket (the launcher: WORKDIR/logs) where a started run's log is
#                       copied every HSIJAX_LOG_EVERY seconds (default 300) and when it ends, as
#                       worker-HOSTNAME-STARTTIME.log; unset: the log stays on the worker
#   HSIJAX_TPU_DEVICES  the TPU's device files (default /dev/accel* /dev/vfio/*; the test: a file)
set -euo pipefail
cd "$(dirname "$0")/.."
command=${1:?usage: worker.sh setup | pretrain ARGS... | start ARGS... | poll OFFSET | status [SECONDS]}
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
    # shellcheck disable=SC2116,SC2086  # echo joins the file's lines into one: jax==X jaxlib==Y libtpu==Z
    jax=$(echo $pins)
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

# A started run lives outside the repository, which a new setup replaces (rm -rf hsijax).
RUN=$HOME/hsijax-run
LOG=$RUN/run.log
STATUS=$RUN/status
# Held (flock) by the detached run and every process it starts, hsijax included, for as long as any
# of them lives: unlike a pid file it cannot name a process that has ended (or a new one with the
# same pid), and the kernel releases it whichever way the run ends.
LOCK=$RUN/lock

going() {
  [[ -f $LOCK ]] && ! flock -n "$LOCK" true
}

# running, the exit status, lost or none (see the top). The status is read before and after the
# lock: the run writes it, then lets the lock go.
state() {
  if [[ -f $STATUS ]]; then
    cat "$STATUS"
  elif [[ ! -f $LOG ]]; then
    echo none
  elif going; then
    echo running
  elif [[ -f $STATUS ]]; then
    cat "$STATUS"
  else
    echo lost
  fi
}

start() {
  mkdir -p "$RUN"
  exec 9> "$LOCK"
  if ! flock -n 9; then
    echo "worker: a run is going on $(hostname) already (log: $LOG): not starting another"
    return 0
  fi
  rm -f "$STATUS"
  : > "$LOG"
  free_tpu | tee -a "$LOG"
  # setsid: a session of its own, so the end of the ssh session (its SIGHUP, the launcher's Ctrl-C or
  # a dropped connection) does not reach it; nohup for good measure; every standard stream away from
  # ssh's, which otherwise waits for them to close. It inherits fd 9, and with it the lock.
  setsid nohup bash launch/worker.sh detached "$@" > /dev/null 2>&1 < /dev/null &
  echo "worker: started hsijax pretrain on $(hostname), detached (log: $LOG)"
}

# Processes left holding the TPU (a crashed or abandoned run, a notebook) make the next run fail at
# its first JAX call with "TPU is already in use" (jax-ml/jax#13260). This runs only when no run of
# ours holds the lock, so whatever has the chips' device files open then is a leftover. fuser
# (psmisc) names them by pid, and `fuser -k` kills them in one command (SIGKILL: a hung leftover may
# ignore SIGTERM), where `lsof -t` would need a kill of its own; through sudo, as they may be other
# users' processes (root's). libtpu's lock file, which an aborted process can leave behind
# (jax-ml/jax#10192), goes too.
free_tpu() {
  local devices pids
  shopt -s nullglob
  # shellcheck disable=SC2206  # the setting is a list of glob patterns
  devices=(${HSIJAX_TPU_DEVICES:-/dev/accel* /dev/vfio/*})
  shopt -u nullglob
  (( ${#devices[@]} )) || return 0  # no TPU here (a GPU machine)
  if ! command -v fuser > /dev/null; then
    echo "worker: no fuser (psmisc) here: processes left holding the TPU, if any, are not stopped"
    return 0
  fi
  pids=$(sudo -n fuser "${devices[@]}" 2> /dev/null | xargs) || true
  [[ -n $pids ]] || return 0
  local named
  named=$(ps -o pid=,args= -p "${pids// /,}" | awk '{$1 = $1; print substr($0, 1, 120)}' | paste -sd ';')
  echo "worker: stopping processes left holding the TPU (jax-ml/jax#13260): $named"
  sudo -n fuser -k "${devices[@]}" > /dev/null 2>&1 || true
  local waited=0
  while sudo -n fuser -s "${devices[@]}" 2> /dev/null && (( waited++ < 10 )); do
    sleep 1  # until the kernel has closed their files (a run started sooner fails as above)
  done
  sudo -n rm -f /tmp/libtpu_lockfile || true
}

# The log, to the bucket (a best effort: a failed copy is tried again at the next one).
copy_log() {
  [[ -n ${HSIJAX_LOGS:-} ]] || return 0
  timeout 120 gcloud storage cp --quiet "$LOG" "$HSIJAX_LOGS/$1" > /dev/null 2>&1
}

# The started run itself (`start` runs it; not for use by hand): the exit status goes to the status
# file once the log is in the bucket, so a launcher that sees the status finds the whole log there.
detached() {
  local name code=0 copier
  name=worker-$(hostname)-$(date -u +%Y%m%dT%H%M%SZ).log
  # Every HSIJAX_LOG_EVERY seconds a copy of the log; stopped (kill), it ends at once when sleeping
  # (wait returns on a trapped signal), or after the copy under way, which would otherwise land after
  # the last one below with an older log.
  (
    exec 9>&-  # no lock: this loop is not the run
    sleeping=""
    trap 'kill "$sleeping" 2> /dev/null; exit 0' TERM
    while true; do
      sleep "${HSIJAX_LOG_EVERY:-300}" &
      sleeping=$!
      wait "$sleeping"
      copy_log "$name" || true
    done
  ) &
  copier=$!
  trap ':' TERM  # as in pretrain: wait for hsijax to save and stop, then write its status
  # unbuffered: its lines reach the log (and the launcher) when printed, not a block at a time
  PYTHONUNBUFFERED=1 .venv/bin/hsijax pretrain "$@" >> "$LOG" 2>&1 < /dev/null || code=$?
  if grep -q "^preemption notice" "$LOG"; then
    code=$PREEMPTED
  fi
  kill "$copier" 2> /dev/null || true
  wait "$copier" || true
  echo "worker: hsijax pretrain ended with exit status $code on $(hostname)" >> "$LOG"
  copy_log "$name" || echo "worker: copying the log to $HSIJAX_LOGS/$name failed" >> "$LOG"
  echo "$code" > "$STATUS.tmp"
  mv "$STATUS.tmp" "$STATUS"
}

poll() {
  local offset=${1:?usage: worker.sh poll OFFSET} now size=0
  now=$(state)  # before the size: once there is a status, the log is complete
  if [[ -f $LOG ]]; then
    size=$(stat -c %s "$LOG")
  fi
  (( offset <= size )) || offset=0  # a new run started since: its log from the start
  echo "hsijax-poll $size $now"
  if (( size > offset )); then
    dd if="$LOG" iflag=skip_bytes,count_bytes skip="$offset" count=$((size - offset)) status=none
  fi
}

status() {
  local deadline=$((SECONDS + ${1:-0}))
  while [[ $(state) == running ]] && (( SECONDS < deadline )); do
    sleep 1
  done
  echo "hsijax-status $(hostname) $(state)"
}

case "$command" in
  setup) setup ;;
  pretrain) pretrain "$@" ;;
  start) start "$@" ;;
  detached) detached "$@" ;;
  poll) poll "$@" ;;
  status) status "$@" ;;
  *) echo "worker.sh: unknown command $command (setup | pretrain ARGS... | start ARGS... | poll OFFSET |" \
          "status [SECONDS])" >&2; exit 2 ;;
esac
