import test from 'ava';
import { mkdtemp, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GrubConfigStore } from '../../boot/grub/store.ts';
import { MountedStore, StoreNotFoundError } from '../../boot/store.ts';
import { createSelector } from '../../boot/selection.ts';
import { BootTimeline } from '../../boot/timeline.ts';
import { createLogger, silentLogger } from '../../boot/log.ts';
import type { Logger } from '../../boot/log.ts';
import { MachineLabels } from '../../boot/machine-labels.ts';

const UUID = '848acd93-4178-4033-82dd-9abc8abfb6d7';

async function setup(serverBase?: () => string | undefined, log: Logger = silentLogger) {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-grub-store-'));
  await mkdir(path.join(dir, 'image'));
  await writeFile(path.join(dir, 'image', 'vmlinuz'), 'kernel');
  const selector = createSelector(
    [
      { name: 'zos', kernel: 'image/vmlinuz', initrd: ['image/initramfs.img'], args: { runmode: 'prod' }, secureBoot: true },
      { name: 'lab', kernel: 'image/vmlinuz', initrd: [], args: { runmode: 'test' } },
    ],
    [
      { name: 'lab-rack', profile: 'lab', selector: { mac: '52:54:00:00:00:02' } },
      { name: 'by-uuid', profile: 'zos', selector: { uuid: UUID } },
    ],
    [],
  );
  const timeline = new BootTimeline();
  const labels = new MachineLabels();
  const store = new GrubConfigStore({ inner: new MountedStore([{ prefix: '', dir }]), selector, labels, timeline, log, ...(serverBase ? { serverBase } : {}) });
  return { store, timeline, labels };
}

async function text(store: GrubConfigStore, p: string): Promise<string> {
  const e = await store.open(p);
  return (await e.read(0, e.size)).toString();
}

test('grub.cfg under any prefix is the chain file; grub.cfg-<mac> is that machine\'s selection, on its timeline', async (t) => {
  const { store, timeline } = await setup();
  t.regex(await text(store, '/grub/grub.cfg'), /configfile "\$prefix\/grub\.cfg-\$net_default_mac"/);
  t.regex(await text(store, 'image/grub/grub.cfg'), /configfile/);
  // no group matches this MAC: selection fails and the configuration says so
  const none = await text(store, '/grub/grub.cfg-52:54:00:00:00:01');
  t.regex(none, /cannot boot yet/);
  t.is(timeline.events('52:54:00:00:00:01').at(-1)?.kind, 'grub.error');
  const lab = await text(store, '/grub/grub.cfg-52:54:00:00:00:02');
  t.regex(lab, /boots profile lab \(group lab-rack\)/);
  t.regex(lab, /linux \/image\/vmlinuz runmode=test BOOTIF=01-52-54-00-00-00-02/);
  const ev = timeline.events('52:54:00:00:00:02').at(-1)!;
  t.is(ev.kind, 'grub.config');
  t.is(ev.detail?.profile, 'lab');
});

test('other paths go to the store underneath; a name without a MAC is not found, so a searching GRUB moves on', async (t) => {
  const { store } = await setup();
  t.is(await text(store, 'image/vmlinuz'), 'kernel');
  await t.throwsAsync(() => store.open('image/missing'), { instanceOf: StoreNotFoundError });
  for (const name of ['grub/grub.cfg-zz', 'grub/grub.cfg-C0A80001', 'grub/grub.cfg-01-52-54-00']) {
    await t.throwsAsync(() => store.open(name), { instanceOf: StoreNotFoundError }, name);
  }
  // the MAC forms GRUB and pxelinux use all name the same machine
  for (const name of ['grub/grub.cfg-52:54:00:00:00:02', 'grub/grub.cfg-52:54:00:00:00:02'.toUpperCase().replace('GRUB/GRUB.CFG', 'grub/grub.cfg'), 'grub/grub.cfg-52-54-00-00-00-02', 'grub/grub.cfg-01-52-54-00-00-00-02']) {
    t.regex(await text(store, name), /boots profile lab/, name);
  }
});

test('GRUB selects with the labels DHCP learned (the UUID of option 97): the profile DHCP chose shim for', async (t) => {
  const { store, labels } = await setup();
  const mac = '52:54:00:00:00:07';
  // without the UUID no group matches this MAC
  t.regex(await text(store, `grub/grub.cfg-${mac}`), /cannot boot yet/);
  labels.note(mac, { uuid: UUID.toUpperCase(), arch: 'x86_64' });
  const cfg = await text(store, `grub/grub.cfg-${mac}`);
  t.regex(cfg, /boots profile zos \(group by-uuid\)/);
  t.regex(cfg, /linux \/image\/vmlinuz runmode=prod BOOTIF=01-52-54-00-00-00-07/);
});

test('the command line names the boot server (zeroboot.server), as the iPXE script does, once HTTP listens; an operator\'s own wins', async (t) => {
  let base: string | undefined;
  const { store } = await setup(() => base);
  const mac = '52:54:00:00:00:02';
  t.notRegex(await text(store, `/grub/grub.cfg-${mac}`), /zeroboot\.server=/, 'HTTP not up yet: no URL to give');
  base = 'http://10.0.0.1:8080';
  t.regex(await text(store, `/grub/grub.cfg-${mac}`), /linux \/image\/vmlinuz runmode=test zeroboot\.server=http:\/\/10\.0\.0\.1:8080 BOOTIF=/);
  const own = createSelector([{ name: 'own', kernel: 'image/vmlinuz', initrd: [], args: { 'zeroboot.server': 'http://proxy:80' } }], [{ name: 'all', profile: 'own', selector: {} }], []);
  const withOwn = new GrubConfigStore({ inner: new MountedStore([]), selector: own, labels: new MachineLabels(), timeline: new BootTimeline(), log: silentLogger, serverBase: () => base });
  const cfg = await text(withOwn, `/grub/grub.cfg-${mac}`);
  t.regex(cfg, /zeroboot\.server=http:\/\/proxy:80 /);
  t.is(cfg.match(/zeroboot\.server=/g)?.length, 1);
});

test('machines without a configuration: one warn line for a crowd of them, each still answered and on the timeline', async (t) => {
  const lines: string[] = [];
  const { store, timeline } = await setup(undefined, createLogger({ level: 'info', write: (l) => lines.push(l) }));
  for (let i = 16; i < 56; i++) {
    const mac = `52:54:00:00:01:${i.toString(16)}`;
    t.regex(await text(store, `/grub/grub.cfg-${mac}`), /cannot boot yet/);
    t.is(timeline.events(mac).at(-1)?.kind, 'grub.error');
  }
  t.is(lines.length, 1, lines.join('\n'));
  t.regex(lines[0]!, /no GRUB configuration for machine .*count=1\b/);
});
