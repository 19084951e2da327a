#!/usr/bin/env bash
# Type-checks, then runs every ava test in two passes and ends with
# "N passed, N failed, N skipped".
#   1. host tests: everything that runs no QEMU guest, two files at a time;
#   2. guest tests: the files that boot QEMU guests, ZEROBOOT_GUEST_JOBS
#      files at a time (default 2, one ava run each, longest first so the
#      lanes end together), each with its time.
# Guests never run beside the timing-sensitive host tests (DHCP, TFTP, zdb).
# A TCG guest keeps about one core busy and its tests wait on it with
# deadlines of minutes, so two guest files share the two cores; each rig has
# its own network namespace, subnet and work folder.
# With arguments, runs ava once with them (one file or --match while working).
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
export NODE_OPTIONS="--disable-warning=ExperimentalWarning ${NODE_OPTIONS:-}"

GUEST_JOBS=${ZEROBOOT_GUEST_JOBS:-2}
case "$GUEST_JOBS" in
  '' | *[!0-9]* | 0) echo "ZEROBOOT_GUEST_JOBS must be a whole number of guest files at a time (1 or more), not \"${GUEST_JOBS}\"" >&2; exit 2 ;;
esac
# Longest first: CPU seconds of one run each (2026-12-05, loaded machine): secure-boot 211, agent-node 157,
# demo 129, zdb-power-cut 104, pxe-boot 90, provision-farm 83, agent-secureboot 64, boot-layer 60,
# media-boot 55, image-boot 30, qemu-rig 18, qemu-up-cli 16; agent-hardware (3 VMs) not measured, placed by
# its wall time. The CI log prints each file's time: reorder by it. A guest file not named here runs last.
GUEST_ORDER=(test/e2e/secure-boot.test.ts test/e2e/agent-node.test.ts test/e2e/agent-hardware.test.ts test/e2e/demo.test.ts
  test/e2e/zdb-power-cut.test.ts test/e2e/pxe-boot.test.ts test/e2e/provision-farm.test.ts test/e2e/agent-secureboot.test.ts
  test/e2e/boot-layer.test.ts test/e2e/media-boot.test.ts test/integration/image-boot.test.ts test/integration/qemu-rig.test.ts
  test/e2e/qemu-up-cli.test.ts)
GUEST_TESTS=()
for f in "${GUEST_ORDER[@]}" test/e2e/*.test.ts; do
  [ -f "$f" ] || continue
  case " ${GUEST_TESTS[*]:-} " in *" $f "*) ;; *) GUEST_TESTS+=("$f") ;; esac
done

typecheck=ok
npx tsc --noEmit || typecheck=FAILED
echo "typecheck: ${typecheck}"

passed=0 failed=0 skipped=0 broken=0
run_pass() {
  local name=$1; shift
  local out rc start=$SECONDS
  out=$(mktemp)
  echo "== ${name}"
  npx ava --tap "$@" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  count_tap "$name" "$out" "$rc" " in $((SECONDS - start)) s"
  rm -f "$out"
}

# Counts one ava TAP run: "ok N - t # SKIP" is a skip, not a pass; a todo is neither.
count_tap() {
  local name=$1 out=$2 rc=$3 took=${4:-} p f s
  s=$(grep -cE '^ok [0-9]+.*# SKIP' "$out" || true)
  # What was skipped, by title: a skipped test's title says why.
  grep -E '^ok [0-9]+.*# SKIP' "$out" | sed -E 's/^ok [0-9]+ - /skipped: /; s/ # SKIP.*$//' || true
  p=$(grep -E '^ok [0-9]+' "$out" | grep -cvE '# (SKIP|TODO)' || true)
  f=$(grep -cE '^not ok [0-9]+' "$out" || true)
  # ava can fail without a "not ok" line (a worker crashed, a timeout, no test matched): count it.
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
    echo "${name}: ava exited with ${rc} and reported no failed test; counted as one failure"
    f=1
  fi
  echo "${name}: ${p} passed, ${f} failed, ${s} skipped${took}"
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
  [ "$rc" = 0 ] || broken=1
}

# The guest files, GUEST_JOBS ava runs at a time; each file's output is printed whole when it ends.
run_guests() {
  local dir i=0 shown=0 start=$SECONDS
  dir=$(mktemp -d)
  # Interrupted: end the ava runs started here (by pid); each tears its rigs down on SIGTERM.
  trap 'kill $(jobs -p) 2>/dev/null; exit 130' INT TERM
  echo "== guest tests (${GUEST_JOBS} files at a time)"
  show_ended() {
    while [ "$shown" -lt "$i" ] && [ -f "$dir/$shown.rc" ]; do
      local rc took
      read -r rc took < "$dir/$shown.rc"
      echo "== guest ${GUEST_TESTS[$shown]}"
      cat "$dir/$shown.tap"
      count_tap "guest ${GUEST_TESTS[$shown]}" "$dir/$shown.tap" "$rc" " in ${took} s"
      shown=$((shown + 1))
    done
  }
  for f in "${GUEST_TESTS[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$GUEST_JOBS" ]; do wait -n; show_ended; done
    (
      s=$SECONDS
      npx ava --tap "$f" > "$dir/$i.tap" 2>&1
      echo "$? $((SECONDS - s))" > "$dir/$i.rc.tmp" && mv "$dir/$i.rc.tmp" "$dir/$i.rc"
    ) &
    i=$((i + 1))
  done
  while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n; show_ended; done
  wait
  show_ended
  trap - INT TERM
  echo "guest tests: ${GUEST_JOBS} files at a time, $((SECONDS - start)) s"
  rm -rf "$dir"
}

if [ $# -gt 0 ]; then
  run_pass "ava $*" "$@"
else
  host_tests=()
  for f in test/unit/*.test.ts test/integration/*.test.ts; do
    case " ${GUEST_TESTS[*]} " in *" $f "*) ;; *) host_tests+=("$f") ;; esac
  done
  run_pass "host tests" "${host_tests[@]}"
  run_guests
fi

[ "$typecheck" = ok ] || failed=$((failed + 1))
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
[ "$broken" = 0 ] && [ "$failed" = 0 ]
