// What the agent e2e tests (test/e2e/agent-*.test.ts) share: checking a
// node's signed report against the hardware profile QEMU ran, typing on a
// guest's console shell, capturing the reports on the rig's bridge, and
// posting a report to the real server from inside the rig's namespace.
import type { ExecutionContext } from 'ava';
import type { ChildProcess } from 'node:child_process';
import { MARKERS } from '../../image/init.ts';
import { REPORT_PATH, type SignedEnvelope } from '../../lib/signed-report.ts';
import { killPid } from '../../lib/process.ts';
import { loadavg } from 'node:os';
import type { HwProfile } from '../../qemu/profile.ts';
import type { BootOptions, NodeView, Rig, Vm } from '../../qemu/rig.ts';

export interface ReportDisk {
  name: string;
  sizeBytes: number;
  state: string;
  reason: string;
  label?: string;
  type?: 'ssd' | 'hdd';
  by?: string;
}

export interface ReportZdb {
  disk: string;
  port: number;
  healthy: boolean;
  restarts: number;
  lastExit?: string;
}

interface ReportInventory {
  cpu: { logical: number };
  memoryBytes: number;
  memoryInstalledBytes?: number;
  nics: { name: string; mac: string; physical: boolean; link?: unknown; addresses: string[] }[];
  disks: { name: string; sizeBytes: number; serial?: string; rotational: boolean }[];
  secureBoot?: string;
}

export const reportOf = (n: NodeView) =>
  n.report as unknown as { nodeId: string; mac: string; bootMac?: string; inventory: ReportInventory; disks: ReportDisk[]; zdbs: ReportZdb[] };

/** The guest's name for the profile's disk `i`: the rig gives it serial zb<i>-<mac tail>. */
export function guestDisk(n: NodeView, i: number): string {
  const d = reportOf(n).inventory.disks.find((x) => x.serial?.startsWith(`zb${i}-`));
  if (!d) throw new Error(`no disk with serial zb${i}-… in the report: ${JSON.stringify(reportOf(n).inventory.disks.map((x) => [x.name, x.serial]))}`);
  return d.name;
}

/**
 * The report matches the profile: CPU count, memory within 5%, every NIC's
 * MAC, every disk's size and (for the pools the agent made) SSD/HDD type.
 * `foreign` lists profile disk indexes pre-filled by the test (no type then).
 */
export function checkInventory(t: ExecutionContext, vm: Vm, n: NodeView, foreign: number[] = []): void {
  const r = reportOf(n);
  const p = vm.instance.profile;
  t.is(r.inventory.cpu.logical, p.cpus, 'CPU count');
  const ram = p.memoryMiB * 2 ** 20;
  const mem = r.inventory.memoryInstalledBytes ?? 0;
  t.true(Math.abs(mem - ram) <= 0.05 * ram, `installed memory ${mem} within 5% of ${ram}`);
  t.true(r.inventory.memoryBytes <= mem, `MemTotal ${r.inventory.memoryBytes} is at most the RAM`);
  const macs = r.inventory.nics.filter((x) => x.physical).map((x) => x.mac).sort();
  t.deepEqual(macs, [...vm.macs].sort(), 'every NIC, by MAC');
  t.is(r.inventory.disks.length, p.disks.length, 'every disk and no other');
  p.disks.forEach((spec, i) => {
    const name = guestDisk(n, i);
    const d = r.disks.find((x) => x.name === name);
    t.truthy(d, `disk ${i} (${name}) is in the report's disks`);
    t.is(d!.sizeBytes, spec.sizeBytes, `disk ${i} (${name}) size`);
    if (foreign.includes(i)) return;
    t.true(d!.state === 'prepared' || d!.state === 'reused', `disk ${i} (${name}) is a pool, got ${d!.state}: ${d!.reason}`);
    t.is(d!.type, spec.type, `disk ${i} (${name}) type (decided by ${d!.by})`);
  });
}

/** The VM's address from its ZEROBOOT-UP line. */
export async function vmAddress(vm: Vm, timeoutMs: number, from = 0): Promise<string> {
  const up = await vm.console.waitFor(new RegExp(`${MARKERS.up.source}|${MARKERS.fail.source}`), timeoutMs, { from });
  const m = MARKERS.up.exec(up[0]);
  if (!m) throw new Error(`${vm.name}: ${up[0].trim()}`);
  return m[1];
}

let hookSeq = 0;

/**
 * The console test hook: types `command` on the guest's console shell and
 * returns what it printed between two markers. The markers are computed by
 * the shell ($((…))), so the echo of the typed line never matches them.
 */
