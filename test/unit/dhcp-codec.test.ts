import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { decodeDhcp, encodeDhcp, DhcpDecodeError, DhcpEncodeError, macOf, messageType, MessageType } from '../../boot/dhcp/codec.ts';
import type { DhcpPacket } from '../../boot/dhcp/codec.ts';
import {
  Opt, IpxeSubOpt, PxeSubOpt,
  optString, optIp, optIps, optU8, optU16, optU32, optU16List, optUserClass, optUuid, optParamList, optClientNdi, optEncapsulated,
  parseEncapsulated, guidFromString, guidToString,
  encodeString, encodeIp, encodeIps, encodeU8, encodeU16, encodeU32, encodeUuid, encodeEncapsulated, encodePxeVendorOptions,
} from '../../boot/dhcp/options.ts';

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'dhcp');
const golden = (name: string) => readFileSync(join(fixtures, `${name}.bin`));
const goldenNames = readdirSync(fixtures).filter((f) => f.endsWith('.bin')).map((f) => f.slice(0, -4)).sort();
const UUID = '11223344-5566-7788-99aa-bbccddeeff00';

function packet(options: [number, Buffer][], over: Partial<DhcpPacket> = {}): DhcpPacket {
  const chaddr = Buffer.alloc(16);
  Buffer.from('525400123456', 'hex').copy(chaddr);
  return {
    op: 2, htype: 1, hlen: 6, hops: 0, xid: 0xdeadbeef, secs: 3, flags: 0x8000,
    ciaddr: '0.0.0.0', yiaddr: '10.77.0.50', siaddr: '10.77.0.1', giaddr: '0.0.0.0',
    chaddr, sname: '', file: '', options: new Map(options), ...over,
  };
}

/** A raw BOOTP header + cookie with the given option bytes (and optional sname/file contents). */
function raw(options: number[], fields: { sname?: number[]; file?: number[]; total?: number } = {}): Buffer {
  const b = Buffer.alloc(Math.max(fields.total ?? 0, 240 + options.length));
  b[0] = 1;
  b[1] = 1;
  b[2] = 6;
  b.writeUInt32BE(0x01020304, 4);
  Buffer.from('020000000001', 'hex').copy(b, 28);
  if (fields.sname) Buffer.from(fields.sname).copy(b, 44);
  if (fields.file) Buffer.from(fields.file).copy(b, 108);
  b.writeUInt32BE(0x63825363, 236);
  Buffer.from(options).copy(b, 240);
  return b;
}

const bytes = (s: string) => [...Buffer.from(s)];

// ---------------------------------------------------------------- golden packets

test('all golden packets decode; their message types match the file names', (t) => {
  t.true(goldenNames.length >= 20);
  const want: Record<string, number> = { discover: 1, offer: 2, request: 3, ack: 5 };
  for (const name of goldenNames) {
    const p = decodeDhcp(golden(name));
    const kind = name.split('-').at(-1)!;
    t.is(messageType(p), want[kind], name);
    t.is(p.op, kind === 'offer' || kind === 'ack' ? 2 : 1, name);
    t.is(p.htype, 1, name);
    t.is(p.hlen, 6, name);
  }
});

test('golden: busybox udhcpc DISCOVER', (t) => {
  const p = decodeDhcp(golden('udhcpc-discover'));
  t.is(p.xid, 0xa4a68a04);
  t.is(macOf(p), '02:00:00:00:00:a1');
  t.is(messageType(p), MessageType.DISCOVER);
  t.is(optU16(p, Opt.MAX_SIZE), 576);
  t.deepEqual(optParamList(p), [1, 3, 6, 12, 15, 28, 42]);
  t.is(optString(p, Opt.VENDOR_CLASS), 'udhcp 1.35.0');
  t.deepEqual(p.options.get(Opt.CLIENT_ID), Buffer.from('010200000000a1', 'hex'));
  t.deepEqual([...p.options.keys()], [53, 57, 55, 60, 61]);
  t.is(p.ciaddr, '0.0.0.0');
  t.is(p.flags, 0);
  t.is(p.sname, '');
  t.is(p.file, '');
  t.is(optU16List(p, Opt.CLIENT_ARCH), undefined);
});

test('golden: udhcpc posing as a PXE ROM (-V PXEClient -x 0x5d:0007)', (t) => {
  const p = decodeDhcp(golden('udhcpc-pxe-discover'));
  t.is(p.xid, 0xc4d04374);
  t.is(macOf(p), '02:00:00:00:00:a2');
  t.is(optString(p, Opt.VENDOR_CLASS), 'PXEClient');
  t.deepEqual(optU16List(p, Opt.CLIENT_ARCH), [7]);
});

