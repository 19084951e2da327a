// Hardware profiles: emulated server models as YAML data (firmware, CPUs,
// memory, NICs, disks). Parsing checks every key and names the one that is
// wrong, so a profile author can fix the file without reading this code.
import { readdir } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { addToMac, isUnicastMac, macFromBytes, parseSeparatedMac } from '../lib/mac.ts';
import { parseYamlText, readYamlText, YamlError } from '../lib/yaml.ts';
import type { YamlErrorFactory } from '../lib/yaml.ts';

export class ProfileError extends YamlError {
  override name = 'ProfileError';
}

const profileError: YamlErrorFactory = (detail, where) => new ProfileError(detail, where);

export const FIRMWARES = ['bios', 'uefi', 'uefi-secureboot'] as const;
export const MACHINES = ['pc', 'q35'] as const;
export const NIC_MODELS = ['virtio', 'e1000', 'e1000e'] as const;
export const DISK_TYPES = ['ssd', 'hdd'] as const;
export const DISK_BUSES = ['scsi', 'virtio', 'sata', 'nvme'] as const;
/** Ports of one AHCI controller: the most SATA disks a profile may have. */
export const SATA_PORTS = 6;
export const DISK_FORMATS = ['qcow2', 'raw'] as const;

export type Firmware = (typeof FIRMWARES)[number];
export type MachineType = (typeof MACHINES)[number];
export type NicModel = (typeof NIC_MODELS)[number];
export type DiskType = (typeof DISK_TYPES)[number];
export type DiskBus = (typeof DISK_BUSES)[number];
export type DiskFormat = (typeof DISK_FORMATS)[number];

export interface NicSpec {
  model: NicModel;
  /** Fixed MAC (lower-case, colons); derived per instance when absent. */
  mac?: string;
  /**
   * Network-boots (default true). false is a port with PXE off in the
   * firmware setup: no option ROM and no boot entry, so the firmware never
   * tries it; the booted OS still sees the NIC.
   */
  boot: boolean;
}

export interface DiskSpec {
  sizeBytes: number;
  type: DiskType;
  bus: DiskBus;
  format: DiskFormat;
}

export interface HwProfile {
  name: string;
  description?: string;
  firmware: Firmware;
  machine: MachineType;
  cpus: number;
  memoryMiB: number;
  nics: NicSpec[];
  disks: DiskSpec[];
}

/** The hw-profiles/ folder of this checkout. */
export const DEFAULT_PROFILES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../hw-profiles');

const NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;
const KNOWN_KEYS = ['name', 'description', 'firmware', 'machine', 'cpus', 'memory', 'nics', 'disks'];
const UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** "512M", "8G", "1T", or a plain byte count; binary units. */
export function parseSize(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v > 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]) * UNITS[m[2].toUpperCase()];
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

