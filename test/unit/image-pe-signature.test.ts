// The PE/COFF Authenticode check: synthetic PE32/PE32+ files (signed,
// unsigned, a table past the end, truncated headers, not PE) and real ones:
// Debian's signed kernel (through the builder's cache) and iPXE's unsigned
// snponly.efi.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { isAuthenticodeSigned, peSignature, PeFormatError } from '../../image/pe-signature.ts';
import { ImageBuildError } from '../../image/errors.ts';
import { requireSigned, unsignedKernelHint, GRUB_FILE, SHIM_FILE } from '../../image/secure-boot.ts';
import * as image from '../../image/index.ts';
import { testKernel } from '../helpers/image-kernel.ts';

interface Synthetic {
  magic?: number;
  /** NumberOfRvaAndSizes (default 16). */
  directories?: number;
  /** The WIN_CERTIFICATE to append; none when absent. */
  cert?: { type: number; payload?: number; length?: number };
  /** Overrides the certificate table entry. */
  table?: { offset: number; size: number };
}

/** A minimal PE file: MZ stub, PE signature, COFF header, optional header with data directories, then an optional certificate. */
function pe(o: Synthetic = {}): Buffer {
  const magic = o.magic ?? 0x20b;
  const count = o.directories ?? 16;
  const dirsAt = magic === 0x10b ? 96 : 112;
  const optSize = dirsAt + count * 8;
  const eLfanew = 0x40;
  const opt = eLfanew + 24;
  const headersEnd = opt + optSize;
  const certAt = Math.ceil(headersEnd / 8) * 8;
  const payload = o.cert ? (o.cert.payload ?? 24) : 0;
  const certSize = o.cert ? 8 + payload : 0;
  const buf = Buffer.alloc(certAt + certSize);
  buf.write('MZ', 0, 'latin1');
  buf.writeUInt32LE(eLfanew, 0x3c);
  buf.write('PE\0\0', eLfanew, 'latin1');
  buf.writeUInt16LE(0x8664, eLfanew + 4);
  buf.writeUInt16LE(optSize, eLfanew + 4 + 16);
  buf.writeUInt16LE(magic, opt);
  buf.writeUInt32LE(count, opt + dirsAt - 4);
  if (o.cert) {
    buf.writeUInt32LE(o.cert.length ?? certSize, certAt);
    buf.writeUInt16LE(0x0200, certAt + 4);
    buf.writeUInt16LE(o.cert.type, certAt + 6);
    buf.fill(0xa5, certAt + 8);
  }
  const table = o.table ?? (o.cert ? { offset: certAt, size: certSize } : undefined);
  if (table && count > 4) {
    buf.writeUInt32LE(table.offset, opt + dirsAt + 4 * 8);
    buf.writeUInt32LE(table.size, opt + dirsAt + 4 * 8 + 4);
  }
  return buf;
}

test('synthetic PE32+ and PE32 with a PKCS signed-data certificate are signed', (t) => {
  for (const magic of [0x20b, 0x10b]) {
    const file = pe({ magic, cert: { type: 2 } });
    const info = peSignature(file);
    t.true(info.signed, info.reason);
    t.is(info.format, magic === 0x20b ? 'PE32+' : 'PE32');
    t.is(info.machine, 0x8664);
    t.is(info.certificateTable.size, 32);
    t.is(info.certificateTable.offset + info.certificateTable.size, file.length);
    t.true(isAuthenticodeSigned(file));
  }
});

test('unsigned: empty table, too few data directories, another certificate type, a table past the end, a bad WIN_CERTIFICATE length', (t) => {
  const cases: [Buffer, RegExp][] = [
    [pe(), /certificate table is empty/],
    [pe({ directories: 4 }), /no certificate table entry/],
    [pe({ cert: { type: 1 } }), /type is 0x0001, not PKCS signed data/],
    [pe({ cert: { type: 2, length: 4 } }), /WIN_CERTIFICATE length 4/],
    [pe({ cert: { type: 2, length: 1000 } }), /WIN_CERTIFICATE length 1000/],
    [pe({ table: { offset: 8, size: 4 } }), /too small for a WIN_CERTIFICATE/],
  ];
  // A signed file cut short: the headers are intact, the certificate is gone.
  const signed = pe({ cert: { type: 2, payload: 100 } });
  cases.push([signed.subarray(0, signed.length - 50), /runs past the end of the file/]);
  cases.push([pe({ table: { offset: 0xfffffff0, size: 0x100 } }), /runs past the end of the file/]);
  for (const [file, reason] of cases) {
    const info = peSignature(file);
    t.false(info.signed);
    t.regex(info.reason ?? '', reason);
    t.false(isAuthenticodeSigned(file));
  }
});

