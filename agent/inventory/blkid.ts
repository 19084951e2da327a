// Pure parser for `blkid -p -o export <dev>`: KEY=value lines (values may be
// shell-escaped with backslashes). blkid exits 2 with no output when it finds
// nothing, which reads as an empty record.

export function parseBlkidExport(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i <= 0) continue;
    out[line.slice(0, i)] = line.slice(i + 1).replace(/\\(.)/g, '$1');
  }
  return out;
}

/** What blkid found, in the words the disk classifier uses: `gpt partition table`, `ext4 signature`, ... */
export function blkidFinding(rec: Record<string, string>): string | undefined {
  if (rec.PTTYPE) return `${rec.PTTYPE === 'dos' ? 'mbr' : rec.PTTYPE} partition table`;
  if (rec.TYPE) return `${rec.TYPE} signature`;
  return undefined;
}
