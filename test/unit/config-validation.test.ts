// Every refusal of the configuration checks: one line naming the key, with
// the fix where one is likely (unknown keys get the closest known key).
import test from 'ava';
import { parse } from 'yaml';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig, ConfigError } from '../../boot/config.ts';
import { hostProblems, fileProblems, summary } from '../../boot/config-check.ts';
import type { HostInterfaces } from '../../boot/config-check.ts';
import { prefixLength } from '../../boot/config-ranges.ts';
import { closest, editDistance } from '../../lib/suggest.ts';

const base = (extra = '') =>
  parse(`server:
  address: 10.77.0.1
  interfaces: [br0]
  dhcp:
    mode: full
    pool: { start: 10.77.0.100, end: 10.77.0.200, router: 10.77.0.1 }
  tftp: { port: 69 }
  http: { port: 8080 }
  management: { port: 8081 }
store:
  - { prefix: images, dir: images }
profiles:
  - { name: zos, kernel: images/zos/vmlinuz, initrd: images/zos/initramfs.img }
groups:
  - { name: all, profile: zos, selector: {} }
machines:
  - { mac: 52:54:00:00:00:01, ip: 10.77.0.50, hostname: node-01 }
  - { mac: 52:54:00:00:00:02, ip: 10.77.0.51 }
${extra}`);

const refusals: [string, (d: Record<string, any>) => void, string][] = [
  ['top-level typo', (d) => (d.profile = []), 'profile: unknown key (did you mean "profiles"?)'],
  ['server typo', (d) => (d.server.adress = '10.0.0.1'), 'server.adress: unknown key (did you mean "address"?)'],
  ['dhcp typo', (d) => (d.server.dhcp.pol = {}), 'server.dhcp.pol: unknown key (did you mean "pool"?)'],
  ['pool typo', (d) => (d.server.dhcp.pool.subnetmask = '255.255.0.0'), 'server.dhcp.pool.subnetmask: unknown key (did you mean "subnetMask"?)'],
  ['tftp typo', (d) => (d.server.tftp.prot = 69), 'server.tftp.prot: unknown key (did you mean "port"?)'],
  ['http typo', (d) => (d.server.http.publicURL = 'http://x'), 'server.http.publicURL: unknown key (did you mean "publicUrl"?)'],
  ['management typo', (d) => (d.server.management.auht = 'token'), 'server.management.auht: unknown key (did you mean "auth"?)'],
  ['store entry typo', (d) => (d.store[0].prefx = 'x'), 'store[0].prefx: unknown key (did you mean "prefix"?)'],
  ['profile typo', (d) => (d.profiles[0].kernal = 'x'), 'profiles[0].kernal: unknown key (did you mean "kernel"?)'],
  ['profile typo, snake case', (d) => (d.profiles[0].secure_boot = true), 'profiles[0].secure_boot: unknown key (did you mean "secureBoot"?)'],
  ['group typo', (d) => (d.groups[0].selecter = {}), 'groups[0].selecter: unknown key (did you mean "selector"?)'],
  ['machine typo', (d) => (d.machines[1].hostnmae = 'x'), 'machines[1].hostnmae: unknown key (did you mean "hostname"?)'],
  ['flists typo', (d) => (d.flists = { dir: 'f', stor: 'dir:///x' }), 'flists.stor: unknown key (did you mean "store"?)'],
  ['selector label typo', (d) => (d.groups[0].selector = { hostnme: 'a' }), 'groups[0].selector.hostnme: unknown label (did you mean "hostname"?)'],
  ['nothing close: the known keys', (d) => (d.server.tftp.colour = 1), 'server.tftp.colour: unknown key (known: enabled, port, maxTransfers, maxTransfersPerClient, maxWaiting, timeoutMs, retries, firstRetries)'],
  ['same reservation twice', (d) => (d.machines[1].ip = '10.77.0.50'), 'machines[1].ip: 10.77.0.50 is already reserved for machines[0] (52:54:00:00:00:01)'],
  ['same MAC twice', (d) => (d.machines[1].mac = '52-54-00-00-00-01'), 'machines[1].mac: 52:54:00:00:00:01 is already listed as machines[0]'],
  ['reservation of the server address', (d) => (d.machines[1].ip = '10.77.0.1'), "machines[1].ip: 10.77.0.1 is the server's own address (server.address)"],
  ['reservation of the router', (d) => ((d.server.dhcp.pool.router = '10.77.0.254'), (d.machines[1].ip = '10.77.0.254')), "machines[1].ip: 10.77.0.254 is the router's address (server.dhcp.pool.router)"],
  ['reservation outside the pool subnet', (d) => (d.machines[1].ip = '10.78.0.5'), "machines[1].ip: 10.78.0.5 is outside the pool's subnet 10.77.0.0/24"],
  ['reservation of the broadcast address', (d) => (d.machines[1].ip = '10.77.0.255'), 'machines[1].ip: 10.77.0.255 is the network or broadcast address of 10.77.0.0/24'],
  ['pool across two subnets', (d) => (d.server.dhcp.pool.end = '10.77.1.20'), 'server.dhcp.pool: start 10.77.0.100 and end 10.77.1.20 are not in one subnet (10.77.0.0/24 by subnetMask 255.255.255.0)'],
  ['pool over the network address', (d) => (d.server.dhcp.pool.start = '10.77.0.0'), 'server.dhcp.pool: 10.77.0.0-10.77.0.200 includes the network or broadcast address of 10.77.0.0/24'],
  ['router outside the subnet', (d) => (d.server.dhcp.pool.router = '10.1.0.1'), "server.dhcp.pool.router: 10.1.0.1 is outside the pool's subnet 10.77.0.0/24"],
  ['two UDP listeners on one port', (d) => (d.server.tftp.port = 67), 'server.tftp.port: UDP port 67 is also server.dhcp.port'],
  ['the proxy port on the DHCP port', (d) => (d.server.dhcp.proxyPort = 67), 'server.dhcp.proxyPort: UDP port 67 is also server.dhcp.port'],
  ['the API on the HTTP port', (d) => (d.server.management = { host: '0.0.0.0', port: 8080 }), 'server.management.port: TCP port 8080 on 0.0.0.0 is also server.http.port on 10.77.0.1'],
  ['mask with a hole', (d) => (d.server.dhcp.pool.subnetMask = '255.0.255.0'), 'server.dhcp.pool.subnetMask: 255.0.255.0 is not a subnet mask (its ones must come first, as in 255.255.255.0)'],
];

