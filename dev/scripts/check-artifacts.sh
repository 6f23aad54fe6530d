#!/usr/bin/env bash
# Check the deployed artefacts: the arm64 bootstraps that `sam build` (cargo-lambda) produces.
#
# Usage: dev/scripts/check-artifacts.sh
#
#   1. installs what it needs: dev/scripts/tools.sh --build (sam, cargo-lambda, zig, the arm64 Rust
#      target) and, with apt-get when missing, qemu-user (qemu-aarch64), libc6-arm64-cross (the
#      arm64 loader and glibc qemu runs the bootstraps with) and binutils (readelf);
#   2. runs `sam build` (release, arm64) into .aws-sam/build/: about 6 min on an idle machine
#      here, 13-16 min with another build running;
#   3. checks each function's bootstrap (the functions of the template sam build wrote) is an
#      AArch64 ELF whose dynamic symbols need no glibc newer than Amazon Linux 2023's (2.34);
#      prints the highest GLIBC version each needs;
#   4. starts DynamoDB Local and moto unless they run (stops only what it started), creates a
#      fresh stack (`localdev setup`) and runs `bench invoke`: the bootstraps of the auth flow
#      (register → login → refresh → get-user), each under `qemu-aarch64 -L /usr/aarch64-linux-gnu`
#      with the environment Lambda gives it, behind a local Lambda Runtime API and the local IAM
#      check, one event each; fails unless each answers its happy-path status. Prints init time
#      and latency under emulation. Function logs: .local/artifacts/functions/<function>.log;
#   5. prints the total wall time.
#
# Environment: SKIP_BUILD=1 (check the existing .aws-sam/build), DDB_PORT, MOTO_PORT (as for
# dev/scripts/emulators.sh).
set -euo pipefail

LOG_TAG=check-artifacts
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
    -h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    '') ;;
    *) die "unknown argument: $1 (see --help)" ;;
esac

# Amazon Linux 2023 (provided.al2023) ships glibc 2.34.
GLIBC_MAX=2.34
ARM64_SYSROOT=/usr/aarch64-linux-gnu
BUILD_DIR="$REPO_ROOT/.aws-sam/build"
OUT_DIR="$LOCAL_DIR/artifacts"
T0="$(now_ms)"
cd "$REPO_ROOT"
mkdir -p "$OUT_DIR"

elapsed() {
    local s=$((($(now_ms) - $1) / 1000))
    printf '%dm %02ds' $((s / 60)) $((s % 60))
}

# Emulators: started in step 4 unless running; on exit stop only what this script started, and
# report the total wall time, pass or fail.
STARTED_FILE="$(mktemp)"
cleanup() {
    local rc=$? started
    started="$(cat "$STARTED_FILE" 2>/dev/null || true)"
    if [ -n "$started" ]; then
        # shellcheck disable=SC2086 # one emulator name per word
        "$SCRIPTS_DIR/emulators.sh" stop $started || true
    fi
    rm -f "$STARTED_FILE"
    local verdict=passed
    [ "$rc" = 0 ] || verdict=FAILED
    log "$verdict; total wall time $(elapsed "$T0")"
}
trap cleanup EXIT

# tail_die LOG MESSAGE: show the end of a log, then fail.
tail_die() {
    tail -n 40 "$1" >&2 || true
    die "$2 (full log: $1)"
}

