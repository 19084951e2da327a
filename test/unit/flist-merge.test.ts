// flist merge over hand-built layers: later layers win, OCI whiteouts remove
// what the layers below put there (never the same layer's entries), a file
// replaces a directory's whole subtree and a directory replaces a file,
// routes are the union of the layers', and the result does not depend on
// anything but the layers.
import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FlReader, FlWriter, type FlMeta, type FlWriterNode } from '../../flist/fl-file.ts';
import { MergeError, mergeFlists } from '../../flist/merge.ts';

let dir = '';
test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zb-flist-merge-'));
});
test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const DIR = 0o040755;
const FILE = 0o100644;
const LINK = 0o120777;
const meta = (mode: number, mtime = 1000, size = 0): FlMeta => ({ mode, uid: 0, gid: 0, size, mtime, ctime: mtime, rdev: 0 });
const block = (seed: string) => ({ id: createHash('sha256').update(`id ${seed}`).digest(), key: createHash('sha256').update(`key ${seed}`).digest() });

type Spec = { [name: string]: Spec | string | { link: string } };

/** Writes a layer: a string is a file whose one block is derived from it, an object a directory. */
let n = 0;
function layer(tree: Spec, opts: { routes?: string[]; mtime?: number; tags?: Record<string, string> } = {}): string {
  const w = new FlWriter(meta(DIR, opts.mtime));
  const add = (parent: FlWriterNode, spec: Spec) => {
    for (const [name, v] of Object.entries(spec)) {
      if (typeof v === 'string') w.add(parent, name, meta(FILE, opts.mtime, v.length)).blocks.push(block(v));
      else if ('link' in v && typeof v.link === 'string') w.add(parent, name, meta(LINK, opts.mtime, v.link.length), v.link);
      else add(w.add(parent, name, meta(DIR, opts.mtime)), v as Spec);
    }
  };
  add(w.root, tree);
  for (const r of opts.routes ?? []) w.addRoute(0, 255, r);
  for (const [k, v] of Object.entries(opts.tags ?? {})) w.setTag(k, v);
  const file = path.join(dir, `layer-${++n}.fl`);
  w.write(file);
  return file;
}

/** The merged tree as path -> description. */
function contents(file: string): Record<string, string> {
  const fl = FlReader.open(file);
  try {
    const out: Record<string, string> = {};
    for (const e of fl.walk()) {
      if (e.type === 'dir') out[e.path] = `dir@${e.mtime}`;
      else if (e.type === 'symlink') out[e.path] = `-> ${e.target}`;
      else out[e.path] = e.blocks.map((b) => b.id.toString('hex').slice(0, 8)).join(',');
    }
    return out;
  } finally {
    fl.close();
  }
}
const id8 = (seed: string) => block(seed).id.toString('hex').slice(0, 8);

function merged(...layers: string[]): Record<string, string> {
  const out = path.join(dir, `merged-${++n}.fl`);
  mergeFlists(layers, out);
  return contents(out);
}

test('later layers win; directories over directories keep the earlier children and take the later metadata', (t) => {
  const a = layer({ etc: { hosts: 'a-hosts', passwd: 'a-passwd' }, bin: { sh: 'a-sh' } }, { mtime: 1 });
  const b = layer({ etc: { hosts: 'b-hosts' }, usr: { x: 'b-x' } }, { mtime: 2 });
  t.deepEqual(merged(a, b), {
    '/': 'dir@2',
    '/bin': 'dir@1',
    '/bin/sh': id8('a-sh'),
    '/etc': 'dir@2',
    '/etc/hosts': id8('b-hosts'),
    '/etc/passwd': id8('a-passwd'),
    '/usr': 'dir@2',
    '/usr/x': id8('b-x'),
  });
});

test('.wh.<name> deletes a file or a whole directory of earlier layers; whiteouts never reach the result', (t) => {
  const a = layer({ etc: { hosts: 'a-hosts', motd: 'a-motd' }, opt: { big: { f: 'a-f' } }, keep: 'a-keep' });
  const b = layer({ etc: { '.wh.motd': '' }, '.wh.opt': '', '.wh.absent': '' });
  t.deepEqual(merged(a, b), { '/': 'dir@1000', '/etc': 'dir@1000', '/etc/hosts': id8('a-hosts'), '/keep': id8('a-keep') });
});

test("a layer's whiteouts do not delete its own entries, whatever the name order", (t) => {
  // "-x" sorts before ".wh.-x" and "x" after ".wh.x": both survive their own layer's whiteout.
  const a = layer({ '-x': 'a-dash', x: 'a-x' });
  const b = layer({ '.wh.-x': '', '-x': 'b-dash', '.wh.x': '', x: 'b-x' });
  t.deepEqual(merged(a, b), { '/': 'dir@1000', '/-x': id8('b-dash'), '/x': id8('b-x') });
  // and a whiteout in the same layer as what it names, with nothing below, deletes nothing
  t.deepEqual(merged(b), { '/': 'dir@1000', '/-x': id8('b-dash'), '/x': id8('b-x') });
});

