// The default image (images/default.yaml), and others of images/, built once
// into a cache folder and reused by the QEMU end-to-end tests and the
// boot-time benchmark. A stamp of the image description, the builder's
// sources (and, for an image carrying Node, the zeroboot sources it packs
// and the Node binary) decides whether the cached build is still current; builds land in a fresh folder and are
// renamed into place, so two processes never see half an image.
import { chmod, mkdir, readFile, readdir, rename, rm, writeFile, mkdtemp } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildImage } from '../image/build.ts';
import { parseImageYaml } from '../image/spec.ts';
import { importClosure } from '../image/node-runtime.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const IMAGE_CACHE = process.env.ZEROBOOT_IMAGE_CACHE ?? '/var/cache/zeroboot';
const STAMP = '.zeroboot-build-stamp';

/** What decides whether a build of `specFile` is current: its text, the builder's sources and (for Node images) what it carries. */
export async function buildStamp(specFile: string): Promise<string> {
  const spec = await readFile(specFile, 'utf8');
  const h = createHash('sha256').update(spec);
  // The builder, and the flist code it packs and merges layers with.
  for (const sub of ['image', 'image/media', 'flist', 'flist/stores']) {
    const dir = path.join(ROOT, sub);
    for (const f of (await readdir(dir)).filter((n) => n.endsWith('.ts')).sort()) h.update(`${sub}/${f}`).update(await readFile(path.join(dir, f)));
  }
  const node = parseImageYaml(spec, specFile).node;
  if (node) {
    // The sources the image carries, found as the builder finds them.
    const carried = await importClosure(ROOT, ['cli/zeroboot.ts', ...node.commands.map((c) => `cli/commands/${c}.ts`)]);
    for (const f of [...carried, 'package.json']) h.update(f).update(await readFile(path.join(ROOT, f)));
    const binary = realpathSync(process.execPath);
    const st = statSync(binary);
    h.update(`${binary} ${st.size} ${st.mtimeMs}`);
  }
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
  const have = await readFile(path.join(out, STAMP), 'utf8').catch(() => '');
  return have === (await buildStamp(specFile));
}

/** Builds `specFile` into `out` unless `out` holds a current build already; returns `out`. */
export async function buildCurrentImage(specFile: string, out: string, cacheDir = IMAGE_CACHE): Promise<string> {
  const want = await buildStamp(specFile);
  const have = await readFile(path.join(out, STAMP), 'utf8').catch(() => '');
  // World-readable: reference servers (nginx workers) run as another user.
  if (have === want) {
    await chmod(out, 0o755);
    return out;
  }
  await mkdir(path.dirname(out), { recursive: true });
  const tmp = await mkdtemp(`${out}.build-`);
  try {
    await buildImage(parseImageYaml(await readFile(specFile, 'utf8'), specFile), { cacheDir, outDir: tmp });
    await writeFile(path.join(tmp, STAMP), want);
    await chmod(tmp, 0o755);
    await rm(out, { recursive: true, force: true });
    await rename(tmp, out).catch(async (e: NodeJS.ErrnoException) => {
      // Another process put a build there first; fine if it is current.
      if ((await readFile(path.join(out, STAMP), 'utf8').catch(() => '')) !== want) throw e;
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return out;
}
