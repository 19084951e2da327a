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
// With --trace DIR, every console line is also written to
// DIR/<profile>-<run>.trace stamped with the host's seconds since QEMU
// started (firmware, iPXE, kernel, /init and agent lines on one clock), and
// the phase summary below each run says where the boot went.
//   node bench/agent-boot.ts [--profile small-bios --profile storage-uefi] [--runs N] [--image DIR] [--timeout S]
//                            [--trace DIR] [--kernel-arg key=value ...]
// --image: a built images/node.yaml (default: built into the image cache).
// --kernel-arg: added to the nodes' kernel command line (a bare word for a flag).
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseBenchArgs } from '../harness/bench-args.ts';
import { cachedImage } from '../harness/qemu-image.ts';
import { AGENT_MARKERS } from '../image/init-services.ts';
import { startRig, type NodeView, type Rig } from '../qemu/rig.ts';

const { values } = parseBenchArgs('bench/agent-boot.ts', {
  options: {
    profile: { type: 'string', multiple: true, default: ['small-bios', 'storage-uefi'] },
    runs: { type: 'string', default: '1' },
    image: { type: 'string' },
    timeout: { type: 'string', default: '300' },
    trace: { type: 'string' },
    'kernel-arg': { type: 'string', multiple: true, default: [] },
  },
});
const RUNS = Number(values.runs);
const TIMEOUT_MS = Number(values.timeout) * 1000;
if (!Number.isInteger(RUNS) || RUNS < 1 || !(TIMEOUT_MS > 0)) {
  console.error('bench/agent-boot.ts: --runs must be a positive integer and --timeout a positive number of seconds');
  process.exit(2);
}
const kernelArgs: Record<string, string | null> = {};
for (const a of values['kernel-arg']) {
  const eq = a.indexOf('=');
  if (eq === 0) {
    console.error(`bench/agent-boot.ts: --kernel-arg ${JSON.stringify(a)}: the key is empty`);
    process.exit(2);
  }
  if (eq < 0) kernelArgs[a] = null;
  else kernelArgs[a.slice(0, eq)] = a.slice(eq + 1);
}
if (values.trace) mkdirSync(values.trace, { recursive: true });
const GOALS_S: Record<string, number> = { 'small-bios': 20, 'storage-uefi': 30 };

interface Run {
  profile: string;
  upS: number;
  agentStartS: number;
  firstReportS: number;
  /** When the report with every blank disk made a pool arrived (the agent makes them after its first report). */
  poolsS?: number;
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

/** Milestones looked for in a trace, in boot order: the first line matching each, with its time. */
const MILESTONES: [string, RegExp][] = [
  ['iPXE', /iPXE initialising|iPXE \d/],
  ['kernel fetch', /zeroboot: booting image/],
  ['kernel start', /Linux version/],
  ['/init', /ZEROBOOT-INIT/],
  ['UP', /ZEROBOOT-UP /],
  ['agent start', /ZEROBOOT-AGENT-START/],
  ['bring-up done', /zeroboot agent: bring-up:/],
  ['report', /ZEROBOOT-AGENT node=\S+ report=accepted n=1\b/],
  ['pools made', /zeroboot agent: pools made after the first report/],
];

function milestones(trace: [number, string][]): string {
  const out: string[] = [];
  for (const [name, re] of MILESTONES) {
    const hit = trace.find(([, l]) => re.test(l));
    if (hit) out.push(`${name} ${hit[0].toFixed(1)}`);
  }
  return out.join(' | ');
}

/** The node's record once no disk in its last report is still `preparing` (at most `timeoutMs`). */
async function withPools(rig: Rig, node: NodeView, timeoutMs: number): Promise<NodeView> {
  const until = Date.now() + timeoutMs;
  let n = node;
  while ((n.report as { disks?: { state?: string }[] }).disks?.some((d) => d.state === 'preparing')) {
    if (Date.now() > until) throw new Error(`${node.nodeId}: its disks were still being prepared after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
    n = (await rig.node(node.nodeId)) ?? n;
  }
  return n;
}

async function oneBoot(rig: Rig, profile: string, run: number): Promise<Run> {
  const [vm] = await rig.boot(profile);
  const trace: [number, string][] = [];
  const offLine = vm.console.onLine((l) => trace.push([(Date.now() - vm.startedAt) / 1000, l]));
  try {
    const since = (ms: number) => (ms - vm.startedAt) / 1000;
    await vm.console.waitFor(/ZEROBOOT-UP /, TIMEOUT_MS);
    const upS = since(Date.now());
    await vm.console.waitFor(AGENT_MARKERS.start, TIMEOUT_MS);
    const agentStartS = since(Date.now());
    const first = await rig.waitForReport(vm, TIMEOUT_MS);
    const node = await withPools(rig, first, TIMEOUT_MS);
    const report = node.report as { disks?: { type?: string }[]; zdbs?: unknown[] };
    const types = (report.disks ?? []).map((d) => d.type ?? '-');
    const mem = await agentMemory(vm);
    const agentLog = vm.console.log().split('\n').flatMap((l) => /zeroboot agent: ((bring-up|first report accepted|pools made).*)/.exec(l)?.[1].trim() ?? []);
    return {
      profile,
      upS,
      agentStartS,
      firstReportS: since(Date.parse(node.firstSeen)),
      ...(node.reports > 1 ? { poolsS: since(Date.parse(node.lastReport)) } : {}),
      ...(mem ?? {}),
      zdbs: report.zdbs?.length ?? 0,
      disks: `${types.filter((t) => t === 'ssd').length} SSD + ${types.filter((t) => t === 'hdd').length} HDD`,
      agentLog,
    };
  } finally {
    offLine();
    await vm.stop();
    if (values.trace) {
      writeFileSync(path.join(values.trace, `${profile}-${run}.trace`), trace.map(([t, l]) => `${t.toFixed(3).padStart(8)} ${l}\n`).join(''));
      console.log(`${''.padEnd(14)} trace: ${milestones(trace)}`);
    }
  }
}

const image = values.image ?? (await cachedImage('node'));
const rig = await startRig({ imageDir: image, ...(Object.keys(kernelArgs).length ? { kernelArgs } : {}) });
const runs: Run[] = [];
try {
  console.log(`accel ${rig.accel} (${rig.accelReason}); image ${image}; ${RUNS} run(s) per profile`);
  for (let i = 0; i < RUNS; i++) {
    for (const profile of values.profile) {
      const r = await oneBoot(rig, profile, i + 1);
      runs.push(r);
      const mem = r.rssKiB !== undefined ? `agent (pid ${r.pid}) RSS ${(r.rssKiB / 1024).toFixed(1)} MiB, peak ${(r.hwmKiB! / 1024).toFixed(1)} MiB` : 'agent RSS: console shell did not answer';
      console.log(`${profile.padEnd(14)} up ${r.upS.toFixed(1)} s  agent start ${r.agentStartS.toFixed(1)} s  first report ${r.firstReportS.toFixed(1)} s  ${r.poolsS !== undefined ? `pools ${r.poolsS.toFixed(1)} s  ` : ''}${r.disks}, ${r.zdbs} zdb(s)  ${mem}`);
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
