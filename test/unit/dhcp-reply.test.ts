// DHCP replies without sockets: requests written byte by byte as the client
// classes send them (RFC 2131 figure 1, RFC 2132, RFC 4578, PXE 2.1), run
// through classifier -> handler -> reply builder, and the reply read back by
// a walker written here from the RFC layout, not by our codec. Expected
// values come from the RFCs and the PXE spec.
import test from 'ava';
import { decodeDhcp } from '../../boot/dhcp/codec.ts';
import { classify, clientFacts } from '../../boot/dhcp/classifier.ts';
import { LeasePool } from '../../boot/dhcp/leases.ts';
import { FullHandler } from '../../boot/dhcp/full.ts';
import { FLOOD_LOG_EVERY_MS } from '../../lib/log-throttle.ts';
import { ProxyHandler } from '../../boot/dhcp/proxy.ts';
import { BootServerHandler } from '../../boot/dhcp/boot-server.ts';
import { buildReply, networkOptions, replyIface } from '../../boot/dhcp/reply.ts';
import type { Arrival } from '../../boot/dhcp/reply.ts';
import type { DhcpHandler, Outcome } from '../../boot/dhcp/handler.ts';
import { createLogger } from '../../boot/log.ts';

const SERVER = '10.0.0.1';
const HTTP = 'http://10.0.0.1:8080';
const NOW = 1_700_000_000_000;
const POOL = { start: '10.0.0.100', end: '10.0.0.199', subnetMask: '255.255.255.0', router: '10.0.0.254', dns: ['10.0.0.53'], domain: 'lab', leaseSeconds: 3600 };
const quiet = createLogger({ level: 'error', write: () => {} });
const BROADCAST_68: Arrival = { proxyPort: false, address: '0.0.0.0', port: 68 };

// ---- requests, byte by byte (RFC 2131 figure 1) ----

interface Req {
  op?: number;
  xid?: number;
  flags?: number;
  ciaddr?: string;
  giaddr?: string;
  hops?: number;
  mac: string;
  /** [code, value as hex or text] in wire order; option 53 included by the caller. */
  options: [number, string | Buffer][];
}

const ip = (s: string) => Buffer.from(s.split('.').map(Number));
const u16 = (n: number) => Buffer.from([n >> 8, n & 255]);

function requestBytes(r: Req): Buffer {
  const b = Buffer.alloc(240);
  b[0] = r.op ?? 1; // BOOTREQUEST
  b[1] = 1; // htype Ethernet
  b[2] = 6; // hlen
  b[3] = r.hops ?? 0;
  b.writeUInt32BE(r.xid ?? 0x1234abcd, 4);
  b.writeUInt16BE(r.flags ?? 0, 10);
  ip(r.ciaddr ?? '0.0.0.0').copy(b, 12);
  ip(r.giaddr ?? '0.0.0.0').copy(b, 24);
  Buffer.from(r.mac.replaceAll(':', ''), 'hex').copy(b, 28);
  b.writeUInt32BE(0x63825363, 236);
  const opts = r.options.map(([code, v]) => {
    const value = Buffer.isBuffer(v) ? v : Buffer.from(v, 'latin1');
    return Buffer.concat([Buffer.from([code, value.length]), value]);
  });
  return Buffer.concat([b, ...opts, Buffer.from([255])]);
}

const MAC = '52:54:00:12:34:56';
const GUID = Buffer.from('00' + '33221100554477668899aabbccddeeff', 'hex'); // option 97: type 0 + 16 bytes
const DISCOVER: [number, Buffer] = [53, Buffer.from([1])];
const REQUEST: [number, Buffer] = [53, Buffer.from([3])];