test('.wh..wh..opq hides everything earlier layers put in its directory, keeps its own layer\'s entries', (t) => {
  const a = layer({ d: { old: 'a-old', sub: { deep: 'a-deep' } }, other: { o: 'a-o' } });
  const b = layer({ d: { '.wh..wh..opq': '', new: 'b-new' } }, { mtime: 5 });
  const c = layer({ d: { later: 'c-later' } }, { mtime: 6 });
  t.deepEqual(merged(a, b, c), {
    '/': 'dir@6',
    '/d': 'dir@6',
    '/d/later': id8('c-later'),
    '/d/new': id8('b-new'),
    '/other': 'dir@1000',
    '/other/o': id8('a-o'),
  });
});

test('a file replacing a directory drops its subtree; a directory replacing a file starts empty', (t) => {
  const a = layer({ lib: { x: 'a-x', deep: { y: 'a-y' } }, conf: 'a-conf', link: { link: 'lib' } });
  const b = layer({ lib: 'b-lib-file', conf: { inside: 'b-inside' }, link: 'b-link-file' });
  t.deepEqual(merged(a, b), { '/': 'dir@1000', '/conf': 'dir@1000', '/conf/inside': id8('b-inside'), '/lib': id8('b-lib-file'), '/link': id8('b-link-file') });
  const c = layer({ lib: { z: 'c-z' }, link: { link: 'elsewhere' } });
  t.deepEqual(merged(a, b, c), { '/': 'dir@1000', '/conf': 'dir@1000', '/conf/inside': id8('b-inside'), '/lib': 'dir@1000', '/lib/z': id8('c-z'), '/link': '-> elsewhere' });
});

test('routes are every layer\'s, in layer order, once each; tags merge, later winning, options last', (t) => {
  const a = layer({ f: 'a' }, { routes: ['dir:///srv/a', 'http://h/chunks'], tags: { version: '1', author: 'a' } });
  const b = layer({ g: 'b' }, { routes: ['http://h/chunks', 'dir:///srv/b'], tags: { version: '2' } });
  const out = path.join(dir, 'routes.fl');
  const s = mergeFlists([a, b], out, { tags: [['description', 'merged']] });
  const fl = FlReader.open(out);
  t.deepEqual(fl.routes().map((r) => r.url), ['dir:///srv/a', 'http://h/chunks', 'dir:///srv/b']);
  t.deepEqual(Object.fromEntries(fl.tags()), { author: 'a', description: 'merged', version: '2' });
  fl.close();
  t.like(s, { layers: 2, entries: 3, files: 2, routes: 3, whitedOut: 0 });
});

test('the same layers give the same bytes; the summary counts what whiteouts removed', async (t) => {
  const a = layer({ d: { x: 'x', y: { z: 'z' } }, e: 'e' });
  const b = layer({ '.wh.d': '', f: 'f' });
  const one = path.join(dir, 'same-1.fl');
  const two = path.join(dir, 'same-2.fl');
  const s = mergeFlists([a, b], one);
  mergeFlists([a, b], two);
  t.deepEqual(await readFile(one), await readFile(two));
  t.is(s.whitedOut, 4);
  t.is(s.entries, 3);
});

test('meta rewrites every kept entry (the image builder fixes its layers\' owners and times)', (t) => {
  const a = layer({ f: 'f', d: { g: 'g' } }, { mtime: 77 });
  const out = path.join(dir, 'meta.fl');
  mergeFlists([a], out, { meta: (e) => ({ mode: e.mode, uid: 0, gid: 0, size: e.size, mtime: 5, ctime: 5, rdev: 0 }) });
  t.deepEqual(Object.values(contents(out)).filter((v) => v.startsWith('dir')), ['dir@5', 'dir@5']);
});

test('an unknown .wh..wh. name or a bare .wh. is refused, naming the layer and the path', (t) => {
  const bad = layer({ d: { '.wh..wh..plnk': '' } });
  const e = t.throws(() => mergeFlists([bad], path.join(dir, 'bad.fl')), { instanceOf: MergeError });
  t.is(e?.message, `${bad}: /d/.wh..wh..plnk: not a whiteout this merge knows (only .wh.<name> and .wh..wh..opq); rename it`);
  t.throws(() => mergeFlists([layer({ '.wh.': '' })], path.join(dir, 'bad2.fl')), { instanceOf: MergeError, message: /\/\.wh\.: not a whiteout/ });
  t.throws(() => mergeFlists([], path.join(dir, 'none.fl')), { instanceOf: MergeError });
});

test('keepWhiteouts rewrites one layer with its whiteouts kept as entries (they act when it is merged later)', (t) => {
  const a = layer({ x: 'a-x', keep: 'k' });
  const b = layer({ '.wh.x': '', y: 'b-y' });
  const rewritten = path.join(dir, 'rewritten.fl');
  mergeFlists([b], rewritten, { keepWhiteouts: true });
  t.deepEqual(Object.keys(contents(rewritten)), ['/', '/.wh.x', '/y']);
  t.deepEqual(merged(a, rewritten), { '/': 'dir@1000', '/keep': id8('k'), '/y': id8('b-y') });
});
