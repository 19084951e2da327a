// A node with UEFI Secure Boot enforced and Microsoft's keys enrolled, as
// on real servers, PXE-boots the default image (built with secureBoot)
// through the signed chain: the firmware's PXE fetches shim, shim fetches
// Debian's GRUB, GRUB its per-MAC configuration, then Debian's signed kernel
// (checked by shim) and our initramfs over TFTP. A second node with the
// same firmware, whose profile keeps iPXE, shows what the chain is for: the
// firmware refuses the unsigned snponly.efi. Under TCG, two VMs at most.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startRig } from '../../qemu/rig.ts';
import type { Rig } from '../../qemu/rig.ts';
import { instanceOf, loadProfile } from '../../qemu/profile.ts';
import type { BootEvent } from '../../boot/timeline.ts';
import { defaultImage } from '../../harness/qemu-image.ts';

const UP = /ZEROBOOT-UP ip=([0-9.]+) mac=([0-9a-f:]{17})/;
const BOOT_MS = 200_000;
const POWEROFF = { 'zeroboot.poweroff': null };

let image = '';
let rig: Rig | undefined;
let signedMac = '';
let plainMac = '';

test.before(async () => {
  image = await defaultImage();
  const profile = await loadProfile('secureboot-uefi');
  signedMac = instanceOf(profile, 0).macs[0];
  plainMac = instanceOf(profile, 1).macs[0];
  rig = await startRig({
    imageDir: image,
    kvm: 'auto',
    subnet: '10.81.0.0/24',
    serverConfig: {
      profiles: [
        { name: 'signed', kernel: 'image/vmlinuz', initrd: 'image/initramfs.img', args: { console: 'ttyS0', no_timer_check: null, ...POWEROFF }, secureBoot: true },
        { name: 'ipxe', kernel: 'image/vmlinuz', initrd: 'image/initramfs.img', args: { console: 'ttyS0' } },
      ],
      groups: [{ name: 'default', profile: 'signed', selector: {} }],
      machines: [{ mac: plainMac, profile: 'ipxe' }],
    },
  });
});

test.after.always(async () => {
  await rig?.stop();
});

function tftpDone(events: BootEvent[], file: string): BootEvent | undefined {
  return events.find((e) => e.kind === 'tftp.done' && e.detail?.file === file);
}

function inOrder(t: ExecutionContext, events: BootEvent[], marks: ((e: BootEvent) => boolean)[], names: string[]): void {
  let at = -1;
  marks.forEach((m, k) => {
    const i = events.findIndex((e, n) => n > at && m(e));
    t.true(i > at, `${names[k]} after ${names[k - 1] ?? 'start'} (saw ${events.map((e) => `${e.kind}:${e.detail?.file ?? ''}`).join(', ')})`);
    if (i > at) at = i;
  });
}

