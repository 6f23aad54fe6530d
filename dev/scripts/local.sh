#!/usr/bin/env bash
# `make local`: the whole API on http://127.0.0.1:$API_PORT, as the deployed API Gateway serves it.
#
# Installs what is missing (dev/scripts/tools.sh), starts DynamoDB Local and moto unless they are
# already serving, creates the stack's table and secrets from template.yaml, starts the local IAM
# check (`localdev iam-proxy`: every AWS call of a function is held to that function's statements
# in the template), runs the functions under a real Lambda runtime emulator (`cargo lambda watch`,
# reloading on code changes; each function process gets exactly the environment Lambda would give
# it, through `localdev run-function` as cargo's runner) and puts the template's REST API in front
# of them (`localdev gateway`: same routes, REST v1 proxy events, API-key check, usage-plan and
# per-route throttling, gateway responses), and feeds the table's stream to the functions with a
# DynamoDB event (`localdev stream`: the mailer, as its event source mapping would), so mail is
# sent: SES (moto) accepts it, and `GET /_local/outbox` on the API's port lists it, links and all.
# It rotates the signing key ring once, as the deployed rotation schedule does at creation
# (`localdev rotate`: the rotation function's four steps). Ctrl-C stops everything it started.
#
# Environment:
#   LOCAL_API_KEY        the API key clients must send as x-api-key (default: generated, printed)
#   PARAMETER_OVERRIDES  template parameter overrides, as for sam deploy: "Name=Value Name2=Value2"
#   LOCAL_STACK          the stack's name; its resources are <stack>-<LogicalId> (serverless-auth-local)
#   API_PORT (3000)  LAMBDA_PORT (9000)  IAM_PORT (4566)  DDB_PORT (8000)  MOTO_PORT (5000)
#   LOCAL_IAM_ENDPOINT   an IAM check already running (the test suite's); none is started then
#   LOCAL_READY_FILE     if set, written once the API answers (used by the test suite)
set -euo pipefail

LOG_TAG=local
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

API_PORT="${API_PORT:-3000}"
LAMBDA_PORT="${LAMBDA_PORT:-9000}"
IAM_PORT="${IAM_PORT:-4566}"
export LOCAL_STACK="${LOCAL_STACK:-serverless-auth-local}"
# Tokens name the local gateway as their issuer (its base URL serves the discovery document), as
# the deployed API's own URL does; an override of TokenIssuer comes later and wins.
export PARAMETER_OVERRIDES="TokenIssuer=http://127.0.0.1:$API_PORT ${PARAMETER_OVERRIDES:-}"
export LOCAL_TEMPLATE="$REPO_ROOT/template.yaml"
API_KEY="${LOCAL_API_KEY:-}"
if [ -z "$API_KEY" ]; then
    API_KEY="local-$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)"
fi

ports=("$API_PORT" "$LAMBDA_PORT")
if [ -z "${LOCAL_IAM_ENDPOINT:-}" ]; then ports+=("$IAM_PORT"); fi
for port in "${ports[@]}"; do
    if port_open "$port"; then die "port $port is already in use (is another 'make local' running?)"; fi
done

mkdir -p "$LOCAL_DIR"
started_emulators="$(mktemp "$LOCAL_DIR/started-emulators.XXXXXX")"
children=()

# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for pid in "${children[@]+"${children[@]}"}"; do
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${children[@]+"${children[@]}"}"; do
        for _ in $(seq 1 50); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
    mapfile -t ours <"$started_emulators" || true
    if [ "${#ours[@]}" -gt 0 ]; then "$SCRIPTS_DIR/emulators.sh" stop "${ours[@]}" || true; fi
    rm -f "$started_emulators" "${LOCAL_READY_FILE:-/nonexistent}"
    log "stopped"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$SCRIPTS_DIR/tools.sh"
EMULATORS_STARTED_FILE="$started_emulators" "$SCRIPTS_DIR/emulators.sh" start
eval "$("$SCRIPTS_DIR/emulators.sh" env)"

