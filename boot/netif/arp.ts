// The kernel's ARP table, to name the machine behind an IPv4 address when
// no lease of ours does (proxy mode: another server handed out the address,
// yet the client's TFTP request still belongs on its MAC's timeline).
import { readFileSync } from 'node:fs';
import { normalizeMac } from '../../lib/mac.ts';

/** Parses /proc/net/arp text into ip -> MAC for complete entries. */
export function parseArpTable(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n').slice(1)) {
    const [ip, , flags, hw] = line.trim().split(/\s+/);
    // Flag 0x2 (ATF_COM) marks a resolved entry; others hold 00:00:... .
    if (!ip || !hw || !(Number(flags) & 0x2)) continue;
    const mac = normalizeMac(hw);
    if (mac && mac !== '00:00:00:00:00:00') out.set(ip, mac);
  }
  return out;
}

export function arpLookup(ip: string, read: () => string = () => readFileSync('/proc/net/arp', 'utf8')): string | undefined {
  try {
    return parseArpTable(read()).get(ip);
  } catch {
    return undefined;
  }
}
