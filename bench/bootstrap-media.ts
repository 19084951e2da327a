// Time to answer the bootstrap grammar's media: for each format, the first
// request (a build by image/media's builders) and the second (the cache),
// against a server on loopback, with the wall time and the server process's
// CPU (xorriso and other child tools not counted), and a crowd of requests
// for one farm's ISO arriving at once (one build, shared).
//   node bench/bootstrap-media.ts --kernel build/vmlinuz --initrd build/initramfs.img [--crowd 20]
import { get } from 'node:http';
import { readFile } from 'node:fs/promises';
import { parseBenchArgs } from '../harness/bench-args.ts';
import { startBootstrapServer } from '../harness/bootstrap-server.ts';
import { MEDIA_BUILDERS } from '../boot/http/bootstrap-builders.ts';

const { values } = parseBenchArgs('bench/bootstrap-media.ts', {
  options: { kernel: { type: 'string' }, initrd: { type: 'string' }, crowd: { type: 'string', default: '20' } },
});
if (!values.kernel || !values.initrd) {
  console.error('bench/bootstrap-media.ts: --kernel <bzImage> and --initrd <file> are required (e.g. an image built by zeroboot image build)');
  process.exit(2);
}
const crowd = Number(values.crowd);

const [kernel, initrd] = await Promise.all([readFile(values.kernel), readFile(values.initrd)]);
const server = await startBootstrapServer(kernel, initrd, { builders: MEDIA_BUILDERS, maxMediaPerAddress: crowd });

function fetch(p: string): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    get(`${server.url}${p}`, { agent: false }, (r) => {
      let bytes = 0;
      r.on('data', (d: Buffer) => (bytes += d.length));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, bytes }));
    }).on('error', reject);
  });
}

async function timed<T>(what: string, run: () => Promise<T>, show: (r: T) => string): Promise<void> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await run();
  const cpu = process.cpuUsage(cpu0);
  console.log(`${what.padEnd(28)} ${show(r)}, ${(performance.now() - t0).toFixed(0)} ms wall, ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms server CPU`);
}

try {
  for (const format of ['uefi', 'iso', 'usb']) {
    for (const pass of ['build', 'cached']) {
      await timed(`${format} ${pass}`, () => fetch(`/${format}/prod/42`), (r) => `${r.status} ${(r.bytes / 1e6).toFixed(1)} MB`);
    }
  }
  await timed(
    `iso, ${crowd} at once, new farm`,
    () => Promise.all(Array.from({ length: crowd }, () => fetch('/iso/prod/43'))),
    (rs) => `${rs.filter((r) => r.status === 200).length}/${rs.length} answered 200`,
  );
} finally {
  await server.close();
}