test.serial('Secure Boot on, Microsoft keys: shim -> GRUB -> signed kernel -> our image, all over our TFTP; iPXE is refused', async (t) => {
  // Its own deadlines (two waits of BOOT_MS), not ava's 5 minutes between results: guest files run two at a time.
  t.timeout(2 * BOOT_MS + 2 * 60_000);
  const [signed, plain] = await rig!.boot('secureboot-uefi', { count: 2 });
  t.is(signed.mac, signedMac);
  t.is(plain.mac, plainMac);
  t.false(signed.args.some((a) => /romfile=[^,]/.test(a)), 'no iPXE option ROM on a Secure Boot node');

  const m = await signed.console.waitFor(UP, BOOT_MS);
  t.is(m[2], signedMac);
  const log = signed.console.log();
  t.regex(log, /NBP filename is image\/shimx64\.efi/);
  t.regex(log, new RegExp(`zeroboot: ${signedMac} boots profile signed`));
  t.regex(log, new RegExp(`Command line: BOOT_IMAGE=/image/vmlinuz .*BOOTIF=01-${signedMac.replace(/:/g, '-')}`));

  const events = (await rig!.timeline(signedMac))!.timeline;
  t.is(events.find((e) => e.kind === 'dhcp.offer')?.detail?.bootfile, 'image/shimx64.efi');
  inOrder(
    t,
    events,
    [
      (e) => e.kind === 'dhcp.ack',
      (e) => e === tftpDone(events, 'image/shimx64.efi'),
      (e) => e === tftpDone(events, 'image/grubx64.efi'),
      (e) => e.kind === 'grub.config' && e.detail?.profile === 'signed',
      (e) => e === tftpDone(events, 'image/vmlinuz'),
      (e) => e === tftpDone(events, 'image/initramfs.img'),
    ],
    ['dhcp.ack', 'shim', 'GRUB', 'GRUB configuration', 'kernel', 'initrd'],
  );
  t.is(tftpDone(events, 'image/shimx64.efi')?.detail?.bytes, (await readFile(path.join(image, 'shimx64.efi'))).length);
  t.is(tftpDone(events, 'image/vmlinuz')?.detail?.bytes, (await readFile(path.join(image, 'vmlinuz'))).length);
  const errors = events.filter((e) => e.kind === 'tftp.error');
  t.true(errors.every((e) => e.detail?.optional === true || e.detail?.probe === true), `only probes and optional files: ${errors.map((e) => e.reason).join('; ')}`);

  // The same firmware, offered iPXE: it downloads snponly.efi and refuses to run it.
  await plain.console.waitFor(/NBP filename is snponly\.efi[\s\S]*Access Denied/, BOOT_MS);
  const plainEvents = (await rig!.timeline(plainMac))!.timeline;
  t.truthy(tftpDone(plainEvents, 'snponly.efi'));
  t.false(plainEvents.some((e) => e.kind === 'http.script'), 'iPXE never ran');
});

test.serial('proxy mode next to a router: GRUB follows the router\'s next-server; the timeline says so, and naming us there makes it boot', async (t) => {
  t.timeout(2 * BOOT_MS + 4 * 60_000);
  // One rig at a time: two TCG VMs with their servers at once starve the test files running beside this one.
  const start = async (nextServer: 'router' | 'zeroboot', subnet: string) => {
    const rig = await startRig({ imageDir: image, kvm: 'auto', dhcp: 'proxy', router: { nextServer }, secureBoot: true, subnet, kernelArgs: POWEROFF });
    t.teardown(() => rig.stop());
    const [vm] = await rig.boot('secureboot-uefi');
    return { rig, vm };
  };

  // shim came from us (our proxy offer), GRUB then asked the router: the watcher says what to set
  const { rig: lost, vm: a } = await start('router', '10.82.0.0/24');
  const err = await lost.waitForEvent(a.mac, 'grub.error', BOOT_MS);
  t.regex(err.reason ?? '', /never asked this server for its configuration.*\(10\.82\.0\.1\) as next-server/);
  const events = (await lost.timeline(a.mac))!.timeline;
  t.truthy(tftpDone(events, 'image/grubx64.efi'));
  t.false(events.some((e) => e.kind === 'grub.config'), 'GRUB never reached us');
  const dnsmasqLog = await readFile(path.join(lost.logDir, 'dnsmasq.log'), 'utf8');
  t.regex(dnsmasqLog, /next server: 10\.82\.0\.2/);
  await lost.stop();

  // the same, with the router naming us as next-server: up
  const { rig: found, vm: b } = await start('zeroboot', '10.85.0.0/24');
  const m = await b.console.waitFor(UP, BOOT_MS);
  t.is(m[2], b.mac);
  t.regex(m[1], /^10\.85\.0\.(1\d\d|2[0-4]\d)$/, 'the router leased the address');
  t.truthy((await found.timeline(b.mac))!.timeline.find((e) => e.kind === 'grub.config'));
});
