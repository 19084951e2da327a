// The boot media of `zeroboot image build` boot real firmware under QEMU
// (TCG) to the ZEROBOOT-UP marker, with no network boot at all: the NICs
// carry no boot ROM and the medium is the only boot entry. The hybrid ISO
// under SeaBIOS (isolinux) and OVMF (the El Torito EFI image), the USB image
// under OVMF (EFI/BOOT/BOOTX64.EFI) and SeaBIOS (GRUB in the MBR), and the
// UKI started by OVMF itself. The image's command line carries a farmer id,
// which the kernel must print: the medium's embedded line, not a loader's
// default. Only the address comes from the rig's server (DHCP from /init).
// One guest at a time; each powers off after UP.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MANIFEST_FILE } from '../../image/build.ts';
import type { ImageManifest } from '../../image/build.ts';
import { MARKERS } from '../../image/init.ts';
import { ISO_FILE, UKI_FILE, USB_FILE } from '../../image/media/all.ts';
import { parseImageYaml } from '../../image/spec.ts';
import { buildCurrentSpec } from '../../harness/qemu-image.ts';
import type { BootMedium } from '../../qemu/args.ts';
import { loadProfile } from '../../qemu/profile.ts';
import type { Firmware, HwProfile } from '../../qemu/profile.ts';
import { startRig } from '../../qemu/rig.ts';
import type { Rig } from '../../qemu/rig.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// TCG on a loaded 2-core machine: OVMF's start alone takes tens of seconds.
const BOOT_MS = 6 * 60_000;
const FARMER = 4242;

let work = '';
let image = '';
let manifest: ImageManifest;
let rig: Rig | undefined;
let base: HwProfile;

test.before(async () => {
  // Not the default image: the media's command line must carry the farmer id. Built by `image build`'s
  // builder once per set of inputs (the shared store of harness/qemu-image.ts), linked into this test's folder.
  work = await mkdtemp(path.join(tmpdir(), 'zb-media-boot-'));
  const specFile = path.join(ROOT, 'images/default.yaml');
  const spec = parseImageYaml(await readFile(specFile, 'utf8'), specFile);
  spec.secureBoot = undefined;
  spec.cmdline = { ...spec.cmdline, farmer_id: FARMER, 'zeroboot.poweroff': null };
  image = path.join(work, 'image');
  await buildCurrentSpec(spec, image);
  manifest = JSON.parse(await readFile(path.join(image, MANIFEST_FILE), 'utf8')) as ImageManifest;
  rig = await startRig({ imageDir: image, kvm: 'auto' });
  base = await loadProfile('small-bios');
});

test.after.always(async () => {
  await rig?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function bootsToUp(t: ExecutionContext, name: string, firmware: Firmware, medium: BootMedium): Promise<void> {
  t.timeout(BOOT_MS + 60_000);
  const profile: HwProfile = { ...base, name, firmware, machine: firmware === 'bios' ? 'pc' : 'q35', cpus: 1, memoryMiB: 1024, disks: [] };
  const [vm] = await rig!.boot(profile, { medium });
  t.teardown(() => vm.stop());
  t.false(vm.args.some((a) => /romfile=[^,]/.test(a)), 'no network boot ROM');
  // A panic (no initramfs, no root) ends the wait at once instead of at the deadline.
  const got = await vm.console.waitFor(new RegExp(`${MARKERS.up.source}|${MARKERS.fail.source}|Kernel panic[^\\r\\n]*`), BOOT_MS);
  t.regex(got[0], MARKERS.up, got[0]);
  t.is(MARKERS.up.exec(got[0])![2], vm.mac);
  const line = /Command line: ([^\r\n]*)/.exec(vm.console.log());
  t.truthy(line, 'the kernel printed its command line');
  t.regex(line![1], new RegExp(`(^| )farmer_id=${FARMER}( |$)`));
  t.regex(line![1], /(^| )console=ttyS0( |$)/);
  t.log(`${name}: QEMU start to ZEROBOOT-UP ${((Date.now() - vm.startedAt) / 1000).toFixed(1)} s (${rig!.accel})`);
}

test.serial('the manifest lists the three media with their sha256', async (t) => {
  for (const f of [UKI_FILE, ISO_FILE, USB_FILE]) {
    const data = await readFile(path.join(image, f));
    t.like(manifest.artifacts[f], { size: data.length });
    t.regex(manifest.artifacts[f].sha256, /^[0-9a-f]{64}$/);
  }
});

test.serial('zos.iso boots under BIOS (isolinux from El Torito)', (t) => bootsToUp(t, 'media-iso-bios', 'bios', { kind: 'cdrom', path: path.join(image, ISO_FILE) }));
test.serial('zos.iso boots under UEFI (the El Torito EFI image)', (t) => bootsToUp(t, 'media-iso-uefi', 'uefi', { kind: 'cdrom', path: path.join(image, ISO_FILE) }));
test.serial('zos-usb.img boots under UEFI (EFI/BOOT/BOOTX64.EFI)', (t) => bootsToUp(t, 'media-usb-uefi', 'uefi', { kind: 'usb', path: path.join(image, USB_FILE) }));
test.serial('zos-usb.img boots under BIOS (GRUB in the MBR)', (t) => bootsToUp(t, 'media-usb-bios', 'bios', { kind: 'usb', path: path.join(image, USB_FILE) }));
test.serial('zos.efi boots from OVMF directly', (t) => bootsToUp(t, 'media-uki', 'uefi', { kind: 'efi', path: path.join(image, UKI_FILE) }));
