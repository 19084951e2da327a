import test from 'ava';
import { mkdtemp, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GrubConfigStore } from '../../boot/grub/store.ts';
import { MountedStore, StoreNotFoundError } from '../../boot/store.ts';
import { createSelector } from '../../boot/selection.ts';
import { BootTimeline } from '../../boot/timeline.ts';
import { silentLogger } from '../../boot/log.ts';

async function setup() {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-grub-store-'));
  await mkdir(path.join(dir, 'image'));
  await writeFile(path.join(dir, 'image', 'vmlinuz'), 'kernel');
  const selector = createSelector(
    [
      { name: 'zos', kernel: 'image/vmlinuz', initrd: ['image/initramfs.img'], args: { runmode: 'prod' }, secureBoot: true },
      { name: 'lab', kernel: 'image/vmlinuz', initrd: [], args: { runmode: 'test' } },
    ],
    [{ name: 'lab-rack', profile: 'lab', selector: { mac: '52:54:00:00:00:02' } }],
    [],
  );
  const timeline = new BootTimeline();
  const store = new GrubConfigStore({ inner: new MountedStore([{ prefix: '', dir }]), selector, timeline, log: silentLogger });
  return { store, timeline };
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

test('other paths go to the store underneath; a bad MAC gets an error configuration', async (t) => {
  const { store } = await setup();
  t.is(await text(store, 'image/vmlinuz'), 'kernel');
  await t.throwsAsync(() => store.open('image/missing'), { instanceOf: StoreNotFoundError });
  t.regex(await text(store, 'grub/grub.cfg-zz'), /zz is not a MAC address/);
});