/** What each client class sends in its DISCOVER (after option 53), as seen in captures of real firmware. */
const CLASSES: Record<string, [number, string | Buffer][]> = {
  'BIOS PXE ROM': [[57, u16(1260)], [93, u16(0)], [94, Buffer.from([1, 2, 1])], [97, GUID], [60, 'PXEClient:Arch:00000:UNDI:002001']],
  'UEFI PXE x64': [[57, u16(1472)], [93, u16(7)], [94, Buffer.from([1, 3, 16])], [97, GUID], [60, 'PXEClient:Arch:00007:UNDI:003016']],
  // iPXE: user class "iPXE" and option 175 with the HTTP feature (sub-option 19) set.
  iPXE: [[60, 'PXEClient:Arch:00000:UNDI:002001'], [77, 'iPXE'], [175, Buffer.from([19, 1, 1, 235, 4, 1, 21, 1, 0])], [93, u16(0)]],
  'UEFI HTTP boot': [[93, u16(16)], [97, GUID], [60, 'HTTPClient:Arch:00016:UNDI:003001']],
  'unknown vendor': [[60, 'udhcp 1.36.1'], [12, 'node7']],
};

// ---- the reply, read by the RFC layout ----

interface Parsed {
  op: number;
  flags: number;
  xid: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  chaddr: string;
  file: string;
  options: Map<number, Buffer>;
  codes: number[];
}

function parseReply(b: Buffer): Parsed {
  const ipAt = (o: number) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
  if (b.readUInt32BE(236) !== 0x63825363) throw new Error('no magic cookie');
  const options = new Map<number, Buffer>();
  const codes: number[] = [];
  let i = 240;
  while (b[i] !== 255) {
    if (b[i] === 0) {
      i++;
      continue;
    }
    codes.push(b[i]);
    options.set(b[i], b.subarray(i + 2, i + 2 + b[i + 1]));
    i += 2 + b[i + 1];
  }
  const file = b.subarray(108, 236);
  return {
    op: b[0],
    xid: b.readUInt32BE(4),
    flags: b.readUInt16BE(10),
    ciaddr: ipAt(12),
    yiaddr: ipAt(16),
    siaddr: ipAt(20),
    giaddr: ipAt(24),
    chaddr: b.subarray(28, 34).toString('hex'),
    file: file.subarray(0, file.indexOf(0)).toString('latin1'),
    options,
    codes,
  };
}

const str = (p: Parsed, code: number) => p.options.get(code)?.toString('latin1');
const hex = (p: Parsed, code: number) => p.options.get(code)?.toString('hex');

// ---- the pipeline under test ----

interface Rig {
  pool: LeasePool;
  full: FullHandler;
  proxy: ProxyHandler;
  bootServer: BootServerHandler;
}

function rig(opts: { authoritative?: boolean; reservations?: [string, string][] } = {}): Rig {
  const pool = new LeasePool({ ...POOL, exclude: [SERVER, POOL.router], reservations: opts.reservations, now: () => NOW });
  return {
    pool,
    full: new FullHandler({ pool, ourIds: new Set([SERVER]), authoritative: opts.authoritative ?? false, log: quiet, now: () => NOW }),
    proxy: new ProxyHandler(67),
    bootServer: new BootServerHandler(4011),
  };
}

type Result = { outcome: Outcome; reply?: Parsed; to?: string };

/** The in-memory pool answers at once: a promise here would mean the file path lost its synchronous answer. */
function now(o: Outcome | Promise<Outcome>): Outcome {
  if (o instanceof Promise) throw new Error('the in-memory handler answered with a promise');
  return o;
}

function exchange(handler: DhcpHandler, r: Req, o: { shim?: string; network?: boolean; from?: Arrival; mtu?: number } = {}): Result {
  const p = decodeDhcp(requestBytes(r));
  const decision = classify(clientFacts(p), { httpBase: HTTP, shim: o.shim });
  const outcome = now(handler.handle({ packet: p, mac: r.mac, type: p.options.get(53)![0], decision, iface: { name: 'eth0', address: SERVER, servesPool: true } }));
  if (outcome.kind !== 'reply') return { outcome };
  const iface = replyIface('eth0', SERVER, o.mtu ?? 1500, o.network === false ? [] : networkOptions(POOL));
  const built = buildReply(p, outcome.answer, iface, o.from ?? BROADCAST_68);
  if (!built.ok) throw new Error(built.reason);
  return { outcome, reply: parseReply(built.bytes), to: `${built.host}:${built.port}` };
}

