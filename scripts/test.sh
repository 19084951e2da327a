#!/usr/bin/env bash
# Type-checks, then runs every ava test in two passes and ends with
# "N passed, N failed, N skipped".
#   1. host tests: everything that runs no QEMU guest, two files at a time;
#   2. guest tests: the files that boot QEMU guests, one file at a time.
# Under TCG a guest takes a whole core, so guests never run beside the
# timing-sensitive host tests (DHCP, TFTP, zdb), nor beside each other.
# With arguments, runs ava once with them (one file or --match while working).
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
export NODE_OPTIONS="--disable-warning=ExperimentalWarning ${NODE_OPTIONS:-}"

GUEST_TESTS=(test/e2e/*.test.ts test/integration/qemu-rig.test.ts test/integration/image-boot.test.ts)

typecheck=ok
npx tsc --noEmit || typecheck=FAILED
echo "typecheck: ${typecheck}"

passed=0 failed=0 skipped=0 broken=0
# Counts one ava TAP run: "ok N - t # SKIP" is a skip, not a pass; a todo is neither.
run_pass() {
  local name=$1; shift
  local out rc p f s
  out=$(mktemp)
  echo "== ${name}"
  npx ava --tap "$@" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  s=$(grep -cE '^ok [0-9]+.*# SKIP' "$out" || true)
  # What was skipped, by title: a skipped test's title says why.
  grep -E '^ok [0-9]+.*# SKIP' "$out" | sed -E 's/^ok [0-9]+ - /skipped: /; s/ # SKIP.*$//' || true
  p=$(grep -E '^ok [0-9]+' "$out" | grep -cvE '# (SKIP|TODO)' || true)
  f=$(grep -cE '^not ok [0-9]+' "$out" || true)
  rm -f "$out"
  # ava can fail without a "not ok" line (a worker crashed, a timeout, no test matched): count it.
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
    echo "${name}: ava exited with ${rc} and reported no failed test; counted as one failure"
    f=1
  fi
  echo "${name}: ${p} passed, ${f} failed, ${s} skipped"
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
  [ "$rc" = 0 ] || broken=1
}

if [ $# -gt 0 ]; then
  run_pass "ava $*" "$@"
else
  host_tests=()
  for f in test/unit/*.test.ts test/integration/*.test.ts; do
    case " ${GUEST_TESTS[*]} " in *" $f "*) ;; *) host_tests+=("$f") ;; esac
  done
  run_pass "host tests" "${host_tests[@]}"
  run_pass "guest tests" --concurrency 1 "${GUEST_TESTS[@]}"
fi

[ "$typecheck" = ok ] || failed=$((failed + 1))
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
[ "$broken" = 0 ] && [ "$failed" = 0 ]
