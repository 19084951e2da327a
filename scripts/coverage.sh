#!/usr/bin/env bash
# Line coverage of the host test suite (unit + integration, no QEMU guests),
# including every process the tests spawn: NODE_V8_COVERAGE is inherited by
# the servers, which write their coverage when they exit. Prints the table
# per folder (scripts/coverage-report.ts). Arguments go to the report
# (--files adds one row per file).
#   COVERAGE_DIR=/tmp/cov bash scripts/coverage.sh [--files]
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
export NODE_OPTIONS="--disable-warning=ExperimentalWarning ${NODE_OPTIONS:-}"
# Servers killed with SIGKILL write no coverage at exit: this preload writes it every 2 s.
flush="--import=$(pwd)/scripts/coverage-flush.ts"

# The files that boot QEMU guests (scripts/test.sh's guest pass) are left out.
GUEST_TESTS=(test/integration/qemu-rig.test.ts test/integration/image-boot.test.ts)
host_tests=()
for f in test/unit/*.test.ts test/integration/*.test.ts; do
  case " ${GUEST_TESTS[*]} " in *" $f "*) ;; *) host_tests+=("$f") ;; esac
done

raw=${COVERAGE_DIR:-$(mktemp -d /tmp/zeroboot-coverage.XXXXXX)}
rm -rf "$raw" && mkdir -p "$raw"
echo "raw coverage: $raw"
NODE_V8_COVERAGE="$raw" NODE_OPTIONS="$NODE_OPTIONS $flush" npx ava --tap "${host_tests[@]}" > "$raw.tap" 2>&1
rc=$?
echo "ava exit ${rc}: $(grep -cE '^ok [0-9]+' "$raw.tap") ok, $(grep -cE '^not ok [0-9]+' "$raw.tap") not ok (TAP in $raw.tap)"
grep -E '^not ok [0-9]+' "$raw.tap" || true
node scripts/coverage-report.ts "$raw" "$@"
