// `zeroboot flist pack|ls|cat|unpack|verify|merge`: argument parsing and wiring;
// the work is in flist/ (pack.ts, unpack.ts, list.ts, read-chunks.ts, merge.ts).
import { dispatch, listOpt, parseCommand, stringOpt, UsageError, type OptionSpec, type Parsed } from '../args.ts';

export const FLIST_HELP = `Usage: zeroboot flist <command> [options]

Commands:
  pack <dir> -o <out.fl> --store URL [--store RANGE=URL]... [--tag k=v]...
        chunk a directory tree into the store(s) and write its .fl
  ls <file.fl> [--json]               list the tree
  cat <file.fl> <path> [--store URL]... [--cache DIR]
                                       write one file's contents to stdout
  unpack <file.fl> <dir> [--store URL]... [--cache DIR]
                                       recreate the tree (modes, owners, links, times)
  verify <file.fl> [--store URL]...    fetch every chunk and check its hashes
  merge <a.fl> <b.fl>... -o <out.fl> [--tag k=v]...
        stack flists, later ones winning; .wh.<name> in a later one deletes
        <name>, .wh..wh..opq empties its directory; no chunk is copied: the
        result routes to every layer's stores

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
  const { ChunkReader, openReadStore } = await import('../../flist/read-chunks.ts');
  const fl = FlReader.open(file);
  try {
    const store = openReadStore(fl, { stores: listOpt(p, 'store'), cache: stringOpt(p, 'cache') });
    const pool = await ChunkPool.create();
    try {
      return await fn({ fl, reader: new ChunkReader(fl, store, pool) });
    } finally {
      await pool.close();
      await store.close();
    }
  } finally {
    fl.close();
  }
}

/** A one-line progress display on a terminal (stderr), at most 5 updates a second; nothing otherwise. */
function progressLine(verb: string): { update?: (files: number, bytes: number) => void; end: () => void } {
  if (!process.stderr.isTTY) return { end: () => undefined };
  let last = 0;
  let shown = false;
  return {
    update: (files, bytes) => {
      const now = Date.now();
      if (now - last < 200) return;
      last = now;
      shown = true;
      process.stderr.write(`\r\x1b[Kzeroboot flist: ${verb} ${files} files, ${(bytes / 1048576).toFixed(1)} MiB`);
    },
    end: () => {
      if (shown) process.stderr.write('\r\x1b[K');
    },
  };
}

function tagArgs(command: string, p: Parsed): [string, string][] {
  return listOpt(p, 'tag').map((t): [string, string] => {
    const i = t.indexOf('=');
    if (i <= 0) throw new UsageError(`flist ${command}: --tag ${JSON.stringify(t)}: expected key=value`);
    return [t.slice(0, i), t.slice(i + 1)];
  });
}

async function pack(argv: string[]): Promise<number> {
  const p = parse('pack', argv, { output: { type: 'string', short: 'o' }, store: { type: 'string', multiple: true }, tag: { type: 'string', multiple: true }, json: { type: 'boolean' } }, ['<dir>']);
  if (!p) return 0;
  const out = stringOpt(p, 'output');
  if (!out) throw new UsageError('flist pack: give the output file with -o FILE.fl');
  const storeArgs = listOpt(p, 'store');
  if (storeArgs.length === 0) throw new UsageError('flist pack: give at least one --store URL');
  const tags = tagArgs('pack', p);
  const { parseStoreArg, openRouter } = await import('../../flist/stores/router.ts');
  const { ChunkPool } = await import('../../flist/chunk-pool.ts');
  const { packDir } = await import('../../flist/pack.ts');
  const routes = storeArgs.map(parseStoreArg);
  const store = openRouter(routes);
  const pool = await ChunkPool.create();
  const bar = progressLine('packed');
  try {
    const s = await packDir(p.positionals[0], out, { pool, store, routes, tags, progress: bar.update });
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
  const fl = FlReader.open(p.positionals[0]);
  try {
    const listing = listFl(fl);
    process.stdout.write(p.values.json ? JSON.stringify(listing, null, 2) + '\n' : listingLines(listing).map((l) => l + '\n').join(''));
  } finally {
    fl.close();
  }
  return 0;
}

async function cat(argv: string[]): Promise<number> {
  const p = parse('cat', argv, READ_OPTIONS, ['<file.fl>', '<path>']);
  if (!p) return 0;
  const { catFile } = await import('../../flist/unpack.ts');
  await withReader(p.positionals[0], p, ({ fl, reader }) => catFile(fl, p.positionals[1], reader, process.stdout));
  return 0;
}

async function unpack(argv: string[]): Promise<number> {
  const p = parse('unpack', argv, { ...READ_OPTIONS, json: { type: 'boolean' } }, ['<file.fl>', '<dir>']);
  if (!p) return 0;
  const { unpackTree } = await import('../../flist/unpack.ts');
  const bar = progressLine('unpacked');
  const s = await withReader(p.positionals[0], p, ({ fl, reader }) => unpackTree(fl, p.positionals[1], reader, bar.update)).finally(bar.end);
  if (p.values.json) process.stdout.write(JSON.stringify(s) + '\n');
  else process.stdout.write(`zeroboot flist: unpacked ${s.entries} entries, ${s.files} files, ${s.bytes} bytes into ${p.positionals[1]}\n`);
  return 0;
}

async function verify(argv: string[]): Promise<number> {
  const p = parse('verify', argv, { ...READ_OPTIONS, json: { type: 'boolean' } }, ['<file.fl>']);
  if (!p) return 0;
  const { verifyTree } = await import('../../flist/unpack.ts');
  const s = await withReader(p.positionals[0], p, ({ fl, reader }) => verifyTree(fl, reader));
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
