// flist pack and unpack against tar, side by side in one run. The tree is a
// copy of --src (default /usr) shrunk to about --mib MiB: the files and
// symlinks of every k-th folder of a sorted walk (the largest k that
// reaches the size), so it has the source's mix of small and large files and of files
// per folder, with the folders on their paths; copied by tar into a temp
// folder.
// Then, --runs times, the two sides taking turns (the first of one run goes
// last in the next):
//   pack:   zeroboot flist pack TREE -o x.fl --store dir://STORE (a new STORE)
//     vs   tar czf x.tgz -C TREE .
//   unpack: zeroboot flist unpack x.fl OUT --store dir://STORE
//     vs   tar xzf x.tgz -C OUT            (a new OUT, same filesystem)
// Each timed run writes to a new path; outputs are removed at the end only.
// Page cache: by default equally warm, the inputs of both sides were just
// written (the machine has RAM to spare); --drop-caches drops it (root)
// before every timed command instead. Wall and CPU time (user + system of
// the command and its children, from /usr/bin/time) are printed, best and
// median, with MB/s, CPU ms per MB and the ratio tar / zeroboot of the
// medians (> 1: ours is faster).
// --http URL also unpacks from that http chunk store (the boot server's
// /chunks endpoint serving STORE's chunks), with an empty --cache and again
// with the cache filled; --http serve starts a small loopback server over
// STORE for that.
//   node bench/flist.ts [--mib 500] [--runs 3] [--src /usr] [--dir /tmp] [--drop-caches] [--http URL|serve] [--keep]
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, lstat, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseBenchArgs } from '../harness/bench-args.ts';