test('golden: ISC dhclient DISCOVER and REQUEST', (t) => {
  const p = decodeDhcp(golden('dhclient-discover'));
  t.is(p.xid, 0x6471757a);
  t.is(macOf(p), '02:00:00:00:00:a3');
  t.is(optString(p, Opt.HOSTNAME), 'zeroboot-test');
  t.deepEqual(optParamList(p), [1, 28, 2, 3, 15, 6, 12, 26, 42]);
  t.false(p.options.has(Opt.CLIENT_ID));
  const r = decodeDhcp(golden('dhclient-request'));
  t.is(messageType(r), MessageType.REQUEST);
  t.is(r.xid, p.xid);
  t.is(optIp(r, Opt.SERVER_ID), '10.77.0.1');
  t.regex(optIp(r, Opt.REQUESTED_IP)!, /^10\.77\.0\.\d+$/);
});

test('golden: iPXE BIOS ROM DISCOVER', (t) => {
  const p = decodeDhcp(golden('ipxe-bios-discover'));
  t.is(p.xid, 0x73887e5e);
  t.is(macOf(p), '52:54:00:00:00:b1');
  t.is(messageType(p), MessageType.DISCOVER);
  t.is(optU16(p, Opt.MAX_SIZE), 1472);
  t.deepEqual(optU16List(p, Opt.CLIENT_ARCH), [0]);
  t.deepEqual(optClientNdi(p), { type: 1, major: 2, minor: 1 });
  t.is(optString(p, Opt.VENDOR_CLASS), 'PXEClient:Arch:00000:UNDI:002001');
  t.deepEqual(optUserClass(p), ['iPXE']);
  t.is(optUuid(p), UUID);
  t.deepEqual(p.options.get(Opt.CLIENT_ID), Buffer.from('015254000000b1', 'hex'));
  const params = optParamList(p)!;
  for (const c of [1, 3, 6, 43, 60, 66, 67, 175]) t.true(params.includes(c), `requests option ${c}`);
  const ipxe = optEncapsulated(p, Opt.IPXE_ENCAP)!;
  t.deepEqual(ipxe.get(IpxeSubOpt.BUS_ID), Buffer.from('011af41041', 'hex'), 'PCI bus type, virtio-net 1af4:1041');
  t.deepEqual(ipxe.get(IpxeSubOpt.VERSION), Buffer.from([1, 0, 0]));
  for (const f of [IpxeSubOpt.FEATURE_HTTP, IpxeSubOpt.FEATURE_TFTP, IpxeSubOpt.FEATURE_DNS, IpxeSubOpt.FEATURE_BZIMAGE, IpxeSubOpt.FEATURE_PXE]) {
    t.deepEqual(ipxe.get(f), Buffer.from([1]), `feature ${f}`);
  }
  t.false(ipxe.has(IpxeSubOpt.FEATURE_EFI));
  t.false(ipxe.has(IpxeSubOpt.FEATURE_HTTPS));
});

test('golden: iPXE EFI ROM under OVMF DISCOVER', (t) => {
  const p = decodeDhcp(golden('ipxe-efi-discover'));
  t.is(p.xid, 0x82357d15);
  t.is(macOf(p), '52:54:00:00:00:b3');
  t.deepEqual(optU16List(p, Opt.CLIENT_ARCH), [7]);
  t.deepEqual(optClientNdi(p), { type: 1, major: 3, minor: 10 });
  t.is(optString(p, Opt.VENDOR_CLASS), 'PXEClient:Arch:00007:UNDI:003010');
  t.deepEqual(optUserClass(p), ['iPXE']);
  t.is(optUuid(p), UUID);
  t.deepEqual(optEncapsulated(p, Opt.IPXE_ENCAP)!.get(IpxeSubOpt.FEATURE_EFI), Buffer.from([1]));
});

test('golden: OVMF native PXE DISCOVER (no iPXE)', (t) => {
  const p = decodeDhcp(golden('ovmf-pxe-discover'));
  t.is(p.xid, 0x9b866f76);
  t.is(macOf(p), '52:54:00:00:00:b2');
  t.is(p.flags, 0x8000, 'EDK2 asks for broadcast replies');
  t.is(optU16(p, Opt.MAX_SIZE), 1472);
  t.deepEqual(optU16List(p, Opt.CLIENT_ARCH), [7]);
  t.deepEqual(optClientNdi(p), { type: 1, major: 3, minor: 0 });
  t.is(optString(p, Opt.VENDOR_CLASS), 'PXEClient:Arch:00007:UNDI:003000');
  t.is(optUserClass(p), undefined);
  t.false(p.options.has(Opt.IPXE_ENCAP));
  t.is(optUuid(p), UUID);
  t.deepEqual([...p.options.keys()], [53, 57, 55, 97, 94, 93, 60]);
  const r = decodeDhcp(golden('ovmf-pxe-request'));
  t.is(optU16(r, Opt.MAX_SIZE), 65280);
});

