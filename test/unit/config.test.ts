import test from 'ava';
import { parse } from 'yaml';
import { parseConfig, ConfigError, managementNeedsToken } from '../../boot/config.ts';
import { DEFAULT_CONFIG_YAML } from '../../boot/default-config.ts';

const base = (extra = '') =>
  parse(`server:
  address: 10.77.0.1
  dhcp:
    mode: full
    pool: { start: 10.77.0.100, end: 10.77.0.200 }
profiles:
  - name: zos
    kernel: images/zos/vmlinuz
    initrd: images/zos/initramfs.img
    args: { runmode: prod, farmer_id: 7, zos-debug: null }
groups:
  - { name: all, profile: zos, selector: {} }
${extra}`);

test('a full configuration parses with defaults filled in', (t) => {
  const c = parseConfig(base(), '/etc/zeroboot');
  t.is(c.dhcp.mode, 'full');
  t.is(c.dhcp.pool?.subnetMask, '255.255.255.0');
  t.is(c.dhcp.pool?.leaseSeconds, 3600);
  t.is(c.tftp.port, 69);
  t.is(c.tftp.maxTransfersPerClient, 4);
  t.is(c.tftp.firstRetries, 3);
  t.is(c.http.host, '10.77.0.1');
  t.deepEqual(c.profiles[0].initrd, ['images/zos/initramfs.img']);
  t.deepEqual(c.profiles[0].args, { runmode: 'prod', farmer_id: 7, 'zos-debug': null });
  t.is(c.stateDir, '/var/lib/zeroboot');
  t.deepEqual(c.media, { maxCacheBytes: 1 << 30, maxBuilds: 1, maxQueuedBuilds: 8, maxPerAddress: 2, buildTimeoutMs: 120_000 });
});

test('every limit the README names can be set: server.tftp.maxWaiting and server.media', (t) => {
  const doc = base();
  Object.assign(doc.server, { tftp: { maxWaiting: 10 }, media: { maxCacheBytes: 1000, maxBuilds: 2, maxQueuedBuilds: 0, maxPerAddress: 1, buildTimeoutMs: 5000 } });
  const c = parseConfig(doc);
  t.is(c.tftp.maxWaiting, 10);
  t.deepEqual(c.media, { maxCacheBytes: 1000, maxBuilds: 2, maxQueuedBuilds: 0, maxPerAddress: 1, buildTimeoutMs: 5000 });
});

test('relative paths resolve against the config file folder', (t) => {
  const doc = base('store:\n  - { prefix: images, dir: imgs }\n');
  (doc.server as Record<string, unknown>).stateDir = 'state';
  const c = parseConfig(doc, '/etc/zeroboot');
  t.deepEqual(c.mounts, [{ prefix: 'images', dir: '/etc/zeroboot/imgs' }]);
  t.is(c.stateDir, '/etc/zeroboot/state');
});

test('machines: MACs normalised, reservations validated', (t) => {
  const c = parseConfig(base('machines:\n  - { mac: 52-54-00-AA-BB-CC, ip: 10.77.0.50, profile: zos }\n'));
  t.is(c.machines[0].mac, '52:54:00:aa:bb:cc');
  t.is(c.machines[0].ip, '10.77.0.50');
});

