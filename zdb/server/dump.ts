// --dump: print every namespace's settings and live entries, then exit.
import type { Engine, EntryMeta } from '../engine/index.ts';

function showKey(k: Buffer): string {
  return /^[\x20-\x7e]*$/.test(k.toString('latin1')) && k.length > 0 ? k.toString('latin1') : `0x${k.toString('hex')}`;
}

export function dumpEngine(engine: Engine, write: (line: string) => void): void {
  for (const name of engine.namespaces()) {
    const ns = engine.get(name);
    if (!ns) continue;
    const s = ns.settings();
    const st = ns.stats();
    write(
      `[+] namespace: ${name}, mode: ${s.mode === 'seq' ? 'sequential' : 'userkey'}, entries: ${st.entries}, data: ${st.dataSize} bytes, ` +
        `public: ${s.public ? 'yes' : 'no'}, password: ${s.password !== undefined ? 'yes' : 'no'}, worm: ${s.worm ? 'yes' : 'no'}, maxsize: ${s.maxsize}`,
    );
    let cursor: Buffer | undefined;
    for (;;) {
      const page = ns.scan(cursor, 1024, false);
      if (!page || page.items.length === 0) break;
      for (const e of page.items) write(entryLine(e));
      if (!page.next) break;
      cursor = page.next;
    }
  }
}

function entryLine(e: EntryMeta): string {
  return `[+] key: ${showKey(e.key)}, size: ${e.size}, timestamp: ${e.timestamp}, data: d${e.dataId} @${e.offset}, crc: ${(e.crc >>> 0).toString(16).padStart(8, '0')}`;
}
