// The images the QEMU end-to-end tests, the boot-time benchmark and the
// provisioning script boot (images/default.yaml, images/node.yaml, or an
// ImageSpec a test adjusts), each built once per set of inputs. A stamp
// hashes what decides the bytes: the image description, the builder's
// sources and, for an image carrying Node, the zeroboot sources it packs and
// the Node binary. Builds are kept in a shared store under the cache folder,
// one folder per stamp (the few most recently used), so checkouts with
// different sources, and tests building the same image, never rebuild over
// each other. A caller gets its own folder of hard links to the shared build
// (builds are written once and replaced whole, never edited in place), made
// in a fresh folder and renamed into place, so two processes never see half
// an image.
import { chmod, copyFile, link, mkdir, readFile, readdir, readlink, rename, rm, stat, symlink, utimes, writeFile, mkdtemp } from 'node:fs/promises';
import { createHash, type Hash } from 'node:crypto';
import { realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildImage } from '../image/build.ts';
import { parseImageYaml, type ImageSpec, type NodeSpec } from '../image/spec.ts';
import { importClosure } from '../image/node-runtime.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const IMAGE_CACHE = process.env.ZEROBOOT_IMAGE_CACHE ?? '/var/cache/zeroboot';
const STAMP = '.zeroboot-build-stamp';
/** The shared builds, one folder per stamp, under the cache folder. */
const SHARED = 'images/by-input';
/** Shared builds kept (most recently used first): a node image is ~300 MB. */
const KEEP_SHARED = 6;
/** A build folder this old is left from a build that died (a node image builds in minutes on a loaded machine). */
const ABANDONED_MS = 6 * 3600_000;

/** Hashes what a build of an image with `node` depends on besides its description: the builder and what the image carries. */
async function hashInputs(h: Hash, node: NodeSpec | undefined): Promise<void> {
  // The builder, and the flist code it packs and merges layers with.
  for (const sub of ['image', 'image/media', 'flist', 'flist/stores']) {
    const dir = path.join(ROOT, sub);
    for (const f of (await readdir(dir)).filter((n) => n.endsWith('.ts')).sort()) h.update(`${sub}/${f}`).update(await readFile(path.join(dir, f)));
  }
  if (node) {
    // The sources the image carries, found as the builder finds them.
    const carried = await importClosure(ROOT, ['cli/zeroboot.ts', ...node.commands.map((c) => `cli/commands/${c}.ts`)]);
    for (const f of [...carried, 'package.json']) h.update(f).update(await readFile(path.join(ROOT, f)));
    const binary = realpathSync(process.execPath);
    const st = statSync(binary);
    h.update(`${binary} ${st.size} ${st.mtimeMs}`);
  }
}

/** What decides whether a build of `specFile` is current: its text, the builder's sources and (for Node images) what it carries. */
export async function buildStamp(specFile: string): Promise<string> {
  const spec = await readFile(specFile, 'utf8');
  const h = createHash('sha256').update(spec);
  await hashInputs(h, parseImageYaml(spec, specFile).node);
  return h.digest('hex');
}

/** The same for a description a caller built or adjusted in code. */
export async function specStamp(spec: ImageSpec): Promise<string> {
  const h = createHash('sha256').update('spec ').update(JSON.stringify(spec));
  await hashInputs(h, spec.node);
  return h.digest('hex');
}

/** The folder holding vmlinuz and initramfs.img of images/default.yaml, built if missing or stale. */
export function defaultImage(): Promise<string> {
  return cachedImage('default');
}

/** The folder holding the build of images/<name>.yaml, built if missing or stale. */
export function cachedImage(name: string): Promise<string> {
  return buildCurrentImage(path.join(ROOT, `images/${name}.yaml`), path.join(IMAGE_CACHE, `images/${name}`));
}

/** Whether `out` holds a current build of `specFile` (its stamp matches). */
export async function isImageCurrent(specFile: string, out: string): Promise<boolean> {
  return (await stampOf(out)) === (await buildStamp(specFile));
}

/** Builds `specFile` into `out` unless `out` holds a current build already; returns `out`. */
export async function buildCurrentImage(specFile: string, out: string, cacheDir = IMAGE_CACHE): Promise<string> {
  const want = await buildStamp(specFile);
  return placeBuild(want, out, cacheDir, path.join(cacheDir, SHARED), async () => parseImageYaml(await readFile(specFile, 'utf8'), specFile));
}

