#!/usr/bin/env bash
# Lint a SAM template offline (no AWS credentials, no network), with the tools installed by
# dev/scripts/tools.sh in .tools/venv:
#   1. cfn-lint on the SAM template;
#   2. offline SAM -> CloudFormation transform (dev/scripts/sam_transform.py) written to
#      .local/template.transformed.json (another template's to .local/<its path without the
#      extension, each / a ->.transformed.json, e.g. examples-protected-api-template.transformed.json),
#      then cfn-lint on that output. cfn-lint alone misses
#      some errors in SAM templates (e.g. a !Ref to a missing resource in Globals or in a
#      policy) that show up on the generated CloudFormation. W3005 is ignored there only:
#      SAM itself generates those redundant DependsOn;
#   3. sam validate --lint.
# Runs every step, then exits non-zero if any failed, naming the failed steps.
#
# Usage: dev/scripts/lint-template.sh [TEMPLATE]   (default: template.yaml at the repository root;
#        `make test` also lints examples/protected-api/template.yaml)
set -euo pipefail

LOG_TAG=lint-template
# shellcheck source=dev/scripts/lib.sh
. "$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"

TEMPLATE="${1:-$REPO_ROOT/template.yaml}"
BIN="$VENV_DIR/bin"

[ -f "$TEMPLATE" ] || die "template not found: $TEMPLATE"
TEMPLATE="$(cd -- "$(dirname -- "$TEMPLATE")" && pwd -P)/$(basename -- "$TEMPLATE")"
transformed_name="${TEMPLATE#"$REPO_ROOT"/}"
transformed_name="${transformed_name%.*}"
transformed_name="${transformed_name//\//-}"
TRANSFORMED="$LOCAL_DIR/${transformed_name#-}.transformed.json"
for tool in cfn-lint sam python; do
    [ -x "$BIN/$tool" ] || die "$BIN/$tool missing: run dev/scripts/tools.sh first"
done
mkdir -p -- "$LOCAL_DIR"

# Offline and quiet: a dummy region for tools that insist on one, no telemetry, and no
# credentials from the caller's environment or profile files.
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="$AWS_REGION"
export SAM_CLI_TELEMETRY=0
unset AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

failed=()

step() {
    local name="$1"
    shift
    log "step: $name"
    if "$@"; then
        log "ok: $name"
    else
        log "FAILED: $name"
        failed+=("$name")
    fi
}

transform_and_lint() {
    rm -f -- "$TRANSFORMED"
    "$BIN/python" "$SCRIPTS_DIR/sam_transform.py" --region "$AWS_REGION" "$TEMPLATE" "$TRANSFORMED" || return 1
    "$BIN/cfn-lint" --ignore-checks W3005 --regions "$AWS_REGION" -- "$TRANSFORMED"
}

# sam resolves paths in the template relative to the current directory.
sam_validate() {
    (cd -- "$(dirname -- "$TEMPLATE")" && "$BIN/sam" validate --lint --template "$TEMPLATE")
}

step "1 cfn-lint (SAM template)" "$BIN/cfn-lint" --regions "$AWS_REGION" -- "$TEMPLATE"
step "2 cfn-lint (transformed CloudFormation)" transform_and_lint
step "3 sam validate --lint" sam_validate

if [ "${#failed[@]}" -gt 0 ]; then
    for name in "${failed[@]}"; do
        log "failed step: $name"
    done
    exit 1
fi
log "all checks passed ($TEMPLATE)"
