// A process that makes a namespace with a host namespace, a process in the
// host and a temporary folder, hands them to removeOnSignal, prints what it
// made as one JSON line and waits to be signalled.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Netns } from '../../qemu/netns.ts';
import { folder, removeOnSignal } from '../../harness/remove-on-signal.ts';
import { waitForOutput } from '../../lib/process.ts';

const dir = mkdtempSync(join(tmpdir(), 'zb-signal-'));
const ns = await Netns.create('zbsig');
removeOnSignal([folder(dir), ns]);
await ns.bridge('br0', '10.93.0.1/24');
const host = await ns.host('br0', { cidr: '10.93.0.2/24' });
const sleeper = host.spawn('sh', ['-c', 'echo up; exec sleep 600']);
await waitForOutput(sleeper, /up/, 30_000);
console.log(JSON.stringify({ dir, namespaces: [ns.name, host.name], pids: [...(await host.pids())] }));
setInterval(() => undefined, 60_000);
