# shellcheck shell=bash
# Common helpers for the scripts in this directory. Source it; do not run it.
#
# Defines:
#   REPO_ROOT   repository root (parent of scripts/)
#   SCRIPTS_DIR this directory
#   TOOLS_DIR   $REPO_ROOT/.tools  (installed tools, gitignored)
#   LOCAL_DIR   $REPO_ROOT/.local  (runtime state: pids, logs; gitignored)
#   VENV_DIR    $TOOLS_DIR/venv
#   NODE_DIR    $TOOLS_DIR/node

SCRIPTS_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd -- "$SCRIPTS_DIR/.." && pwd -P)"
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
