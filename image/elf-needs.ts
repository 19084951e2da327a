// What a dynamically linked ELF64 program needs from the file system: its
// interpreter (`.interp`, the dynamic loader) and its DT_NEEDED libraries
// (`.dynamic` entries naming strings in `.dynstr`). Pure over a Buffer.
import { elfSection, ElfError } from './elf-modinfo.ts';

export interface ElfNeeds {
  /** The dynamic loader's path ("/lib64/ld-linux-x86-64.so.2"); undefined for a static program. */
  interpreter?: string;
  /** Library sonames, in the order the program lists them. */
  needed: string[];
}

const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DYN_SIZE = 16;

function cString(buf: Buffer, at: number): string {
  const end = buf.indexOf(0, at);
  if (at >= buf.length || end < 0) throw new ElfError(`string at ${at} runs past the end of .dynstr`);
  return buf.toString('latin1', at, end);
}

export function elfNeeds(buf: Buffer): ElfNeeds {
  const interp = elfSection(buf, '.interp');
  const dynamic = elfSection(buf, '.dynamic');
  if (!dynamic) return { needed: [] };
  if (buf[5] !== 1) throw new ElfError('only little-endian programs are supported');
  const dynstr = elfSection(buf, '.dynstr');
  if (!dynstr) throw new ElfError('the program has a .dynamic section but no .dynstr');
  const needed: string[] = [];
  for (let at = 0; at + DYN_SIZE <= dynamic.length; at += DYN_SIZE) {
    const tag = dynamic.readBigInt64LE(at);
    if (tag === DT_NULL) break;
    if (tag === DT_NEEDED) needed.push(cString(dynstr, Number(dynamic.readBigUInt64LE(at + 8))));
  }
  const out: ElfNeeds = { needed };
  if (interp && interp.length > 0) out.interpreter = cString(interp, 0);
  return out;
}