test('not PE: typed error for no MZ, a bad e_lfanew, no PE signature, truncated headers, a bad magic', (t) => {
  const noPe = pe();
  noPe.write('NE', 0x40, 'latin1');
  const farLfanew = pe();
  farLfanew.writeUInt32LE(0x7fffffff, 0x3c);
  const cases: [Buffer, RegExp][] = [
    [Buffer.alloc(0), /MZ header ends at byte 64/],
    [Buffer.from('\x7fELF' + '\0'.repeat(100), 'latin1'), /no "MZ"/],
    [farLfanew, /past the end of the file/],
    [noPe, /no "PE\\0\\0" at e_lfanew 64/],
    [pe().subarray(0, 0x60), /past the end of the file/],
    [pe().subarray(0, 0x40 + 24 + 100), /optional header ends/],
    [pe({ magic: 0x107 }), /magic 0x107 is neither PE32/],
  ];
  for (const [file, message] of cases) t.throws(() => peSignature(file), { instanceOf: PeFormatError, message }, message.source);
});

test('a Buffer view into a larger ArrayBuffer is read at its own offset', (t) => {
  const file = pe({ cert: { type: 2 } });
  const big = Buffer.alloc(file.length + 64);
  file.copy(big, 32);
  t.true(isAuthenticodeSigned(big.subarray(32, 32 + file.length)));
});

test("Debian's kernel is signed (1472-byte certificate table); iPXE's snponly.efi is not", async (t) => {
  const kernel = await testKernel();
  const info = peSignature(await readFile(kernel.vmlinuz));
  t.true(info.signed, info.reason);
  t.is(info.format, 'PE32+');
  t.is(info.certificateTable.size, 1472);

  const snp = await readFile('/usr/lib/ipxe/snponly.efi').catch(() => undefined);
  if (!snp) return t.log('no /usr/lib/ipxe/snponly.efi (package ipxe): unsigned example skipped');
  const unsigned = peSignature(snp);
  t.false(unsigned.signed);
  t.is(unsigned.certificateTable.size, 0);
  t.is(unsigned.format, 'PE32+');
});

test('requireSigned: one line naming the file, the kernel hint, not-PE', (t) => {
  t.notThrows(() => requireSigned(pe({ cert: { type: 2 } }), 'x'));
  const kernel = t.throws(() => requireSigned(pe(), 'linux-image-6.1.0-56-amd64-unsigned: /boot/vmlinuz-6.1.0-56-amd64', unsignedKernelHint('6.1.0-56-amd64')), { instanceOf: ImageBuildError });
  t.is(kernel.message, "linux-image-6.1.0-56-amd64-unsigned: /boot/vmlinuz-6.1.0-56-amd64 is not signed: Secure Boot needs Debian's signed kernel package linux-image-6.1.0-56-amd64, not the -unsigned one");
  t.throws(() => requireSigned(pe({ cert: { type: 1 } }), 'grub'), { instanceOf: ImageBuildError, message: /^grub is not signed: the WIN_CERTIFICATE type is 0x0001/ });
  t.throws(() => requireSigned(Buffer.from('#!/bin/sh\n'), 'shim'), { instanceOf: ImageBuildError, message: /^shim is not an EFI program: / });
});

test('the file names the server relies on', (t) => {
  t.is(SHIM_FILE, 'shimx64.efi');
  t.is(GRUB_FILE, 'grubx64.efi');
  t.is(image.SHIM_FILE, SHIM_FILE);
  t.is(image.GRUB_FILE, GRUB_FILE);
});
