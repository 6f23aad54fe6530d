#!/usr/bin/env bash
# Benchmark the functions and regenerate docs/performance.md.
#
# Usage: dev/scripts/bench.sh
#
#   1. installs the build tools if missing (dev/scripts/tools.sh --build: zig, the arm64 target);
#   2. builds every measured function: `cargo build --release` (x86_64, the binaries that run
#      here) and `cargo lambda build --release --arm64` (sizes), and zips each bootstrap; and the
#      key ring's rotation function (x86_64 only: it runs, it is not measured);
#   3. runs the hot-path micro-benchmarks (`cargo bench -p shared`, criterion);
#   4. starts DynamoDB Local and moto unless they run (stops only what it started), creates a
#      fresh stack (table, secrets, SES sender) from template.yaml with `SigningAlgorithm=ES256`
#      (`localdev setup`);
#   5. runs `target/release/bench run`: first the key ring's rotation, as Secrets Manager runs it
#      once the stack exists (the rotation function's release binary gets the four step events
#      in order, one ClientRequestToken), so that the signers have a key; then each function's
#      release bootstrap under a local Lambda Runtime API with the environment Lambda gives it,
#      its AWS calls (DynamoDB, Secrets Manager, SES) through counting proxies and the local IAM
#      check (a denied call fails the run), the state each invocation uses up prepared
#      beforehand by the functions' own binaries (the mailer fed the table's stream); writes
#      .local/bench/results.json;
#   6. for each other algorithm of SIGNING_ALGORITHMS (RS256), the same on another fresh stack
#      with `SigningAlgorithm=<it>`, for login, refresh and get-user only, on fresh emulators
#      when the script started them; writes .local/bench/results-<algorithm>.json;
#   7. writes docs/performance.md (`target/release/bench report`).
#   Function logs: .local/bench/<function>.log (the RS256 pass appends); the preparing
#   processes': .local/bench/prep.log (the last pass's).
#
# Environment: COLD_STARTS (20: at a Lambda size, half with init under the share, half without), WARM_HEAVY (200: register, login, password-reset,
# password-change, email-change, delete-user, the mailer's reset mails), WARM_LIGHT (1000: the
# others), BASELINE_RUNS (1000; argon2id: a fifth), SIGNING_ALGORITHMS ("ES256 RS256": ES256,
# the default, is always the full run; "ES256" skips the RS256 pass), SKIP_BUILD=1 (reuse the
# binaries and zips), SKIP_CRITERION=1 (keep the last criterion results), DDB_PORT, MOTO_PORT
# (see dev/scripts/emulators.sh), PARAMETER_OVERRIDES (other template parameters, for every
# stack), POINTS (comma-separated: a memory size in MB at its CPU share over a 20 ms period,
# <MB>@<ms> for another period, `unlimited` for no quota (both CPUs) and no memory limit; default
# unlimited,128,256,512,1024,1769,3008,128@100,1769@100; the RS256 pass: unlimited), CASES (the cases
# of the ES256 pass, comma-separated; default all), RUNNER (a program to run each function
# under, e.g. "strace -ff -tt -o /tmp/init": for finding where time goes, not for figures), MERGE=1
# (add this run's results to the last ones instead of replacing them: a part of a split run; the
# report lists each part and its time). A full run with every point takes about three hours (the
# six password functions 15 to 20 min each, the others about 4): split it by CASES and POINTS,
# e.g. `make bench SIGNING_ALGORITHMS=ES256 CASES=login,refresh POINTS=128,256` then
# `make bench MERGE=1 ...` for the rest. Refresh and get-user log in when login did not run;
# email-verify needs the mailer's sign-up mails in the same part, password-reset the reset mails
# ("mailer (reset)"); the floor must be in one part (the report holds every init against it; a
# later part's floor replaces an earlier one).
# Without limits alone (POINTS=unlimited) about 50 min with the builds on 2 cores, of which about
# 5 min preparing state (sign-ups, logins, mail); each memory size adds its invocations at its
# share (128 MB: 7 % of a CPU). Small counts (COLD_STARTS=2 WARM_HEAVY=5 WARM_LIGHT=20
# BASELINE_RUNS=25 POINTS=unlimited,128) run everything in a few minutes, for trying changes.
# Take final figures on an otherwise idle machine: the report says when it was not.
set -euo pipefail

