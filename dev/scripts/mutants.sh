#!/usr/bin/env bash
# Mutation testing of the security-critical code: `cargo mutants` changes shared's tokens.rs,
# keyring.rs, token_keys.rs, keys.rs, password.rs, domain/ and store/ one mutation at a time and expects a test to fail.
# Not part of `make test` (about an hour for all on 2 cores; shards split it).
#
# Usage: dev/scripts/mutants.sh [K/N]
#
#   K/N      run only shard K of N, K from 0 to N-1 (cargo mutants --shard), e.g. 0/8; default: all
#
# Tests run for each mutant: shared's unit and property tests and the integration tests that prove
# this code (token attacks, contract, security, hostile, throttle, and faults, which proves the key
# cache's outage handling), against DynamoDB Local and moto, every call through the local IAM
# check; not the timing suite (latency comparisons, meaningless under a mutant). A mutant's tests
# time out after MUTANT_TIMEOUT seconds (300). Results: .local/mutants/<shard>/mutants.out/ (caught.txt, missed.txt,
# timeout.txt, unviable.txt, outcomes.json). SECURITY.md ("Mutation testing") explains every
# missed mutant that is left. Environment: MUTANTS_RE (test only the mutants whose names match
# this regex, e.g. to re-check missed ones: results in .local/mutants/selected/), MUTANT_TIMEOUT,
# MUTANTS_IAM_PORT (4596), DDB_PORT, MOTO_PORT.
set -euo pipefail

LOG_TAG=mutants
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

CARGO_MUTANTS_VERSION=27.1.0
SHARD="${1:-}"
case "$SHARD" in
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    '' | [0-9]*/[0-9]*) ;;
    *) die "not a shard: $SHARD (see --help)" ;;
esac
PORT="${MUTANTS_IAM_PORT:-4596}"
name="${SHARD:-all}"
if [ -n "${MUTANTS_RE:-}" ]; then name="selected"; fi
OUT="$LOCAL_DIR/mutants/${name//\//-of-}"
cd "$REPO_ROOT"

"$SCRIPTS_DIR/tools.sh"
MUTANTS="$TOOLS_DIR/cargo/bin/cargo-mutants"
if ! "$MUTANTS" mutants --version 2>/dev/null | grep -qx "cargo-mutants $CARGO_MUTANTS_VERSION"; then
    log "installing cargo-mutants $CARGO_MUTANTS_VERSION into .tools/cargo"
    cargo install --quiet --locked "cargo-mutants@$CARGO_MUTANTS_VERSION" --root "$TOOLS_DIR/cargo"
fi

start_emulators_until_exit

# cargo mutants builds in a copy of the tree without .tools/ or .local/, where the tests could not
# run the SAM transform themselves: they use this IAM check instead.
cargo build --quiet -p localdev
port_open "$PORT" && die "port $PORT is in use (MUTANTS_IAM_PORT)"
mkdir -p "$OUT"
target/debug/localdev iam-proxy --listen "127.0.0.1:$PORT" 2>"$OUT/iam-check.log" </dev/null &
CHECK_PID=$!
wait_for_port "$PORT" "the IAM check" "$OUT/iam-check.log"
export LOCAL_IAM_ENDPOINT="http://127.0.0.1:$PORT"

# cargo mutants' own baseline tests only the mutated package (shared), where `--test=contract`
# does not exist; so the baseline runs here, on the unmutated tree, with the same test targets
# (`--workspace`, as `make test` builds, so its build is reused), and cargo mutants skips its own.
tests=(--lib --test=properties --test=token_attacks --test=contract --test=security --test=hostile
    --test=throttle --test=faults)
log "baseline: the selected tests on the unmutated tree"
start="$(now_ms)"
cargo test --quiet --workspace "${tests[@]}" >"$OUT/baseline.log" 2>&1 \
    || die "the selected tests fail without any mutant (see ${OUT#"$REPO_ROOT"/}/baseline.log)"
log "baseline: passed in $((($(now_ms) - start) / 1000)) s"

args=(
    --package shared
    --file shared/src/tokens.rs --file shared/src/keyring.rs --file shared/src/token_keys.rs --file shared/src/keys.rs --file shared/src/password.rs
    --file 'shared/src/domain/*.rs' --file 'shared/src/store/*.rs'
    --test-package shared,tests --baseline skip
    --timeout "${MUTANT_TIMEOUT:-300}"
    --output "$OUT"
)
for arg in "${tests[@]}"; do args+=("--cargo-test-arg=$arg"); done
if [ -n "$SHARD" ]; then args+=(--shard "$SHARD"); fi
if [ -n "${MUTANTS_RE:-}" ]; then args+=(--re "$MUTANTS_RE"); fi
start="$(now_ms)"
status=0
# Without debug info in the mutants' copy: linking the test binaries is most of a mutant's build.
CARGO_PROFILE_DEV_DEBUG=0 CARGO_PROFILE_TEST_DEBUG=0 "$MUTANTS" mutants "${args[@]}" || status=$?
log "shard ${SHARD:-all}: $((($(now_ms) - start) / 1000)) s; results in ${OUT#"$REPO_ROOT"/}/mutants.out"
for kind in caught missed timeout unviable; do
    printf '%s: %s\n' "$kind" "$(wc -l <"$OUT/mutants.out/$kind.txt" 2>/dev/null || echo 0)"
done
# cargo mutants exits 2 when mutants were missed, 3 on timeouts: a report, not a failure here.
case "$status" in 0 | 2 | 3) exit 0 ;; *) exit "$status" ;; esac
