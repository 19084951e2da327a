import test from 'ava';
import { buildCmdline, cmdlineWords, CmdlineError, FarmerIdError, parseCmdline, parseCmdlineParams, REFERENCE_ARGS, RunmodeError } from '../../lib/cmdline.ts';
import type { KernelArgs } from '../../lib/cmdline.ts';
import { macFromBootif } from '../../lib/mac.ts';

test('the reference arguments lead in reference order, the rest follow sorted, extra text last', (t) => {
  const line = buildCmdline({ zos_debug: null, farmer_id: 42, console: 'ttyS0,115200n8', panic: 7200, runmode: 'test', version: 'v3', nomodeset: null }, 'quiet  loglevel=3');
  t.is(line, 'nomodeset version=v3 runmode=test panic=7200 console=ttyS0,115200n8 farmer_id=42 zos_debug quiet loglevel=3');
});

test('the reference defaults print the Zero-OS bootstrap line', (t) => {
  t.is(buildCmdline({ ...REFERENCE_ARGS, farmer_id: 7 }), 'nomodeset version=v3 runmode=prod panic=7200 farmer_id=7');
});

test('missing leading keys are skipped, not invented', (t) => {
  t.is(buildCmdline({ b: '2', a: '1', runmode: 'dev' }), 'runmode=dev a=1 b=2');
  t.is(buildCmdline({}), '');
  t.deepEqual(cmdlineWords({ x: '' }), ['x=']);
});

test('runmode accepts prod, test, dev and qa only', (t) => {
  for (const mode of ['prod', 'test', 'dev', 'qa']) t.is(buildCmdline({ runmode: mode }), `runmode=${mode}`);
  for (const bad of ['Prod', 'production', '', 'prod ']) {
    const e = t.throws(() => buildCmdline({ runmode: bad }), { instanceOf: RunmodeError });
    t.is(e!.key, 'runmode');
    t.regex(e!.message, /prod, test, dev, qa/);
  }
  t.throws(() => buildCmdline({ runmode: null }), { instanceOf: RunmodeError });
  t.throws(() => buildCmdline({ runmode: 1 }), { instanceOf: RunmodeError });
});

test('farmer_id is an unsigned 32-bit integer written in digits', (t) => {
  t.is(buildCmdline({ farmer_id: 0 }), 'farmer_id=0');
  t.is(buildCmdline({ farmer_id: 4294967295 }), 'farmer_id=4294967295');
  t.is(buildCmdline({ farmer_id: '123' }), 'farmer_id=123');
  for (const bad of [4294967296, -1, 1.5, '1e3', '0x10', ' 7', '', 'abc', '99999999999']) {
    const e = t.throws(() => buildCmdline({ farmer_id: bad }), { instanceOf: FarmerIdError }, String(bad));
    t.is(e!.key, 'farmer_id');
  }
  t.throws(() => buildCmdline({ farmer_id: null }), { instanceOf: FarmerIdError });
});

test('values that could break out of the iPXE kernel line are refused', (t) => {
  for (const bad of ['a b', 'x\nchain http://evil/', '${net0/ip}', 'a&&reboot', 'a||b', '"q"', "'q'", 'a;b', 'a#b', 'a\\b', 'tab\there']) {
    const e = t.throws(() => buildCmdline({ console: bad }), { instanceOf: CmdlineError }, JSON.stringify(bad));
    t.is(e!.key, 'console');
  }
  t.throws(() => buildCmdline({ 'bad key': '1' }), { instanceOf: CmdlineError });
  t.throws(() => buildCmdline({ 'k=v': '1' }), { instanceOf: CmdlineError });
  t.throws(() => buildCmdline({ n: Number.NaN }), { instanceOf: CmdlineError });
  t.throws(() => buildCmdline({}, 'ok ${evil}'), { instanceOf: CmdlineError });
  t.throws(() => buildCmdline({}, 'ok\nreboot'), { instanceOf: CmdlineError });
});

test('ordinary kernel argument values pass', (t) => {
  t.is(buildCmdline({ 'virtio_net.napi_tx': 1, root: 'UUID=ab-12', ip: 'dhcp', url: 'http://10.0.0.1:8080/x?y=1' }), 'ip=dhcp root=UUID=ab-12 url=http://10.0.0.1:8080/x?y=1 virtio_net.napi_tx=1');
});

