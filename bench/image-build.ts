// Image build time: cold (empty cache: resolve, download, verify, unpack,
// build) and warm (cached downloads and trees), for images/default.yaml.
// Goal: warm under 3 s. The reference is the same build with a cold cache.
// Usage: node bench/image-build.ts [image.yaml] [--runs N]
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage } from '../image/build.ts';
import { ImageSpecError, parseImageYaml } from '../image/spec.ts';
import type { ImageSpec } from '../image/spec.ts';
import { parseBenchArgs, positiveInt, refuseFlag } from '../harness/bench-args.ts';

const SCRIPT = 'bench/image-build.ts';
const { values: a, positionals } = parseBenchArgs(SCRIPT, { options: { runs: { type: 'string', default: '3' } }, allowPositionals: true });
const runs = positiveInt(SCRIPT, 'runs', a.runs, 1000);
if (positionals.length > 1) refuseFlag(SCRIPT, `one image file at most, got ${positionals.length}`);
const file = positionals[0] ?? new URL('../images/default.yaml', import.meta.url).pathname;
const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => refuseFlag(SCRIPT, `cannot read ${file}: ${e.code ?? e.message}`));
let spec: ImageSpec;
try {
  spec = parseImageYaml(text, file);
} catch (e) {
  refuseFlag(SCRIPT, e instanceof ImageSpecError ? e.message.split('\n')[0]! : String(e));
}
const base = await mkdtemp(join(tmpdir(), 'zb-bench-image-'));

async function timed(label: string, cacheDir: string, outDir: string): Promise<number> {
  const t0 = performance.now();
  const m = await buildImage(spec, { cacheDir, outDir });
  const s = (performance.now() - t0) / 1000;
  const sizes = Object.entries(m.artifacts).map(([n, a]) => `${n} ${(a.size / 1e6).toFixed(2)} MB`).join(', ');
  console.log(`${label.padEnd(8)} ${s.toFixed(2)} s   (${sizes})`);
  return s;
}

try {
  console.log(`image ${spec.name}: kernel ${spec.kernel.name}, ${spec.modules.length} modules asked, ${spec.compression}`);
  const cache = join(base, 'cache');
  const cold = await timed('cold', cache, join(base, 'out-cold'));
  const warm: number[] = [];
  for (let i = 0; i < runs; i++) warm.push(await timed(`warm #${i + 1}`, cache, join(base, `out-warm-${i}`)));
  warm.sort((a, b) => a - b);
  const median = warm[Math.floor(warm.length / 2)];
  console.log(`\ncold ${cold.toFixed(2)} s, warm median ${median.toFixed(2)} s (goal < 3 s: ${median < 3 ? 'met' : 'MISSED'}), cold/warm ${(cold / median).toFixed(1)}x`);
} finally {
  await rm(base, { recursive: true, force: true });
}
