// `zeroboot flist pack|ls|cat|unpack|verify|merge`: argument parsing and wiring;
// the work is in flist/ (pack.ts, unpack.ts, list.ts, read-chunks.ts, merge.ts).
import { dispatch, listOpt, parseCommand, stringOpt, UsageError, type OptionSpec, type Parsed } from '../args.ts';

export const FLIST_HELP = `Usage: zeroboot flist <command> [options]

Commands:
  pack <dir|tar|.deb> -o <out.fl> --store URL [--store RANGE=URL]... [--tag k=v]...
        chunk a directory, a tarball (plain, gzip, xz, zstd, bzip2) or a
        Debian package's data.tar into the store(s) and write its .fl
  ls <file.fl|.flist> [--json]        list the tree
  cat <file.fl|.flist> <path> [--store URL]... [--cache DIR]
                                       write one file's contents to stdout
  unpack <file.fl|.flist> <dir> [--store URL]... [--cache DIR]
                                       recreate the tree (modes, owners, links, times)
  verify <file.fl|.flist> [--store URL]...
                                       fetch every chunk and check its hashes
  merge <a.fl> <b.fl>... -o <out.fl> [--tag k=v]...
        stack flists, later ones winning; .wh.<name> in a later one deletes
        <name>, .wh..wh..opq empties its directory; no chunk is copied: the
        result routes to every layer's stores

A legacy 0-flist .flist (tar.gz of an SQLite database, recognised by its
content) works with ls, cat, unpack and verify; its chunks come from the
backend it names, or --store zdb://... or dir:///path.

Stores: dir:///path, zdb://[user:pass@]host[:port][/namespace], http(s)://base.
RANGE is two hex bytes of the chunk id, as 00-7f=URL. Without --store, cat,
unpack and verify use the routes in the .fl. Passwords are not written to the .fl.
`;

const READ_OPTIONS = { store: { type: 'string', multiple: true }, cache: { type: 'string' } } as const;

function parse(name: string, argv: string[], options: OptionSpec, positionals: string[]): Parsed | undefined {
  const p = parseCommand(`flist ${name}`, argv, options);
  if (p.values.help) {
    process.stdout.write(FLIST_HELP);
    return undefined;
  }
  if (p.positionals.length < positionals.length) throw new UsageError(`flist ${name}: give ${positionals.join(' and ')} (see 'zeroboot flist --help')`);
  if (p.positionals.length > positionals.length) throw new UsageError(`flist ${name}: unexpected argument "${p.positionals[positionals.length]}"`);
  return p;
}

async function withReader<T>(file: string, p: Parsed, fn: (ctx: { fl: import('../../flist/fl-file.ts').FlReader; reader: import('../../flist/read-chunks.ts').ChunkReader }) => Promise<T>): Promise<T> {
  const { FlReader } = await import('../../flist/fl-file.ts');
  const { ChunkPool } = await import('../../flist/chunk-pool.ts');
  const { ChunkReader, openReadStore, readThreads } = await import('../../flist/read-chunks.ts');
  const fl = FlReader.open(file);
  try {
    const store = openReadStore(fl, { stores: listOpt(p, 'store'), cache: stringOpt(p, 'cache') });
    // the worker threads (about 0.1 s of CPU each) start when first needed: unpack from local chunks may need none
    let starting: Promise<import('../../flist/chunk-pool.ts').ChunkPool> | undefined;
    try {
      return await fn({ fl, reader: new ChunkReader(fl, store, () => (starting ??= ChunkPool.create({ threads: readThreads(fl) }))) });
    } finally {
      await starting?.then((pool) => pool.close()).catch(() => undefined);
      await store.close();
    }
  } finally {
    fl.close();
  }
}

/** 'fl', or a legacy 0-flist format (tar, tar.gz, or its bare database), judged by the file's first bytes. */
async function formatOf(file: string) {
  const { flistFormat } = await import('../../flist/legacy/index.ts');
  return flistFormat(file);
}

function legacyOptions(p: Parsed) {
  return { stores: listOpt(p, 'store'), cache: stringOpt(p, 'cache') };
}

function tagArgs(command: string, p: Parsed): [string, string][] {
  return listOpt(p, 'tag').map((t): [string, string] => {
    const i = t.indexOf('=');
    if (i <= 0) throw new UsageError(`flist ${command}: --tag ${JSON.stringify(t)}: expected key=value`);
    return [t.slice(0, i), t.slice(i + 1)];
  });
}

async function pack(argv: string[]): Promise<number> {
  const p = parse('pack', argv, { output: { type: 'string', short: 'o' }, store: { type: 'string', multiple: true }, tag: { type: 'string', multiple: true }, json: { type: 'boolean' } }, ['<source>']);
  if (!p) return 0;
  const out = stringOpt(p, 'output');
  if (!out) throw new UsageError('flist pack: give the output file with -o FILE.fl');
  const storeArgs = listOpt(p, 'store');
  if (storeArgs.length === 0) throw new UsageError('flist pack: give at least one --store URL');
  const tags = tagArgs('pack', p);
  const { parseStoreArg, openRouter } = await import('../../flist/stores/router.ts');
  const { ChunkPool } = await import('../../flist/chunk-pool.ts');
  const { packSource } = await import('../../flist/pack.ts');
  const { progressBar } = await import('../../lib/progress.ts');
  const routes = storeArgs.map(parseStoreArg);
  const store = openRouter(routes);
  const pool = await ChunkPool.create();
  const bar = progressBar('zeroboot flist: packing');
  const progress = (files: number, bytes: number, input?: { done: number; total: number }) =>
    input ? bar.update(input.done, input.total, `${files} files, ${(bytes / 1048576).toFixed(1)} MiB out`) : bar.update(bytes, undefined, `${files} files`);
  try {
    const s = await packSource(p.positionals[0], out, { pool, store, routes, tags, progress });
    if (p.values.json) process.stdout.write(JSON.stringify(s) + '\n');
    else process.stdout.write(`zeroboot flist: packed ${s.entries} entries, ${s.files} files, ${s.bytes} bytes in ${s.chunks} chunks (${s.uploaded} new) into ${out}\n`);
  } finally {
    bar.end();
    await pool.close();
    await store.close();
  }
  return 0;
}