cd "$REPO_ROOT"
log "building localdev and the functions (debug profile; argon2 is optimised even there)"
cargo build --quiet -p localdev
LOCALDEV="$REPO_ROOT/target/debug/localdev"
# One function at a time, exactly as `cargo lambda watch` runs them (`cargo run --bin <name>`), so
# that its first invocation finds them built with the same features instead of rebuilding.
for function in $("$LOCALDEV" binaries); do
    cargo build --quiet --bin "$function"
done
"$LOCALDEV" setup --stack "$LOCAL_STACK"

if [ -z "${LOCAL_IAM_ENDPOINT:-}" ]; then
    export LOCAL_IAM_ENDPOINT="http://127.0.0.1:$IAM_PORT"
    setsid "$LOCALDEV" iam-proxy --listen "127.0.0.1:$IAM_PORT" </dev/null &
    children+=("$!")
    wait_for_port "$IAM_PORT" "the IAM check"
fi

# cargo runs each function through `localdev run-function`, which gives the process exactly the
# function's Lambda environment (its variables, its stack's names, its own access key id, AWS
# calls to the IAM check) and nothing else.
host="$(rustc -vV | sed -n 's/^host: //p')"
runner_var="CARGO_TARGET_$(printf '%s' "$host" | tr 'a-z-' 'A-Z_')_RUNNER"
# setsid: each child leads its own process group, so cleanup stops whole trees.
env "$runner_var=$LOCALDEV run-function" PATH="$VENV_DIR/bin:$PATH" \
    setsid cargo lambda watch --quiet -A 127.0.0.1 -P "$LAMBDA_PORT" --concurrency 4 --timeout 60 </dev/null &
children+=("$!")
for _ in $(seq 1 600); do port_open "$LAMBDA_PORT" && break; sleep 0.2; done
port_open "$LAMBDA_PORT" || die "cargo lambda watch did not start on port $LAMBDA_PORT"

setsid "$LOCALDEV" stream --stack "$LOCAL_STACK" --invoke-url "http://127.0.0.1:$LAMBDA_PORT" \
    --failures-dir "$LOCAL_DIR" </dev/null &
children+=("$!")

# As the deployed stack's rotation schedule does right after creation: the signing key ring's
# first key (a key is added on each run).
"$LOCALDEV" rotate --stack "$LOCAL_STACK" --invoke-url "http://127.0.0.1:$LAMBDA_PORT"

setsid "$LOCALDEV" gateway --template template.yaml --listen "127.0.0.1:$API_PORT" \
    --lambda "http://127.0.0.1:$LAMBDA_PORT" --api-key "$API_KEY" --iam-endpoint "$LOCAL_IAM_ENDPOINT" </dev/null &
children+=("$!")
wait_for_port "$API_PORT" "the local API gateway"

cat >&2 <<EOF

  The auth API is running on http://127.0.0.1:$API_PORT
  API key (send as x-api-key): $API_KEY
  Stack: $LOCAL_STACK (table $LOCAL_STACK-AuthTable)   IAM check: $LOCAL_IAM_ENDPOINT

  curl -si -H "x-api-key: $API_KEY" -H 'content-type: application/json' \\
       -d '{"email":"ada@example.com","password":"correct horse battery staple","name":"Ada"}' \\
       http://127.0.0.1:$API_PORT/register

  Mail sent (newest first): curl -s http://127.0.0.1:$API_PORT/_local/outbox
  Rotate the signing key ring now: target/debug/localdev rotate --stack $LOCAL_STACK --invoke-url http://127.0.0.1:$LAMBDA_PORT
  Stream records given up on: $LOCAL_DIR/$LOCAL_STACK-<on-failure destination>.jsonl

  Ctrl-C stops everything.

EOF
if [ -n "${LOCAL_READY_FILE:-}" ]; then printf '%s\n' "$API_KEY" >"$LOCAL_READY_FILE"; fi
wait -n "${children[@]}"
die "a local service exited unexpectedly"
