// Readers of the sysfs entries the agent trusts for NICs, disks, DMI and
// Secure Boot. Each takes the filesystem root, so tests read recorded trees
// (test/fixtures/agent/<machine>/) exactly as the node reads /. Links are
// read as text (readlink), never followed to the end: the path a disk's
// link names tells its bus, and a recorded tree keeps the text only.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { normalizeMac } from '../../lib/mac.ts';
import type { DiskBus, DiskInfo, DiskKind, DmiInfo, LinkState, NicInfo, SecureBootState } from './types.ts';

/** The efivar holding the firmware's Secure Boot state (EFI global variable GUID). */
export const SECURE_BOOT_VAR = 'sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c';

function text(path: string): string | undefined {
  try {
    const v = readFileSync(path, 'utf8').trim();
    return v === '' ? undefined : v;
  } catch {
    return undefined;
  }
}

function link(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

function entries(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function int(v: string | undefined): number | undefined {
  if (v === undefined || !/^-?\d+$/.test(v)) return undefined;
  return Number(v);
}

/**
 * The bus of a block device from the text of its /sys/block/<name> link,
 * e.g. `../devices/pci0000:00/0000:00:1f.2/ata1/host0/.../block/sda` -> sata.
 * USB wins over what sits behind it (a USB-SATA bridge is still USB).
 */
export function busFromDevicePath(path: string, name: string): DiskBus {
  if (/\/usb\d*\//.test(path)) return 'usb';
  if (name.startsWith('nvme') || path.includes('/nvme/')) return 'nvme';
  if (/\/ata\d+\//.test(path)) return 'sata';
  if (/\/mmc\d*\/|\/mmc_host\//.test(path)) return 'mmc';
  if (/\/end_device-|\/port-\d/.test(path)) return 'sas';
  // virtio-scsi puts a SCSI host under the virtio device; virtio-blk does not.
  if (/\/host\d+\//.test(path)) return 'scsi';
  if (/\/virtio\d+\//.test(path)) return 'virtio';
  if (path.includes('/devices/virtual/')) return 'virtual';
  return 'unknown';
}

/** The serial in a SCSI VPD page 0x80 file (4-byte header, then ASCII), as SCSI and SATA-behind-libata disks show it. */
export function vpdSerial(path: string): string | undefined {
  let page: Buffer;
  try {
    page = readFileSync(path);
  } catch {
    return undefined;
  }
  if (page.length < 4 || page[1] !== 0x80) return undefined;
  const serial = page.subarray(4, 4 + page.readUInt16BE(2)).toString('latin1').trim();
  return serial === '' ? undefined : serial;
}

/** What sort of block device a name (and SCSI device type) is. */
export function diskKind(name: string, scsiType: string | undefined): DiskKind {
  if (name.startsWith('loop')) return 'loop';
  if (name.startsWith('zram')) return 'zram';
  if (/^ram\d/.test(name)) return 'ram';
  if (/^fd\d/.test(name)) return 'floppy';
  if (/^sr\d/.test(name) || scsiType === '5') return 'cdrom';
  if (/^md\d/.test(name)) return 'md';
  if (name.startsWith('dm-')) return 'dm';
  return 'disk';
}


/** Every block device under <root>/sys/block, partitions listed under their disk. */
export function readBlockDevices(root: string): DiskInfo[] {
  const base = join(root, 'sys/block');
  return entries(base).map((name) => {
    const dir = join(base, name);
    const devicePath = link(dir) ?? '';
    const partitions = entries(dir).filter((p) => p.startsWith(name) && text(join(dir, p, 'partition')) !== undefined);
    const disk: DiskInfo = {
      name,
      path: `/dev/${name}`,
      // The size file counts 512-byte sectors whatever the device's sector size.
      sizeBytes: (int(text(join(dir, 'size'))) ?? 0) * 512,
      bus: busFromDevicePath(devicePath, name),
      kind: diskKind(name, text(join(dir, 'device/type'))),
      rotational: text(join(dir, 'queue/rotational')) === '1',
      removable: text(join(dir, 'removable')) === '1',
      readOnly: text(join(dir, 'ro')) === '1',
      partitions,
    };
    const model = text(join(dir, 'device/model'));
    const vendor = text(join(dir, 'device/vendor'));
    // virtio-blk shows its serial on the disk, NVMe and some SCSI on the device.
    const serial = text(join(dir, 'serial')) ?? text(join(dir, 'device/serial')) ?? vpdSerial(join(dir, 'device/vpd_pg80'));
    if (model) disk.model = model;
    // virtio devices name their PCI vendor id (0x1af4) there, not a maker.
    if (vendor && !/^0x[0-9a-f]+$/i.test(vendor)) disk.vendor = vendor;
    if (serial) disk.serial = serial;
    return disk;
  });
}

function linkState(operstate: string | undefined): LinkState {
  return operstate === 'up' ? 'up' : operstate === 'down' || operstate === 'lowerlayerdown' || operstate === 'dormant' ? 'down' : 'unknown';
}

/** Every interface under <root>/sys/class/net; addresses come from the caller (they are not in sysfs). */
export function readNics(root: string, addresses: Record<string, string[]> = {}): NicInfo[] {
  const base = join(root, 'sys/class/net');
  const nics: NicInfo[] = [];
  for (const name of entries(base)) {
    const dir = join(base, name);
    const mac = normalizeMac(text(join(dir, 'address')) ?? '');
    if (!mac) continue;
    const driverLink = link(join(dir, 'device/driver'));
    const nic: NicInfo = {
      name,
      mac,
      physical: link(join(dir, 'device')) !== undefined,
      link: linkState(text(join(dir, 'operstate'))),
      addresses: addresses[name] ?? [],
    };
    if (driverLink) nic.driver = basename(driverLink);
    const speed = int(text(join(dir, 'speed')));
    if (speed !== undefined && speed > 0) nic.speedMbps = speed;
    const mtu = int(text(join(dir, 'mtu')));
    if (mtu !== undefined) nic.mtu = mtu;
    nics.push(nic);
  }
  return nics;
}

// Firmware fills unset DMI strings with placeholders; they name nothing.
/** Online memory blocks times block_size_bytes (hex), as lsmem counts; undefined when the kernel has no memory-block sysfs. */
export function readInstalledMemory(root: string): number | undefined {
  const dir = join(root, 'sys/devices/system/memory');
  const size = text(join(dir, 'block_size_bytes'));
  if (!size || !/^[0-9a-f]+$/i.test(size)) return undefined;
  let blocks = 0;
  try {
    for (const e of readdirSync(dir)) if (/^memory\d+$/.test(e) && text(join(dir, e, 'online')) === '1') blocks++;
  } catch {
    return undefined;
  }
  return blocks > 0 ? blocks * parseInt(size, 16) : undefined;
}

const DMI_PLACEHOLDER = /^(to be filled by o\.e\.m\.|default string|not specified|system serial number|none|0+|-)$/i;

export function readDmi(root: string): DmiInfo {
  const dmi: DmiInfo = {};
  const put = (key: keyof DmiInfo, file: string) => {
    const v = text(join(root, 'sys/class/dmi/id', file));
    if (v && !DMI_PLACEHOLDER.test(v)) dmi[key] = v;
  };
  put('vendor', 'sys_vendor');
  put('product', 'product_name');
  put('serial', 'product_serial');
  put('uuid', 'product_uuid');
  return dmi;
}

/** An efivar file is 4 bytes of attributes then the value; SecureBoot's value is one byte, 1 = on. */
export function secureBootFromEfivar(data: Buffer | undefined, efi: boolean): SecureBootState {
  if (!efi) return 'no-efi';
  if (!data || data.length < 5) return 'unknown';
  return data[4] === 1 ? 'enabled' : 'disabled';
}

export function readSecureBoot(root: string): SecureBootState {
  const efi = entries(join(root, 'sys/firmware/efi')).length > 0 || link(join(root, 'sys/firmware/efi')) !== undefined;
  let data: Buffer | undefined;
  try {
    data = readFileSync(join(root, SECURE_BOOT_VAR));
  } catch {
    data = undefined;
  }
  return secureBootFromEfivar(data, efi);
}