const bad: [string, (d: Record<string, any>) => void, RegExp][] = [
  ['missing address', (d) => delete d.server.address, /server\.address is required/],
  ['bad mode', (d) => (d.server.dhcp.mode = 'both'), /mode must be full, proxy or off/],
  ['full without pool', (d) => delete d.server.dhcp.pool, /pool is required/],
  ['reversed pool', (d) => (d.server.dhcp.pool.start = '10.77.0.250'), /start must not be after/],
  ['bad IP', (d) => (d.server.address = '10.77.0'), /IPv4 address/],
  ['unknown profile', (d) => (d.groups[0].profile = 'nope'), /groups\[0\]\.profile: profile "nope" is not defined/],
  ['unknown label', (d) => (d.groups[0].selector = { colour: 'red' }), /unknown label/],
  ['bad MAC', (d) => (d.machines = [{ mac: 'xx' }]), /machines\[0\]\.mac/],
  ['bad port', (d) => (d.server.tftp = { port: 70000 }), /server\.tftp\.port/],
  ['zero transfers per client', (d) => (d.server.tftp = { maxTransfersPerClient: 0 }), /server\.tftp\.maxTransfersPerClient/],
  ['media build timeout below a second', (d) => (d.server.media = { buildTimeoutMs: 10 }), /server\.media\.buildTimeoutMs must be an integer between 1000 and 3600000/],
  ['no media build slot', (d) => (d.server.media = { maxBuilds: 0 }), /server\.media\.maxBuilds must be an integer between 1 and 64/],
  ['media key misspelt', (d) => (d.server.media = { maxBuild: 2 }), /server\.media\.maxBuild: unknown key \(did you mean "maxBuilds"\?\)/],
  ['bad arg name', (d) => (d.profiles[0].args = { 'a b': 1 }), /not a valid kernel argument/],
  ['duplicate profile', (d) => d.profiles.push({ ...d.profiles[0] }), /defined twice/],
  ['secureBoot not a boolean', (d) => (d.profiles[0].secureBoot = 'yes'), /profiles\[0\]\.secureBoot must be true or false, got "yes"/],
  ['secureBoot shim path too long for the file field', (d) => Object.assign(d.profiles[0], { secureBoot: true, kernel: `${'d/'.repeat(60)}vmlinuz` }), /profiles\[0\]: .*127-byte DHCP file field/],
];

test('a profile opts into the signed UEFI chain with secureBoot', (t) => {
  const d = base();
  t.is(parseConfig(d).profiles[0].secureBoot, undefined);
  d.profiles[0].secureBoot = true;
  t.is(parseConfig(d).profiles[0].secureBoot, true);
});
for (const [name, mutate, msg] of bad) {
  test(`refused with a message naming the key: ${name}`, (t) => {
    const d = base();
    mutate(d);
    const err = t.throws(() => parseConfig(d), { instanceOf: ConfigError });
    t.regex(err!.message, msg);
  });
}

test('the embedded default configuration is valid once an address is known', (t) => {
  const d = parse(DEFAULT_CONFIG_YAML);
  d.server.address = '192.0.2.1';
  const c = parseConfig(d, '/srv');
  t.is(c.dhcp.mode, 'proxy');
  t.is(c.groups[0].profile, 'zos');
});

test('console input needs the management token', (t) => {
  t.throws(() => parseConfig(withServer('{ console: { input: true } }')), { message: /console\.input: typing on consoles needs the management token; set server\.management\.auth: token/ });
  t.true(parseConfig(withServer('{ auth: token, console: { input: true } }')).management.console.input);
  t.throws(() => parseConfig(withServer('{ console: { scrollbackBytes: 10 } }')), { message: /scrollbackBytes/ });
});

const withServer = (management: string) => {
  const doc = base();
  doc.server.management = parse(management);
  return doc;
};

test('the management listener: loopback 127.0.0.1:8081 without a token by default', (t) => {
  const c = parseConfig(base());
  t.deepEqual(c.management, { enabled: true, host: '127.0.0.1', port: 8081, auth: 'auto', console: { input: false, scrollbackBytes: 256 * 1024, maxClients: 8 } });
  t.false(managementNeedsToken(c.management));
  const d = parseConfig({ ...parse(DEFAULT_CONFIG_YAML), server: { ...parse(DEFAULT_CONFIG_YAML).server, address: '10.0.0.1' } });
  t.like(d.management, { host: '127.0.0.1', port: 8081 });
});

test('the management listener beyond loopback asks for the token; none there is refused', (t) => {
  t.true(managementNeedsToken(parseConfig(withServer('{ host: 10.77.0.1 }')).management));
  t.true(managementNeedsToken(parseConfig(withServer('{ host: 0.0.0.0, port: 9000 }')).management));
  t.true(managementNeedsToken(parseConfig(withServer('{ auth: token }')).management));
  t.false(managementNeedsToken(parseConfig(withServer('{ host: "::1" }')).management));
  t.false(parseConfig(withServer('{ enabled: false }')).management.enabled);
  t.throws(() => parseConfig(withServer('{ host: 10.77.0.1, auth: none }')), { instanceOf: ConfigError, message: /auth: none is allowed only on a loopback host/ });
  t.throws(() => parseConfig(withServer('{ auth: maybe }')), { instanceOf: ConfigError, message: /auth must be auto, token or none/ });
  t.throws(() => parseConfig(withServer('{ host: localhost }')), { instanceOf: ConfigError, message: /management.host must be an IP address/ });
});