test('golden: dnsmasq OFFER and ACK to the iPXE client', (t) => {
  const o = decodeDhcp(golden('ipxe-bios-offer'));
  t.is(o.op, 2);
  t.is(o.xid, 0x73887e5e);
  t.is(macOf(o), '52:54:00:00:00:b1');
  t.is(messageType(o), MessageType.OFFER);
  t.regex(o.yiaddr, /^10\.77\.0\.(1\d\d|200)$/);
  t.is(o.siaddr, '10.77.0.1');
  t.is(o.file, '', 'dnsmasq uses option 67 when the client asks for it');
  t.is(optString(o, Opt.BOOTFILE), 'undionly.kpxe');
  t.is(o.options.get(Opt.BOOTFILE)!.at(-1), 0, 'sent NUL-terminated; optString strips it');
  t.is(optIp(o, Opt.SERVER_ID), '10.77.0.1');
  t.is(optU32(o, Opt.LEASE_TIME), 43200);
  t.is(optU32(o, Opt.RENEWAL), 21600);
  t.is(optU32(o, Opt.REBINDING), 37800);
  t.is(optIp(o, Opt.SUBNET_MASK), '255.255.255.0');
  t.deepEqual(optIps(o, Opt.ROUTER), ['10.77.0.1']);
  const a = decodeDhcp(golden('ipxe-bios-ack'));
  t.is(messageType(a), MessageType.ACK);
  t.is(a.yiaddr, o.yiaddr);
});

test('golden: dnsmasq OFFER to a plain client names the file in the BOOTP header', (t) => {
  const o = decodeDhcp(golden('udhcpc-offer'));
  t.is(o.file, 'undionly.kpxe');
  t.is(o.siaddr, '10.77.0.1');
  t.false(o.options.has(Opt.BOOTFILE));
});

test('golden: dnsmasq proxyDHCP OFFER; encodePxeVendorOptions reproduces its option 43', (t) => {
  const d = decodeDhcp(golden('udhcpc-proxy-discover'));
  t.is(d.xid, 0x67d63416);
  t.is(optUuid(d), UUID);
  t.deepEqual(optU16List(d, Opt.CLIENT_ARCH), [0]);
  const o = decodeDhcp(golden('udhcpc-proxy-offer'));
  t.is(o.xid, d.xid);
  t.is(o.yiaddr, '0.0.0.0', 'proxyDHCP offers no address');
  t.is(o.flags, 0x8000);
  t.is(optString(o, Opt.VENDOR_CLASS), 'PXEClient');
  t.deepEqual(o.options.get(Opt.CLIENT_UUID), d.options.get(Opt.CLIENT_UUID), 'option 97 echoed');
  const sub = optEncapsulated(o, Opt.VENDOR_SPECIFIC)!;
  t.deepEqual([...sub.keys()], [PxeSubOpt.DISCOVERY_CONTROL, PxeSubOpt.MENU_PROMPT, PxeSubOpt.BOOT_SERVERS, PxeSubOpt.BOOT_MENU]);
  t.deepEqual(sub.get(PxeSubOpt.DISCOVERY_CONTROL), Buffer.from([3]));
  const ours = encodePxeVendorOptions({
    discoveryControl: 3,
    menuPrompt: { timeout: 0, prompt: 'PXE' },
    bootServers: [{ type: 0x8000, ips: ['10.77.0.1'] }],
    menu: [{ type: 0x8000, description: 'Network boot' }],
  });
  t.deepEqual(ours, o.options.get(Opt.VENDOR_SPECIFIC));
});

test('golden: decode -> encode is byte-identical to the wire and decode -> encode -> decode is equal', (t) => {
  for (const name of goldenNames) {
    const wire = golden(name);
    const p = decodeDhcp(wire);
    const again = encodeDhcp(p);
    t.deepEqual(again, wire, name);
    t.deepEqual(decodeDhcp(again), p, name);
  }
});

test('golden: decoded packets do not alias the input buffer', (t) => {
  const wire = Buffer.from(golden('ipxe-bios-discover'));
  const p = decodeDhcp(wire);
  wire.fill(0xee);
  t.is(macOf(p), '52:54:00:00:00:b1');
  t.is(optString(p, Opt.VENDOR_CLASS), 'PXEClient:Arch:00000:UNDI:002001');
});

test('golden: a buffer handed over (owned) is decoded in place, with the same result', (t) => {
  const wire = Buffer.from(golden('ipxe-bios-discover'));
  const p = decodeDhcp(wire, true);
  t.deepEqual(p, decodeDhcp(Buffer.from(wire)));
  wire[28] = 0xaa;
  t.is(p.chaddr[0], 0xaa, 'views of the given buffer, not of a copy');
});

