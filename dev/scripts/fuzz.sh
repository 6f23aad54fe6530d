#!/usr/bin/env bash
# dev/scripts/fuzz.sh [TARGET] [SECONDS]: runs the cargo-fuzz targets in dev/fuzz/ (default: every
# target, 600 seconds each, one after the other). Not part of `make test` or CI.
#
#   request_decoding  arbitrary bytes as the JSON body of every route that reads one
#   token_parsing     arbitrary strings as access tokens, refresh tokens and Authorization headers
#
# Works on the stable toolchain: cargo-fuzz passes nightly-only `-Z` flags (sanitizer, coverage
# instrumentation), which stable rustc accepts under RUSTC_BOOTSTRAP=1. The address sanitizer
# works as shipped (stable's rust-std carries its runtime); set FUZZ_SANITIZER=none where it does
# not. So, by hand:
#
#   cd dev/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir . request_decoding -- -max_total_time=600
#
# libFuzzer runs in-process on one core (no -jobs/-workers: those fork and write fuzz-N.log files).
# cargo-fuzz is installed from crates.io if missing. Corpora are seeded from the events/ fixtures
# into dev/fuzz/corpus/<target> (gitignored, kept between runs); full logs go to
# dev/fuzz/target/logs/<target>.log; a crash leaves its input in dev/fuzz/artifacts/<target>/ and makes
# this script exit non-zero after the remaining targets have run.
#
#   FUZZ_SANITIZER   address (default) or none
#   FUZZ_ARGS        extra libFuzzer flags, e.g. "-max_len=20000 -seed=1"
set -euo pipefail

LOG_TAG=fuzz
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

ALL_TARGETS=(request_decoding token_parsing)
FUZZ_DIR="$REPO_ROOT/dev/fuzz"
EVENTS_DIR="$REPO_ROOT/events"

target="${1:-all}"
seconds="${2:-600}"
case "$seconds" in '' | *[!0-9]*) die "SECONDS must be a whole number, not '$seconds'" ;; esac
if [ "$target" = all ]; then
    targets=("${ALL_TARGETS[@]}")
else
    case " ${ALL_TARGETS[*]} " in *" $target "*) ;; *) die "unknown target '$target' (one of: ${ALL_TARGETS[*]})" ;; esac
    targets=("$target")
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
command -v python3 >/dev/null || die "python3 is needed to seed the corpora"

# Seeds: every request body of the POST fixtures; every Authorization header and refresh token of
# the fixtures, plus an access token in the shape of a valid one (ES256 header naming the kid of
# `shared::testing::TEST_KEY`, valid claims, a signature of the right length that is not one) and
# a well-formed refresh token, so that mutations start past the cheap refusals.
seed_corpora() {
    python3 - "$EVENTS_DIR" "$FUZZ_DIR/corpus" <<'PY'
import base64, json, os, pathlib, sys

events, corpus = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
bodies, tokens = corpus / "request_decoding", corpus / "token_parsing"
for d in (bodies, tokens):
    d.mkdir(parents=True, exist_ok=True)

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

for path in sorted(events.glob("*.json")):
    event = json.loads(path.read_text())
    body = event.get("body")
    if event.get("httpMethod") == "POST" and isinstance(body, str):
        raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
        (bodies / f"seed-{path.stem}").write_bytes(raw)
        try:
            token = json.loads(raw).get("refresh_token")
        except (ValueError, AttributeError):
            token = None
        if isinstance(token, str):
            (tokens / f"seed-{path.stem}").write_text(token)
    header = (event.get("headers") or {}).get("Authorization")
    if header:
        (tokens / f"seed-{path.stem}").write_text(header)

signing_input = ".".join([
    b64url(json.dumps({"alg": "ES256", "typ": "at+jwt", "kid": "P7pe5cKX_pR0AI8E0q2kNuHOvjj6IJJCots4z7ZALJo"}).encode()),
    b64url(json.dumps({"iss": "https://abc123.execute-api.us-east-1.amazonaws.com/v1", "aud": "serverless-auth",
                       "sub": "0d9a4c1e-8f7b-4a6d-9c3e-2b1a0f9e8d7c", "iat": 1_700_000_000, "exp": 4_102_444_800,
                       "jti": "seed"}).encode()),
])
signature = b64url(os.urandom(64))
access = f"{signing_input}.{signature}"
refresh = b64url(bytes(range(48)))
(tokens / "seed-valid-access-token").write_text(access)
(tokens / "seed-valid-bearer").write_text(f"Bearer {access}")
(tokens / "seed-two-headers").write_text(f"Bearer {access}\nbearer {access}")
(tokens / "seed-valid-refresh-token").write_text(refresh)
(bodies / "seed-valid-refresh").write_text(json.dumps({"refresh_token": refresh}))
PY
}

export RUSTC_BOOTSTRAP=1
sanitizer="${FUZZ_SANITIZER:-address}"
log_dir="$FUZZ_DIR/target/logs"
mkdir -p "$log_dir"
seed_corpora

failed=()
for t in "${targets[@]}"; do
    log "$t: fuzzing for ${seconds}s (sanitizer: $sanitizer; log: ${log_dir#"$REPO_ROOT"/}/$t.log)"
    status=0
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    (cd "$FUZZ_DIR" && cargo fuzz run --fuzz-dir . --sanitizer "$sanitizer" "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -print_final_stats=1 ${FUZZ_ARGS:-}) >"$log_dir/$t.log" 2>&1 || status=$?
    if [ "$status" -eq 0 ]; then
        grep -E '^#[0-9]+[[:space:]]+DONE' "$log_dir/$t.log" | tail -n 1 | sed "s/^/$t: /"
        grep -E '^Done [0-9]+ runs' "$log_dir/$t.log" | tail -n 1 | sed "s/^/$t: /"
    else
        log "$t: FAILED (exit $status); the end of its log:"
        grep -vE '^[[:space:]]*Compiling ' "$log_dir/$t.log" | tail -n 40 >&2
        failed+=("$t")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    die "crash or failure in: ${failed[*]} (inputs in dev/fuzz/artifacts/)"
fi
log "no crash"