function reasonOf(r: Result): string {
  return r.outcome.kind === 'ignore' ? r.outcome.reason : `not ignored: ${r.outcome.kind}`;
}

// ---- full mode, per client class ----

test('golden: BIOS PXE DISCOVER in full mode gets this OFFER, byte for byte in the option area', (t) => {
  const { full } = rig();
  const r = exchange(full, { mac: MAC, options: [DISCOVER, ...CLASSES['BIOS PXE ROM']] });
  const b = r.reply!;
  t.is(b.op, 2);
  t.is(b.xid, 0x1234abcd);
  t.is(b.chaddr, '525400123456');
  t.is(b.yiaddr, '10.0.0.100');
  t.is(b.siaddr, SERVER);
  t.is(b.ciaddr, '0.0.0.0');
  t.is(b.file, 'undionly.kpxe');
  const expected = [
    '350102', // 53 OFFER
    '36040a000001', // 54 server id 10.0.0.1
    '330400000e10', // 51 lease 3600 s
    '3a0400000708', // 58 T1 = 1800 s (RFC 2131 4.4.5: 0.5 x lease)
    '3b0400000c4e', // 59 T2 = 3150 s (0.875 x lease)
    '0104ffffff00', // 1 subnet mask
    '03040a0000fe', // 3 router
    '06040a000035', // 6 DNS
    '0f036c6162', // 15 domain "lab"
    '42' + '08' + Buffer.from('10.0.0.1').toString('hex'), // 66 TFTP server name
    '43' + '0d' + Buffer.from('undionly.kpxe').toString('hex'), // 67 boot file
    '3c' + '09' + Buffer.from('PXEClient').toString('hex'), // 60 PXE 2.1: servers answering PXE clients echo "PXEClient"
    '6111' + GUID.toString('hex'), // 97 echoed (PXE 2.1)
    '2b04060108ff', // 43: discovery control (6) = 8, end
  ].join('');
  const area = Buffer.concat([...b.codes.map((c) => Buffer.concat([Buffer.from([c, b.options.get(c)!.length]), b.options.get(c)!]))]).toString('hex');
  t.is(area, expected);
  t.is(r.to, '255.255.255.255:68');
});

test('UEFI PXE x64 gets snponly.efi over TFTP with PXEClient, option 43 and 97 echoed', (t) => {
  const r = exchange(rig().full, { mac: MAC, options: [DISCOVER, ...CLASSES['UEFI PXE x64']] });
  const b = r.reply!;
  t.is(b.file, 'snponly.efi');
  t.is(str(b, 67), 'snponly.efi');
  t.is(str(b, 66), SERVER);
  t.is(str(b, 60), 'PXEClient');
  t.is(hex(b, 43), '060108ff');
  t.is(hex(b, 97), GUID.toString('hex'));
});

test('iPXE gets the script URL over HTTP: no TFTP server, no option 43, never the binary again', (t) => {
  const b = exchange(rig().full, { mac: MAC, options: [DISCOVER, ...CLASSES.iPXE] }).reply!;
  t.is(b.file, `${HTTP}/boot.ipxe`);
  t.is(str(b, 67), `${HTTP}/boot.ipxe`);
  t.false(b.options.has(66));
  t.false(b.options.has(43));
  t.is(str(b, 60), 'PXEClient');
});

test('UEFI HTTP boot gets a URL and HTTPClient echoed (UEFI 2.x 24.7: the firmware drops offers without it)', (t) => {
  const b = exchange(rig().full, { mac: MAC, options: [DISCOVER, ...CLASSES['UEFI HTTP boot']] }).reply!;
  t.is(str(b, 67), `${HTTP}/ipxe/snponly.efi`);
  t.is(str(b, 60), 'HTTPClient');
  t.false(b.options.has(66));
  t.false(b.options.has(43));
  t.is(b.yiaddr, '10.0.0.100');
});

