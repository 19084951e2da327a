// IPv4 addresses as 32-bit unsigned integers, for ranges and masks.

/** "10.0.0.5" -> 167772165 (the caller has checked the dotted quad). Hand-rolled: the DHCP pool calls it per packet. */
export function ipToInt(ip: string): number {
  let n = 0;
  let part = 0;
  let dots = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      if (part > 255) return splitToInt(ip);
      n = n * 256 + part;
      part = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
    } else {
      return splitToInt(ip);
    }
  }
  return dots === 3 && part <= 255 ? n * 256 + part : splitToInt(ip);
}

/** The general form, for text that is not four groups of 0-255 (read as before: bad groups count as 0). */
function splitToInt(ip: string): number {
  const p = ip.split('.');
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

export function intToIp(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}
