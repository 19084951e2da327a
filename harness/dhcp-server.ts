// The DHCP server as a child process in a namespace, for the integration
// tests and the benchmarks: started from a config object, its timeline
// events streamed as JSON lines, its lease table and ignored-packet counts
// asked for by signal, stopped by pid.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { stringify } from 'yaml';
import type { Netns } from '../qemu/netns.ts';
import type { BootEvent, IgnoredCount } from '../boot/timeline.ts';
import type { LeaseInfo } from '../boot/dhcp/leases.ts';

const ENTRY = new URL('./dhcp-server-entry.ts', import.meta.url).pathname;
const NODE_FLAGS = ['--disable-warning=ExperimentalWarning'];

export async function tempDir(prefix = 'zb-dhcp-'): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface ServerHandle {
  child: ChildProcess;
  events: BootEvent[];
  output: () => string;
  eventsFor(mac: string): BootEvent[];
  waitEvent(pred: (e: BootEvent) => boolean, timeoutMs?: number): Promise<BootEvent>;
  leases(): Promise<LeaseInfo[]>;
  /** Ignored packets from MACs without a timeline, counted per reason. */
  ignored(): Promise<IgnoredCount[]>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts the DHCP server in `ns` with `config` (a YAML document as an object).
 * `wrap` is a command the server runs under (strace, unshare ...); signals
 * from the handle then go to that command.
 */
export async function startDhcp(ns: Netns, dir: string, config: object, opts: { quiet?: boolean; name?: string; wrap?: string[] } = {}): Promise<ServerHandle> {
  const file = join(dir, `${opts.name ?? 'server'}.yaml`);
  await writeFile(file, stringify(config));
  const command = [...(opts.wrap ?? []), process.execPath, ...NODE_FLAGS, ENTRY, file, ...(opts.quiet ? ['--quiet'] : [])];
  const child = ns.spawn(command[0], command.slice(1));
  const events: BootEvent[] = [];
  let out = '';
  let partial = '';
  const leaseWaiters: ((l: LeaseInfo[]) => void)[] = [];
  const ignoredWaiters: ((c: IgnoredCount[]) => void)[] = [];
  const eventWaiters = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => {
    partial += d.toString();
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      const msg = JSON.parse(line) as { event?: BootEvent; leases?: LeaseInfo[]; ignored?: IgnoredCount[] };
      if (msg.event) events.push(msg.event);
      if (msg.leases) leaseWaiters.shift()?.(msg.leases);
      if (msg.ignored) ignoredWaiters.shift()?.(msg.ignored);
    }
    for (const w of eventWaiters) w();
  });
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  // 'close' (not 'exit') so a failed start's stderr has been read before it is reported.
  const started = await new Promise<boolean>((resolve) => {
    // Generous: on a loaded 2-core machine a Node start can take many seconds; only the upper bound matters.
    const timer = setTimeout(() => resolve(false), 90_000);
    const onData = () => {
      if (!/^dhcp ready$/m.test(out)) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      resolve(true);
    };
    child.stdout!.on('data', onData);
    child.once('close', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  if (!started) throw new Error(`server failed to start: ${out.trim()}`);
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return {
    child,
    events,
    output: () => out,
    eventsFor: (mac) => events.filter((e) => e.mac === mac),
    waitEvent(pred, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = events.find(pred);
          if (!hit) return;
          done();
          resolve(hit);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no matching timeline event within ${timeoutMs} ms; output:\n${out.slice(-3000)}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          eventWaiters.delete(check);
        };
        eventWaiters.add(check);
        check();
      });
    },
    leases() {
      return new Promise((resolve) => {
        leaseWaiters.push(resolve);
        child.kill('SIGUSR1');
      });
    },
    ignored() {
      return new Promise((resolve) => {
        ignoredWaiters.push(resolve);
        child.kill('SIGUSR2');
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}