for (const [name, mutate, message] of refusals) {
  test(`refused in one line: ${name}`, (t) => {
    const d = base();
    mutate(d);
    const err = t.throws(() => parseConfig(d, '/etc/zeroboot'), { instanceOf: ConfigError });
    t.is(err!.message, message);
  });
}

test('the base configuration is valid, reservations included', (t) => {
  const c = parseConfig(base(), '/etc/zeroboot');
  t.is(c.machines.length, 2);
  t.is(summary(c), 'address 10.77.0.1 on br0, dhcp full 10.77.0.100-10.77.0.200 (101 addresses), http :8080, tftp :69, api 127.0.0.1:8081, 1 profile(s), 1 group(s), 2 machine(s) (2 reservation(s))');
});

test('ports: off listeners and port 0 never clash; different hosts may share a TCP port', (t) => {
  const d = base();
  d.server.dhcp = { mode: 'off' };
  d.machines = [];
  d.server.tftp = { enabled: false, port: 67 };
  d.server.http = { port: 0 };
  d.server.management = { port: 0 };
  t.notThrows(() => parseConfig(d));
  d.server.http = { port: 9000 };
  d.server.management = { host: '127.0.0.1', port: 9000 };
  t.notThrows(() => parseConfig(d));
});

test('prefix lengths of masks, holes refused', (t) => {
  t.is(prefixLength('255.255.255.0'), 24);
  t.is(prefixLength('255.255.252.0'), 22);
  t.is(prefixLength('255.255.255.255'), 32);
  t.is(prefixLength('0.0.0.0'), 0);
  t.is(prefixLength('255.255.0.255'), undefined);
});

