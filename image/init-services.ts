// Two /init steps driven by the kernel command line, as busybox sh text for
// image/init.ts:
//   zeroboot.mount=<dev>:<dir>[:<fstype>]  after the modules are loaded,
//     waits for /dev/<dev> and mounts it (ext4 unless said) on <dir>;
//     prints `ZEROBOOT-MOUNT dev=/dev/<dev> dir=<dir>` or
//     `ZEROBOOT-FAIL reason=mount-failed ...`. The disk must already hold
//     the filesystem: the image carries no mkfs.
//   zeroboot.run=<arg>,<arg>,...  once the network is up, starts
//     `zeroboot <arg> <arg> ...` (commas stand for spaces, which a kernel
//     argument cannot hold) in the background, its output on the console;
//     prints `ZEROBOOT-RUN pid=<pid>`, or `ZEROBOOT-FAIL reason=no-runtime`
//     when the image carries no Node runtime (spec key `node`).
//   zeroboot.exec=<path>,<arg>,...  after zeroboot.run (and after the
//     at: boot layers are fetched, so the program may come from one:
//     /layers/<name>/...), starts <path> <arg> ... in the background, its
//     output on the console; prints `ZEROBOOT-EXEC pid=<pid> cmd=<...>`.
//   the agent: once the network is up (after the steps above), when the
//     image carries `zeroboot agent` (node.commands lists `agent`), starts
//     `zeroboot agent --server <url> --interval <s>` in the background, its
//     lines on the console (prefixed `zeroboot agent:` by the agent, which
//     prints `ZEROBOOT-AGENT node=<id> report=accepted n=<k>` for each
//     report the server took); prints `ZEROBOOT-AGENT-START pid=<pid>
//     server=<url>` (the pid of the subshell watching it) and, should the
//     agent end, `ZEROBOOT-AGENT-EXIT code=<n>`. The URL is zeroboot.server= (the boot server writes it
//     into every node's command line), else the DHCP server on port 80.
//     zeroboot.agent=off keeps it from starting; zeroboot.agentinterval=<s>
//     sets the report interval (default 60, at least 5).
// They read $MOUNT, $RUN, $EXEC, $SERVER, $AGENT and $AGENT_INTERVAL, set by /init's command-line loop.
import { carriedPath, SOURCES_DIR, ZEROBOOT_PATH } from './node-runtime.ts';

/** What the agent step and the agent print on the console; a harness matches these. */
export const AGENT_MARKERS = {
  start: /ZEROBOOT-AGENT-START pid=(\d+) server=(\S+)/,
  accepted: /ZEROBOOT-AGENT node=(\S+) report=accepted n=(\d+)/,
  exit: /ZEROBOOT-AGENT-EXIT code=(\d+)/,
} as const;

export const DEFAULT_AGENT_INTERVAL_SECONDS = 60;

/** Lines for /init's `case "$w"` over the command line words. */
export function serviceArgCases(): string {
  return `    zeroboot.mount=*) MOUNT=\${w#zeroboot.mount=} ;;
    zeroboot.run=*) RUN=\${w#zeroboot.run=} ;;
    zeroboot.exec=*) EXEC=\${w#zeroboot.exec=} ;;
    zeroboot.agent=*) AGENT=\${w#zeroboot.agent=} ;;
    zeroboot.agentinterval=*) AGENT_INTERVAL=\${w#zeroboot.agentinterval=} ;;`;
}

/** The mount step; `waitTenths` bounds the wait for the device to appear. */
export function mountStep(waitTenths: number): string {
  return `if [ -n "$MOUNT" ]; then
  MDEV=\${MOUNT%%:*}
  MREST=\${MOUNT#*:}
  MDIR=\${MREST%%:*}
  MTYPE=ext4
  [ "$MREST" != "$MDIR" ] && MTYPE=\${MREST#*:}
  case "$MDEV" in /*) ;; *) MDEV=/dev/$MDEV ;; esac
  waited=0
  until [ -b "$MDEV" ]; do
    [ "$waited" -ge ${waitTenths} ] && break
    sleep 0.1
    waited=$((waited + 1))
  done
  mkdir -p "$MDIR"
  if mount -t "$MTYPE" "$MDEV" "$MDIR" 2>/run/zeroboot/mount.log; then
    say "ZEROBOOT-MOUNT dev=$MDEV dir=$MDIR"
  else
    fail "mount-failed dev=$MDEV dir=$MDIR type=$MTYPE error=$(head -n 1 /run/zeroboot/mount.log | tr ' ' _)"
  fi
fi`;
}

/** The run step: after ZEROBOOT-UP, before /init settles into its final state. */
export function runStep(): string {
  return `if [ -n "$RUN" ]; then
  if [ -x /${ZEROBOOT_PATH} ]; then
    # Commas stand for spaces; the words are split on purpose.
    /${ZEROBOOT_PATH} $(echo "$RUN" | tr ',' ' ') </dev/null >/dev/console 2>&1 &
    say "ZEROBOOT-RUN pid=$! cmd=$RUN"
  else
    fail "no-runtime cmd=$RUN"
  fi
fi
if [ -n "$EXEC" ]; then
  # Commas stand for spaces; the words are split on purpose.
  $(echo "$EXEC" | tr ',' ' ') </dev/null >/dev/console 2>&1 &
  say "ZEROBOOT-EXEC pid=$! cmd=$EXEC"
fi`;
}

/** The agent step: last before /init settles, so zeroboot.run/exec and the at: boot layers come first. */
export function agentStep(): string {
  return `if [ -x /${ZEROBOOT_PATH} ] && [ -f /${SOURCES_DIR}/${carriedPath('cli/commands/agent.ts')} ] && [ "$AGENT" != off ]; then
  ASERVER=\${SERVER:-$serverid}
  case "$ASERVER" in http://*|https://*|'') ;; *) ASERVER=http://$ASERVER ;; esac
  case "$AGENT_INTERVAL" in ''|*[!0-9]*) AGENT_INTERVAL=${DEFAULT_AGENT_INTERVAL_SECONDS} ;; esac
  if [ -n "$ASERVER" ]; then
    # In a subshell that says when the agent ended, so a harness need not wait out its deadline.
    (
      /${ZEROBOOT_PATH} agent --server "$ASERVER" --interval "$AGENT_INTERVAL" </dev/null >/dev/console 2>&1
      say "ZEROBOOT-AGENT-EXIT code=$?"
    ) &
    say "ZEROBOOT-AGENT-START pid=$! server=$ASERVER"
  else
    say "zeroboot: agent not started: no zeroboot.server= and no DHCP server address"
  fi
fi`;
}
