import test from 'ava';
import { buildCmdline, cmdlineWords, CmdlineError, FarmerIdError, REFERENCE_ARGS, RunmodeError } from '../../boot/http/cmdline.ts';

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
