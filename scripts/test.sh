#!/usr/bin/env bash
# Type-checks, then runs every ava test; ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
export NODE_OPTIONS="--disable-warning=ExperimentalWarning ${NODE_OPTIONS:-}"
fail_tsc=0
if npx tsc --noEmit; then echo "typecheck: ok"; else echo "typecheck: FAILED"; fail_tsc=1; fi
out=$(mktemp)
npx ava --tap "$@" 2>&1 | tee "$out"
ava_rc=${PIPESTATUS[0]}
passed=$(grep -cE '^ok [0-9]+' "$out" || true)
failed=$(grep -cE '^not ok [0-9]+' "$out" || true)
rm -f "$out"
[ "$fail_tsc" = 1 ] && failed=$((failed + 1))
[ "$fail_tsc" = 0 ] && passed=$((passed + 1))
echo "${passed} passed, ${failed} failed"
[ "$ava_rc" = 0 ] && [ "$fail_tsc" = 0 ] && [ "$failed" = 0 ]
