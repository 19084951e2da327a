// The provisioning script's pure parts: the farm CSV, the pool and subnet
// arithmetic, reading `ss`, the DISCOVER probe's packets, the proxy-mode
// advice, the configuration it writes and the rows of its live table.
import test from 'ava';
import { parse } from 'yaml';
import { encodeDhcp, decodeDhcp, MessageType } from '../../boot/dhcp/codec.ts';
import { Opt } from '../../boot/dhcp/options.ts';
import { parseConfig } from '../../boot/config.ts';
import { parseFarmCsv } from '../../scripts/provision/farm-csv.ts';
import { defaultPool, inSubnet, parseSs } from '../../scripts/provision/host-checks.ts';
import type { FarmInterface } from '../../scripts/provision/host-checks.ts';
import { discoverPacket, offerOf, probeMac, proxyAdvice } from '../../scripts/provision/dhcp-probe.ts';
import { farmConfig, renderFarmConfig } from '../../scripts/provision/farm-config.ts';
import type { FarmSettings } from '../../scripts/provision/farm-config.ts';
import { nodeRows, renderTable } from '../../scripts/provision/node-table.ts';
import { ProvisionError } from '../../scripts/provision/exit-codes.ts';

const IFACE: FarmInterface = { name: 'eno2', address: '10.77.0.1', netmask: '255.255.255.0', prefixLength: 24, mac: '00:11:22:33:44:55', carrier: true };

test('the CSV: header, comments, blank lines, MAC spellings, the optional ip and profile columns', (t) => {
  const nodes = parseFarmCsv('mac,hostname,ip,profile\n# rack 1\n\n52-54-00-AA-00-01,node-1,10.77.0.50\n5254.00aa.0002,node-2,zos-secureboot\n52:54:00:aa:00:03,node-3,,zos\n52:54:00:aa:00:04 , node-4\n', 'f.csv');
  t.deepEqual(nodes, [
    { mac: '52:54:00:aa:00:01', hostname: 'node-1', ip: '10.77.0.50' },
    { mac: '52:54:00:aa:00:02', hostname: 'node-2', profile: 'zos-secureboot' },
    { mac: '52:54:00:aa:00:03', hostname: 'node-3', profile: 'zos' },
    { mac: '52:54:00:aa:00:04', hostname: 'node-4' },
  ]);
});

test('the CSV: each bad line is a badCsv error naming file and line', (t) => {
  const bad: [string, RegExp][] = [
    ['52:54:00:aa:00:01,node-1,10.77.0.300\n', /^f\.csv:1: "10\.77\.0\.300" is not an IPv4 address$/],
    ['52:54:00:aa:00:01,node-1\n52:54:00:aa:00:02,NODE-1\n', /^f\.csv:2: hostname node-1 is already on line 1$/],
    ['52:54:00:aa:00:01,a,10.77.0.5\n52:54:00:aa:00:02,b,10.77.0.5\n', /^f\.csv:2: ip 10\.77\.0\.5 is already on line 1$/],
    ['52:54:00:aa:00:01,a,10.77.0.5,p,extra\n', /^f\.csv:1: expected mac,hostname\[,ip\]\[,profile\], got 5 column\(s\)$/],
    ['52:54:00:aa:00:01,-bad\n', /^f\.csv:1: "-bad" is not a host name/],
    ['52:54:00:aa:00:01,a,10.77.0.5,no/slash\n', /^f\.csv:1: "no\/slash" is not a profile name$/],
  ];
  for (const [text, want] of bad) {
    const e = t.throws(() => parseFarmCsv(text, 'f.csv'), { instanceOf: ProvisionError });
    t.is(e!.exit, 'badCsv');
    t.is(e!.code, 3);
    t.regex(e!.message, want);
  }
});

test('the default pool is the upper half of the subnet, around the server address', (t) => {
  t.deepEqual(defaultPool(IFACE), { start: '10.77.0.128', end: '10.77.0.254' });
  t.deepEqual(defaultPool({ ...IFACE, address: '10.77.0.200' }), { start: '10.77.0.128', end: '10.77.0.199' });
  t.deepEqual(defaultPool({ ...IFACE, address: '10.77.0.130' }), { start: '10.77.0.131', end: '10.77.0.254' });
  t.deepEqual(defaultPool({ ...IFACE, address: '10.76.1.1', netmask: '255.254.0.0', prefixLength: 15 }), { start: '10.77.0.0', end: '10.77.255.254' });
  t.throws(() => defaultPool({ ...IFACE, netmask: '255.255.255.252', prefixLength: 30 }), { message: /too small for a pool/ });
  t.true(inSubnet(IFACE, '10.77.0.99'));
  t.false(inSubnet(IFACE, '10.77.1.99'));
});