async function ls(argv: string[]): Promise<number> {
  const p = parse('ls', argv, { json: { type: 'boolean' } }, ['<file.fl>']);
  if (!p) return 0;
  const { FlReader } = await import('../../flist/fl-file.ts');
  const { listFl, listingLines } = await import('../../flist/list.ts');
  const format = await formatOf(p.positionals[0]);
  const show = (listing: import('../../flist/list.ts').Listing) =>
    process.stdout.write(p.values.json ? JSON.stringify(listing, null, 2) + '\n' : listingLines(listing).map((l) => l + '\n').join(''));
  if (format !== 'fl') {
    const { listLegacy } = await import('../../flist/legacy/index.ts');
    show(await listLegacy(p.positionals[0], format));
    return 0;
  }
  const fl = FlReader.open(p.positionals[0]);
  try {
    show(listFl(fl));
  } finally {
    fl.close();
  }
  return 0;
}

async function cat(argv: string[]): Promise<number> {
  const p = parse('cat', argv, READ_OPTIONS, ['<file.fl>', '<path>']);
  if (!p) return 0;
  const format = await formatOf(p.positionals[0]);
  if (format !== 'fl') {
    const { catLegacy } = await import('../../flist/legacy/index.ts');
    await catLegacy(p.positionals[0], format, p.positionals[1], legacyOptions(p), process.stdout);
    return 0;
  }
  const { catFile } = await import('../../flist/unpack.ts');
  await withReader(p.positionals[0], p, ({ fl, reader }) => catFile(fl, p.positionals[1], reader, process.stdout));
  return 0;
}

async function unpack(argv: string[]): Promise<number> {
  const p = parse('unpack', argv, { ...READ_OPTIONS, json: { type: 'boolean' } }, ['<file.fl>', '<dir>']);
  if (!p) return 0;
  const { unpackTree } = await import('../../flist/unpack.ts');
  const format = await formatOf(p.positionals[0]);
  const { progressBar } = await import('../../lib/progress.ts');
  const bar = progressBar('zeroboot flist: unpacking');
  const progress = (files: number, bytes: number) => bar.update(bytes, undefined, `${files} files`);
  const run = async () => {
    if (format === 'fl') return withReader(p.positionals[0], p, ({ fl, reader }) => unpackTree(fl, p.positionals[1], reader, progress));
    const { unpackLegacy } = await import('../../flist/legacy/index.ts');
    return unpackLegacy(p.positionals[0], format, p.positionals[1], legacyOptions(p), progress);
  };
  const s = await run().finally(bar.end);
  if (p.values.json) process.stdout.write(JSON.stringify(s) + '\n');
  else process.stdout.write(`zeroboot flist: unpacked ${s.entries} entries, ${s.files} files, ${s.bytes} bytes into ${p.positionals[1]}\n`);
  return 0;
}

async function verify(argv: string[]): Promise<number> {
  const p = parse('verify', argv, { ...READ_OPTIONS, json: { type: 'boolean' } }, ['<file.fl>']);
  if (!p) return 0;
  const { verifyTree } = await import('../../flist/unpack.ts');
  const format = await formatOf(p.positionals[0]);
  const { verifyLegacy } = await import('../../flist/legacy/index.ts');
  const s = format === 'fl' ? await withReader(p.positionals[0], p, ({ fl, reader }) => verifyTree(fl, reader)) : await verifyLegacy(p.positionals[0], format, legacyOptions(p));
  if (p.values.json) process.stdout.write(JSON.stringify(s) + '\n');
  else process.stdout.write(`zeroboot flist: ${p.positionals[0]}: ${s.files} files, ${s.chunks} chunks, all present and hashing right\n`);
  return 0;
}

async function merge(argv: string[]): Promise<number> {
  const p = parseCommand('flist merge', argv, { output: { type: 'string', short: 'o' }, tag: { type: 'string', multiple: true }, json: { type: 'boolean' } });
  if (p.values.help) {
    process.stdout.write(FLIST_HELP);
    return 0;
  }
  if (p.positionals.length === 0) throw new UsageError("flist merge: give the flists to merge, bottom layer first (see 'zeroboot flist --help')");
  const out = stringOpt(p, 'output');
  if (!out) throw new UsageError('flist merge: give the output file with -o FILE.fl');
  const { mergeFlists } = await import('../../flist/merge.ts');
  const s = mergeFlists(p.positionals, out, { tags: tagArgs('merge', p) });
  if (p.values.json) process.stdout.write(JSON.stringify(s) + '\n');
  else process.stdout.write(`zeroboot flist: merged ${s.layers} layers into ${out}: ${s.entries} entries, ${s.files} files, ${s.whitedOut} whited out, ${s.routes} routes\n`);
  return 0;
}

export function flistCommand(argv: string[]): Promise<number> {
  return dispatch('flist', argv, { pack, ls, cat, unpack, verify, merge }, FLIST_HELP);
}
