// The bootstrap URL grammar as a pure parser: every accepted shape, and the
// hostile ones a node network can send (huge extra, bad farm ids, traversal,
// encoded slashes, control characters), each refused with its status.
import test from 'ava';
import { bootstrapCmdline, BootstrapRequestError, MAX_CMDLINE_BYTES, MAX_EXTRA_BYTES, MAX_PATH_BYTES, ownsBootstrapPath, parseBootstrapPath } from '../../boot/http/bootstrap-grammar.ts';
import { renderBootstrapScript } from '../../boot/http/bootstrap-script.ts';

function refused(t: import('ava').ExecutionContext, path: string, status: number, message?: RegExp): void {
  const e = t.throws(() => parseBootstrapPath(path), { instanceOf: BootstrapRequestError }, path);
  t.is(e?.status as number | undefined, status, path);
  if (message) t.regex(e!.message, message, path);
}

test('each format with 1 to 4 segments, trailing slash allowed', (t) => {
  for (const format of ['ipxe', 'uefi', 'iso', 'usb', 'uefimg', 'krn'] as const) {
    t.deepEqual(parseBootstrapPath(`/${format}/prod`), { kind: 'build', format, runmode: 'prod', extra: [] });
    t.deepEqual(parseBootstrapPath(`/${format}/test/`), { kind: 'build', format, runmode: 'test', extra: [] });
    t.deepEqual(parseBootstrapPath(`/${format}/dev/42`), { kind: 'build', format, runmode: 'dev', farmId: 42, extra: [] });
    t.deepEqual(parseBootstrapPath(`/${format}/qa/0/console=ttyS0`), { kind: 'build', format, runmode: 'qa', farmId: 0, extra: ['console=ttyS0'] });
    t.deepEqual(parseBootstrapPath(`/${format}/prod/7/x/zos-2.v3`), { kind: 'build', format, runmode: 'prod', farmId: 7, extra: ['x'], kernel: 'zos-2.v3' });
  }
});

test('extra: ___ is /, spaces (encoded) split words, an encoded slash reads as /', (t) => {
  const r = parseBootstrapPath('/ipxe/prod/1/ssh-user=me%20zos-debug%20root=___dev___vda1');
  t.like(r, { extra: ['ssh-user=me', 'zos-debug', 'root=/dev/vda1'] });
  t.like(parseBootstrapPath('/ipxe/prod/1/root=%2Fdev%2fvda'), { extra: ['root=/dev/vda'] });
  t.like(parseBootstrapPath('/ipxe/prod/1/%20%20'), { extra: [] });
});

test('runmode: unknown -> 401 (also case, encoding and traversal tricks)', (t) => {
  for (const rm of ['staging', 'PROD', 'prod%00', '..', '%2e%2e', 'pro%64x', 'prod%2F..']) refused(t, `/ipxe/${rm}`, rm === 'prod%00' ? 400 : 401);
  refused(t, '/iso/main/1', 401, /unknown runmode "main" \(known: prod, test, dev, qa\)/);
  // %64 is "d": the decoded runmode is what counts.
  t.like(parseBootstrapPath('/ipxe/%64ev'), { runmode: 'dev' });
});

test('farm id: digits up to 2^32-1 only', (t) => {
  t.like(parseBootstrapPath('/ipxe/prod/4294967295'), { farmId: 4294967295 });
  t.like(parseBootstrapPath('/ipxe/prod/007'), { farmId: 7 });
  for (const bad of ['4294967296', '99999999999', '-1', '1e3', '0x10', '%207', '7%20', 'null', '1.5', '%2e%2e', '..', '1%2F2', 'ab']) refused(t, `/ipxe/prod/${bad}`, 400, /farm id .* refused|percent/);
});

test('kernel segment: a plain name; traversal and separators refused', (t) => {
  for (const bad of ['..', '.', '%2e%2e', '.hidden', 'a%2Fb', 'a%5Cb', 'a b', 'x'.repeat(65), '%00', '%ZZ']) refused(t, `/ipxe/prod/1/x/${bad}`, 400);
  refused(t, '/ipxe/prod/1/x/../y', 404);
  refused(t, '/kernel/..', 400);
  refused(t, '/kernel/%2e%2e%2fetc%2fpasswd', 400);
});

test('shape: empty segments, too many segments, unknown format or kernel path -> 404', (t) => {
  refused(t, '/ipxe/', 404, /needs a runmode/);
  refused(t, '/ipxe//1', 404, /empty path segment/);
  refused(t, '/ipxe/prod//x', 404);
  refused(t, '/ipxe/prod/1/x/k/more', 404, /at most 4/);
  refused(t, '/kernel/zos/initrd', 404);
  refused(t, '/kernel/zos/initrd/x', 404);
  refused(t, '/kernel/zos/other/0', 404);
  t.deepEqual(parseBootstrapPath('/kernel/zos'), { kind: 'kernel', name: 'zos' });
  t.deepEqual(parseBootstrapPath('/kernel/zos/initrd/1'), { kind: 'kernel', name: 'zos', initrd: 1 });
});

