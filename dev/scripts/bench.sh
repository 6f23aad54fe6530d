#!/usr/bin/env bash
# Benchmark the functions and regenerate docs/performance.md.
#
# Usage: dev/scripts/bench.sh
#
#   1. installs the build tools if missing (dev/scripts/tools.sh --build: zig, the arm64 target);
#   2. builds every function: `cargo build --release` (x86_64, the binaries that run here)
#      and `cargo lambda build --release --arm64` (sizes), and zips each bootstrap;
#   3. runs the hot-path micro-benchmarks (`cargo bench -p shared`, criterion);
#   4. starts DynamoDB Local and moto unless they run (stops only what it started), creates a
#      fresh stack (table, secrets, SES sender) from template.yaml (`localdev setup`);
#   5. runs `target/release/bench run`: each function's release bootstrap under a local Lambda
#      Runtime API with the environment Lambda gives it, its AWS calls (DynamoDB, Secrets
#      Manager, SES) through counting proxies and the local IAM check (a denied call fails the
#      run), the state each invocation uses up prepared beforehand by the functions' own binaries
#      (the mailer fed the table's stream); writes docs/performance.md and
#      .local/bench/results.json. Function logs: .local/bench/<function>.log; the preparing
#      processes': .local/bench/prep.log.
#
# Environment: COLD_STARTS (5), WARM_HEAVY (200: register, login, password-reset,
# password-change, email-change, delete-user, the mailer's reset mails), WARM_LIGHT (1000: the
# others), BASELINE_RUNS (1000; argon2id: a fifth), SKIP_BUILD=1 (reuse the binaries and zips),
# SKIP_CRITERION=1 (keep the last criterion results), DDB_PORT, MOTO_PORT (see
# dev/scripts/emulators.sh). About 45 min with the builds on 2 cores, of which about 5 min
# preparing state (sign-ups, logins, mail); small counts (COLD_STARTS=2 WARM_HEAVY=5
# WARM_LIGHT=20 BASELINE_RUNS=25) run everything in a few minutes, for trying changes.
# Take final figures on an otherwise idle machine: the report says when it was not.
set -euo pipefail

LOG_TAG=bench
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
    -h | --help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    '') ;;
    *) die "unknown argument: $1 (see --help)" ;;
esac

FUNCTIONS=(register login refresh get-user health logout logout-all email-verify email-verify-resend
    password-forgot password-reset password-change email-change delete-user mailer)
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
    cargo build --quiet --release "${packages[@]}"
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
for f in "${FUNCTIONS[@]}"; do
    [ -x "target/release/$f" ] || die "target/release/$f missing: run without SKIP_BUILD"
done
[ -x target/release/bench ] || die "target/release/bench missing: run without SKIP_BUILD"

if [ "${SKIP_CRITERION:-}" != 1 ]; then
    log "hot-path micro-benchmarks (cargo bench -p shared)"
    cargo bench --quiet -p shared --bench hot_paths >"$BENCH_DIR/criterion.log" 2>&1 ||
        { tail -n 30 "$BENCH_DIR/criterion.log" >&2; die "cargo bench failed"; }
fi

# Emulators: start what is not running; stop on exit only what this script started.
start_emulators_until_exit

LOCAL_STACK="bench-$$-$(date +%s)"
export LOCAL_STACK
target/debug/localdev setup --stack "$LOCAL_STACK"

log "running the functions (COLD_STARTS=${COLD_STARTS:-5}, WARM_HEAVY=${WARM_HEAVY:-200}, WARM_LIGHT=${WARM_LIGHT:-1000}, BASELINE_RUNS=${BASELINE_RUNS:-1000})"
for f in "${FUNCTIONS[@]}"; do : >"$BENCH_DIR/$f.log"; done
# The IAM check prints each mail SES accepts and its links: thousands of lines here.
target/release/bench run \
    --template template.yaml \
    --bin-dir target/release \
    --artifacts "$ARTIFACTS" \
    --events events \
    --log-dir "$BENCH_DIR" \
    --cold-starts "${COLD_STARTS:-5}" \
    --warm-heavy "${WARM_HEAVY:-200}" \
    --warm-light "${WARM_LIGHT:-1000}" \
    --baseline-runs "${BASELINE_RUNS:-1000}" \
    --criterion target/criterion \
    --out docs/performance.md \
    --json "$BENCH_DIR/results.json" \
    2> >(grep --line-buffered -v -e '^mail to ' -e '^  https\{0,1\}://' >&2)
