// The initramfs /init (image/init.ts) run by the real busybox sh, without a
// guest: a chroot (in private namespaces) holds a fake /proc/cmdline and /sys
// tree (NICs, carrier, PCI devices), and stubs, as shell functions sourced
// before /init, for what touches the machine (mount, insmod, ip, udhcpc,
// reboot, the console shell) that log their arguments. Checks the no-carrier, bootif-not-found, after=reboot and
// default-shell paths.
import test from 'ava';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { initScript } from '../../image/init.ts';

const BUSYBOX = '/bin/busybox';
const RELEASE = '6.1.0-test';
// Applets /init uses that are safe to run for real inside the chroot.
const APPLETS = ['sh', 'cat', 'echo', 'mkdir', 'sleep', 'tr', 'sed', 'sync', 'test', '['];

interface Nic { name: string; mac: string; carrier?: 0 | 1 }
/** agent: the image carries `zeroboot agent` (a stub /usr/bin/zeroboot that logs its arguments). */
/** modules: the load order (default: virtio_net alone); the stub insmod takes a second over a name with "slow" in it. */
interface Machine { cmdline: string; nics: Nic[]; pci?: { vendor: string; device: string; driver: boolean }[]; dhcp?: 'ok' | 'fail'; agent?: boolean; modules?: string[] }