test('hostile extra: too long, iPXE/shell metacharacters, controls, bad encoding', (t) => {
  refused(t, `/ipxe/prod/1/${'a'.repeat(MAX_EXTRA_BYTES + 1)}`, 400, /longer than 1024/);
  t.like(parseBootstrapPath(`/ipxe/prod/1/${'a'.repeat(MAX_EXTRA_BYTES)}`), { extra: ['a'.repeat(MAX_EXTRA_BYTES)] });
  refused(t, `/ipxe/prod/1/${'a'.repeat(MAX_PATH_BYTES)}`, 400, /path refused/);
  for (const bad of ['%24%7Bnet0%2Fmac%7D', 'a%26%26reboot', 'x%0Achain%20http:%2F%2Fevil', 'a%22b', 'a;b', 'a%7Cb', 'a%5Cb', 'x%23y', 'a%09b%0D', '%E2%82%AC', '%ZZ', '%']) {
    refused(t, `/ipxe/prod/1/${bad}`, 400);
  }
});

test('ownsBootstrapPath: the exact /ipxe stays the machine script', (t) => {
  t.false(ownsBootstrapPath('/ipxe'));
  t.false(ownsBootstrapPath('/kernel'));
  t.false(ownsBootstrapPath('/images/zos/vmlinuz'));
  t.false(ownsBootstrapPath('/boot.ipxe'));
  for (const p of ['/ipxe/', '/ipxe/prod', '/uefi/x', '/iso/prod/1', '/usb/a', '/uefimg/b', '/krn/prod', '/kernel/zos']) t.true(ownsBootstrapPath(p), p);
});

const SET = { args: { runmode: 'dev', version: 'v4', farmer_id: 99, console: 'ttyS0', nomodeset: null, panic: 1 }, cmdline: 'quiet' };

test('cmdline: the reference words first and in order, then the set, the server, the extra', (t) => {
  t.is(bootstrapCmdline({ runmode: 'test', farmId: 7, extra: ['zos-debug', 'root=/x'] }, SET, 'http://10.0.0.1:8080/'), 'nomodeset version=v3 runmode=test panic=7200 farmer_id=7 console=ttyS0 zeroboot.server=http://10.0.0.1:8080 quiet zos-debug root=/x');
  // No farm id in the URL: no farmer_id word (farm 0), whatever the set says.
  t.is(bootstrapCmdline({ runmode: 'prod', extra: [] }, { args: {} }, 'http://h:1'), 'nomodeset version=v3 runmode=prod panic=7200 zeroboot.server=http://h:1');
  // A server named by the extra or the set wins; an IPv6 base is left out rather than failing.
  t.is(bootstrapCmdline({ runmode: 'prod', farmId: 1, extra: ['zeroboot.server=http://x'] }, { args: {} }, 'http://h:1'), 'nomodeset version=v3 runmode=prod panic=7200 farmer_id=1 zeroboot.server=http://x');
  t.is(bootstrapCmdline({ runmode: 'prod', extra: [] }, { args: {} }, 'http://[::1]:8080'), 'nomodeset version=v3 runmode=prod panic=7200');
  const long = Array.from({ length: 200 }, (_, i) => `k${i}=${'v'.repeat(5)}`);
  const e = t.throws(() => bootstrapCmdline({ runmode: 'prod', extra: long }, { args: {} }, 'http://h:1'), { instanceOf: BootstrapRequestError });
  t.is(e?.status, 400);
  t.regex(e!.message, new RegExp(`kernel keeps ${MAX_CMDLINE_BYTES}`));
});

test('script: DHCP on every net<N> 3 times, kernel and initrds 3 times, four distinct failure messages', (t) => {
  const s = renderBootstrapScript({ base: 'http://10.0.0.1:8080', kernel: 'zos', initrds: 2, cmdline: 'nomodeset version=v3 runmode=prod panic=7200 farmer_id=7', title: 'runmode prod, farm 7' });
  t.true(s.startsWith('#!ipxe\n'));
  t.true(s.includes('dhcp net0 && goto online || dhcp net0 && goto online || dhcp net0 && goto online || echo zeroboot: DHCP failed on net0'));
  t.true(s.includes('isset ${net7/mac} || goto dhcp_failed'));
  t.is(s.match(/imgfetch --name kernel http:\/\/10.0.0.1:8080\/kernel\/zos nomodeset version=v3 runmode=prod panic=7200 farmer_id=7 initrd=initrd0 initrd=initrd1 && goto kernel_ok/g)?.length, 3);
  t.is(s.match(/initrd --name initrd1 http:\/\/10.0.0.1:8080\/kernel\/zos\/initrd\/1 && goto initrd1_ok/g)?.length, 3);
  for (const label of ['no_nic', 'dhcp_failed', 'download_failed', 'exec_failed', 'reboot']) t.true(s.includes(`\n:${label}\n`), label);
  const messages = ['no network interface found', 'DHCP failed on every interface', 'download failed from', 'exec failed'];
  for (const m of messages) t.is(s.split(m).length, 2, m);
  t.true(s.trimEnd().endsWith('reboot'));
});
