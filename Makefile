# The two commands a newcomer needs (see README.md). Everything they need is installed and
# started by the scripts they call.
.PHONY: local test lint fmt artifacts bench

## Run the whole API locally on http://127.0.0.1:3000 (Ctrl-C stops it).
local:
	@dev/scripts/local.sh

## Run the whole test suite: template lint, clippy, unit, integration and end-to-end tests.
test:
	@dev/scripts/test.sh

## Lint the SAM templates only: template.yaml and examples/protected-api/template.yaml.
lint:
	@dev/scripts/tools.sh && dev/scripts/lint-template.sh && dev/scripts/lint-template.sh examples/protected-api/template.yaml

fmt:
	cargo fmt --all

## Check the deployable arm64 bootstraps (sam build): glibc <= 2.34, one invocation each under qemu.
artifacts:
	@dev/scripts/check-artifacts.sh

## Benchmark every function at Lambda's CPU shares and memory sizes; regenerate docs/performance.md
## and docs/plots (hours; split it with CASES=, POINTS=, MERGE=1: see dev/scripts/bench.sh).
bench:
	@dev/scripts/bench.sh