/**
 * Builds `spec` into `out` (from the shared build of the same inputs if there is one) unless `out` is current;
 * returns `out`. `store`: where the shared builds live (a test's own folder).
 */
export async function buildCurrentSpec(spec: ImageSpec, out: string, cacheDir = IMAGE_CACHE, store = path.join(cacheDir, SHARED)): Promise<string> {
  return placeBuild(await specStamp(spec), out, cacheDir, store, async () => spec);
}

function stampOf(dir: string): Promise<string> {
  return readFile(path.join(dir, STAMP), 'utf8').catch(() => '');
}

async function placeBuild(want: string, out: string, cacheDir: string, store: string, spec: () => Promise<ImageSpec>): Promise<string> {
  // World-readable: reference servers (nginx workers) run as another user.
  if ((await stampOf(out)) === want) {
    await chmod(out, 0o755);
    // A current build from before the shared store (or pruned from it) seeds it: the next caller links it.
    if ((await stampOf(path.join(store, want))) !== want) await replaceDir(path.join(store, want), want, (tmp) => linkTree(out, tmp));
    return out;
  }
  const shared = await sharedBuild(want, cacheDir, store, spec);
  await replaceDir(out, want, (tmp) => linkTree(shared, tmp));
  return out;
}

/** The shared build for stamp `want`, built now if the store has none; returns its folder. */
async function sharedBuild(want: string, cacheDir: string, store: string, spec: () => Promise<ImageSpec>): Promise<string> {
  const dir = path.join(store, want);
  if ((await stampOf(dir)) === want) {
    // Most recently used: the last to be pruned.
    const now = new Date();
    await utimes(dir, now, now);
    return dir;
  }
  const s = await spec();
  await replaceDir(dir, want, (tmp) => buildImage(s, { cacheDir, outDir: tmp }).then(() => undefined));
  await pruneShared(store);
  return dir;
}

/** Fills a fresh folder beside `dir`, stamps it and renames it into place; another process's current build there is fine. */
async function replaceDir(dir: string, want: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  await mkdir(path.dirname(dir), { recursive: true });
  const tmp = await mkdtemp(`${dir}.build-`);
  try {
    await fill(tmp);
    await writeFile(path.join(tmp, STAMP), want);
    await chmod(tmp, 0o755);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir).catch(async (e: NodeJS.ErrnoException) => {
      if ((await stampOf(dir)) !== want) throw e;
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** `to` gets `from`'s tree, files hard-linked (copied across file systems); the stamp is left for the caller. */
async function linkTree(from: string, to: string): Promise<void> {
  for (const e of await readdir(from, { withFileTypes: true })) {
    if (e.name === STAMP) continue;
    const src = path.join(from, e.name);
    const dst = path.join(to, e.name);
    if (e.isDirectory()) {
      await mkdir(dst, { mode: (await stat(src)).mode & 0o7777 });
      await linkTree(src, dst);
    } else if (e.isSymbolicLink()) {
      await symlink(await readlink(src), dst);
    } else {
      await link(src, dst).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EXDEV' && err.code !== 'EPERM') throw err;
        return copyFile(src, dst);
      });
    }
  }
}

/**
 * Removes the shared builds beyond the KEEP_SHARED most recently used (a folder in use keeps its files:
 * callers hold hard links), and half-made folders of builds that died (older than ABANDONED_MS).
 */
async function pruneShared(store: string): Promise<void> {
  const dated = await Promise.all((await readdir(store)).map(async (n) => ({ n, t: (await stat(path.join(store, n)).catch(() => undefined))?.mtimeMs ?? Date.now() })));
  const builds = dated.filter((d) => /^[0-9a-f]{64}$/.test(d.n)).sort((a, b) => b.t - a.t);
  const abandoned = dated.filter((d) => d.n.includes('.build-') && Date.now() - d.t > ABANDONED_MS);
  for (const { n } of [...builds.slice(KEEP_SHARED), ...abandoned]) await rm(path.join(store, n), { recursive: true, force: true });
}