# apt_install PACKAGE...: as tools.sh installs Java (sudo only when not root; apt-get update
# only when the package lists do not have the packages).
apt_install() {
    local sudo_cmd=() apt_log="$OUT_DIR/apt.log"
    command -v apt-get >/dev/null 2>&1 || die "apt-get unavailable: install $* yourself"
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to apt-get install $*"
        sudo_cmd=(sudo)
    fi
    log "apt-get install $*"
    export DEBIAN_FRONTEND=noninteractive
    : >"$apt_log"
    # --no-install-recommends: qemu-user recommends qemu-user-binfmt, which would register
    # binfmt handlers machine-wide; the bootstraps are run through qemu-aarch64 explicitly.
    if ! "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "$@" >>"$apt_log" 2>&1; then
        { "${sudo_cmd[@]}" apt-get update && "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "$@"; } \
            >>"$apt_log" 2>&1 || tail_die "$apt_log" "apt-get install $* failed"
    fi
    hash -r
}

# --- 1. tools ---------------------------------------------------------------------------------
"$SCRIPTS_DIR/tools.sh" --build || die "tool installation failed"
missing=()
# On Debian 12, qemu-user has /usr/bin/qemu-aarch64 (qemu-user-static only qemu-aarch64-static).
command -v qemu-aarch64 >/dev/null 2>&1 || missing+=(qemu-user)
[ -e "$ARM64_SYSROOT/lib/ld-linux-aarch64.so.1" ] || missing+=(libc6-arm64-cross)
command -v readelf >/dev/null 2>&1 || missing+=(binutils)
if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
QEMU="$(command -v qemu-aarch64)" || die "qemu-aarch64 still missing after installing qemu-user"

# --- 2. sam build -----------------------------------------------------------------------------
if [ "${SKIP_BUILD:-}" != 1 ]; then
    log "sam build (output in .local/artifacts/sam-build.log)"
    t="$(now_ms)"
    PATH="$VENV_DIR/bin:$PATH" SAM_CLI_TELEMETRY=0 sam build >"$OUT_DIR/sam-build.log" 2>&1 ||
        tail_die "$OUT_DIR/sam-build.log" "sam build failed"
    log "sam build took $(elapsed "$t")"
fi
# The functions' logical ids, from the template sam build wrote (what was built, even if
# template.yaml changed since), parsed by SAM's own YAML loader (it has !Ref and !Sub).
function_ids="$("$VENV_DIR/bin/python" - "$BUILD_DIR/template.yaml" <<'PY'
import sys
from samcli.yamlhelper import yaml_parse

with open(sys.argv[1]) as f:
    resources = yaml_parse(f.read()).get("Resources", {})
print(" ".join(k for k, v in resources.items() if v.get("Type") == "AWS::Serverless::Function"))
PY
)" || die "cannot read the functions from $BUILD_DIR/template.yaml (did sam build run?)"
read -ra FUNCTION_IDS <<<"$function_ids"
[ "${#FUNCTION_IDS[@]}" -gt 0 ] || die "no AWS::Serverless::Function in $BUILD_DIR/template.yaml"

# The local driver and stack tool; debug builds: their overhead is small next to emulation.
cargo build --quiet -p bench -p localdev

# --- 3. glibc symbol versions -------------------------------------------------------------------
# glibc_needs BOOTSTRAP: one "VERSION SYMBOL" line per dynamic symbol bound to GLIBC_VERSION.
glibc_needs() {
    readelf --dyn-syms -W "$1" | awk '$8 ~ /@GLIBC_[0-9]/ {
        name = $8; version = $8
        sub(/@.*/, "", name); sub(/.*@GLIBC_/, "", version)
        print version, name
    }' | sort -V -u
}

# newer_than MAX: keeps the "VERSION SYMBOL" lines whose version is numerically above MAX.
newer_than() {
    awk -v max="$1" '{
        n = split($1, v, "."); split(max, m, ".")
        for (i = 1; i <= (n > 3 ? n : 3); i++) {
            if (v[i] + 0 != m[i] + 0) { if (v[i] + 0 > m[i] + 0) print; next }
        }
    }'
}

failed=0
for id in "${FUNCTION_IDS[@]}"; do
    bin="$BUILD_DIR/$id/bootstrap"
    [ -f "$bin" ] || die "$id: no $bin (did sam build run?)"
    machine="$(readelf -h "$bin" | sed -n 's/^ *Machine: *//p')"
    [ "$machine" = AArch64 ] || die "$id: bootstrap is not an AArch64 ELF (Machine: ${machine:-unknown})"
    needs="$(glibc_needs "$bin")"
    highest="$(printf '%s\n' "$needs" | tail -n 1 | cut -d' ' -f1)"
    too_new="$(printf '%s\n' "$needs" | newer_than "$GLIBC_MAX")"
    if [ -n "$too_new" ]; then
        log "$id: symbols needing a glibc newer than $GLIBC_MAX:"
        printf '%s\n' "$too_new" | awk '{ printf "    %s@GLIBC_%s\n", $2, $1 }' >&2
        failed=1
    fi
    log "$id: AArch64, highest glibc symbol version GLIBC_${highest:-none} (limit $GLIBC_MAX)"
done
[ "$failed" = 0 ] || die "a bootstrap needs a glibc newer than Amazon Linux 2023's $GLIBC_MAX"

# --- 4. one invocation each under qemu-user -----------------------------------------------------
EMULATORS_STARTED_FILE="$STARTED_FILE" "$SCRIPTS_DIR/emulators.sh" start
eval "$("$SCRIPTS_DIR/emulators.sh" env)"

LOCAL_STACK="artifacts-$$-$(date +%s)"
export LOCAL_STACK
target/debug/localdev setup --stack "$LOCAL_STACK"

log "invoking each bootstrap once under $QEMU -L $ARM64_SYSROOT"
rm -rf "$OUT_DIR/functions"
# -L: the bootstraps' ELF interpreter and libraries come from Debian's arm64 cross glibc.
target/debug/bench invoke \
    --template template.yaml \
    --events events \
    --bootstrap-dir "$BUILD_DIR" \
    --log-dir "$OUT_DIR/functions" \
    --runner "$QEMU" --runner-arg -L --runner-arg "$ARM64_SYSROOT"
