// Does a PE/COFF file (an EFI program, an EFI-stub kernel) carry an
// Authenticode signature? Reads the headers only: the MZ stub's e_lfanew,
// the "PE\0\0" signature, the optional header (PE32 0x10b or PE32+ 0x20b)
// and its data directory entry 4, the certificate table. Unlike every other
// data directory, that entry holds a file offset, not an RVA. The file is
// signed when the table is non-empty, lies inside the file and starts with
// a WIN_CERTIFICATE of type WIN_CERT_TYPE_PKCS_SIGNED_DATA (0x0002). The
// signature itself is not verified: that is the firmware's and shim's job.

export class PeFormatError extends Error {}

export const WIN_CERT_TYPE_PKCS_SIGNED_DATA = 0x0002;
const PE32 = 0x10b;
const PE32_PLUS = 0x20b;
const CERTIFICATE_TABLE = 4;
/** dwLength (u32), wRevision (u16), wCertificateType (u16). */
const WIN_CERTIFICATE_HEADER = 8;

export interface PeSignatureInfo {
  format: 'PE32' | 'PE32+';
  /** COFF Machine (0x8664 for x86-64). */
  machine: number;
  /** Data directory entry 4: a file offset and a size, both 0 when absent. */
  certificateTable: { offset: number; size: number };
  /** An Authenticode signature is present (not verified). */
  signed: boolean;
  /** Why the file counts as unsigned; undefined when signed. */
  reason?: string;
}

function need(buf: Uint8Array, end: number, what: string): void {
  if (end > buf.length) throw new PeFormatError(`${what} ends at byte ${end}, past the end of the file (${buf.length} bytes)`);
}

/** Reads the PE headers of `data`; throws PeFormatError when it is not a PE/COFF file. */
export function peSignature(data: Uint8Array): PeSignatureInfo {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  need(buf, 0x40, 'the MZ header');
  if (buf[0] !== 0x4d || buf[1] !== 0x5a) throw new PeFormatError('not a PE file: no "MZ" at the start');
  const peOffset = buf.readUInt32LE(0x3c);
  need(buf, peOffset + 24, 'the PE and COFF headers (e_lfanew ' + peOffset + ')');
  if (buf.readUInt32BE(peOffset) !== 0x50450000) throw new PeFormatError(`not a PE file: no "PE\\0\\0" at e_lfanew ${peOffset}`);
  const coff = peOffset + 4;
  const machine = buf.readUInt16LE(coff);
  const optionalSize = buf.readUInt16LE(coff + 16);
  const opt = coff + 20;
  need(buf, opt + 2, 'the optional header magic');
  const magic = buf.readUInt16LE(opt);
  if (magic !== PE32 && magic !== PE32_PLUS) throw new PeFormatError(`optional header magic 0x${magic.toString(16)} is neither PE32 (0x10b) nor PE32+ (0x20b)`);
  const format = magic === PE32 ? 'PE32' : 'PE32+';
  // NumberOfRvaAndSizes, then the data directories (8 bytes each).
  const countAt = opt + (magic === PE32 ? 92 : 108);
  const directories = countAt + 4;
  need(buf, directories, 'the optional header');
  const entries = buf.readUInt32LE(countAt);
  const entryAt = directories + CERTIFICATE_TABLE * 8;
  const unsigned = (offset: number, size: number, reason: string): PeSignatureInfo => ({ format, machine, certificateTable: { offset, size }, signed: false, reason });
  if (entries <= CERTIFICATE_TABLE || entryAt + 8 > opt + optionalSize) return unsigned(0, 0, 'no certificate table entry in the data directories');
  need(buf, entryAt + 8, 'the certificate table entry');
  const offset = buf.readUInt32LE(entryAt);
  const size = buf.readUInt32LE(entryAt + 4);
  if (size === 0) return unsigned(offset, size, 'the certificate table is empty');
  if (offset + size > buf.length) return unsigned(offset, size, `the certificate table (${size} bytes at ${offset}) runs past the end of the file (${buf.length} bytes)`);
  if (size < WIN_CERTIFICATE_HEADER) return unsigned(offset, size, `the certificate table (${size} bytes) is too small for a WIN_CERTIFICATE`);
  const length = buf.readUInt32LE(offset);
  const type = buf.readUInt16LE(offset + 6);
  if (length < WIN_CERTIFICATE_HEADER || length > size) return unsigned(offset, size, `the WIN_CERTIFICATE length ${length} does not fit the ${size}-byte table`);
  if (type !== WIN_CERT_TYPE_PKCS_SIGNED_DATA) return unsigned(offset, size, `the WIN_CERTIFICATE type is 0x${type.toString(16).padStart(4, '0')}, not PKCS signed data (0x0002)`);
  return { format, machine, certificateTable: { offset, size }, signed: true };
}

/** True when `data` is a PE file carrying an Authenticode signature; throws PeFormatError when it is not PE. */
export function isAuthenticodeSigned(data: Uint8Array): boolean {
  return peSignature(data).signed;
}
