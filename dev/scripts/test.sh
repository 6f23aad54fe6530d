#!/usr/bin/env bash
# `make test`: the whole test suite, from a clean checkout with nothing running.
#
#   1. installs the local tools if missing (dev/scripts/tools.sh);
#   2. starts DynamoDB Local and moto unless they are already serving;
#   3. lints template.yaml and the example's examples/protected-api/template.yaml (cfn-lint,
#      offline SAM transform + cfn-lint, sam validate --lint);
#   4. checks formatting and clippy;
#   5. starts the local IAM check (`localdev iam-proxy`), which records every decision;
#   6. runs every unit and integration test (cargo test --workspace), the functions' AWS calls
#      going through that check;
#   7. starts the local API (dev/scripts/local.sh: cargo lambda watch + localdev gateway) on spare
#      ports with its own stack and the same check, and runs the end-to-end tests against it;
#   8. runs the function binaries under a Lambda Runtime API at TRACE and checks their output
#      holds no secret (tests/tests/runtime.rs);
#   9. proves from the record that no call was denied and that every action the template grants
#      was exercised (tests/tests/iam.rs);
# and stops everything it started, pass or fail.
set -euo pipefail

LOG_TAG="test"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

E2E_API_PORT="${E2E_API_PORT:-3100}"
E2E_LAMBDA_PORT="${E2E_LAMBDA_PORT:-9100}"
IAM_PORT="${TEST_IAM_PORT:-4599}"

mkdir -p "$LOCAL_DIR"
started_emulators="$(mktemp "$LOCAL_DIR/test-emulators.XXXXXX")"
ready_file="$LOCAL_DIR/e2e-ready.$$"
iam_record="$LOCAL_DIR/iam-record.jsonl"
local_pid=""
iam_pid=""

# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [ -n "$local_pid" ] && kill -0 "$local_pid" 2>/dev/null; then
        kill -TERM "$local_pid" 2>/dev/null || true
        wait "$local_pid" 2>/dev/null || true
    fi
    if [ -n "$iam_pid" ]; then kill -TERM "$iam_pid" 2>/dev/null || true; wait "$iam_pid" 2>/dev/null || true; fi
    mapfile -t ours <"$started_emulators" || true
    if [ "${#ours[@]}" -gt 0 ]; then "$SCRIPTS_DIR/emulators.sh" stop "${ours[@]}" || true; fi
    rm -f "$started_emulators" "$ready_file"
    if [ "$status" -eq 0 ]; then log "all checks passed"; else log "FAILED (exit $status)"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cd "$REPO_ROOT"
"$SCRIPTS_DIR/tools.sh"
EMULATORS_STARTED_FILE="$started_emulators" "$SCRIPTS_DIR/emulators.sh" start
eval "$("$SCRIPTS_DIR/emulators.sh" env)"

log "template lint"
"$SCRIPTS_DIR/lint-template.sh"
"$SCRIPTS_DIR/lint-template.sh" "$REPO_ROOT/examples/protected-api/template.yaml"

log "formatting and clippy"
cargo fmt --all --check
cargo clippy --quiet --workspace --all-targets -- -D warnings

log "starting the local IAM check on port $IAM_PORT (decisions recorded in ${iam_record#"$REPO_ROOT"/})"
cargo build --quiet -p localdev
port_open "$IAM_PORT" && die "port $IAM_PORT is in use (TEST_IAM_PORT)"
: >"$iam_record"
target/debug/localdev iam-proxy --listen "127.0.0.1:$IAM_PORT" --record "$iam_record" \
    2>"$LOCAL_DIR/iam-check.log" </dev/null &
iam_pid=$!
wait_for_port "$IAM_PORT" "the IAM check" "$LOCAL_DIR/iam-check.log"
export LOCAL_IAM_ENDPOINT="http://127.0.0.1:$IAM_PORT"

log "unit and integration tests"
cargo test --workspace

log "end-to-end: starting the local API on port $E2E_API_PORT (runtime emulator on $E2E_LAMBDA_PORT)"
api_key="e2e-$(head -c 12 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
e2e_stack="e2e-$(date +%s)-$$"
API_PORT="$E2E_API_PORT" LAMBDA_PORT="$E2E_LAMBDA_PORT" LOCAL_API_KEY="$api_key" \
    LOCAL_STACK="$e2e_stack" LOCAL_READY_FILE="$ready_file" \
    PARAMETER_OVERRIDES="RefreshRateLimit=1 RefreshBurstLimit=3" \
    "$SCRIPTS_DIR/local.sh" >"$LOCAL_DIR/e2e-local.log" 2>&1 &
local_pid=$!
for _ in $(seq 1 1800); do
    [ -s "$ready_file" ] && break
    kill -0 "$local_pid" 2>/dev/null || { tail -n 40 "$LOCAL_DIR/e2e-local.log" >&2; die "the local API failed to start"; }
    sleep 0.5
done
[ -s "$ready_file" ] || { tail -n 40 "$LOCAL_DIR/e2e-local.log" >&2; die "the local API did not start in time"; }

E2E_LAMBDA_URL="http://127.0.0.1:$E2E_LAMBDA_PORT" E2E_API_URL="http://127.0.0.1:$E2E_API_PORT" E2E_API_KEY="$api_key" \
    E2E_STACK="$e2e_stack" E2E_PYTHON="$VENV_DIR/bin/python" cargo test -p tests --test e2e -- --ignored --test-threads=1 || {
    log "end-to-end tests failed; last lines of the local stack's log ($LOCAL_DIR/e2e-local.log):"
    tail -n 60 "$LOCAL_DIR/e2e-local.log" >&2
    exit 1
}

log "the function binaries under a Lambda runtime at TRACE: no secret in their output, SIGTERM handled"
LOCAL_FUNCTIONS_DIR="$REPO_ROOT/target/debug" cargo test -p tests --test runtime -- --ignored

log "IAM: every call allowed, every granted action exercised"
IAM_RECORD="$iam_record" cargo test -p tests --test iam -- --ignored || {
    log "the IAM check's log ($LOCAL_DIR/iam-check.log):"
    tail -n 40 "$LOCAL_DIR/iam-check.log" >&2
    exit 1
}
