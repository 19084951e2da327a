import test from 'ava';
import {
  GrubValueError,
  grubHttpPath,
  grubStorePath,
  grubWord,
  renderGrubChain,
  renderGrubError,
  renderGrubMachineConfig,
} from '../../boot/grub/config.ts';
import type { Profile } from '../../boot/selection.ts';
import { CmdlineError } from '../../lib/cmdline.ts';

const profile: Profile = { name: 'zos', kernel: 'image/vmlinuz', initrd: ['image/initramfs.img', 'extra/fw.img'], args: { runmode: 'prod', farmer_id: 42, console: 'ttyS0' } };

test('the first configuration is the same for every machine and loads the one named after the MAC', (t) => {
  const text = renderGrubChain();
  t.regex(text, /^configfile "\$prefix\/grub\.cfg-\$net_default_mac"$/m);
  t.regex(text, /^reboot$/m, 'a machine without its own configuration reboots');
});

test('a machine configuration: kernel with the merged arguments and BOOTIF, initrds, retries, boot', (t) => {
  const text = renderGrubMachineConfig({ profile, args: profile.args, mac: '52:54:00:AB:CD:EF', group: 'rack1' });
  t.regex(text, /^# zeroboot GRUB configuration for 52:54:00:ab:cd:ef$/m);
  t.regex(text, /echo "zeroboot: 52:54:00:ab:cd:ef boots profile zos \(group rack1\)"/);
  const linux = /if (linux [^;]*); then set zb_kernel=yes; break; fi/.exec(text);
  t.truthy(linux);
  t.is(linux![1], 'linux /image/vmlinuz runmode=prod console=ttyS0 farmer_id=42 BOOTIF=01-52-54-00-ab-cd-ef');
  t.regex(text, /if initrd \/image\/initramfs\.img \/extra\/fw\.img; then set zb_initrd=yes; break; fi/);
  t.regex(text, /^for attempt in 1 2 3; do$/m);
  t.regex(text, /^boot$/m);
  t.true(text.indexOf('zb_kernel') < text.indexOf('zb_initrd') && text.indexOf('zb_initrd') < text.indexOf('\nboot\n'));
});

test('with the HTTP base, kernel and initrds come over GRUB\'s http first (tagged with the MAC), TFTP from the store in the same attempt if that fails', (t) => {
  const text = renderGrubMachineConfig({ profile, args: profile.args, mac: '52:54:00:AB:CD:EF', httpBase: 'http://10.0.0.1:8080' });
  const args = 'runmode=prod console=ttyS0 farmer_id=42 BOOTIF=01-52-54-00-ab-cd-ef';
  const kernelLoop = /for attempt in 1 2 3; do\n(.*)\n(.*)\n(.*)\n(.*)\n {2}sleep 3\ndone\nif \[ "\$zb_kernel" != yes \]/.exec(text);
  t.truthy(kernelLoop, text);
  t.deepEqual(kernelLoop!.slice(1).map((l) => l.trim()), [
    `if linux '(http,10.0.0.1:8080)/image/vmlinuz?mac=52-54-00-ab-cd-ef' ${args}; then set zb_kernel=yes; break; fi`,
    'echo "zeroboot: kernel over HTTP failed, trying TFTP"',
    `if linux /image/vmlinuz ${args}; then set zb_kernel=yes; break; fi`,
    'echo "zeroboot: kernel attempt $attempt failed, retrying"',
  ]);
  const initrds = [...text.matchAll(/if (initrd [^;]*); then set zb_initrd=yes; break; fi/g)].map((m) => m[1]);
  t.deepEqual(initrds, [
    "initrd '(http,10.0.0.1:8080)/image/initramfs.img?mac=52-54-00-ab-cd-ef' '(http,10.0.0.1:8080)/extra/fw.img?mac=52-54-00-ab-cd-ef'",
    'initrd /image/initramfs.img /extra/fw.img',
  ]);
});

test('an HTTP base GRUB cannot use (https, an IPv6 literal) leaves TFTP alone; a path prefix and the default port are kept', (t) => {
  const mac = '52:54:00:00:00:01';
  t.is(grubHttpPath('http://boot.example/zb/', 'image/vmlinuz', mac), "'(http,boot.example:80)/zb/image/vmlinuz?mac=52-54-00-00-00-01'");
  t.is(grubHttpPath('https://boot.example', 'image/vmlinuz', mac), undefined);
  t.is(grubHttpPath('http://[fd00::1]:8080', 'image/vmlinuz', mac), undefined);
  for (const httpBase of ['https://boot.example', 'http://[fd00::1]:8080']) {
    const text = renderGrubMachineConfig({ profile, args: {}, mac, httpBase });
    t.notRegex(text, /http,|over HTTP/, httpBase);
    t.regex(text, /if linux \/image\/vmlinuz BOOTIF=01-52-54-00-00-00-01; then/, httpBase);
  }
});

test('values that GRUB would expand or split are quoted; what cannot be quoted is refused', (t) => {
  t.is(grubWord('runmode=prod'), 'runmode=prod');
  t.is(grubWord('a=$(x);reboot'), "'a=$(x);reboot'");
  t.is(grubWord('x="y z"'), `'x="y z"'`);
  t.throws(() => grubWord("it's"), { instanceOf: GrubValueError });
  t.throws(() => grubWord('a\nreboot'), { instanceOf: GrubValueError });
  // kernel arguments are checked before they get here (the iPXE script's rules)
  t.throws(() => renderGrubMachineConfig({ profile, args: { note: 'a b;$x' }, mac: '52:54:00:00:00:01' }), { instanceOf: CmdlineError });
  t.regex(renderGrubMachineConfig({ profile: { ...profile, cmdline: 'quiet' }, args: {}, mac: '52:54:00:00:00:01' }), /linux \/image\/vmlinuz quiet BOOTIF=/);
  t.throws(() => grubStorePath('../etc/passwd'), { instanceOf: GrubValueError });
  t.throws(() => renderGrubMachineConfig({ profile, args: {}, mac: 'not-a-mac' }), { instanceOf: GrubValueError });
});

test('an error configuration shows the reason without letting it run anything, then reboots', (t) => {
  const text = renderGrubError('no profile for "x"; $(reboot)\nboot');
  t.false(/[$"](?!\n)/.test(text.replace(/echo "zeroboot: [^"\n]*"/g, '')), 'no quote or $ outside the echo strings');
  t.regex(text, /echo "zeroboot: no profile for \?x\?\? \?\(reboot\)\?boot"/);
  t.regex(text, /^reboot$/m);
});