test('ss lines: wildcard, own address and own interface conflict; other addresses and interfaces do not', (t) => {
  const out = [
    'UNCONN 0 0 0.0.0.0:67 0.0.0.0:* users:(("dnsmasq",pid=999999,fd=4))',
    'UNCONN 0 0 0.0.0.0%eth9:69 0.0.0.0:*',
    'UNCONN 0 0 0.0.0.0%eno2:69 0.0.0.0:*',
    'UNCONN 0 0 127.0.0.1:67 0.0.0.0:*',
    'UNCONN 0 0 [::]:67 [::]:*',
    'UNCONN 0 0 10.77.0.1:69 0.0.0.0:*',
  ].join('\n');
  const uses = parseSs(out, 'udp', IFACE);
  t.deepEqual(uses.map((u) => u.local), ['0.0.0.0:67', '0.0.0.0%eno2:69', '[::]:67', '10.77.0.1:69']);
  t.is(uses[0].process, 'dnsmasq', 'ss name when /proc has no such pid');
  t.is(uses[0].pid, 999999);
  t.false(uses[0].zeroboot);
});

test('the probe DISCOVER decodes as a broadcast DISCOVER from a locally administered MAC; offerOf keeps only OFFERs for its xid', (t) => {
  const mac = probeMac('00:11:22:33:44:55');
  t.is(mac.toString('hex'), '021122334455');
  const d = decodeDhcp(discoverPacket(mac, 0x1234));
  t.is(d.op, 1);
  t.is(d.flags, 0x8000);
  t.is(d.xid, 0x1234);
  t.deepEqual(d.options.get(Opt.MESSAGE_TYPE), Buffer.from([MessageType.DISCOVER]));
  const reply = (type: number, xid: number) => encodeDhcp({ ...d, op: 2, xid, yiaddr: '10.77.0.23', siaddr: '10.77.0.254', options: new Map([[Opt.MESSAGE_TYPE, Buffer.from([type])], [Opt.SERVER_ID, Buffer.from([10, 77, 0, 254])], [Opt.ROUTER, Buffer.from([10, 77, 0, 254])]]) });
  t.deepEqual(offerOf(reply(MessageType.OFFER, 0x1234), '10.77.0.254', 0x1234), { server: '10.77.0.254', from: '10.77.0.254', yiaddr: '10.77.0.23', siaddr: '10.77.0.254', file: '', router: '10.77.0.254' });
  t.is(offerOf(reply(MessageType.OFFER, 0x9999), '10.77.0.254', 0x1234), undefined, 'another exchange');
  t.is(offerOf(reply(MessageType.ACK, 0x1234), '10.77.0.254', 0x1234), undefined, 'not an offer');
  t.is(offerOf(Buffer.from('garbage'), '10.77.0.254', 0x1234), undefined, 'garbage');
});

test('proxy advice: next-server for the signed chain, unless already sent; the reservations to make there', (t) => {
  const offer = { server: '10.77.0.254', from: '10.77.0.254', yiaddr: '10.77.0.23', siaddr: '0.0.0.0', file: '' };
  const lines = proxyAdvice([offer], '10.77.0.1', [{ mac: '52:54:00:aa:00:01', ip: '10.77.0.50' }]);
  t.regex(lines.join('\n'), /it must send next-server 10\.77\.0\.1 \(BOOTP siaddr\): dnsmasq dhcp-boot=,,10\.77\.0\.1/);
  t.regex(lines.join('\n'), /reserve them there:\n {2}52:54:00:aa:00:01 -> 10\.77\.0\.50/);
  t.regex(proxyAdvice([{ ...offer, siaddr: '10.77.0.1' }], '10.77.0.1', []).join('\n'), /already names this host \(10\.77\.0\.1\) as next-server/);
});

