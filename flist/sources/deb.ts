// `flist pack` from a Debian package: the .deb is an ar archive; its
// data.tar(.gz|.xz|.zst|.bz2) member is streamed from its place in the file
// (never copied) into the tar source. The tree is what `dpkg-deb -x` gives.
import { open } from 'node:fs/promises';
import { FlistError } from '../errors.ts';
import type { FlMeta } from '../fl-file.ts';
import { TreeError } from '../tree-errors.ts';
import type { PackOptions, PackSummary } from '../tree-packer.ts';
import { AR_HEADER_SIZE, bsdName, nextMemberOffset, parseArHeader } from './ar.ts';
import { AR_MAGIC } from './sniff.ts';
import { packTarRange, type FileRange } from './tar.ts';

/** dpkg-deb -x leaves the destination's root as it finds it; an flist's root needs metadata: 0755 root:root. */
const DEB_ROOT: FlMeta = { mode: 0o040755, uid: 0, gid: 0, size: 0, mtime: 0, ctime: 0, rdev: 0 };

/** Finds the data.tar member of a .deb: its name and its bytes' place in the file. */
export async function findDebData(file: string): Promise<FileRange & { name: string }> {
  const fh = await open(file, 'r');
  try {
    const fileSize = (await fh.stat()).size;
    const magic = Buffer.alloc(AR_MAGIC.length);
    await fh.read(magic, 0, magic.length, 0);
    if (!magic.equals(AR_MAGIC)) throw new TreeError(`${file}: not a .deb (no ar "!<arch>" magic)`);
    const names: string[] = [];
    for (let at = AR_MAGIC.length; at < fileSize; ) {
      const header = Buffer.alloc(AR_HEADER_SIZE);
      const { bytesRead } = await fh.read(header, 0, AR_HEADER_SIZE, at);
      const member = parseArHeader(header.subarray(0, bytesRead));
      const start = at + AR_HEADER_SIZE;
      if (member.nameLength > 0) {
        const raw = Buffer.alloc(member.nameLength);
        await fh.read(raw, 0, raw.length, start);
        member.name = bsdName(raw, member);
      }
      const dataStart = start + member.nameLength;
      if (dataStart + member.size > fileSize) throw new TreeError(`${file}: truncated .deb: member ${JSON.stringify(member.name)} has ${member.size} bytes, the file ends ${dataStart + member.size - fileSize} bytes short`);
      if (/^data\.tar(\.[a-z0-9]+)?$/.test(member.name)) return { file, start: dataStart, size: member.size, name: member.name };
      names.push(member.name);
      at = nextMemberOffset(at, member);
    }
    throw new TreeError(`${file}: a .deb without a data.tar member (members: ${names.join(', ') || 'none'})`);
  } catch (e) {
    if (e instanceof TreeError) throw e;
    if (e instanceof FlistError) throw new TreeError(`${file}: ${e.message}`);
    throw e;
  } finally {
    await fh.close();
  }
}

export async function packDeb(file: string, outFile: string, opts: PackOptions): Promise<PackSummary> {
  const data = await findDebData(file);
  return packTarRange(data, `${file} (${data.name})`, DEB_ROOT, outFile, opts);
}