// ---------------------------------------------------------------- encoding

test('encode: header fields, cookie, options in Map order, end, padding to 300', (t) => {
  const p = packet([[Opt.MESSAGE_TYPE, encodeU8(MessageType.OFFER)], [Opt.SERVER_ID, encodeIp('10.77.0.1')], [Opt.RAPID_COMMIT, Buffer.alloc(0)]], {
    file: 'undionly.kpxe', sname: 'boot',
  });
  const b = encodeDhcp(p);
  t.is(b.length, 300);
  t.is(b[0], 2);
  t.is(b.readUInt32BE(4), 0xdeadbeef);
  t.is(b.readUInt16BE(8), 3);
  t.is(b.readUInt16BE(10), 0x8000);
  t.deepEqual([...b.subarray(16, 24)], [10, 77, 0, 50, 10, 77, 0, 1]);
  t.is(b.subarray(44, 48).toString(), 'boot');
  t.is(b.subarray(108, 121).toString(), 'undionly.kpxe');
  t.is(b[121], 0);
  t.is(b.readUInt32BE(236), 0x63825363);
  t.deepEqual([...b.subarray(240, 253)], [53, 1, 2, 54, 4, 10, 77, 0, 1, 80, 0, 255, 0]);
  t.true(b.subarray(252).every((x) => x === 0));
  t.deepEqual(encodeDhcp(decodeDhcp(b)), b);
});

test('encode: RFC 3396 splits an option longer than 255 bytes; decode concatenates it', (t) => {
  const long = Buffer.from(Array.from({ length: 600 }, (_, i) => i & 0xff));
  const p = packet([[Opt.MESSAGE_TYPE, encodeU8(5)], [Opt.VENDOR_SPECIFIC, long]]);
  const b = encodeDhcp(p, { maxSize: 1500 });
  t.deepEqual([...b.subarray(243, 245)], [43, 255]);
  t.deepEqual([...b.subarray(243 + 257, 243 + 259)], [43, 255]);
  t.deepEqual([...b.subarray(243 + 514, 243 + 516)], [43, 90]);
  t.is(b[243 + 516 + 90], 255);
  t.false(b.includes(Buffer.from([52, 1])), 'no overload needed at 1500 bytes');
  const d = decodeDhcp(b);
  t.deepEqual(d.options.get(Opt.VENDOR_SPECIFIC), long);
  t.deepEqual(encodeDhcp(d, { maxSize: 1500 }), b);
});

test('encode: overloads file and sname (option 52 = 3) when the options do not fit in 576 bytes', (t) => {
  const opts: [number, Buffer][] = [
    [Opt.MESSAGE_TYPE, encodeU8(MessageType.ACK)],
    [Opt.SERVER_ID, encodeIp('10.77.0.1')],
    [Opt.VENDOR_SPECIFIC, Buffer.alloc(250, 0x41)],
    [Opt.ROOT_PATH, Buffer.alloc(100, 0x42)],
    [Opt.DOMAIN, Buffer.alloc(60, 0x43)],
    [Opt.HOSTNAME, Buffer.alloc(40, 0x44)],
  ];
  const p = packet(opts);
  const b = encodeDhcp(p);
  t.true(b.length <= 576, `${b.length} bytes`);
  const d = decodeDhcp(b);
  t.deepEqual(d.options.get(Opt.OVERLOAD), Buffer.from([3]));
  t.is(d.file, '');
  t.is(d.sname, '');
  for (const [code, value] of opts) t.deepEqual(d.options.get(code), value, `option ${code}`);
  t.is(b[108], Opt.ROOT_PATH, 'file holds the first option that did not fit');
  t.is(b[110 + 100], 255, 'file area ends with the end option');
  t.is(b[44], Opt.HOSTNAME, 'sname holds one that fits neither the options area nor file');
  t.deepEqual([...d.options.keys()], [53, 54, 43, 15, 52, 17, 12], 'first-fit: option 15 still fits the options area');
  t.deepEqual(encodeDhcp(d), b, 'encode -> decode -> encode is byte-identical');
});

test('encode: only sname is overloaded (52 = 2) when the file field is in use', (t) => {
  const opts: [number, Buffer][] = [
    [Opt.MESSAGE_TYPE, encodeU8(MessageType.OFFER)],
    [Opt.VENDOR_SPECIFIC, Buffer.alloc(255, 1)],
    [Opt.DOMAIN, Buffer.alloc(60, 2)],
    [Opt.HOSTNAME, Buffer.alloc(30, 3)],
  ];
  const b = encodeDhcp(packet(opts, { file: 'ipxe.efi' }));
  t.is(b[44], Opt.HOSTNAME);
  const d = decodeDhcp(b);
  t.deepEqual(d.options.get(Opt.OVERLOAD), Buffer.from([2]));
  t.is(d.file, 'ipxe.efi');
  t.is(d.sname, '');
  for (const [code, value] of opts) t.deepEqual(d.options.get(code), value);
  t.deepEqual(encodeDhcp(d), b);
});