const SETTINGS: FarmSettings = {
  farmId: 42, runmode: 'prod', iface: IFACE, dhcpMode: 'full', imageDir: '/srv/image', stateDir: '/var/lib/zeroboot', httpPort: 8080, apiPort: 8081,
  signedChain: true, kernelArgs: { no_timer_check: null },
  nodes: [{ mac: '52:54:00:aa:00:01', hostname: 'node-1', ip: '10.77.0.50' }, { mac: '52:54:00:aa:00:02', hostname: 'node-2', profile: 'zos-secureboot' }],
};

test('the configuration: the bootstrap command line, reservations in full mode only, valid for the server, the same text every time', (t) => {
  const text = renderFarmConfig(SETTINGS);
  t.is(renderFarmConfig(SETTINGS), text, 'deterministic');
  const cfg = parseConfig(parse(text), '/');
  t.is(cfg.dhcp.mode, 'full');
  t.deepEqual([cfg.dhcp.pool?.start, cfg.dhcp.pool?.end], ['10.77.0.128', '10.77.0.254']);
  t.deepEqual(cfg.profiles[0].args, { nomodeset: null, version: 'v3', runmode: 'prod', panic: 7200, farmer_id: 42, console: 'ttyS0', 'zeroboot.server': 'http://10.77.0.1:8080', no_timer_check: null });
  t.is(cfg.profiles[1].secureBoot, true);
  t.deepEqual(cfg.machines.map((m) => [m.mac, m.hostname, m.ip, m.profile]), [['52:54:00:aa:00:01', 'node-1', '10.77.0.50', undefined], ['52:54:00:aa:00:02', 'node-2', undefined, 'zos-secureboot']]);
  const proxy = farmConfig({ ...SETTINGS, dhcpMode: 'proxy' }) as { server: { dhcp: unknown }; machines: { ip?: string }[] };
  t.deepEqual(proxy.server.dhcp, { mode: 'proxy' });
  t.is(proxy.machines[0].ip, undefined, 'the other server hands out addresses');
});

test('the table: listed machines in CSV order, then unlisted; stage from the last event, reported from the registry', (t) => {
  const listed = [{ mac: '52:54:00:aa:00:01', hostname: 'node-1' }, { mac: '52:54:00:aa:00:02', hostname: 'node-2' }, { mac: '52:54:00:aa:00:03', hostname: 'node-3' }];
  const machines = [
    { mac: '52:54:00:aa:00:01', last: { kind: 'http.initrd' }, lease: { ip: '10.77.0.50' } },
    { mac: '52:54:00:aa:00:02', last: { kind: 'http.error', reason: 'no profile' } },
    { mac: '52:54:00:aa:00:09', last: { kind: 'dhcp.ack' }, lease: { ip: '10.77.0.130' } },
  ];
  const nodes = [{ nodeId: 'NODE1', macs: ['52:54:00:aa:00:01'], reports: 2 }, { nodeId: 'NODE9', macs: ['52:54:00:aa:00:09'], reports: 0 }];
  const details = new Map([['NODE1', { nodeId: 'NODE1', report: { disks: [{ state: 'prepared' }, { state: 'foreign' }], zdbs: [{ healthy: true }] } }]]);
  const rows = nodeRows(listed, machines, nodes, details);
  t.deepEqual(rows.map((r) => [r.mac, r.hostname, r.stage, r.ip, r.nodeId, r.disks, r.zdbs, r.listed, r.reported]), [
    ['52:54:00:aa:00:01', 'node-1', 'reported', '10.77.0.50', 'NODE1', '2 (1 pool)', '1/1 ok', true, true],
    ['52:54:00:aa:00:02', 'node-2', 'http: no profile', '-', '-', '-', '-', true, false],
    ['52:54:00:aa:00:03', 'node-3', 'not seen', '-', '-', '-', '-', true, false],
    ['52:54:00:aa:00:09', '-', 'dhcp', '10.77.0.130', 'NODE9', '-', '-', false, false],
  ]);
  t.deepEqual(nodeRows(listed, machines, nodes, details, ['52:54:00:aa:00:09']).map((r) => r.mac), listed.map((n) => n.mac), "the probe's MAC is no server");
  const table = renderTable(rows).split('\n');
  t.regex(table[0], /^MAC {16}HOSTNAME +STAGE +IP +NODE ID +DISKS +ZDBS$/);
  t.regex(table[4], /^52:54:00:aa:00:09 {2}- \(unlisted\) +dhcp +10\.77\.0\.130 +NODE9 +- +-$/);
});
