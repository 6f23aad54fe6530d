#!/usr/bin/env bash
# Show that every action template.yaml grants is needed: remove each one in turn (from the
# transformed template, as CloudFormation would receive it), run the integration tests against an
# IAM check holding that mutant, and expect a test to fail. Not part of `make test` (about one
# integration-test run per granted action).
#
# Usage: dev/scripts/iam-mutants.sh
#
# Prints one line per mutant (function, statement, action removed, the first failing test, time)
# and exits non-zero if any mutant survived (no test failed without that action). Logs:
# .local/iam-mutants/<n>.log. Environment: DDB_PORT, MOTO_PORT (as dev/scripts/emulators.sh),
# MUTANT_IAM_PORT (4598).
set -euo pipefail

LOG_TAG=iam-mutants
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    '') ;;
    *) die "unknown argument: $1 (see --help)" ;;
esac

PORT="${MUTANT_IAM_PORT:-4598}"
OUT="$LOCAL_DIR/iam-mutants"
cd "$REPO_ROOT"
rm -rf "$OUT"
mkdir -p "$OUT"

"$SCRIPTS_DIR/tools.sh"
start_emulators_until_exit

log "building localdev and the integration tests"
cargo build --quiet -p localdev
cargo test --quiet -p tests --tests --no-run

"$VENV_DIR/bin/python" "$SCRIPTS_DIR/sam_transform.py" template.yaml "$OUT/base.json"
# One mutant per (function, statement, action): that action removed, and the statement with it
# when it was its only action. Manifest lines: <n> <function> <statement> <action>. The statement
# SAM adds for an event source's on-failure destination is Lambda's, not the code's (locally the
# destination is a file): no test can need it, so it has no mutant.
"$VENV_DIR/bin/python" - "$OUT" <<'PY'
import copy, json, sys
out = sys.argv[1]
base = json.load(open(f"{out}/base.json"))
resources = base["Resources"]
n = 0
with open(f"{out}/manifest", "w") as manifest:
    for fid, fn in resources.items():
        if fn["Type"] != "AWS::Lambda::Function":
            continue
        role = fn["Properties"]["Role"]["Fn::GetAtt"][0]
        destinations = [
            r["Properties"].get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            for r in resources.values()
            if r["Type"] == "AWS::Lambda::EventSourceMapping" and r["Properties"].get("FunctionName") == {"Ref": fid}
        ]
        index = 0
        for p, policy in enumerate(resources[role]["Properties"].get("Policies", [])):
            for s, statement in enumerate(policy["PolicyDocument"]["Statement"]):
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                targets = statement.get("Resource")
                targets = targets if isinstance(targets, list) else [targets]
                for_event_source = set(actions) <= {"sqs:SendMessage", "sns:Publish"} and all(
                    t in destinations for t in targets
                )
                if statement["Effect"] == "Allow" and not for_event_source:
                    for action in actions:
                        mutant = copy.deepcopy(base)
                        doc = mutant["Resources"][role]["Properties"]["Policies"][p]["PolicyDocument"]
                        kept = [a for a in actions if a != action]
                        if kept:
                            doc["Statement"][s]["Action"] = kept
                        else:
                            del doc["Statement"][s]
                        n += 1
                        json.dump(mutant, open(f"{out}/{n}.json", "w"))
                        manifest.write(f"{n} {fid} {index} {action}\n")
                index += 1
PY

total_start="$(now_ms)"
survivors=0
while read -r n function statement action; do
    start="$(now_ms)"
    target/debug/localdev iam-proxy --template "$OUT/$n.json" --listen "127.0.0.1:$PORT" \
        2>"$OUT/$n.check.log" </dev/null &
    CHECK_PID=$!
    wait_for_port "$PORT" "the IAM check for mutant $n" "$OUT/$n.check.log"
    if LOCAL_IAM_ENDPOINT="http://127.0.0.1:$PORT" cargo test --quiet -p tests --tests >"$OUT/$n.log" 2>&1; then
        verdict="SURVIVED: no test failed"
        survivors=$((survivors + 1))
    else
        failed="$(grep -m1 -oE '^---- [^ ]+ stdout ----' "$OUT/$n.log" | sed -E 's/^---- ([^ ]+) stdout ----$/\1/' || true)"
        verdict="killed by ${failed:-a failing test (see $OUT/$n.log)}"
    fi
    stop_check
    printf '%-18s statement %s  %-32s %s (%d s)\n' "$function" "$statement" "$action" "$verdict" \
        "$((($(now_ms) - start) / 1000))"
done <"$OUT/manifest"
log "$(wc -l <"$OUT/manifest") mutants, $survivors survived, $((($(now_ms) - total_start) / 1000)) s in all"
[ "$survivors" -eq 0 ]