test('encode: a long option is split across the options, file and sname areas', (t) => {
  const long = Buffer.from(Array.from({ length: 500 }, (_, i) => (i * 7) & 0xff));
  const p = packet([[Opt.MESSAGE_TYPE, encodeU8(5)], [Opt.VENDOR_SPECIFIC, long]]);
  const b = encodeDhcp(p);
  t.is(b.length, 576, 'options area filled to the last byte');
  t.deepEqual([...b.subarray(243 + 257, 243 + 259)], [43, 70]);
  t.deepEqual([...b.subarray(108, 110)], [43, 125]);
  t.deepEqual([...b.subarray(44, 46)], [43, 50]);
  const d = decodeDhcp(b);
  t.deepEqual(d.options.get(Opt.VENDOR_SPECIFIC), long);
  t.is(b[108], Opt.VENDOR_SPECIFIC);
  t.deepEqual(encodeDhcp(d), b);
});

test('encode: maxSize from option 57 avoids overload; maxSize below 576 is raised to 576', (t) => {
  const p = packet([[Opt.MESSAGE_TYPE, encodeU8(5)], [Opt.VENDOR_SPECIFIC, Buffer.alloc(255)], [Opt.DOMAIN, Buffer.alloc(100)]]);
  const big = encodeDhcp(p, { maxSize: 1472 });
  t.false(decodeDhcp(big).options.has(Opt.OVERLOAD));
  t.is(big.length, 240 + 3 + 257 + 102 + 1);
  t.deepEqual(encodeDhcp(p, { maxSize: 300 }), encodeDhcp(p));
  t.true(decodeDhcp(encodeDhcp(p)).options.has(Opt.OVERLOAD));
});

test('encode: option 52 in the Map is ignored; the encoder decides overload', (t) => {
  const p = packet([[Opt.MESSAGE_TYPE, encodeU8(2)], [Opt.OVERLOAD, Buffer.from([3])]]);
  const d = decodeDhcp(encodeDhcp(p));
  t.false(d.options.has(Opt.OVERLOAD));
});

test('encode: DhcpEncodeError when options cannot fit', (t) => {
  const opts: [number, Buffer][] = [[Opt.VENDOR_SPECIFIC, Buffer.alloc(255)], [Opt.DOMAIN, Buffer.alloc(200)]];
  const e1 = t.throws(() => encodeDhcp(packet(opts, { file: 'x', sname: 'y' })), { instanceOf: DhcpEncodeError });
  t.regex(e1.message, /file\/sname are in use/);
  const huge: [number, Buffer][] = [[Opt.VENDOR_SPECIFIC, Buffer.alloc(2000)]];
  t.throws(() => encodeDhcp(packet(huge)), { instanceOf: DhcpEncodeError, message: /options need 2016 bytes/ });
  t.notThrows(() => encodeDhcp(packet(huge), { maxSize: 2300 }));
  // 200-byte options never split: a 200-byte option that fits neither the rest of the options area nor file (127) fails.
  const unsplittable: [number, Buffer][] = [[1, Buffer.alloc(250)], [2, Buffer.alloc(200)]];
  t.throws(() => encodeDhcp(packet(unsplittable)), { instanceOf: DhcpEncodeError });
});

test('encode: DhcpEncodeError on invalid fields', (t) => {
  const ok = packet([[Opt.MESSAGE_TYPE, encodeU8(2)]]);
  const bad: Partial<DhcpPacket>[] = [
    { op: 256 }, { op: -1 }, { htype: 1.5 }, { hlen: 17 }, { hops: 300 }, { xid: 2 ** 32 }, { xid: -1 }, { secs: 65536 }, { flags: NaN },
    { ciaddr: '1.2.3' }, { yiaddr: '256.0.0.1' }, { siaddr: '1.2.3.4.5' }, { giaddr: 'x' }, { yiaddr: ' 1.2.3.4' },
    { chaddr: Buffer.alloc(6) }, { chaddr: Buffer.alloc(17) },
    { sname: 'x'.repeat(65) }, { file: 'x'.repeat(129) }, { file: 'a\0b' }, { file: 'snow\u2603' },
    { options: new Map([[0, Buffer.alloc(1)]]) }, { options: new Map([[255, Buffer.alloc(1)]]) }, { options: new Map([[256, Buffer.alloc(1)]]) },
  ];
  for (const over of bad) t.throws(() => encodeDhcp({ ...ok, ...over }), { instanceOf: DhcpEncodeError }, JSON.stringify(over));
  t.throws(() => encodeDhcp(ok, { maxSize: NaN }), { instanceOf: DhcpEncodeError });
  t.notThrows(() => encodeDhcp({ ...ok, sname: 'x'.repeat(64), file: 'y'.repeat(128) }), 'full-width fields need no NUL');
  const full = decodeDhcp(encodeDhcp({ ...ok, sname: 's'.repeat(64), file: 'f'.repeat(128) }));
  t.is(full.sname, 's'.repeat(64));
  t.is(full.file, 'f'.repeat(128));
});