export async function consoleRun(vm: Vm, command: string, timeoutMs = 120_000): Promise<string> {
  const n = ++hookSeq + 1000;
  const from = vm.console.mark();
  vm.console.write(`echo HOOK-BEGIN-$((${n}+0)); ${command}; echo HOOK-END-$((${n}+0))\r`);
  const m = await vm.console.waitFor(new RegExp(`HOOK-BEGIN-${n}\\r?\\n([\\s\\S]*?)HOOK-END-${n}`), timeoutMs, { from });
  return m[1].replace(/\r/g, '');
}

/** Boots one VM and waits for its agent's first accepted report, then for the one with its pools made; notes the guest seconds to the first in `times`. */
export async function bootToReport(rig: Rig, profile: string | HwProfile, opts: BootOptions, timeoutMs: number, times: string[]): Promise<{ vm: Vm; ip: string; node: NodeView }> {
  const [vm] = await rig.boot(profile, opts);
  const ip = await vmAddress(vm, timeoutMs);
  const first = await rig.waitForReport(vm, timeoutMs);
  times.push(`${vm.name}: first report ${((Date.now() - vm.startedAt) / 1000).toFixed(0)} s after QEMU started (${rig.accel}, load ${loadavg()[0].toFixed(1)})`);
  // Blank disks become pools after the first report (listed `preparing` in it); the report after has them.
  const node = await waitForNode(rig, first.nodeId, (n) => !reportOf(n).disks.some((d) => d.state === 'preparing'), timeoutMs, 'a report with the pools made');
  return { vm, ip, node };
}

/** A packet capture of the reports (TCP to the server's HTTP port) on the rig's bridge. */
export class ReportCapture {
  private readonly child: ChildProcess;
  private readonly file: string;
  private readonly rig: Rig;
  private constructor(rig: Rig, child: ChildProcess, file: string) {
    this.rig = rig;
    this.child = child;
    this.file = file;
  }

  static async start(rig: Rig, file: string): Promise<ReportCapture> {
    const port = new URL(rig.serverUrl).port || '80';
    const child = rig.ns.spawn('tshark', ['-q', '-n', '-i', rig.network.bridge, '-f', `tcp port ${port}`, '-w', file]);
    let err = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`tshark did not start capturing: ${err}`)), 60_000);
      child.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        if (/Capturing on/.test(err)) (clearTimeout(timer), resolve());
      });
      child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`tshark exited (${code}): ${err}`))));
    });
    return new ReportCapture(rig, child, file);
  }

  /** Stops the capture (by pid) and returns the report envelopes POSTed during it, oldest first. */
  async stop(): Promise<SignedEnvelope[]> {
    if (this.child.exitCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      killPid(this.child.pid!, 'SIGINT');
      await exited;
    }
    const r = await this.rig.ns.exec('tshark', ['-n', '-r', this.file, '-Y', `http.request.method == "POST" && http.request.uri == "${REPORT_PATH}"`, '-T', 'fields', '-e', 'http.file_data'], { timeout: 120_000 });
    return r.stdout
      .split('\n')
      .filter((l) => l.trim())
      // tshark 4.0 prints the body as text, some versions as hex.
      .map((l) => JSON.parse(/^[0-9a-f]+$/.test(l.trim()) ? Buffer.from(l.trim(), 'hex').toString('utf8') : l) as SignedEnvelope);
  }
}

/** POSTs a report body to the rig's real server from inside its namespace; the status and JSON answer. */
export async function postReport(rig: Rig, body: string): Promise<{ status: number; answer: { error?: string; code?: string } }> {
  const r = await rig.ns.exec('curl', ['-sS', '--max-time', '20', '-H', 'content-type: application/json', '--data-binary', '@-', '-w', '\n%{http_code}', `${rig.serverUrl}${REPORT_PATH}`], { input: body, timeout: 30_000 });
  const nl = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(nl + 1)), answer: JSON.parse(r.stdout.slice(0, nl) || '{}') as { error?: string; code?: string } };
}

/** Polls the registry until `ok(node)` holds; returns that record. */
export async function waitForNode(rig: Rig, nodeId: string, ok: (n: NodeView) => boolean, timeoutMs: number, what: string): Promise<NodeView> {
  const until = Date.now() + timeoutMs;
  let last: NodeView | undefined;
  for (;;) {
    last = await rig.node(nodeId);
    if (last && ok(last)) return last;
    if (Date.now() > until) throw new Error(`${what} not seen within ${timeoutMs} ms; last report: ${JSON.stringify(last ? reportOf(last).zdbs : null)}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
