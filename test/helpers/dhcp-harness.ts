// The DHCP integration tests' peers: busybox udhcpc as a real client and
// the crafted-packet probe. The server itself is started by the shared
// harness (harness/dhcp-server.ts), re-exported here.
import { writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import type { Netns } from './netns.ts';
import type { ProbeReply, ProbeRequest } from './dhcp-probe.ts';

export { startDhcp, tempDir, type ServerHandle } from '../../harness/dhcp-server.ts';

const PROBE = new URL('./dhcp-probe.ts', import.meta.url).pathname;
const NODE_FLAGS = ['--disable-warning=ExperimentalWarning'];

/** The udhcpc script: prints the event and its variables on one line, and configures the address like a real client. */
export async function udhcpcScript(dir: string): Promise<string> {
  const path = join(dir, 'udhcpc.sh');
  await writeFile(
    path,
    `#!/bin/sh
vars=$(env | grep -E '^(ip|siaddr|boot_file|bootfile|tftp|serverid|subnet|mask|router|hostname|vendor|lease|opt97|sname)=' | sort | tr '\\n' ' ')
echo "UDHCPC $1 $vars"
case "$1" in
  deconfig) ip addr flush dev "$interface" ;;
  bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/$mask" dev "$interface" ;;
esac
`,
  );
  await chmod(path, 0o755);
  return path;
}

export interface UdhcpcResult {
  code: number;
  output: string;
  /** Variables of the last "bound" event, if any. */
  bound?: Record<string, string>;
}

export function parseUdhcpcEvents(output: string, event: string): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (const line of output.split('\n')) {
    const m = /^UDHCPC (\S+) ?(.*)$/.exec(line);
    if (!m || m[1] !== event) continue;
    out.push(Object.fromEntries(m[2].trim().split(/\s+/).filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])));
  }
  return out;
}

/** One busybox udhcpc run that exits once it has a lease (or gives up). */
export async function udhcpc(host: Netns, script: string, extra: string[], opts: { tries?: number; timeoutMs?: number } = {}): Promise<UdhcpcResult> {
  const tries = String(opts.tries ?? 3);
  const args = ['udhcpc', '-f', '-q', '-n', '-i', 'eth0', '-t', tries, '-T', '1', '-A', '1', '-O', 'bootfile', '-O', 'tftp', '-O', '97', '-s', script, ...extra];
  const r = await host.exec('busybox', args, { timeout: opts.timeoutMs ?? 20_000 });
  const output = r.stdout + r.stderr;
  const bound = parseUdhcpcEvents(output, 'bound');
  return { code: r.code, output, bound: bound[bound.length - 1] };
}

/** Runs the probe in `host`; returns the replies it heard. */
export async function probe(host: Netns, req: ProbeRequest): Promise<ProbeReply[]> {
  const r = await host.exec(process.execPath, [...NODE_FLAGS, PROBE, JSON.stringify(req)], { timeout: req.waitMs + 15_000 });
  if (r.code !== 0) throw new Error(`probe failed (${r.code}): ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as ProbeReply);
}

export function hex(s: string): string {
  return Buffer.from(s).toString('hex');
}