// ---------------------------------------------------------------- decoding

test('decode: option overload 3 reads options, then file, then sname and concatenates split options in that order', (t) => {
  const b = raw([53, 1, 5, 43, 2, 0xa1, 0xa2, 52, 1, 3, 255], {
    file: [43, 2, 0xb1, 0xb2, 0, 0, 12, 3, ...bytes('abc'), 255],
    sname: [43, 1, 0xc1, 66, 4, ...bytes('tftp'), 255],
  });
  const p = decodeDhcp(b);
  t.deepEqual(p.options.get(43), Buffer.from([0xa1, 0xa2, 0xb1, 0xb2, 0xc1]));
  t.is(optString(p, Opt.HOSTNAME), 'abc');
  t.is(optString(p, Opt.TFTP_SERVER), 'tftp');
  t.is(p.file, '');
  t.is(p.sname, '');
  t.deepEqual([...p.options.keys()], [53, 43, 52, 12, 66]);
});

test('decode: option overload 1 uses file only and keeps sname as a string; 2 the reverse', (t) => {
  const p1 = decodeDhcp(raw([52, 1, 1, 255], { file: [67, 3, ...bytes('a.0'), 255], sname: bytes('server1') }));
  t.is(optString(p1, Opt.BOOTFILE), 'a.0');
  t.is(p1.sname, 'server1');
  t.is(p1.file, '');
  const p2 = decodeDhcp(raw([52, 1, 2, 255], { sname: [12, 2, ...bytes('hi'), 255], file: bytes('pxelinux.0') }));
  t.is(optString(p2, Opt.HOSTNAME), 'hi');
  t.is(p2.file, 'pxelinux.0');
  t.is(p2.sname, '');
  const p0 = decodeDhcp(raw([255], { file: [67, 3, ...bytes('a.0'), 255] }));
  t.false(p0.options.has(Opt.BOOTFILE), 'without option 52 the file field is not options');
  t.is(p0.file, 'C\u0003a.0\u00ff');
});

test('decode: RFC 3396 concatenates repeated instances in the main area', (t) => {
  const p = decodeDhcp(raw([43, 2, 1, 2, 53, 1, 1, 43, 1, 3, 43, 0, 43, 2, 4, 5, 255]));
  t.deepEqual(p.options.get(43), Buffer.from([1, 2, 3, 4, 5]));
  t.deepEqual([...p.options.keys()], [43, 53]);
});

test('decode: pad options are skipped anywhere; missing end is tolerated; bytes after end are ignored', (t) => {
  const p = decodeDhcp(raw([0, 0, 53, 1, 3, 0, 12, 1, 0x78, 0, 0]));
  t.deepEqual([...p.options.keys()], [53, 12]);
  t.is(optString(p, Opt.HOSTNAME), 'x');
  const q = decodeDhcp(raw([53, 1, 1, 255, 43, 200, 1, 2]));
  t.deepEqual([...q.options.keys()], [53], 'a broken option after end is never read');
  const r = decodeDhcp(raw([53, 1, 1]));
  t.is(messageType(r), 1);
  const empty = decodeDhcp(raw([]));
  t.is(empty.options.size, 0);
  t.is(messageType(empty), undefined);
  const zeroLen = decodeDhcp(raw([80, 0, 255]));
  t.deepEqual(zeroLen.options.get(80), Buffer.alloc(0));
});