function oneOf<T extends string>(o: Obj, key: string, where: string, allowed: readonly T[], fallback?: T): T {
  const v = o[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new ProfileError(`${where}.${key} is required (one of ${allowed.join(', ')})`);
  }
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new ProfileError(`${where}.${key} must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
  }
  return v as T;
}

function int(o: Obj, key: string, where: string, fallback: number, min: number, max: number): number {
  const v = o[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ProfileError(`${where}.${key} must be an integer between ${min} and ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Lower-case colon form of a unicast MAC written with colons or hyphens, or undefined. */
export function parseMac(v: unknown): string | undefined {
  const mac = parseSeparatedMac(v);
  return mac && isUnicastMac(mac) ? mac : undefined;
}

function parseNic(raw: unknown, where: string): NicSpec {
  if (!isObj(raw)) throw new ProfileError(`${where} must be a mapping with model (and optionally mac, boot)`);
  for (const k of Object.keys(raw)) if (!['model', 'mac', 'boot'].includes(k)) throw new ProfileError(`${where}.${k}: unknown key (use model, mac, boot)`);
  if (raw.boot !== undefined && raw.boot !== null && typeof raw.boot !== 'boolean') throw new ProfileError(`${where}.boot must be true or false, got ${JSON.stringify(raw.boot)}`);
  const nic: NicSpec = { model: oneOf(raw, 'model', where, NIC_MODELS, 'virtio'), boot: raw.boot !== false };
  if (raw.mac !== undefined && raw.mac !== null) {
    const mac = parseMac(raw.mac);
    if (!mac) throw new ProfileError(`${where}.mac: ${JSON.stringify(raw.mac)} is not a unicast MAC address (aa:bb:cc:dd:ee:ff)`);
    nic.mac = mac;
  }
  return nic;
}

function parseDisk(raw: unknown, where: string): DiskSpec {
  if (!isObj(raw)) throw new ProfileError(`${where} must be a mapping with size and type`);
  for (const k of Object.keys(raw)) if (!['size', 'type', 'bus', 'format'].includes(k)) throw new ProfileError(`${where}.${k}: unknown key (use size, type, bus, format)`);
  if (raw.size === undefined) throw new ProfileError(`${where}.size is required (for example 8G)`);
  const sizeBytes = parseSize(raw.size);
  if (sizeBytes === undefined) throw new ProfileError(`${where}.size: ${JSON.stringify(raw.size)} is not a size (use 512M, 8G, 1T)`);
  if (sizeBytes < 2 ** 20) throw new ProfileError(`${where}.size must be at least 1M`);
  const type = oneOf(raw, 'type', where, DISK_TYPES);
  const bus = oneOf(raw, 'bus', where, DISK_BUSES, 'scsi');
  if (bus === 'virtio' && type === 'hdd') {
    // virtio-blk has no rotation rate: the guest would see an SSD-looking disk.
    throw new ProfileError(`${where}: bus virtio cannot present an HDD (virtio-blk has no rotation rate); use bus scsi`);
  }
  if (bus === 'nvme' && type === 'hdd') throw new ProfileError(`${where}: bus nvme cannot present an HDD (NVMe drives are flash); use bus sata or scsi`);
  return { sizeBytes, type, bus, format: oneOf(raw, 'format', where, DISK_FORMATS, 'qcow2') };
}

/** Validates a parsed YAML document; `source` names the file in errors. */
export function parseProfile(doc: unknown, source = 'profile'): HwProfile {
  if (!isObj(doc)) throw new ProfileError(`${source}: a profile must be a YAML mapping`);
  for (const k of Object.keys(doc)) if (!KNOWN_KEYS.includes(k)) throw new ProfileError(`${source}: unknown key "${k}" (use ${KNOWN_KEYS.join(', ')})`);
  const name = doc.name;
  if (typeof name !== 'string' || !NAME.test(name)) throw new ProfileError(`${source}: name must be lower-case letters, digits and "-" (at most 40), got ${JSON.stringify(name)}`);
  const firmware = oneOf(doc, 'firmware', source, FIRMWARES);
  // Secure Boot needs SMM, which only q35 has; UEFI is happiest on q35 too.
  const machine = oneOf(doc, 'machine', source, MACHINES, firmware === 'bios' ? 'pc' : 'q35');
  if (firmware === 'uefi-secureboot' && machine !== 'q35') throw new ProfileError(`${source}.machine must be q35 for uefi-secureboot (Secure Boot needs SMM)`);
  let memoryMiB = 1024;
  if (doc.memory !== undefined && doc.memory !== null) {
    // A bare number means MiB, as QEMU's -m does.
    const bytes = typeof doc.memory === 'number' ? doc.memory * 2 ** 20 : parseSize(doc.memory);
    if (bytes === undefined || bytes % 2 ** 20 !== 0) throw new ProfileError(`${source}.memory: ${JSON.stringify(doc.memory)} is not a memory size (use 512M, 2G or MiB as a number)`);
    memoryMiB = bytes / 2 ** 20;
  }
  if (memoryMiB < 128 || memoryMiB > 64 * 1024) throw new ProfileError(`${source}.memory must be between 128M and 64G`);
  if (!Array.isArray(doc.nics) || doc.nics.length === 0) throw new ProfileError(`${source}.nics must be a list with at least one NIC`);
  if (doc.nics.length > 8) throw new ProfileError(`${source}.nics: at most 8 NICs`);
  const nics = doc.nics.map((n, i) => parseNic(n, `${source}.nics[${i}]`));
  if (!nics.some((n) => n.boot)) throw new ProfileError(`${source}.nics: at least one NIC must network-boot (boot: false on every NIC)`);
  const macs = nics.map((n) => n.mac).filter((m): m is string => !!m);
  if (new Set(macs).size !== macs.length) throw new ProfileError(`${source}.nics: the same MAC is given twice`);
  const rawDisks = doc.disks === undefined || doc.disks === null ? [] : doc.disks;
  if (!Array.isArray(rawDisks)) throw new ProfileError(`${source}.disks must be a list`);
  if (rawDisks.length > 16) throw new ProfileError(`${source}.disks: at most 16 disks`);
  const profile: HwProfile = {
    name,
    firmware,
    machine,
    cpus: int(doc, 'cpus', source, 1, 1, 64),
    memoryMiB,
    nics,
    disks: rawDisks.map((d, i) => parseDisk(d, `${source}.disks[${i}]`)),
  };
  if (profile.disks.filter((d) => d.bus === 'sata').length > SATA_PORTS) throw new ProfileError(`${source}.disks: at most ${SATA_PORTS} SATA disks (the ports of one AHCI controller)`);
  if (doc.description !== undefined) profile.description = String(doc.description);
  return profile;
}

/** Parses profile YAML text. */
export function parseProfileYaml(text: string, source = 'profile'): HwProfile {
  return parseProfile(parseYamlText(text, source, profileError), source);
}

/**
 * Loads a profile by name from `dir` (hw-profiles/ by default), or from a
 * path when the argument ends in .yaml/.yml or contains a slash. The file
 * name and the `name` key must agree, so `qemu up NAME` finds what it shows.
 */
export async function loadProfile(nameOrPath: string, dir = DEFAULT_PROFILES_DIR): Promise<HwProfile> {
  const isPath = nameOrPath.includes('/') || /\.ya?ml$/.test(nameOrPath);
  if (!isPath && !NAME.test(nameOrPath)) throw new ProfileError(`"${nameOrPath}" is not a profile name (lower-case letters, digits, "-")`);
  const file = isPath ? nameOrPath : path.join(dir, `${nameOrPath}.yaml`);
  let text: string;
  try {
    text = await readYamlText(file, profileError);
  } catch (e) {
    if (!isPath && ((e as Error).cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
      const known = (await listProfileNames(dir).catch(() => [])).join(', ') || 'none';
      throw new ProfileError(`no hardware profile "${nameOrPath}" in ${dir} (known: ${known})`);
    }
    throw e;
  }
  const profile = parseProfileYaml(text, path.basename(file));
  if (!isPath && profile.name !== nameOrPath) throw new ProfileError(`${path.basename(file)}: name is "${profile.name}" but the file is ${nameOrPath}.yaml`);
  return profile;
}

export async function listProfileNames(dir = DEFAULT_PROFILES_DIR): Promise<string[]> {
  const files = await readdir(dir);
  return files.filter((f) => f.endsWith('.yaml')).map((f) => f.slice(0, -5)).sort();
}

export async function listProfiles(dir = DEFAULT_PROFILES_DIR): Promise<HwProfile[]> {
  const out: HwProfile[] = [];
  for (const name of await listProfileNames(dir)) out.push(await loadProfile(name, dir));
  return out;
}

/** One running copy of a profile: its name and the MAC of each NIC. */
export interface Instance {
  profile: HwProfile;
  index: number;
  /** `<profile>-<index>`: names the VM, its console log and its disks. */
  name: string;
  macs: string[];
  /** The MAC of the first NIC that network-boots: the one the node comes up on (BOOTIF). */
  bootMac: string;
}

/**
 * A deterministic, locally administered unicast MAC for NIC `nic` of
 * instance `index` of profile `name`: the same VM gets the same MAC on every
 * run (leases and timelines stay comparable) and profiles do not collide.
 */
export function deriveMac(name: string, index: number, nic: number): string {
  const h = createHash('sha256').update(`zeroboot-hw/${name}/${index}/${nic}`).digest();
  h[0] = (h[0] & 0xfc) | 0x02;
  return macFromBytes(h);
}

/**
 * Instance `index` of a profile. A fixed MAC in the profile is used as is
 * by instance 0 and counted up by the index for the others.
 */
export function instanceOf(profile: HwProfile, index: number): Instance {
  if (!Number.isInteger(index) || index < 0) throw new ProfileError(`instance index must be a non-negative integer, got ${index}`);
  const macs = profile.nics.map((nic, i) => (nic.mac ? addToMac(nic.mac, index) : deriveMac(profile.name, index, i)));
  return { profile, index, name: `${profile.name}-${index}`, macs, bootMac: macs[Math.max(0, profile.nics.findIndex((n) => n.boot))] };
}