test('Secure Boot: a UEFI x64 client whose profile boots the signed chain gets shim over TFTP', (t) => {
  const b = exchange(rig().full, { mac: MAC, options: [DISCOVER, ...CLASSES['UEFI PXE x64']] }, { shim: 'images/alpine/shimx64.efi' }).reply!;
  t.is(b.file, 'images/alpine/shimx64.efi');
  t.is(str(b, 67), 'images/alpine/shimx64.efi');
  t.is(str(b, 66), SERVER);
  t.is(hex(b, 43), '060108ff');
});

test('an unknown vendor gets an address and network settings but no boot file, vendor echo or UUID', (t) => {
  const b = exchange(rig().full, { mac: MAC, options: [DISCOVER, ...CLASSES['unknown vendor']] }).reply!;
  t.is(b.yiaddr, '10.0.0.100');
  t.is(b.file, '');
  for (const code of [43, 60, 66, 67, 97]) t.false(b.options.has(code), `option ${code}`);
  t.is(hex(b, 1), 'ffffff00');
  t.is(hex(b, 3), '0a0000fe');
});

// ---- full mode, RFC 2131 4.3.2 ----

test('SELECTING REQUEST for our offer: ACK with the lease to persist before sending', (t) => {
  const { full } = rig();
  exchange(full, { mac: MAC, options: [DISCOVER, ...CLASSES['BIOS PXE ROM']] });
  const r = exchange(full, { mac: MAC, options: [REQUEST, [54, ip(SERVER)], [50, ip('10.0.0.100')], ...CLASSES['BIOS PXE ROM']] });
  t.is(r.outcome.kind, 'reply');
  t.like(r.outcome.kind === 'reply' ? r.outcome.persist : undefined, { mac: MAC, ip: '10.0.0.100', state: 'bound', expires: NOW + 3600_000 });
  t.is(str(r.reply!, 53), '\x05');
  t.is(r.reply!.yiaddr, '10.0.0.100');
  t.is(r.reply!.file, 'undionly.kpxe');
});