// Parsing: what a node reads back from /proc/cmdline.

const asText = (args: KernelArgs): KernelArgs => Object.fromEntries(Object.entries(args).map(([k, v]) => [k, v === null ? null : String(v)]));

test('parse(render(args)) gives the arguments back (numbers as their text), extra words included', (t) => {
  const cases: [KernelArgs, string?][] = [
    [{ ...REFERENCE_ARGS, farmer_id: 4294967295, console: 'ttyS0,115200n8', zos_debug: null }],
    [{ x: '', 'a.b:c-d': 'k=v=w', url: 'http://10.0.0.1:8080/x?y=1,z=%20~^@+' }],
    [{ runmode: 'dev' }, 'quiet  loglevel=3 BOOTIF=01-52-54-00-ab-cd-01'],
    [{}],
  ];
  for (const [args, extra] of cases) {
    const line = buildCmdline(args, extra);
    const back = parseCmdline(line);
    const extraArgs = parseCmdline(extra ?? '');
    t.deepEqual(back, { ...asText(args), ...extraArgs }, line);
    t.is(buildCmdline(back), buildCmdline({ ...args, ...extraArgs }), 'and renders to the same line');
  }
});

test('a /proc/cmdline as the kernel shows it: trailing newline, BOOT_IMAGE, initrd=, quotes, init arguments after --', (t) => {
  const proc = 'BOOT_IMAGE=/vmlinuz-6.1.0-28-amd64 root=UUID=1c2d-3e ro nomodeset version=v3 runmode=prod panic=7200 farmer_id=42 initrd=initrd0 BOOTIF=01-52-54-00-ab-cd-01 console=ttyS0,115200n8 -- single\n';
  const { params, init } = parseCmdlineParams(proc);
  t.deepEqual(params.slice(0, 3), [
    { key: 'BOOT_IMAGE', value: '/vmlinuz-6.1.0-28-amd64' },
    { key: 'root', value: 'UUID=1c2d-3e' },
    { key: 'ro', value: null },
  ]);
  t.deepEqual(init, [{ key: 'single', value: null }]);
  t.like(parseCmdline(proc), { nomodeset: null, farmer_id: '42', console: 'ttyS0,115200n8', BOOTIF: '01-52-54-00-ab-cd-01' });
  t.false('single' in parseCmdline(proc), 'init arguments are not kernel parameters');
  t.is(macFromBootif(String(parseCmdline(proc).BOOTIF)), '52:54:00:ab:cd:01', 'the NIC the node booted from');
});

test('quoting follows the kernel: enclosing quotes go, inner quotes stay, blanks inside quotes do not split', (t) => {
  const words = (line: string) => parseCmdlineParams(line).params;
  t.deepEqual(words('dyndbg="file x.c +p" a=1'), [{ key: 'dyndbg', value: 'file x.c +p' }, { key: 'a', value: '1' }]);
  t.deepEqual(words('"quoted word" next'), [{ key: 'quoted word', value: null }, { key: 'next', value: null }]);
  t.deepEqual(words('"k=v w"'), [{ key: 'k', value: 'v w' }]);
  t.deepEqual(words('a=b"c d"e'), [{ key: 'a', value: 'b"c d"e' }], 'quotes inside a value are kept');
  t.deepEqual(words('a="unterminated value'), [{ key: 'a', value: 'unterminated value' }], 'an open quote runs to the end');
  t.deepEqual(words('e= =x k=="v"'), [{ key: 'e', value: '' }, { key: '=x', value: null }, { key: 'k', value: '="v"' }]);
  t.deepEqual(words(' \t\n '), []);
  t.deepEqual(words('a="'), [{ key: 'a', value: '' }]);
  t.deepEqual(words('a\tb\nc'), ['a', 'b', 'c'].map((key) => ({ key, value: null })));
});

test('the last of a repeated key wins; odd keys are plain keys', (t) => {
  t.deepEqual(parseCmdline('console=tty0 console=ttyS0'), { console: 'ttyS0' });
  const odd = parseCmdline('__proto__ constructor=x');
  t.deepEqual(Object.entries(odd), [['__proto__', null], ['constructor', 'x']]);
  t.is(Object.getPrototypeOf(odd), Object.prototype);
});