test('decode: DhcpDecodeError for every malformed shape', (t) => {
  const cases: [string, Buffer, RegExp][] = [
    ['empty', Buffer.alloc(0), /0 bytes/],
    ['short header', raw([]).subarray(0, 239), /239 bytes/],
    ['bad cookie', (() => { const b = raw([255]); b[236] = 0; return b; })(), /magic cookie 0x00825363/],
    ['BOOTP vendor area without cookie', (() => { const b = raw([255]); b.writeUInt32BE(0, 236); return b; })(), /magic cookie/],
    ['option past end', raw([53, 1, 1, 43, 10, 1, 2, 3]), /option 43 at options offset 3 claims 10 bytes but only 3 remain/],
    ['code without length byte', raw([53, 1, 1, 12]), /option 12 .* has no length byte/],
    ['hlen > 16', (() => { const b = raw([255]); b[2] = 17; return b; })(), /hardware address length 17/],
    ['overload value 0', raw([52, 1, 0, 255]), /option 52/],
    ['overload value 4', raw([52, 1, 4, 255]), /option 52/],
    ['overload two bytes', raw([52, 2, 1, 1, 255]), /option 52/],
    ['overload repeated', raw([52, 1, 1, 52, 1, 1, 255]), /option 52/],
    ['overload into file with an option past the field', raw([52, 1, 1, 255], { file: [...Array(120).fill(0), 43, 20, 1] }), /option 43 at file offset 120 claims 20/],
    ['overload into sname with code but no length', raw([52, 1, 2, 255], { sname: [...Array(63).fill(0), 12] }), /option 12 at sname offset 63 has no length byte/],
    ['option 52 inside file', raw([52, 1, 1, 255], { file: [52, 1, 2, 255] }), /option 52 \(overload\) found inside the file field/],
  ];
  for (const [name, buf, msg] of cases) {
    const e = t.throws(() => decodeDhcp(buf), { instanceOf: DhcpDecodeError }, name);
    t.regex(e.message, msg, name);
    t.is(e.name, 'DhcpDecodeError');
  }
});

test('decode: an overloaded file whose content is all padding yields no options and no error', (t) => {
  const p = decodeDhcp(raw([53, 1, 2, 52, 1, 3, 255]));
  t.deepEqual([...p.options.keys()], [53, 52]);
  t.is(p.file, '');
});

test('decode: sname/file stop at the first NUL and keep every byte value (latin1)', (t) => {
  const p = decodeDhcp(raw([255], { sname: [0x68, 0xe9, 0, 0x41], file: [...bytes('boot/ipxe.efi'), 0, ...bytes('junk')] }));
  t.is(p.sname, 'h\u00e9');
  t.is(p.file, 'boot/ipxe.efi');
  t.is(encodeDhcp(p)[45], 0xe9);
});

test('macOf and messageType', (t) => {
  const p = packet([]);
  t.is(macOf(p), '52:54:00:12:34:56');
  t.is(macOf({ ...p, hlen: 0 }), '');
  t.is(macOf({ ...p, hlen: 8, chaddr: Buffer.from('aabbccddeeff0102' + '00'.repeat(8), 'hex') }), 'aa:bb:cc:dd:ee:ff:01:02');
  t.is(messageType(p), undefined);
  t.is(messageType(packet([[53, Buffer.from([1, 2])]])), undefined);
  t.is(messageType(packet([[53, Buffer.from([8])]])), MessageType.INFORM);
});

// ---------------------------------------------------------------- option accessors

test('accessors return undefined for absent or malformed values', (t) => {
  const p = packet([
    [1, Buffer.from([255, 255, 0])], [3, Buffer.from([1, 2, 3, 4, 5])], [51, Buffer.from([1, 2])], [57, Buffer.from([1])], [53, Buffer.alloc(0)],
    [93, Buffer.from([0, 7, 0])], [94, Buffer.from([1, 2])], [97, Buffer.from([1, ...Array(16).fill(0)])], [175, Buffer.from([177, 9, 1])],
  ]);
  t.is(optIp(p, 1), undefined);
  t.is(optIps(p, 3), undefined);
  t.is(optU32(p, 51), undefined);
  t.is(optU16(p, 57), undefined);
  t.is(optU8(p, 53), undefined);
  t.is(optU16List(p, 93), undefined);
  t.is(optClientNdi(p), undefined);
  t.is(optUuid(p), undefined, 'type byte must be 0');
  t.is(optUuid(packet([[97, Buffer.alloc(16)]])), undefined, 'must be 17 bytes');
  t.is(optEncapsulated(p, 175), undefined, 'sub-option past the end');
  for (const f of [optString, optIp, optIps, optU8, optU16, optU32, optU16List]) t.is(f(p, 200), undefined);
  t.is(optUserClass(p), undefined);
  t.is(optParamList(p), undefined);
});

test('optString: UTF-8 when valid, latin1 otherwise, trailing NULs stripped', (t) => {
  t.is(optString(packet([[12, Buffer.from('n\u00f6de\0\0', 'utf8')]]), 12), 'n\u00f6de');
  t.is(optString(packet([[12, Buffer.from([0x6e, 0xf6, 0x64, 0x65])]]), 12), 'n\u00f6de');
  t.is(optString(packet([[12, Buffer.from([0, 0])]]), 12), '');
});

