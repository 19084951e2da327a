import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GRUB_FILE, IPXE_BIOS_FILE, IPXE_UEFI_FILE, missingSignedLoaders, OPTIONAL_LOADER_FILES, SHIM_FILE, shimPath } from '../../lib/loaders.ts';

test('shim sits next to the kernel; the loaders\' optional probes', (t) => {
  t.is(shimPath({ kernel: 'image/vmlinuz' }), 'image/shimx64.efi');
  t.is(shimPath({ kernel: 'vmlinuz' }), 'shimx64.efi');
  for (const f of ['image/revocations_sku.efi', 'revocations_sbat.efi', 'image/shim_certificate_0.efi', '/grub/x86_64-efi/command.lst', 'grub/x86_64-efi/grub.cfg']) {
    t.true(OPTIONAL_LOADER_FILES.test(f), f);
  }
  for (const f of ['image/vmlinuz', 'grub/grub.cfg', 'grub/x86_64-efi/http.mod', 'image/grubx64.efi']) t.false(OPTIONAL_LOADER_FILES.test(f), f);
});

test('the names are the files Debian ships and shim asks for', (t) => {
  t.deepEqual([IPXE_BIOS_FILE, IPXE_UEFI_FILE, SHIM_FILE, GRUB_FILE], ['undionly.kpxe', 'snponly.efi', 'shimx64.efi', 'grubx64.efi']);
});

test('an image directory carries the signed loaders, or says which it lacks', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'zb-loaders-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  t.deepEqual(missingSignedLoaders(dir), [SHIM_FILE, GRUB_FILE]);
  await writeFile(join(dir, SHIM_FILE), 'x');
  t.deepEqual(missingSignedLoaders(dir), [GRUB_FILE]);
  await writeFile(join(dir, GRUB_FILE), 'x');
  t.deepEqual(missingSignedLoaders(dir), []);
});