LOG_TAG=bench
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    '') ;;
    *) die "unknown argument: $1 (see --help)" ;;
esac

FUNCTIONS=(register login refresh get-user health jwks logout logout-all email-verify email-verify-resend
    password-forgot password-reset password-change email-change delete-user mailer)
# Run, not measured: the key ring's rotation, before the functions.
ROTATION=rotate-signing-key
# The cases the passes on the other algorithms measure.
BY_ALGORITHM=login,refresh,get-user
# Lambda's memory sizes (each its CPU share over a 20 ms CFS period and its memory limit), two of
# them again over a 100 ms period, and no quota at all (the earlier reports' reference).
POINTS="${POINTS:-unlimited,128,256,512,1024,1769,3008,128@100,1769@100}"
read -r -a ALGORITHMS <<<"${SIGNING_ALGORITHMS:-ES256 RS256}"
for alg in "${ALGORITHMS[@]}"; do
    case "$alg" in
        ES256 | RS256) ;;
        *) die "SIGNING_ALGORITHMS: unknown algorithm '$alg' (ES256, RS256)" ;;
    esac
done
BENCH_DIR="$LOCAL_DIR/bench"
ARTIFACTS="$BENCH_DIR/artifacts"
cd "$REPO_ROOT"
mkdir -p "$BENCH_DIR"

# zip_bootstrap BOOTSTRAP ZIP: the deployment package (the bootstrap alone, executable, deflated).
zip_bootstrap() {
    python3 - "$1" "$2" <<'PY'
import sys, zipfile
src, dst = sys.argv[1], sys.argv[2]
info = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
info.external_attr = 0o100755 << 16
info.compress_type = zipfile.ZIP_DEFLATED
with open(src, "rb") as f, zipfile.ZipFile(dst, "w") as z:
    z.writestr(info, f.read(), compresslevel=9)
PY
}

if [ "${SKIP_BUILD:-}" != 1 ]; then
    "$SCRIPTS_DIR/tools.sh" --build || die "tool installation failed"
    packages=()
    for f in "${FUNCTIONS[@]}"; do packages+=(-p "$f"); done
    log "building the functions (release, x86_64)"
    cargo build --quiet --release "${packages[@]}" -p "$ROTATION"
    log "building the functions (release, arm64, cargo lambda)"
    PATH="$VENV_DIR/bin:$PATH" cargo lambda build --quiet --release --arm64 "${packages[@]}"
    log "building the driver and localdev"
    cargo build --quiet --release -p bench
    cargo build --quiet -p localdev
    rm -rf "$ARTIFACTS"
    for f in "${FUNCTIONS[@]}"; do
        for arch in arm64 x86_64; do
            if [ "$arch" = arm64 ]; then src="target/lambda/$f/bootstrap"; else src="target/release/$f"; fi
            [ -f "$src" ] || die "missing $src"
            mkdir -p "$ARTIFACTS/$arch/$f"
            cp "$src" "$ARTIFACTS/$arch/$f/bootstrap"
            zip_bootstrap "$src" "$ARTIFACTS/$arch/$f.zip"
        done
    done
fi
for f in "${FUNCTIONS[@]}" "$ROTATION"; do
    [ -x "target/release/$f" ] || die "target/release/$f missing: run without SKIP_BUILD"
done
[ -x target/release/bench ] || die "target/release/bench missing: run without SKIP_BUILD"
[ -x target/release/floor ] || die "target/release/floor missing: run without SKIP_BUILD"

if [ "${SKIP_CRITERION:-}" != 1 ]; then
    log "hot-path micro-benchmarks (cargo bench -p shared)"
    cargo bench --quiet -p shared --bench hot_paths >"$BENCH_DIR/criterion.log" 2>&1 ||
        { tail -n 30 "$BENCH_DIR/criterion.log" >&2; die "cargo bench failed"; }
