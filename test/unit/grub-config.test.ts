import test from 'ava';
import {
  GrubValueError,
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