/** Runs /init in a chroot built for `m`; returns the console output and the stubs' log. */
async function runInit(m: Machine): Promise<{ console: string; log: string[] }> {
  const root = await mkdtemp(path.join(tmpdir(), 'zb-init-'));
  try {
    for (const d of ['bin', 'proc/sys/kernel', 'sys/class/tty/console', 'sys/class/net', 'sys/bus/pci/devices', 'dev', 'run', 'tmp', `lib/modules/${RELEASE}`, 'etc/zeroboot']) {
      await mkdir(path.join(root, d), { recursive: true });
    }
    await writeFile(path.join(root, 'proc/cmdline'), `${m.cmdline}\n`);
    await writeFile(path.join(root, 'sys/class/tty/console/active'), 'ttyS0\n');
    for (const n of m.nics) {
      const dir = path.join(root, 'sys/class/net', n.name);
      await mkdir(path.join(dir, 'device'), { recursive: true });
      await writeFile(path.join(dir, 'address'), `${n.mac}\n`);
      await writeFile(path.join(dir, 'carrier'), `${n.carrier ?? 1}\n`);
    }
    for (const [i, p] of (m.pci ?? []).entries()) {
      const dir = path.join(root, 'sys/bus/pci/devices', `0000:00:0${i + 3}.0`);
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'class'), '0x020000\n');
      await writeFile(path.join(dir, 'vendor'), `0x${p.vendor}\n`);
      await writeFile(path.join(dir, 'device'), `0x${p.device}\n`);
      if (p.driver) await mkdir(path.join(dir, 'driver'));
    }
    await writeFile(path.join(root, `lib/modules/${RELEASE}/zeroboot.load`), (m.modules ?? ['kernel/drivers/net/virtio_net.ko']).map((x) => `${x}\n`).join(''));
    await writeFile(path.join(root, 'dev/null'), '');
    if (m.agent) {
      await mkdir(path.join(root, 'opt/zeroboot/cli/commands'), { recursive: true });
      await writeFile(path.join(root, 'opt/zeroboot/cli/commands/agent.js'), '');
      await mkdir(path.join(root, 'usr/bin'), { recursive: true });
      await writeFile(path.join(root, 'usr/bin/zeroboot'), '#!/bin/busybox.real sh\necho "zeroboot $*" >> /stub.log\necho "zeroboot agent: a line"\n');
      await chmod(path.join(root, 'usr/bin/zeroboot'), 0o755);
    }

    await writeFile(path.join(root, 'bin/busybox.real'), await readFile(BUSYBOX));
    await chmod(path.join(root, 'bin/busybox.real'), 0o755);
    for (const a of APPLETS) await symlink('busybox.real', path.join(root, 'bin', a));
    // /init calls /bin/busybox by path for mount and --install: both are kept off the machine.
    await writeFile(path.join(root, 'bin/busybox'), '#!/bin/busybox.real sh\ncase "$1" in mount|--install) exit 0 ;; esac\nexec /bin/busybox.real "$@"\n');
    await chmod(path.join(root, 'bin/busybox'), 0o755);
    // The rest are shell functions: busybox sh runs its own applets before anything on PATH, but
    // functions come first. An end state (reboot, poweroff, the shell) ends /init, as the real
    // command would never return.
    const lease = 'mkdir -p /run/zeroboot; printf "ip=10.9.0.5\\nserverid=10.9.0.1\\n" > /run/zeroboot/dhcp.env; return 0';
    const dhcp = m.dhcp === 'fail' ? 'case "$*" in *-n*) return 1 ;; esac' : `case "$*" in *-n*) ${lease} ;; esac`;
    await writeFile(path.join(root, 'stubs.sh'), [
      'log() { echo "$*" >> /stub.log; }',
      'mount() { log mount "$@"; }',
      'hostname() { log hostname "$@"; }',
      `uname() { log uname "$@"; echo ${RELEASE}; }`,
      'insmod() { case "$1" in *slow*) sleep 1 ;; esac; log insmod "$@"; }',
      'ip() { log ip "$@"; }',
      `udhcpc() { log udhcpc "$@"; ${dhcp}; return 0; }`,
      'reboot() { log reboot "$@"; exit 0; }',
      'poweroff() { log poweroff "$@"; exit 0; }',
      // wait: a program /init started in the background has run before /init ends.
      'setsid() { wait; log setsid "$@"; exit 0; }',
      '',
    ].join('\n'));
    await writeFile(path.join(root, 'init'), initScript({ imageName: 'test-image', nicWaitSeconds: 1 }));

    const out = await new Promise<string>((resolve) => {
      // Private namespaces besides the chroot: whatever the stubs miss cannot touch this machine.
      execFile('unshare', ['--uts', '--net', '--mount', '--ipc', '--pid', '--fork', 'chroot', root, '/bin/busybox.real', 'sh', '-c', '. /stubs.sh; . /init'], { timeout: 60_000 }, (_err, stdout, stderr) => resolve(stdout + stderr));
    });
    const log = (await readFile(path.join(root, 'stub.log'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
    return { console: out + (await readFile(path.join(root, 'dev/console'), 'utf8').catch(() => '')), log };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

test('no carrier on any NIC: both are brought up, then FAIL no-carrier lists them, and the console shell starts', async (t) => {
  const r = await runInit({ cmdline: 'console=ttyS0', nics: [{ name: 'eth0', mac: '52:54:00:00:00:01', carrier: 0 }, { name: 'eth1', mac: '52:54:00:00:00:02', carrier: 0 }] });
  t.regex(r.console, new RegExp(`ZEROBOOT-INIT kernel=${RELEASE} image=test-image`));
  t.regex(r.console, /^ZEROBOOT-FAIL reason=no-carrier nics=eth0,eth1$/m);
  t.true(r.log.includes('ip link set eth0 up') && r.log.includes('ip link set eth1 up'), r.log.join('\n'));
  t.true(r.log.includes(`insmod /lib/modules/${RELEASE}/kernel/drivers/net/virtio_net.ko`), r.log.join('\n'));
  t.false(r.log.some((l) => l.startsWith('udhcpc')), 'no DHCP without a link');
  t.is(r.log[r.log.length - 1], 'setsid cttyhack sh -l');
});

test('BOOTIF names a MAC no NIC has: FAIL bootif-not-found with the MAC and the PCI NICs that have no driver', async (t) => {
  const r = await runInit({
    cmdline: 'BOOTIF=01-52-54-00-AA-BB-CC',
    nics: [{ name: 'eth0', mac: '52:54:00:00:00:01' }],
    pci: [{ vendor: '8086', device: '10d3', driver: false }, { vendor: '1af4', device: '1000', driver: true }],
  });
  t.regex(r.console, /^ZEROBOOT-FAIL reason=bootif-not-found mac=52:54:00:aa:bb:cc undriven=8086:10d3$/m);
  t.false(r.log.some((l) => l.startsWith('ip link set')), 'no NIC is used in its place');
  t.is(r.log[r.log.length - 1], 'setsid cttyhack sh -l');
});

test('zeroboot.after=reboot: DHCP on the BOOTIF NIC (not the first one), UP, then reboot -f and no shell', async (t) => {
  const r = await runInit({
    cmdline: 'zeroboot.after=reboot BOOTIF=01-52-54-00-00-00-02',
    nics: [{ name: 'eth0', mac: '52:54:00:00:00:01' }, { name: 'eth1', mac: '52:54:00:00:00:02' }],
  });
  t.regex(r.console, /^ZEROBOOT-UP ip=10\.9\.0\.5 mac=52:54:00:00:00:02$/m);
  t.regex(r.console, /^zeroboot: rebooting$/m);
  t.true(r.log.some((l) => /^udhcpc -i eth1 -n -q /.test(l)), r.log.join('\n'));
  t.is(r.log[r.log.length - 1], 'reboot -f');
  t.false(r.log.some((l) => l.startsWith('setsid')));
});

test('no zeroboot.after: the lease is kept renewed in the background and the console shell starts', async (t) => {
  const r = await runInit({ cmdline: 'quiet', nics: [{ name: 'eth0', mac: '52:54:00:00:00:07', carrier: 0 }, { name: 'eth1', mac: '52:54:00:00:00:08' }] });
  t.regex(r.console, /^ZEROBOOT-UP ip=10\.9\.0\.5 mac=52:54:00:00:00:08$/m, 'the first NIC with carrier');
  t.true(r.log.includes('udhcpc -i eth1 -b -S -r 10.9.0.5 -s /etc/zeroboot/udhcpc.script'), r.log.join('\n'));
  t.is(r.log[r.log.length - 1], 'setsid cttyhack sh -l');
  t.false(r.log.some((l) => l.startsWith('reboot') || l.startsWith('poweroff')));
});

test('DHCP fails: FAIL dhcp-failed names the NIC, and zeroboot.poweroff powers off', async (t) => {
  const r = await runInit({ cmdline: 'zeroboot.poweroff', nics: [{ name: 'eth0', mac: '52:54:00:00:00:09' }], dhcp: 'fail' });
  t.regex(r.console, /^ZEROBOOT-FAIL reason=dhcp-failed if=eth0 mac=52:54:00:00:00:09$/m);
  t.is(r.log[r.log.length - 1], 'poweroff -f');
});

test('an image carrying the agent starts it after UP with zeroboot.server and the interval; its lines reach the console', async (t) => {
  const r = await runInit({ cmdline: 'zeroboot.server=http://10.9.0.1:8080 zeroboot.agentinterval=7', nics: [{ name: 'eth0', mac: '52:54:00:00:00:0a' }], agent: true });
  t.regex(r.console, /^ZEROBOOT-AGENT-START pid=\d+ server=http:\/\/10\.9\.0\.1:8080$/m);
  t.regex(r.console, /^zeroboot agent: a line$/m);
  t.regex(r.console, /^ZEROBOOT-AGENT-EXIT code=0$/m, 'the agent ending is said');
  t.true(r.log.includes('zeroboot agent --server http://10.9.0.1:8080 --interval 7'), r.log.join('\n'));
  t.true(r.console.indexOf('ZEROBOOT-UP') < r.console.indexOf('ZEROBOOT-AGENT-START'), 'after the network');
});

test('the agent reports to the DHCP server when zeroboot.server is absent; zeroboot.agent=off and an image without it start nothing', async (t) => {
  const nics = [{ name: 'eth0', mac: '52:54:00:00:00:0b' }];
  const byDhcp = await runInit({ cmdline: 'quiet', nics, agent: true });
  t.true(byDhcp.log.includes('zeroboot agent --server http://10.9.0.1 --interval 60'), byDhcp.log.join('\n'));
  const off = await runInit({ cmdline: 'zeroboot.agent=off', nics, agent: true });
  t.false(off.log.some((l) => l.startsWith('zeroboot')), off.log.join('\n'));
  t.notRegex(off.console, /ZEROBOOT-AGENT-START/);
  const none = await runInit({ cmdline: 'zeroboot.server=http://10.9.0.1:8080', nics });
  t.notRegex(none.console, /ZEROBOOT-AGENT-START/);
});

test('disk and filesystem modules load in the background: the NIC drivers before the NIC search, the rest beside DHCP, the agent once all are in', async (t) => {
  const modules = ['kernel/drivers/virtio/virtio_ring.ko', 'kernel/drivers/net/virtio_net.ko', 'kernel/drivers/scsi/sd_mod.ko', 'kernel/lib/raid6/raid6_pq-slow.ko', 'kernel/fs/btrfs/btrfs-slow.ko'];
  const r = await runInit({ cmdline: 'zeroboot.server=http://10.9.0.1:8080', nics: [{ name: 'eth0', mac: '52:54:00:00:00:0c' }], agent: true, modules });
  t.regex(r.console, /^ZEROBOOT-AGENT-START pid=\d+/m);
  const at = (re: RegExp) => r.log.findIndex((l) => re.test(l));
  const lines = r.log.join('\n');
  t.true(at(/virtio_ring\.ko$/) < at(/virtio_net\.ko$/) && at(/virtio_net\.ko$/) < at(/^ip link set eth0 up/), lines);
  t.true(at(/^udhcpc -i eth0 -n/) < at(/btrfs-slow\.ko$/), `DHCP waited for the filesystem modules:\n${lines}`);
  t.true(at(/raid6_pq-slow\.ko$/) < at(/btrfs-slow\.ko$/), 'the background keeps the load order');
  t.true(at(/btrfs-slow\.ko$/) < at(/^zeroboot agent /), `the agent started before every module was in:\n${lines}`);
});