fi

# Emulators: start what is not running; stop on exit only what this script started.
start_emulators_until_exit

# run_pass ALGORITHM JSON POINTS [CASES]: a fresh stack signing with ALGORITHM, its key ring
# rotated once, then the cases (default: all) measured on it at each of POINTS.
run_pass() {
    local alg="$1" json="$2" points="$3" cases="${4:-}" overrides case_args=()
    [ -z "$cases" ] || case_args=(--cases "$cases")
    overrides="${PARAMETER_OVERRIDES:+$PARAMETER_OVERRIDES }SigningAlgorithm=$alg"
    LOCAL_STACK="bench-$$-$(date +%s)-$(printf '%s' "$alg" | tr '[:upper:]' '[:lower:]')"
    PARAMETER_OVERRIDES="$overrides" target/debug/localdev setup --stack "$LOCAL_STACK"
    log "running the functions with $alg${cases:+ ($cases)} (COLD_STARTS=${COLD_STARTS:-20}, WARM_HEAVY=${WARM_HEAVY:-200}, WARM_LIGHT=${WARM_LIGHT:-1000}, BASELINE_RUNS=${BASELINE_RUNS:-1000})"
    # The IAM check prints each mail SES accepts and its links: thousands of lines here.
    PARAMETER_OVERRIDES="$overrides" LOCAL_STACK="$LOCAL_STACK" target/release/bench run \
        --template template.yaml \
        --bin-dir target/release \
        --artifacts "$ARTIFACTS" \
        --events events \
        --log-dir "$BENCH_DIR" \
        --cold-starts "${COLD_STARTS:-20}" \
        --warm-heavy "${WARM_HEAVY:-200}" \
        --warm-light "${WARM_LIGHT:-1000}" \
        --baseline-runs "${BASELINE_RUNS:-1000}" \
        --points "$points" \
        ${RUNNER:+--runner "$RUNNER"} \
        $([ "${MERGE:-}" = 1 ] && echo --merge) \
        "${case_args[@]}" \
        --json "$json" \
        2> >(grep --line-buffered -v -e '^mail to ' -e '^  https\{0,1\}://' >&2)
}

# restart_emulators: fresh DynamoDB Local and moto for the next pass, when this script started
# them. DynamoDB Local (in memory) slows down with the items of the passes before: in an RS256
# pass on the same emulators, the DynamoDB calls alone took 10 to 50 times as long as in the
# first pass, and the latencies compared the emulator with itself, not the algorithms.
restart_emulators() {
    local started
    started="$(cat "$EMULATORS_STARTED" 2>/dev/null || true)"
    if [ -z "$started" ]; then
        log "the emulators were running before: the next pass shares them (its latencies may be high)"
        return
    fi
    # shellcheck disable=SC2086 # one emulator name per word
    "$SCRIPTS_DIR/emulators.sh" stop $started
    : >"$EMULATORS_STARTED"
    EMULATORS_STARTED_FILE="$EMULATORS_STARTED" "$SCRIPTS_DIR/emulators.sh" start
    eval "$("$SCRIPTS_DIR/emulators.sh" env)"
}

for f in "${FUNCTIONS[@]}" "$ROTATION"; do : >"$BENCH_DIR/$f.log"; done
# ES256, the template's default, is the full run and the whole report.
run_pass ES256 "$BENCH_DIR/results.json" "$POINTS" "${CASES:-}"
others=()
for alg in "${ALGORITHMS[@]}"; do
    [ "$alg" != ES256 ] || continue
    restart_emulators
    run_pass "$alg" "$BENCH_DIR/results-$alg.json" unlimited "$BY_ALGORITHM"
    others+=(--algorithm-json "$BENCH_DIR/results-$alg.json")
done
target/release/bench report \
    --json "$BENCH_DIR/results.json" \
    "${others[@]}" \
    --criterion target/criterion \
    --out docs/performance.md
