// MAC addresses: the one canonical form the project keys machines by
// (lower-case, colons: what the DHCP server reads from a packet and GRUB
// prints as $net_default_mac), and the spellings it reads and writes.

const CANONICAL = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;

/** Accepts aa:bb:.., aa-bb-.., aabb.ccdd.., returns lower-case colon form or undefined. */
export function normalizeMac(input: string): string | undefined {
  // Servers pass the canonical form on every packet: answer it without rebuilding.
  if (CANONICAL.test(input)) return input;
  const hex = input.toLowerCase().replace(/[^0-9a-f]/g, '');
  if (hex.length !== 12 || !/^[0-9a-f:.-]+$/i.test(input)) return undefined;
  return hex.match(/../g)!.join(':');
}

const SEPARATED = new Map<string, RegExp>();

/**
 * Lower-case colon form when `input` is six hex pairs (any case) each joined
 * by one of `separators`, else undefined. Stricter than normalizeMac, for
 * places that name one spelling (GRUB's file names: colons only).
 */
export function parseSeparatedMac(input: unknown, separators = ':-'): string | undefined {
  if (typeof input !== 'string') return undefined;
  let re = SEPARATED.get(separators);
  if (!re) {
    const sep = `[${separators.replace(/[\]\\^-]/g, '\\$&')}]`;
    re = new RegExp(`^[0-9a-f]{2}(?:${sep}[0-9a-f]{2}){5}$`, 'i');
    SEPARATED.set(separators, re);
  }
  return re.test(input) ? input.toLowerCase().replace(/[^0-9a-f]/g, '').match(/../g)!.join(':') : undefined;
}

/** Whether a canonical MAC is unicast (the I/G bit of the first byte clear). */
export function isUnicastMac(mac: string): boolean {
  return (parseInt(mac.slice(0, 2), 16) & 1) === 0;
}

/** Colon form of the first `n` bytes (a DHCP chaddr may hold other than 6); the 6-byte case is the per-packet key, so kept cheap. */
export function macFromBytes(b: Buffer, n = 6): string {
  if (n === 6 && b.length >= 6) {
    const h = b.toString('hex', 0, 6);
    return `${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}:${h.slice(6, 8)}:${h.slice(8, 10)}:${h.slice(10, 12)}`;
  }
  return [...b.subarray(0, n)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** The hex-hyphen form (iPXE's `${mac:hexhyp}`, the `BOOTIF=01-…` argument) of any spelling normalizeMac reads, or undefined. */
export function hyphenMac(mac: string): string | undefined {
  return normalizeMac(mac)?.replace(/:/g, '-');
}

const BOOTIF = /^01-((?:[0-9a-f]{2}-){5}[0-9a-f]{2})$/i;

/**
 * The `BOOTIF=` value (the pxelinux convention the boot scripts pass to the
 * kernel): ARP hardware type 01 (Ethernet), then the hex-hyphen MAC.
 */
export function bootifOf(mac: string): string | undefined {
  const hyp = hyphenMac(mac);
  return hyp && `01-${hyp}`;
}

/** The MAC in a `BOOTIF=` value (or a pxelinux-style `01-aa-bb-…` file name), or undefined. */
export function macFromBootif(value: string): string | undefined {
  const m = BOOTIF.exec(value);
  return m ? normalizeMac(m[1]) : undefined;
}

/** `mac` counted up by `n` in its lower three bytes (the vendor prefix stays), wrapping. */
export function addToMac(mac: string, n: number): string {
  const hex = mac.replace(/:/g, '');
  const tail = ((parseInt(hex.slice(6), 16) + n) % 0x1000000).toString(16).padStart(6, '0');
  return (hex.slice(0, 6) + tail).match(/../g)!.join(':');
}
