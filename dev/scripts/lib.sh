# shellcheck shell=bash
# Common helpers for the scripts in this directory. Source it; do not run it.
#
# Defines:
#   REPO_ROOT   repository root (two levels above dev/scripts/)
#   SCRIPTS_DIR this directory
#   TOOLS_DIR   $REPO_ROOT/.tools  (installed tools, gitignored)
#   LOCAL_DIR   $REPO_ROOT/.local  (runtime state: pids, logs; gitignored)
#   VENV_DIR    $TOOLS_DIR/venv
#   NODE_DIR    $TOOLS_DIR/node

SCRIPTS_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd -- "$SCRIPTS_DIR/../.." && pwd -P)"
TOOLS_DIR="$REPO_ROOT/.tools"
LOCAL_DIR="$REPO_ROOT/.local"
VENV_DIR="$TOOLS_DIR/venv"
NODE_DIR="$TOOLS_DIR/node"
export SCRIPTS_DIR REPO_ROOT TOOLS_DIR LOCAL_DIR VENV_DIR NODE_DIR

# Name of the calling script, for messages.
LOG_TAG="${LOG_TAG:-$(basename -- "$0" .sh)}"

log() {
    printf '%s: %s\n' "$LOG_TAG" "$*" >&2
}

die() {
    printf '%s: error: %s\n' "$LOG_TAG" "$*" >&2
    exit 1
}

# Monotonic-enough seconds with millisecond resolution, for timings.
now_ms() {
    local t
    t="$(date +%s%N)"
    printf '%s\n' "$((t / 1000000))"
}

# port_open PORT -> 0 when something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
    local port="$1"
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

# sha256 of the given files (missing files hash as empty) plus extra strings.
# Usage: hash_inputs FILE... -- STRING...
hash_inputs() {
    {
        while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
            printf 'file:%s\n' "$(basename -- "$1")"
            if [ -f "$1" ]; then cat -- "$1"; fi
            shift
        done
        if [ "${1:-}" = "--" ]; then shift; fi
        while [ "$#" -gt 0 ]; do
            printf 'str:%s\n' "$1"
            shift
        done
    } | sha256sum | cut -d' ' -f1
}

# wait_for_port PORT WHAT [LOG]: waits up to 10 s for PORT to accept connections, else prints LOG
# (if given) and dies saying WHAT did not start.
wait_for_port() {
    local port="$1" what="$2" log_file="${3:-}"
    for _ in $(seq 1 100); do port_open "$port" && return 0; sleep 0.1; done
    if [ -n "$log_file" ]; then cat -- "$log_file" >&2 || true; fi
    die "$what did not start on port $port"
}

# start_emulators_until_exit: starts DynamoDB Local and moto unless they are serving, exports
# their endpoints, and sets an EXIT trap that stops only what it started, and the process whose
# pid is in CHECK_PID (a script's IAM check), if any. For scripts that use no other EXIT trap.
CHECK_PID=""
start_emulators_until_exit() {
    EMULATORS_STARTED="$(mktemp)"
    trap stop_what_this_script_started EXIT
    EMULATORS_STARTED_FILE="$EMULATORS_STARTED" "$SCRIPTS_DIR/emulators.sh" start
    eval "$("$SCRIPTS_DIR/emulators.sh" env)"
}

# shellcheck disable=SC2317 # runs from the EXIT trap
stop_what_this_script_started() {
    stop_check
    local started
    started="$(cat "$EMULATORS_STARTED" 2>/dev/null || true)"
    # shellcheck disable=SC2086 # one emulator name per word
    if [ -n "$started" ]; then "$SCRIPTS_DIR/emulators.sh" stop $started || true; fi
    rm -f "$EMULATORS_STARTED"
}

# stop_check: stops the process in CHECK_PID, if any, and waits for it.
stop_check() {
    if [ -n "$CHECK_PID" ]; then
        kill -TERM "$CHECK_PID" 2>/dev/null || true
        wait "$CHECK_PID" 2>/dev/null || true
        CHECK_PID=""
    fi
}