test('suggestions: close words only, case and separators folded', (t) => {
  t.is(editDistance('pol', 'pool'), 1);
  t.is(editDistance('auht', 'auth'), 1);
  t.is(closest('kernal', ['kernel', 'initrd']), 'kernel');
  t.is(closest('secure-boot', ['secureBoot', 'script']), 'secureBoot');
  t.is(closest('colour', ['port', 'enabled']), undefined);
});

const nic = (address: string, netmask = '255.255.255.0') => ({ address, netmask, family: 'IPv4' as const, mac: '52:54:00:00:00:aa', internal: false, cidr: null });
const host: HostInterfaces = { lo: [{ ...nic('127.0.0.1', '255.0.0.0'), internal: true }], br0: [nic('10.77.0.1')], eth1: [nic('192.168.1.5')] };

test('against the host: the base configuration fits', (t) => {
  t.deepEqual(hostProblems(parseConfig(base(), '/etc/zeroboot'), host), []);
});

test('against the host: a missing interface, with the likely one', (t) => {
  const d = base();
  d.server.interfaces = ['bro0'];
  t.deepEqual(hostProblems(parseConfig(d), host), ['server.interfaces[0]: no interface "bro0" on this host (did you mean "br0"?)']);
});

test("against the host: an address no interface holds", (t) => {
  const d = base();
  d.server.address = '10.77.0.9';
  t.deepEqual(hostProblems(parseConfig(d), host), ['server.address: 10.77.0.9 is not an address of this host (lo 127.0.0.1, br0 10.77.0.1, eth1 192.168.1.5)']);
});

test("against the host: a pool outside the interface's subnet", (t) => {
  const d = base();
  d.server.interfaces = ['eth1'];
  t.deepEqual(hostProblems(parseConfig(d), host), [
    "server.dhcp.pool.start: 10.77.0.100 is outside eth1's subnet 192.168.1.0/24, where the pool is served",
    "server.dhcp.pool.end: 10.77.0.200 is outside eth1's subnet 192.168.1.0/24, where the pool is served",
  ]);
  // Without interfaces, the one holding the server address serves the pool.
  const e = base();
  delete e.server.interfaces;
  e.server.address = '192.168.1.5';
  e.machines = [];
  t.deepEqual(hostProblems(parseConfig(e), host), [
    "server.dhcp.pool.start: 10.77.0.100 is outside eth1's subnet 192.168.1.0/24, where the pool is served",
    "server.dhcp.pool.end: 10.77.0.200 is outside eth1's subnet 192.168.1.0/24, where the pool is served",
  ]);
});

test('files: a kernel or initrd the store lacks, and a missing iPXE folder', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-config-files-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(path.join(dir, 'images/zos'), { recursive: true });
  await mkdir(path.join(dir, 'ipxe'));
  await writeFile(path.join(dir, 'images/zos/vmlinuz'), 'kernel');
  const d = base();
  d.server.ipxeDir = 'ipxe';
  t.deepEqual(await fileProblems(parseConfig(d, dir)), [`profiles[0].initrd[0]: images/zos/initramfs.img is not in the store (mounts: images -> ${dir}/images); used by group all`]);
  await writeFile(path.join(dir, 'images/zos/initramfs.img'), 'initrd');
  t.deepEqual(await fileProblems(parseConfig(d, dir)), []);
  d.profiles[0].kernel = 'images/zos/bzImage';
  d.server.ipxeDir = 'no-ipxe';
  t.deepEqual(await fileProblems(parseConfig(d, dir)), [
    `server.ipxeDir: ${dir}/no-ipxe is not a folder (Debian: apt install ipxe)`,
    `profiles[0].kernel: images/zos/bzImage is not in the store (mounts: images -> ${dir}/images); used by group all`,
  ]);
});
