// The attacker of bench/dhcp-flood.ts, run in a host namespace: sends
// `count` DHCP packets to host:67, cycling over `macs` client MACs.
//   node dhcp-flood-sender.ts <host> <count> <macs> known|malformed
// known: one valid DISCOVER per MAC (puts each MAC on the server's timeline).
// malformed: DISCOVERs whose last option claims more bytes than remain.
import dgram from 'node:dgram';
import { buildPacket } from '../harness/dhcp-packet.ts';

const [host, countArg, macsArg, kind] = process.argv.slice(2);
const count = Number(countArg);
const macs = Number(macsArg);
if (!host || !(count > 0) || !(macs > 0) || (kind !== 'known' && kind !== 'malformed')) {
  process.stderr.write('usage: dhcp-flood-sender.ts <host> <count> <macs> known|malformed\n');
  process.exit(2);
}

const macOf = (i: number) => `02:f0:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
// One packet per MAC, built once: a buffer must not change while its send is queued.
const packets = Array.from({ length: macs }, (_, i) => {
  const valid = buildPacket({ mac: macOf(i), xid: i, options: { 53: '01', 60: Buffer.from('PXEClient:Arch:00000:UNDI:002001').toString('hex') } });
  if (kind === 'known') return valid;
  // Cut at the end option and append option 12 claiming 64 + (i % 100) bytes: a decode error whose text varies.
  return Buffer.concat([valid.subarray(0, endOption(valid)), Buffer.from([12, 64 + (i % 100), 0x41, 0x41])]);
});

/** Offset of the end option (255): options start after the 236-byte header and the 4-byte cookie. */
function endOption(buf: Buffer): number {
  let i = 240;
  while (buf[i] !== 255) i += buf[i] === 0 ? 1 : 2 + buf[i + 1];
  return i;
}

const socket = dgram.createSocket('udp4');
await new Promise<void>((resolve) => socket.bind(0, resolve));
const started = Date.now();
const BATCH = 256;
for (let sent = 0; sent < count; ) {
  const n = Math.min(BATCH, count - sent);
  // Wait for each batch's last send so the socket's queue (and this process's memory) stays small.
  await new Promise<void>((resolve) => {
    for (let k = 0; k < n; k++) socket.send(packets[(sent + k) % macs], 67, host, k === n - 1 ? () => resolve() : undefined);
  });
  sent += n;
}
socket.close();
const s = (Date.now() - started) / 1000;
process.stdout.write(`${JSON.stringify({ sent: count, seconds: s, rate: Math.round(count / s) })}\n`);
