// The open-file cache (boot/open-file-cache.ts) over a real directory store:
// one open for a crowd, bytes right through every view, files closed once
// their last user and the cache let go, bounded, replaced files seen after
// the validity, misses and in-memory entries never kept.
import test from 'ava';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { memoryEntry, MountedStore } from '../../boot/store.ts';
import type { ImageStore, StoreEntry } from '../../boot/store.ts';
import { OpenFileCache } from '../../boot/open-file-cache.ts';

let dir = '';

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zb-open-file-cache-'));
});

test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A store counting the entries it opens and closes. */
function counting(inner: ImageStore): ImageStore & { opened: number; closed: number } {
  const c = {
    opened: 0,
    closed: 0,
    async open(p: string): Promise<StoreEntry> {
      const e = await inner.open(p);
      c.opened++;
      return { ...e, close: async () => {
        c.closed++;
        await e.close();
      } };
    },
  };
  return c;
}

async function bytes(e: StoreEntry): Promise<string> {
  return (await e.read(0, e.size)).toString();
}

const until = async (cond: () => boolean, ms = 10_000) => {
  for (const end = Date.now() + ms; !cond() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
  return cond();
};

test('a crowd asking for one file opens it once; every view reads it; it closes after the last view and the validity', async (t) => {
  await writeFile(path.join(dir, 'kernel'), 'kernel bytes');
  const inner = counting(new MountedStore([{ prefix: '', dir }]));
  const cache = new OpenFileCache(inner, { validMs: 200 });
  const views = await Promise.all(Array.from({ length: 50 }, () => cache.open('kernel')));
  t.is(inner.opened, 1);
  t.true(views.every((v) => typeof v.fd === 'function'));
  for (const v of views) t.is(await bytes(v), 'kernel bytes');
  await Promise.all(views.map((v) => v.close()));
  await views[0].close();
  t.is(inner.closed, 0, 'closed while the cache still lists it');
  t.true(await until(() => inner.closed === 1), 'not closed after its validity');
  const again = await cache.open('/kernel');
  t.is(inner.opened, 2);
  await again.close();
  cache.close();
  t.is(inner.closed, 2);
});

test('a file replaced on disk is served new once the validity has passed', async (t) => {
  const file = path.join(dir, 'initrd');
  await writeFile(file, 'old');
  const cache = new OpenFileCache(new MountedStore([{ prefix: '', dir }]), { validMs: 300 });
  const first = await cache.open('initrd');
  await writeFile(`${file}.new`, 'new bytes');
  await rename(`${file}.new`, file);
  t.is(await bytes(first), 'old', 'a download under way keeps the file it opened');
  await first.close();
  await new Promise((r) => setTimeout(r, 350));
  const later = await cache.open('initrd');
  t.is(await bytes(later), 'new bytes');
  await later.close();
  cache.close();
});

test('at most maxOpen files are kept; an evicted one still serves its download, then closes', async (t) => {
  for (let i = 0; i < 10; i++) await writeFile(path.join(dir, `chunk${i}`), `chunk ${i}`);
  const inner = counting(new MountedStore([{ prefix: '', dir }]));
  const cache = new OpenFileCache(inner, { validMs: 60_000, maxOpen: 4 });
  const held = await cache.open('chunk0');
  for (let i = 1; i < 10; i++) await (await cache.open(`chunk${i}`)).close();
  t.is(inner.closed, 5, 'kept more than maxOpen files open');
  t.is(await bytes(held), 'chunk 0');
  await held.close();
  t.is(inner.closed, 6);
  cache.close();
  t.is(inner.closed, 10);
});

test('misses and in-memory entries are never kept', async (t) => {
  const files: Record<string, Buffer> = { 'grub.cfg': Buffer.from('set default=0') };
  const inner = counting(new MountedStore([{ prefix: 'mem', files }, { prefix: '', dir }]));
  const cache = new OpenFileCache(inner, { validMs: 60_000 });
  await t.throwsAsync(cache.open('late.bin'));
  await writeFile(path.join(dir, 'late.bin'), 'here now');
  const late = await cache.open('late.bin');
  t.is(await bytes(late), 'here now');
  await late.close();
  const mem = await Promise.all([cache.open('mem/grub.cfg'), cache.open('mem/grub.cfg'), cache.open('mem/grub.cfg')]);
  t.is(inner.opened, 4, 'an in-memory entry was shared or kept');
  t.not(mem[0], mem[1]);
  t.is(await bytes(mem[2]), 'set default=0');
  t.is(memoryEntry('x', Buffer.from('')).fd, undefined);
  cache.close();
});