const run = promisify(execFile);
const { values } = parseBenchArgs('bench/flist.ts', {
  options: {
    mib: { type: 'string', default: '500' },
    runs: { type: 'string', default: '3' },
    src: { type: 'string', default: '/usr' },
    dir: { type: 'string', default: tmpdir() },
    'drop-caches': { type: 'boolean', default: false },
    http: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
// the command as users run it (bin/zeroboot sets Node's compile cache)
const BIN = fileURLToPath(new URL('../bin/zeroboot', import.meta.url));

function fail(message: string): never {
  console.error(`bench/flist.ts: ${message}`);
  process.exit(2);
}
for (const name of ['mib', 'runs'] as const) {
  if (!/^[1-9]\d*$/.test(values[name])) fail(`--${name} must be a positive integer, not ${values[name]}`);
}
const RUNS = Number(values.runs);
const CAP = Number(values.mib) * 1024 * 1024;

interface Tree {
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
  /** every k-th folder of the source */
  stride: number;
  /** paths relative to the source's parent, for tar -T */
  list: string[];
}

interface Found {
  path: string;
  size: number;
  link: boolean;
}

/** The files and symlinks of each folder under dir, folders in sorted walk order. */
async function walkAll(dir: string, out: { dir: string; entries: Found[] }[]): Promise<typeof out> {
  const names = (await readdir(dir).catch(() => [] as string[])).sort();
  const here: Found[] = [];
  out.push({ dir, entries: here });
  for (const name of names) {
    const full = path.join(dir, name);
    const st = await lstat(full).catch(() => undefined);
    if (!st) continue;
    if (st.isDirectory()) await walkAll(full, out);
    else if (st.isSymbolicLink() || st.isFile()) here.push({ path: full, size: st.isFile() ? st.size : 0, link: st.isSymbolicLink() });
  }
  return out;
}

/** The files of every stride-th folder, folders above them included, up to the cap. */
function sample(src: string, all: { dir: string; entries: Found[] }[], stride: number): Tree {
  const t: Tree = { files: 0, dirs: 0, symlinks: 0, bytes: 0, stride, list: [] };
  const base = path.dirname(src);
  const dirs = new Set<string>();
  for (let i = 0; i < all.length && t.bytes < CAP; i += stride) {
    // the folder and those above it first, each once: tar -T with --no-recursion copies their modes
    const missing: string[] = [];
    for (let d = all[i].dir; d.length >= src.length && !dirs.has(d); d = path.dirname(d)) missing.push(d);
    for (const d of missing.reverse()) {
      dirs.add(d);
      t.list.push(path.relative(base, d));
    }
    for (const f of all[i].entries) {
      if (!f.link && t.bytes + f.size > CAP * 1.05) continue;
      t.list.push(path.relative(base, f.path));
      if (f.link) t.symlinks++;
      else {
        t.files++;
        t.bytes += f.size;
      }
    }
  }
  t.dirs = dirs.size;
  return t;
}

/** The largest folder stride whose sample reaches the cap (most folders hold little, so size / cap falls short). */
async function pickTree(src: string): Promise<Tree> {
  const all = await walkAll(src, []);
  const total = all.reduce((n, d) => n + d.entries.reduce((m, f) => m + f.size, 0), 0);
  for (let stride = Math.max(1, Math.floor(total / CAP)); ; stride--) {
    const t = sample(src, all, stride);
    if (t.bytes >= CAP * 0.95 || stride === 1) return t;
  }
}

interface Measure {
  wall: number;
  cpu: number;
}

async function dropCaches(): Promise<void> {
  await run('sync');
  await writeFile('/proc/sys/vm/drop_caches', '3\n');
}

/** Runs a command under /usr/bin/time: wall seconds, and CPU seconds of it and its children. */
async function timed(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<Measure> {
  if (values['drop-caches']) await dropCaches();
  const out = path.join(work, 'time.txt');
  const start = process.hrtime.bigint();
  try {
    await run('/usr/bin/time', ['-o', out, '-f', '%U %S', cmd, ...args], { env: env ?? process.env, maxBuffer: 1 << 24 });
  } catch (e) {
    fail(`${cmd} ${args.join(' ')} failed: ${((e as { stderr?: string }).stderr ?? (e as Error).message).trim().split('\n').slice(-3).join(' | ')}`);
  }
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  const [user, sys] = (await readFile(out, 'utf8')).trim().split('\n').pop()!.split(' ').map(Number);
  return { wall, cpu: user + sys };
}

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)];

interface Side {
  name: string;
  /** untimed preparation (emptying the output) */
  prepare: () => Promise<void>;
  cmd: () => [string, string[]];
}

const results = new Map<string, Measure[]>();

async function sideBySide(sides: Side[]): Promise<void> {
  for (let r = 0; r < RUNS; r++) {
    const order = r % 2 === 0 ? sides : [...sides].reverse();
    for (const s of order) {
      await s.prepare();
      const [cmd, args] = s.cmd();
      const m = await timed(cmd, args);
      if (!results.has(s.name)) results.set(s.name, []);
      results.get(s.name)!.push(m);
      console.error(`  run ${r + 1}: ${s.name}: ${m.wall.toFixed(2)} s wall, ${m.cpu.toFixed(2)} s CPU`);
    }
  }
}

function report(name: string, bytes: number): Measure {
  const ms = results.get(name)!;
  const wall = ms.map((m) => m.wall);
  const cpu = ms.map((m) => m.cpu);
  const mb = bytes / 1e6;
  const w = median(wall);
  const c = median(cpu);
  console.log(
    `${name.padEnd(34)} wall ${w.toFixed(2).padStart(6)} s (best ${sorted(wall)[0].toFixed(2)})  CPU ${c.toFixed(2).padStart(6)} s (best ${sorted(cpu)[0].toFixed(2)})  ${(mb / w).toFixed(0).padStart(4)} MB/s  ${((c * 1000) / mb).toFixed(2)} ms CPU/MB`,
  );
  return { wall: w, cpu: c };
}

function ratio(what: string, ours: Measure, theirs: Measure): void {
  console.log(`  ratio ${what}: wall ${(theirs.wall / ours.wall).toFixed(2)}x, CPU ${(theirs.cpu / ours.cpu).toFixed(2)}x (tar / zeroboot; > 1: ours faster)`);
}

/** A loopback server of STORE's files as GET /chunks/<h[0:2]>/<h>, standing in for the boot server. */
async function serveStore(store: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const m = /^\/chunks\/([0-9a-f]{2})\/([0-9a-f]{64})$/.exec(req.url ?? '');
    if (!m || m[2].slice(0, 2) !== m[1]) return void res.writeHead(404).end();
    readFile(path.join(store, m[1], m[2])).then(
      (data) => res.writeHead(200, { 'content-length': data.length }).end(data),
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return { server, url: `http://127.0.0.1:${port}/chunks` };
}

const work = await mkdtemp(path.join(values.dir, 'zb-bench-flist-'));
try {
  const src = path.resolve(values.src);
  const tree = await pickTree(src);
  const treeDir = path.join(work, 'tree');
  await mkdir(treeDir);
  const listFile = path.join(work, 'list');
  await writeFile(listFile, tree.list.join('\0') + '\0');
  // exit 1 from tar is a file that changed while read: still a fine tree
  await run('bash', ['-c', `tar -C "$1" --null --no-recursion -T "$2" -cf - | tar -C "$3" -xf -`, 'copy', path.dirname(src), listFile, treeDir]).catch((e) => {
    if ((e as { code?: number }).code !== 1) fail(`copying ${src}: ${(e as Error).message.split('\n')[0]}`);
  });
  const top = path.join(treeDir, path.basename(src));
  console.log(`tree: ${tree.files} files, ${tree.dirs} folders, ${tree.symlinks} symlinks, ${(tree.bytes / 1e6).toFixed(1)} MB copied from ${src} (the files and symlinks of every ${tree.stride}th folder of a sorted walk) into ${top}`);
  console.log(`runs: ${RUNS}, sides taking turns; page cache ${values['drop-caches'] ? 'dropped before every timed command' : 'equally warm (inputs just written, not dropped)'}; outputs on the filesystem of ${work}`);

  const fl = path.join(work, 'x.fl');
  // Every timed run writes to a new path and the outputs go only at the end:
  // ext4 pays, at the next allocations, for the inodes of a tree removed just
  // before, so emptying the last run's output right before a timed run would
  // charge whichever side runs next.
  let seq = 0;
  const fresh = (base: string, folder: boolean) => {
    let current = '';
    return {
      prepare: async () => {
        current = `${base}-${++seq}`;
        if (folder) await mkdir(current);
      },
      path: () => current,
    };
  };
  const packStore = fresh(path.join(work, 'store'), false);
  const packTgz = fresh(path.join(work, 'x.tgz'), false);
  const ourOut = fresh(path.join(work, 'out-zeroboot'), true);
  const tarOut = fresh(path.join(work, 'out-tar'), true);

  console.error('pack:');
  await sideBySide([
    { name: 'zeroboot flist pack (dir://)', prepare: packStore.prepare, cmd: () => [BIN, ['flist', 'pack', top, '-o', fl, '--store', `dir://${packStore.path()}`]] },
    { name: 'tar czf', prepare: packTgz.prepare, cmd: () => ['tar', ['czf', packTgz.path(), '-C', top, '.']] },
  ]);
  // Unpack reads what the last runs wrote (the .fl of the last pack names chunks every store holds).
  const store = packStore.path();
  const storeUrl = `dir://${store}`;
  const tgz = packTgz.path();
  console.error('unpack:');
  await sideBySide([
    { name: 'zeroboot flist unpack (dir://)', prepare: ourOut.prepare, cmd: () => [BIN, ['flist', 'unpack', fl, ourOut.path(), '--store', storeUrl]] },
    { name: 'tar xzf', prepare: tarOut.prepare, cmd: () => ['tar', ['xzf', tgz, '-C', tarOut.path()]] },
  ]);

  let served: Server | undefined;
  if (values.http) {
    let url = values.http;
    if (url === 'serve') {
      const s = await serveStore(store);
      served = s.server;
      url = s.url;
    }
    const cache = path.join(work, 'cache');
    console.error(`unpack from ${url}:`);
    const httpOut = fresh(path.join(work, 'out-http'), true);
    const cmd = (): [string, string[]] => [BIN, ['flist', 'unpack', fl, httpOut.path(), '--store', url, '--cache', cache]];
    await sideBySide([
      {
        name: 'unpack http, cold cache',
        prepare: async () => {
          await httpOut.prepare();
          await rm(cache, { recursive: true, force: true });
        },
        cmd,
      },
    ]);
    await sideBySide([{ name: 'unpack http, warm cache', prepare: httpOut.prepare, cmd }]);
  }
  served?.close();

  const storeBytes = Number((await run('du', ['-sb', store])).stdout.split('\t')[0]);
  const tgzBytes = Number((await run('du', ['-sb', tgz])).stdout.split('\t')[0]);
  console.log(`sizes: store ${(storeBytes / 1e6).toFixed(1)} MB (+ .fl ${((await readFile(fl)).length / 1e6).toFixed(1)} MB), x.tgz ${(tgzBytes / 1e6).toFixed(1)} MB`);
  console.log(`medians of ${RUNS} runs over ${(tree.bytes / 1e6).toFixed(1)} MB of files:`);
  const ourPack = report('zeroboot flist pack (dir://)', tree.bytes);
  const tarPack = report('tar czf', tree.bytes);
  ratio('pack', ourPack, tarPack);
  const ourUnpack = report('zeroboot flist unpack (dir://)', tree.bytes);
  const tarUnpack = report('tar xzf', tree.bytes);
  ratio('unpack', ourUnpack, tarUnpack);
  if (values.http) {
    const cold = report('unpack http, cold cache', tree.bytes);
    const warm = report('unpack http, warm cache', tree.bytes);
    ratio('unpack http cold', cold, tarUnpack);
    ratio('unpack http warm', warm, tarUnpack);
  }
} finally {
  if (values.keep) console.log(`kept ${work}`);
  else await rm(work, { recursive: true, force: true });
}
