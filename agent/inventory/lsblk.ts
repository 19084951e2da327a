// Pure parser for `lsblk -J -b -O` (or any -J -b output with these columns).
// util-linux before 2.33 prints numbers and flags as strings ("1", "0"), later
// ones as JSON numbers and booleans; both read the same here.

export interface LsblkDevice {
  name: string;
  type: string;
  sizeBytes: number;
  rotational?: boolean;
  removable?: boolean;
  hotplug?: boolean;
  /** Transport: sata, usb, nvme, virtio, sas, iscsi, ... (null for virtual devices). */
  tran?: string;
  model?: string;
  serial?: string;
  fstype?: string;
  pttype?: string;
  label?: string;
  children: string[];
}

export class LsblkParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LsblkParseError';
  }
}

function flag(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (v === '1' || v === 1) return true;
  if (v === '0' || v === 0) return false;
  return undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

function put<K extends keyof LsblkDevice>(d: LsblkDevice, key: K, v: LsblkDevice[K] | undefined): void {
  if (v !== undefined) d[key] = v;
}

/** The top-level devices (whole disks, loops, roms), each naming its children. */
export function parseLsblk(json: string): LsblkDevice[] {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (e) {
    throw new LsblkParseError(`lsblk output is not JSON: ${(e as Error).message}`);
  }
  const list = (doc as { blockdevices?: unknown }).blockdevices;
  if (!Array.isArray(list)) throw new LsblkParseError('lsblk output has no "blockdevices" array (run it as lsblk -J -b -O)');
  return list.map((raw: Record<string, unknown>) => {
    const name = str(raw.name);
    const size = typeof raw.size === 'number' ? raw.size : Number(raw.size);
    if (!name || !Number.isSafeInteger(size)) throw new LsblkParseError(`lsblk entry without a name or a byte size: ${JSON.stringify(raw).slice(0, 120)} (run it with -b)`);
    const d: LsblkDevice = { name, type: str(raw.type) ?? 'unknown', sizeBytes: size, children: [] };
    put(d, 'rotational', flag(raw.rota));
    put(d, 'removable', flag(raw.rm));
    put(d, 'hotplug', flag(raw.hotplug));
    put(d, 'tran', str(raw.tran));
    put(d, 'model', str(raw.model));
    put(d, 'serial', str(raw.serial));
    put(d, 'fstype', str(raw.fstype));
    put(d, 'pttype', str(raw.pttype));
    put(d, 'label', str(raw.label));
    if (Array.isArray(raw.children)) d.children = raw.children.map((c: Record<string, unknown>) => str(c.name) ?? '?');
    return d;
  });
}