test('optUserClass: RFC 3004 list when the lengths tile the value, else one plain string', (t) => {
  t.deepEqual(optUserClass(packet([[77, Buffer.from([4, ...bytes('iPXE'), 2, ...bytes('ab')])]])), ['iPXE', 'ab']);
  t.deepEqual(optUserClass(packet([[77, Buffer.from('iPXE')]])), ['iPXE']);
  t.deepEqual(optUserClass(packet([[77, Buffer.from([3, ...bytes('abcd')])]])), ['\u0003abcd'], 'length does not tile');
  t.deepEqual(optUserClass(packet([[77, Buffer.from([0, 1, 0x61])]])), ['\u0000\u0001a'], 'zero-length class is not RFC 3004');
  t.deepEqual(optUserClass(packet([[77, Buffer.alloc(0)]])), []);
});

test('GUID helpers: SMBIOS byte order both ways', (t) => {
  const wire = Buffer.from('44332211665588779900aabbccddeeff', 'hex');
  t.is(guidToString(wire), '11223344-5566-7788-9900-aabbccddeeff');
  t.deepEqual(guidFromString('11223344-5566-7788-9900-AABBCCDDEEFF'), wire);
  t.is(guidFromString('11223344-5566-7788-9900'), undefined);
  t.deepEqual(encodeUuid(UUID), decodeDhcp(golden('ipxe-bios-discover')).options.get(Opt.CLIENT_UUID));
  t.throws(() => encodeUuid('nope'), { instanceOf: DhcpEncodeError });
});

test('encoders: values and errors', (t) => {
  t.deepEqual(encodeString('iPXE'), Buffer.from('iPXE'));
  t.deepEqual(encodeIp('10.77.0.1'), Buffer.from([10, 77, 0, 1]));
  t.deepEqual(encodeIps(['1.2.3.4', '5.6.7.8']), Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]));
  t.deepEqual(encodeU8(255), Buffer.from([255]));
  t.deepEqual(encodeU16(1472), Buffer.from([5, 0xc0]));
  t.deepEqual(encodeU32(43200), Buffer.from([0, 0, 0xa8, 0xc0]));
  for (const f of [() => encodeIp('10.77.0'), () => encodeIp('10.77.0.256'), () => encodeU8(256), () => encodeU16(-1), () => encodeU32(2 ** 32), () => encodeU8(1.5)]) {
    t.throws(f, { instanceOf: DhcpEncodeError });
  }
});

test('encapsulated options: round trip, pad/end handling, limits', (t) => {
  const enc = encodeEncapsulated([[6, Buffer.from([8])], [177, Buffer.from([1, 2])]]);
  t.deepEqual(enc, Buffer.from([6, 1, 8, 177, 2, 1, 2, 255]));
  t.deepEqual([...parseEncapsulated(enc)!], [[6, Buffer.from([8])], [177, Buffer.from([1, 2])]]);
  t.deepEqual(parseEncapsulated(Buffer.from([0, 6, 1, 8, 255, 9, 99])), new Map([[6, Buffer.from([8])]]));
  t.deepEqual(parseEncapsulated(Buffer.from([6])), undefined);
  t.throws(() => encodeEncapsulated([[6, Buffer.alloc(256)]]), { instanceOf: DhcpEncodeError });
  t.throws(() => encodeEncapsulated([[0, Buffer.alloc(1)]]), { instanceOf: DhcpEncodeError });
});

test('encodePxeVendorOptions: discovery control 8 for proxyDHCP, all sub-options', (t) => {
  t.deepEqual(encodePxeVendorOptions({ discoveryControl: 8 }), Buffer.from([6, 1, 8, 255]));
  const all = encodePxeVendorOptions({
    discoveryControl: 7,
    bootServers: [{ type: 0, ips: ['10.0.0.1', '10.0.0.2'] }],
    menu: [{ type: 0, description: 'Boot' }, { type: 1, description: 'x' }],
    menuPrompt: { timeout: 5, prompt: 'Press F8' },
    bootItem: { type: 0, layer: 0 },
  });
  const sub = parseEncapsulated(all)!;
  t.deepEqual([...sub.keys()], [6, 10, 8, 9, 71]);
  t.deepEqual(sub.get(8), Buffer.from([0, 0, 2, 10, 0, 0, 1, 10, 0, 0, 2]));
  t.deepEqual(sub.get(9), Buffer.from([0, 0, 4, ...bytes('Boot'), 0, 1, 1, 0x78]));
  t.deepEqual(sub.get(10), Buffer.from([5, ...bytes('Press F8')]));
  t.deepEqual(sub.get(71), Buffer.from([0, 0, 0, 0]));
  t.deepEqual(encodePxeVendorOptions({}), Buffer.from([255]));
  t.throws(() => encodePxeVendorOptions({ discoveryControl: 256 }), { instanceOf: DhcpEncodeError });
});
