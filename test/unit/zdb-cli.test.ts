// The reference's command line: names, defaults, getopt_long_only forms,
// refusals with the reference's messages.
import test from 'ava';
import { parseZdbArgs, ZdbUsageError } from '../../zdb/cli.ts';
import { zdbId } from '../../zdb/server/options.ts';

test('defaults are the reference defaults', (t) => {
  const { opts, help } = parseZdbArgs([]);
  t.false(help);
  t.is(opts.dataDir, './zdb-data');
  t.is(opts.indexDir, './zdb-index');
  t.is(opts.listen, '::');
  t.is(opts.port, 9900);
  t.is(opts.datasize, 256 * 1024 * 1024);
  t.is(opts.mode, undefined);
  t.is(opts.maxsize, 0);
  t.false(opts.sync);
  t.false(opts.protect);
  t.is(zdbId(opts), 'tcp://:::9900');
});

test('the zos command line parses', (t) => {
  const { opts } = parseZdbArgs('--protect --admin pool-1 --data /zdb/data --index /zdb/index --listen :: --port 9900 --socket /socket/zdb.sock --dualnet'.split(' '));
  t.true(opts.protect);
  t.is(opts.admin, 'pool-1');
  t.is(opts.dataDir, '/zdb/data');
  t.is(opts.indexDir, '/zdb/index');
  t.is(opts.listen, '::');
  t.is(opts.socket, '/socket/zdb.sock');
  t.true(opts.dualnet);
  t.is(zdbId(opts), 'unix:///socket/zdb.sock');
});

test('--flag=value, single dash and unambiguous prefixes, like getopt_long_only', (t) => {
  const { opts } = parseZdbArgs(['--port=1234', '-data', '/d', '--ind', '/i', '--datas', '524288', '-sync', '--synctime', '5', '--rotate', '60', '--mode', 'seq', '--maxsize', '1000']);
  t.is(opts.port, 1234);
  t.is(opts.dataDir, '/d');
  t.is(opts.indexDir, '/i');
  t.is(opts.datasize, 524288);
  t.true(opts.sync);
  t.is(opts.synctime, 5);
  t.is(opts.rotate, 60);
  t.is(opts.mode, 'seq');
  t.is(opts.maxsize, 1000);
});

test('a unix socket replaces TCP unless --dualnet', (t) => {
  t.is(parseZdbArgs(['--socket', '/tmp/s']).opts.listen, undefined);
  t.is(parseZdbArgs(['--socket', '/tmp/s', '--dualnet']).opts.listen, '::');
});

test('refusals', (t) => {
  const msg = (argv: string[]) => t.throws(() => parseZdbArgs(argv), { instanceOf: ZdbUsageError })?.message;
  t.is(msg(['--protect']), '[-] protected mode only works with admin password');
  t.is(msg(['--nope']), "unrecognized option '--nope'");
  t.regex(msg(['--da', 'x']) ?? '', /ambiguous/);
  t.is(msg(['--data']), "option '--data' requires an argument");
  t.is(msg(['--sync=1']), "option '--sync' doesn't allow an argument");
  t.is(msg(['--datasize', String(0xffffffff)]), '[-] datasize cannot be larger than 4294967295 bytes (4096 MB)');
  t.regex(msg(['--mode', 'block']) ?? '', /invalid mode 'block'/);
  t.regex(msg(['--port', 'http']) ?? '', /invalid port/);
  t.regex(msg(['stray']) ?? '', /unexpected argument 'stray'/);
});

test('--mode direct is sequential mode with the reference warning', (t) => {
  const p = parseZdbArgs(['--mode', 'direct']);
  t.is(p.opts.mode, 'seq');
  t.true(p.warnings.some((w) => w.includes("direct mode doesn't exists anymore")));
});

test('--help', (t) => {
  t.true(parseZdbArgs(['--help']).help);
});
