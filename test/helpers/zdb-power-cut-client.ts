// The power-cut test's client, run inside the rig's namespace (the guest is
// reachable only there):
//   write <host> <port> <count>  SETs pc-00000, pc-00001, ... one at a time
//                                and prints `ack <n>` as each reply arrives;
//   check <host> <port> <count>  GETs pc-00000 .. pc-<count-1> and prints one
//                                JSON line: { ok, missing, wrong } (indexes).
// Each value is 512 bytes derived from its key, so a stale or torn value is
// told apart from the acknowledged one.
import { createHash } from 'node:crypto';
import { RespClient } from '../../zdb/resp/client.ts';

export function powerCutKey(n: number): string {
  return `pc-${String(n).padStart(5, '0')}`;
}

export function powerCutValue(n: number): Buffer {
  const digest = createHash('sha256').update(powerCutKey(n)).digest();
  return Buffer.concat(Array.from({ length: 16 }, () => digest));
}

async function write(session: RespClient, count: number): Promise<void> {
  for (let n = 0; n < count; n++) {
    let reply;
    try {
      reply = await session.command(['SET', powerCutKey(n), powerCutValue(n)]);
    } catch (e) {
      // the cut closes the connection: what was acknowledged so far is the record
      process.stdout.write(`refused ${n} ${JSON.stringify((e as Error).message)}\n`);
      return;
    }
    if (reply.type === 'error') {
      process.stdout.write(`refused ${n} ${JSON.stringify(reply)}\n`);
      return;
    }
    process.stdout.write(`ack ${n}\n`);
  }
}

async function check(session: RespClient, count: number): Promise<void> {
  const out = { ok: [] as number[], missing: [] as number[], wrong: [] as number[] };
  for (let n = 0; n < count; n++) {
    const reply = await session.command(['GET', powerCutKey(n)]);
    if (reply.type === 'bulk' && reply.value !== null && reply.value.equals(powerCutValue(n))) out.ok.push(n);
    else if (reply.type === 'bulk' && reply.value === null) out.missing.push(n);
    else out.wrong.push(n);
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

const [mode, host, port, count] = process.argv.slice(2);
if ((mode !== 'write' && mode !== 'check') || !host || !Number(port) || !(Number(count) >= 0)) {
  process.stderr.write('usage: zdb-power-cut-client.ts write|check <host> <port> <count>\n');
  process.exit(2);
}
const session = await RespClient.connect({ host, port: Number(port) }, { connectTimeoutMs: 120_000, commandTimeoutMs: 120_000 });
await (mode === 'write' ? write(session, Number(count)) : check(session, Number(count)));
process.exit(0);
