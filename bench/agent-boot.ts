// Time from QEMU start to the node agent's first signed report accepted by
// the boot server, per hardware profile, under the rig's accelerator (TCG
// here; issue 12's goal: under 20 s for small-bios, under 30 s for
// storage-uefi). One rig, one VM at a time. Per boot it prints the time to
// ZEROBOOT-UP (network up in /init), to the agent's start, and to the first
// report the server accepted (the registry's firstSeen, stamped by the
// server on the host's clock, the clock QEMU's start was read on). Then,
// through the node's console shell, the agent's VmRSS and VmHWM (peak)
// from /proc/<pid>/status, when the shell answers. Last, the agent's own
// log lines: its bring-up phases and how long its first report took.
//   node bench/agent-boot.ts [--profile small-bios --profile storage-uefi] [--runs N] [--image DIR] [--timeout S]
// --image: a built images/node.yaml (default: built into the image cache).
import { parseBenchArgs } from '../harness/bench-args.ts';
import { cachedImage } from '../harness/qemu-image.ts';
import { AGENT_MARKERS } from '../image/init-services.ts';
import { startRig, type Rig } from '../qemu/rig.ts';

const { values } = parseBenchArgs('bench/agent-boot.ts', {
  options: {
    profile: { type: 'string', multiple: true, default: ['small-bios', 'storage-uefi'] },
    runs: { type: 'string', default: '1' },
    image: { type: 'string' },
    timeout: { type: 'string', default: '300' },
  },
});
const RUNS = Number(values.runs);
const TIMEOUT_MS = Number(values.timeout) * 1000;
if (!Number.isInteger(RUNS) || RUNS < 1 || !(TIMEOUT_MS > 0)) {
  console.error('bench/agent-boot.ts: --runs must be a positive integer and --timeout a positive number of seconds');
  process.exit(2);
}
const GOALS_S: Record<string, number> = { 'small-bios': 20, 'storage-uefi': 30 };

interface Run {
  profile: string;
  upS: number;
  agentStartS: number;
  firstReportS: number;
  pid?: number;
  rssKiB?: number;
  hwmKiB?: number;
  zdbs: number;
  disks: string;
  /** The agent's `bring-up: …` and `first report accepted in …` lines from the console. */
  agentLog: string[];
}

/**
 * VmRSS and VmHWM of the agent's Node process (the one whose command line
 * runs `zeroboot.ts agent`; its zdbs are separate processes), typed on the
 * node's console shell; undefined when the shell does not answer.
 */
async function agentMemory(vm: Rig['vms'][number]): Promise<{ pid: number; rssKiB: number; hwmKiB: number } | undefined> {
  const from = vm.console.mark();
  const find = `for d in /proc/[0-9]*; do case "$(tr '\\0' ' ' 2>/dev/null <$d/cmdline)" in *zeroboot.ts\\ agent*) echo AGENTMEM \${d#/proc/} $(grep -E '^(VmHWM|VmRSS):' $d/status | tr -s ' \\t' ' ' | tr '\\n' ' ') ;; esac; done`;
  try {
    vm.console.write(`\n${find}\n`);
    const m = await vm.console.waitFor(/AGENTMEM (\d+) VmHWM: (\d+) kB VmRSS: (\d+) kB/, 20_000, { from });
    return { pid: Number(m[1]), hwmKiB: Number(m[2]), rssKiB: Number(m[3]) };
  } catch {
    return undefined;
  }
}

async function oneBoot(rig: Rig, profile: string): Promise<Run> {
  const [vm] = await rig.boot(profile);
  try {
    const since = (ms: number) => (ms - vm.startedAt) / 1000;
    await vm.console.waitFor(/ZEROBOOT-UP /, TIMEOUT_MS);
    const upS = since(Date.now());
    await vm.console.waitFor(AGENT_MARKERS.start, TIMEOUT_MS);
    const agentStartS = since(Date.now());
    const node = await rig.waitForReport(vm, TIMEOUT_MS);
    const report = node.report as { disks?: { type?: string }[]; zdbs?: unknown[] };
    const types = (report.disks ?? []).map((d) => d.type ?? '-');
    const mem = await agentMemory(vm);
    const agentLog = vm.console.log().split('\n').flatMap((l) => /zeroboot agent: ((bring-up|first report accepted).*)/.exec(l)?.[1].trim() ?? []);
    return {
      profile,
      upS,
      agentStartS,
      firstReportS: since(Date.parse(node.firstSeen)),
      ...(mem ?? {}),
      zdbs: report.zdbs?.length ?? 0,
      disks: `${types.filter((t) => t === 'ssd').length} SSD + ${types.filter((t) => t === 'hdd').length} HDD`,
      agentLog,
    };
  } finally {
    await vm.stop();
  }
}

const image = values.image ?? (await cachedImage('node'));
const rig = await startRig({ imageDir: image });
const runs: Run[] = [];
try {
  console.log(`accel ${rig.accel} (${rig.accelReason}); image ${image}; ${RUNS} run(s) per profile`);
  for (let i = 0; i < RUNS; i++) {
    for (const profile of values.profile) {
      const r = await oneBoot(rig, profile);
      runs.push(r);
      const mem = r.rssKiB !== undefined ? `agent (pid ${r.pid}) RSS ${(r.rssKiB / 1024).toFixed(1)} MiB, peak ${(r.hwmKiB! / 1024).toFixed(1)} MiB` : 'agent RSS: console shell did not answer';
      console.log(`${profile.padEnd(14)} up ${r.upS.toFixed(1)} s  agent start ${r.agentStartS.toFixed(1)} s  first report ${r.firstReportS.toFixed(1)} s  ${r.disks}, ${r.zdbs} zdb(s)  ${mem}`);
      for (const line of r.agentLog) console.log(`${''.padEnd(14)} agent: ${line}`);
    }
  }
} finally {
  await rig.stop();
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};
console.log('\nprofile         first report (median s)  goal    up (median s)  agent RSS (median MiB)');
for (const profile of values.profile) {
  const rs = runs.filter((r) => r.profile === profile);
  const first = median(rs.map((r) => r.firstReportS));
  const goal = GOALS_S[profile];
  const rss = rs.filter((r) => r.rssKiB !== undefined).map((r) => r.rssKiB! / 1024);
  console.log(`${profile.padEnd(15)} ${first.toFixed(1).padStart(23)}  ${(goal ? `<${goal} s ${first < goal ? 'met' : 'MISSED'}` : '-').padEnd(13)}  ${median(rs.map((r) => r.upS)).toFixed(1).padStart(13)}  ${rss.length ? median(rss).toFixed(1).padStart(22) : '?'.padStart(22)}`);
}