test('REQUEST naming another server: silence and our offer withdrawn (not authoritative), NAK when authoritative', (t) => {
  const { full, pool } = rig();
  exchange(full, { mac: MAC, options: [DISCOVER] });
  const r = exchange(full, { mac: MAC, options: [REQUEST, [54, ip('10.0.0.9')], [50, ip('10.0.0.100')]] });
  t.regex(reasonOf(r), /chose another server's offer/);
  t.false(pool.knows(MAC), 'the offer went back to the pool');

  const auth = rig({ authoritative: true });
  const n = exchange(auth.full, { mac: MAC, options: [REQUEST, [54, ip('10.0.0.9')], [50, ip('10.0.0.100')]] }).reply!;
  t.is(hex(n, 53), '06');
});

test('INIT-REBOOT and RENEWING from a client with no record: silence unless authoritative (RFC 2131 4.3.2 MUST)', (t) => {
  const { full } = rig();
  t.regex(reasonOf(exchange(full, { mac: MAC, options: [REQUEST, [50, ip('10.0.0.150')]] })), /no record of/);
  t.regex(reasonOf(exchange(full, { mac: MAC, ciaddr: '10.0.0.150', options: [REQUEST] })), /no record of/);
  // Even an address on another network: a server that does not know the client does not NAK it.
  t.regex(reasonOf(exchange(full, { mac: MAC, options: [REQUEST, [50, ip('192.168.1.5')]] })), /no record of/);

  const auth = rig({ authoritative: true }).full;
  const ack = exchange(auth, { mac: MAC, options: [REQUEST, [50, ip('10.0.0.150')]] }).reply!;
  t.is(hex(ack, 53), '05');
  t.is(ack.yiaddr, '10.0.0.150');
  const nak = exchange(auth, { mac: '52:54:00:00:00:99', options: [REQUEST, [50, ip('192.168.1.5')]] });
  t.is(hex(nak.reply!, 53), '06');
});

test('a NAK: no addresses, no boot file, option 56 says why, broadcast (RFC 2131 4.3.2 and table 3)', (t) => {
  const { full } = rig();
  exchange(full, { mac: MAC, options: [DISCOVER] });
  // Known client, address on another network.
  const r = exchange(full, { mac: MAC, ciaddr: '192.168.1.5', options: [REQUEST, ...CLASSES['BIOS PXE ROM']] });
  const b = r.reply!;
  t.is(hex(b, 53), '06');
  t.is(b.ciaddr, '0.0.0.0');
  t.is(b.yiaddr, '0.0.0.0');
  t.is(b.siaddr, '0.0.0.0');
  t.is(b.file, '');
  t.deepEqual(b.codes, [53, 54, 56]);
  t.is(str(b, 56), '192.168.1.5 is not on this network');
  t.is(r.to, '255.255.255.255:68');
});

test('RENEWING with ciaddr: the ACK is unicast to ciaddr:68 and keeps ciaddr (RFC 2131 4.1, table 3)', (t) => {
  const { full } = rig();
  exchange(full, { mac: MAC, options: [DISCOVER] });
  exchange(full, { mac: MAC, options: [REQUEST, [54, ip(SERVER)], [50, ip('10.0.0.100')]] });
  const r = exchange(full, { mac: MAC, ciaddr: '10.0.0.100', options: [REQUEST] });
  t.is(hex(r.reply!, 53), '05');
  t.is(r.reply!.ciaddr, '10.0.0.100');
  t.is(r.to, '10.0.0.100:68');
});

test('option 61: echoed in OFFER, ACK and NAK (RFC 6842), and it keys the lease (RFC 2131 4.2)', (t) => {
  const { full, pool } = rig();
  const id: [number, Buffer] = [61, Buffer.from('ff00000001000100002a', 'hex')];
  const offer = exchange(full, { mac: MAC, options: [DISCOVER, id] }).reply!;
  t.is(hex(offer, 61), 'ff00000001000100002a');
  const ack = exchange(full, { mac: MAC, options: [REQUEST, id, [54, ip(SERVER)], [50, ip('10.0.0.100')]] }).reply!;
  t.is(hex(ack, 61), 'ff00000001000100002a');
  // Another NIC with the same client identifier is the same client.
  t.true(pool.knows({ mac: '52:54:00:ab:cd:ef', clientId: 'ff00000001000100002a' }));
  const nak = exchange(full, { mac: MAC, ciaddr: '192.168.1.5', options: [REQUEST, id] }).reply!;
  t.is(hex(nak, 53), '06');
  t.is(hex(nak, 61), 'ff00000001000100002a');
});

test('broadcast flag: copied from the request (RFC 2131 4.1); set on a NAK sent through a relay', (t) => {
  const { full } = rig();
  t.is(exchange(full, { mac: MAC, flags: 0x8000, options: [DISCOVER] }).reply!.flags, 0x8000);
  t.is(exchange(full, { mac: '52:54:00:00:00:02', flags: 0, options: [DISCOVER] }).reply!.flags, 0);
  exchange(full, { mac: '52:54:00:00:00:03', giaddr: '10.0.0.2', options: [DISCOVER] });
  const nak = exchange(full, { mac: '52:54:00:00:00:03', giaddr: '10.0.0.2', ciaddr: '192.168.1.5', options: [REQUEST] });
  t.is(hex(nak.reply!, 53), '06');
  t.is(nak.reply!.flags, 0x8000);
});

test('relay: giaddr kept, reply to the relay on port 67, option 82 returned unchanged (RFC 2131 4.1, RFC 3046 2.2)', (t) => {
  const { full } = rig();
  const agent = Buffer.from('010465746831020401020304', 'hex'); // circuit-id "eth1", remote-id 01020304
  const r = exchange(full, { mac: MAC, giaddr: '10.0.0.2', hops: 1, options: [DISCOVER, ...CLASSES['BIOS PXE ROM'], [82, agent]] });
  t.is(r.reply!.giaddr, '10.0.0.2');
  t.is(r.to, '10.0.0.2:67');
  t.is(hex(r.reply!, 82), agent.toString('hex'));
  t.is(r.reply!.yiaddr, '10.0.0.100');
});

test('relay from a network outside the pool: silence', (t) => {
  const r = exchange(rig().full, { mac: MAC, giaddr: '192.168.7.1', options: [DISCOVER] });
  t.regex(reasonOf(r), /relay 192.168.7.1 is not in the pool subnet/);
});

test('DECLINE and RELEASE: no reply, a record to store', (t) => {
  const { full } = rig();
  exchange(full, { mac: MAC, options: [DISCOVER] });
  exchange(full, { mac: MAC, options: [REQUEST, [54, ip(SERVER)], [50, ip('10.0.0.100')]] });
  const rel = exchange(full, { mac: MAC, ciaddr: '10.0.0.100', options: [[53, Buffer.from([7])], [54, ip(SERVER)]] });
  t.like(rel.outcome, { kind: 'store', what: 'release', record: { ip: '10.0.0.100', state: 'released' } });
  exchange(full, { mac: MAC, options: [DISCOVER] });
  const dec = exchange(full, { mac: MAC, options: [[53, Buffer.from([4])], [50, ip('10.0.0.100')], [54, ip(SERVER)]] });
  t.like(dec.outcome, { kind: 'store', what: 'decline', record: { declined: '10.0.0.100' } });
});

test('a boot file URL over 127 characters travels in option 67 only; the BOOTP file field stays empty', (t) => {
  const { full } = rig();
  const p = decodeDhcp(requestBytes({ mac: MAC, options: [DISCOVER, ...CLASSES['UEFI HTTP boot']] }));
  const long = `http://boot.example/${'a'.repeat(120)}.efi`;
  const decision = classify(clientFacts(p), { httpBase: HTTP, override: long });
  const out = now(full.handle({ packet: p, mac: MAC, type: 1, decision, iface: { name: 'eth0', address: SERVER, servesPool: true } }));
  if (out.kind !== 'reply') return t.fail(out.kind);
  const built = buildReply(p, out.answer, replyIface('eth0', SERVER, 1500, []), BROADCAST_68);
  if (!built.ok) return t.fail(built.reason);
  const b = parseReply(built.bytes);
  t.is(b.file, '');
  t.is(str(b, 67), long);
});

// ---- proxy mode (:67) ----

test('proxy: a PXE DISCOVER gets an OFFER with a boot file and no address, lease time or network settings', (t) => {
  const r = exchange(rig().proxy, { mac: MAC, options: [DISCOVER, ...CLASSES['BIOS PXE ROM']] }, { network: false });
  const b = r.reply!;
  t.is(hex(b, 53), '02');
  t.is(b.yiaddr, '0.0.0.0');
  t.is(b.siaddr, SERVER);
  t.is(b.file, 'undionly.kpxe');
  for (const code of [1, 3, 6, 51, 58, 59]) t.false(b.options.has(code), `option ${code}`);
  t.is(str(b, 60), 'PXEClient');
  t.is(hex(b, 43), '060108ff');
  t.is(r.to, '255.255.255.255:68');
});

test('proxy: every netboot class gets its boot file; an unknown vendor and a REQUEST on :67 get silence', (t) => {
  const { proxy } = rig();
  const want: Record<string, string> = {
    'BIOS PXE ROM': 'undionly.kpxe',
    'UEFI PXE x64': 'snponly.efi',
    iPXE: `${HTTP}/boot.ipxe`,
    'UEFI HTTP boot': `${HTTP}/ipxe/snponly.efi`,
  };
  for (const [name, file] of Object.entries(want)) {
    t.is(str(exchange(proxy, { mac: MAC, options: [DISCOVER, ...CLASSES[name]] }, { network: false }).reply!, 67), file, name);
  }
  t.regex(reasonOf(exchange(proxy, { mac: MAC, options: [DISCOVER, ...CLASSES['unknown vendor']] })), /not a network-boot client/);
  t.regex(reasonOf(exchange(proxy, { mac: MAC, options: [REQUEST, ...CLASSES['BIOS PXE ROM']] })), /for the address server/);
});

test('proxy: a network-boot client with no binary for its architecture gets silence with the reason', (t) => {
  const r = exchange(rig().proxy, { mac: MAC, options: [DISCOVER, [93, u16(6)], [60, 'PXEClient:Arch:00006:UNDI:003016']] });
  t.regex(reasonOf(r), /32-bit UEFI/);
});

// ---- the PXE boot server (:4011) ----

test(':4011: a REQUEST with a boot item gets an ACK echoing it, sent back to the sender (PXE 2.1 2.2.4)', (t) => {
  const from: Arrival = { proxyPort: true, address: '10.0.0.150', port: 68 };
  const item = Buffer.from([71, 4, 0x80, 0x00, 0x00, 0x00, 255]); // boot item type 0x8000, layer 0
  const r = exchange(rig().bootServer, { mac: MAC, ciaddr: '10.0.0.150', options: [REQUEST, ...CLASSES['UEFI PXE x64'], [43, item]] }, { network: false, from });
  const b = r.reply!;
  t.is(hex(b, 53), '05');
  t.is(b.ciaddr, '10.0.0.150');
  t.is(b.yiaddr, '0.0.0.0');
  t.is(b.file, 'snponly.efi');
  t.is(hex(b, 43), '470480000000ff');
  t.is(str(b, 60), 'PXEClient');
  t.is(r.to, '10.0.0.150:68');
});

test(':4011: a DISCOVER, a plain client and a refused class get silence', (t) => {
  const { bootServer } = rig();
  t.regex(reasonOf(exchange(bootServer, { mac: MAC, options: [DISCOVER, ...CLASSES['BIOS PXE ROM']] })), /DISCOVER on the boot-server port 4011/);
  t.regex(reasonOf(exchange(bootServer, { mac: MAC, ciaddr: '10.0.0.5', options: [REQUEST, ...CLASSES['unknown vendor']] })), /not a network-boot client/);
  t.regex(reasonOf(exchange(bootServer, { mac: MAC, ciaddr: '10.0.0.5', options: [REQUEST, [93, u16(10)], [60, 'PXEClient:Arch:00010']] })), /ARM UEFI/);
});

test('a client that allows only 576 bytes still gets its reply, within 576 bytes', (t) => {
  const r = exchange(rig().full, { mac: MAC, options: [DISCOVER, [57, u16(576)], ...CLASSES['UEFI HTTP boot'].filter(([c]) => c !== 57)] });
  t.truthy(r.reply);
  const p = decodeDhcp(requestBytes({ mac: MAC, options: [DISCOVER, ...CLASSES['UEFI HTTP boot']] }));
  const out = now(rig().full.handle({ packet: p, mac: MAC, type: 1, decision: classify(clientFacts(p), { httpBase: HTTP }), iface: { name: 'eth0', address: SERVER, servesPool: true } }));
  if (out.kind !== 'reply') return t.fail();
  const built = buildReply(p, out.answer, replyIface('eth0', SERVER, 1500, networkOptions(POOL)), BROADCAST_68);
  t.true(built.ok && built.bytes.length <= 576);
});

test('a refused network-boot class: its log line at most once per 10 s, with the count since the last one; every packet still answered', (t) => {
  const lines: string[] = [];
  let clock = NOW;
  const pool = new LeasePool({ ...POOL, exclude: [SERVER, POOL.router], now: () => clock });
  const full = new FullHandler({ pool, ourIds: new Set([SERVER]), authoritative: false, log: createLogger({ level: 'info', write: (l) => lines.push(l) }), now: () => clock });
  const arm = [DISCOVER, [93, u16(10)], [60, 'PXEClient:Arch:00010']] as [number, string | Buffer][];
  for (let i = 0; i < 50; i++) t.truthy(exchange(full, { mac: `02:00:00:00:00:${i.toString(16).padStart(2, '0')}`, options: arm }).reply, `client ${i} gets an address`);
  t.is(lines.length, 1, lines.join('\n'));
  t.regex(lines[0]!, /no boot file .*count=1/);
  clock += FLOOD_LOG_EVERY_MS;
  exchange(full, { mac: '02:00:00:00:01:00', options: arm });
  t.is(lines.length, 2);
  t.regex(lines[1]!, /count=50\b/, 'the 49 held back and this one');
});
