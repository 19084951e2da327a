// The QEMU command line for one VM, as a pure function of the profile, the
// instance and the files prepared for it. No file system access here: the
// rig creates disks and firmware variable stores, then asks for the argv.
import { createHash } from 'node:crypto';
import type { DiskSpec, Firmware, HwProfile, Instance, NicModel } from './profile.ts';

export class QemuArgsError extends Error {}

export const QEMU_BINARY = 'qemu-system-x86_64';

/** Where Debian 12's `ovmf` and `ipxe-qemu` packages put their files. */
export interface FirmwarePaths {
  ovmfCode: string;
  ovmfVars: string;
  ovmfSecureCode: string;
  ovmfSecureVars: string;
  ipxeRomDir: string;
}

export const DEBIAN_FIRMWARE: FirmwarePaths = {
  ovmfCode: '/usr/share/OVMF/OVMF_CODE_4M.fd',
  ovmfVars: '/usr/share/OVMF/OVMF_VARS_4M.fd',
  ovmfSecureCode: '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd',
  // Microsoft's keys enrolled, as on real servers: Secure Boot is on from the
  // first boot and trusts what Microsoft's UEFI CA signed (shim), nothing else.
  ovmfSecureVars: '/usr/share/OVMF/OVMF_VARS_4M.ms.fd',
  ipxeRomDir: '/usr/lib/ipxe/qemu',
};

/** The variable store template a VM of this firmware needs a private copy of (none for BIOS). */
export function varsTemplate(firmware: Firmware, paths: FirmwarePaths = DEBIAN_FIRMWARE): string | undefined {
  if (firmware === 'uefi') return paths.ovmfVars;
  if (firmware === 'uefi-secureboot') return paths.ovmfSecureVars;
  return undefined;
}

const NIC_DEVICES: Record<NicModel, { device: string; rom: string; extra: string[] }> = {
  // Debian's virtio ROMs carry the modern PCI ID (1af4:1041): SeaBIOS skips
  // them on QEMU's default transitional device, so the device must be modern-only.
  virtio: { device: 'virtio-net-pci', rom: 'virtio', extra: ['disable-legacy=on'] },
  e1000: { device: 'e1000', rom: 'e1000', extra: [] },
  e1000e: { device: 'e1000e', rom: 'e1000e', extra: [] },
};

/** The NIC option ROM QEMU loads: iPXE for the firmware type (pxe-* for SeaBIOS, efi-* for OVMF). */
export function nicRom(model: NicModel, firmware: Firmware, paths: FirmwarePaths = DEBIAN_FIRMWARE): string {
  return `${paths.ipxeRomDir}/${firmware === 'bios' ? 'pxe' : 'efi'}-${NIC_DEVICES[model].rom}.rom`;
}

export interface DiskFile {
  path: string;
  spec: DiskSpec;
  /**
   * QEMU's cache mode; default `unsafe` (throw-away disks: guest flushes are
   * ignored). A disk whose contents must outlive the VM uses `writeback`:
   * writes go through the host page cache and a guest flush is an fdatasync
   * of the host file.
   */
  cache?: 'unsafe' | 'writeback';
}

/**
 * A boot medium instead of the network: a CD (an ISO), a USB stick (a raw
 * disk image, opened copy-on-write so the file is never changed), or an EFI
 * program handed to OVMF as its kernel (a UKI, started by the firmware).
 */
export interface BootMedium {
  kind: 'cdrom' | 'usb' | 'efi';
  path: string;
}

export interface VmPlan {
  instance: Instance;
  /** One tap device per NIC, in NIC order. */
  taps: string[];
  /** One file per profile disk, in disk order. */
  disks: DiskFile[];
  /** This VM's own copy of the OVMF variable store (UEFI only). */
  varsFile?: string;
  accel: 'tcg' | 'kvm';
  /**
   * Boot with the firmware's own network stack instead of QEMU's iPXE ROM
   * (`romfile=`): OVMF's PXE then fetches an iPXE binary over TFTP.
   */
  noIpxeRom?: boolean;
  /** Overrides the profile's firmware for this VM. */
  firmware?: Firmware;
  /** The serial console backend; stdio when QEMU runs under a pty. */
  serial?: string;
  paths?: FirmwarePaths;
  /** Boot from this medium; the NICs then carry no boot ROM and no boot entry. */
  medium?: BootMedium;
}

/** A QEMU option value with commas doubled, as QEMU's option parser wants. */
function qv(v: string): string {
  return v.replace(/,/g, ',,');
}

/** A stable UUID for the VM (SMBIOS system UUID, reported by iPXE and the agent). */
export function vmUuid(name: string, macs: string[]): string {
  const h = createHash('sha256').update(`${name}/${macs.join(',')}`).digest('hex');
  // Version 4 layout (random-looking), variant 10xx.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function firmwareArgs(firmware: Firmware, plan: VmPlan, paths: FirmwarePaths): string[] {
  if (firmware === 'bios') return plan.medium ? [] : ['-boot', 'n'];
  if (!plan.varsFile) throw new QemuArgsError(`${plan.instance.name}: firmware ${firmware} needs a private copy of the OVMF variable store (varsFile)`);
  const code = firmware === 'uefi' ? paths.ovmfCode : paths.ovmfSecureCode;
  const out = [
    '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${qv(code)}`,
    '-drive', `if=pflash,format=raw,unit=1,file=${qv(plan.varsFile)}`,
  ];
  // Only SMM code may write the variable store, or the OS could switch Secure Boot off.
  if (firmware === 'uefi-secureboot') out.push('-global', 'driver=cfi.pflash01,property=secure,value=on');
  return out;
}

function diskArgs(plan: VmPlan): string[] {
  const { instance, disks } = plan;
  if (disks.length !== instance.profile.disks.length) {
    throw new QemuArgsError(`${instance.name}: the profile has ${instance.profile.disks.length} disk(s) but ${disks.length} file(s) were prepared`);
  }
  const out: string[] = [];
  if (disks.some((d) => d.spec.bus === 'scsi')) out.push('-device', 'virtio-scsi-pci,id=scsi0');
  // Our own AHCI controller on either machine type (pc's built-in is IDE), one port per SATA disk.
  if (disks.some((d) => d.spec.bus === 'sata')) out.push('-device', 'ahci,id=ahci0');
  let sataPort = 0;
  disks.forEach((d, i) => {
    out.push('-drive', `if=none,id=disk${i},file=${qv(d.path)},format=${d.spec.format},cache=${d.cache ?? 'unsafe'},discard=unmap`);
    const serial = `zb${i}-${instance.macs[0]?.replace(/:/g, '').slice(6) ?? '0'}`;
    // rotation_rate 1 is "non-rotating" (SSD) in SCSI's block device characteristics page and ATA's IDENTIFY word 217.
    const rotation = d.spec.type === 'ssd' ? 1 : 7200;
    if (d.spec.bus === 'scsi') {
      out.push('-device', `scsi-hd,drive=disk${i},bus=scsi0.0,channel=0,scsi-id=0,lun=${i},rotation_rate=${rotation},serial=${serial}`);
    } else if (d.spec.bus === 'sata') {
      out.push('-device', `ide-hd,drive=disk${i},bus=ahci0.${sataPort++},rotation_rate=${rotation},serial=${serial}`);
    } else if (d.spec.bus === 'nvme') {
      out.push('-device', `nvme,drive=disk${i},serial=${serial}`);
    } else {
      out.push('-device', `virtio-blk-pci,drive=disk${i},serial=${serial}`);
    }
  });
  return out;
}

function nicArgs(plan: VmPlan, firmware: Firmware, paths: FirmwarePaths): string[] {
  const { instance, taps } = plan;
  if (taps.length !== instance.profile.nics.length) {
    throw new QemuArgsError(`${instance.name}: the profile has ${instance.profile.nics.length} NIC(s) but ${taps.length} tap(s) were given`);
  }
  const out: string[] = [];
  let bootIndex = 0;
  instance.profile.nics.forEach((nic, i) => {
    const dev = NIC_DEVICES[nic.model];
    // QEMU's iPXE ROMs are unsigned: Secure Boot firmware would refuse them
    // (a real NIC's ROM is signed), so those VMs use the firmware's own PXE.
    // A NIC that does not boot gets no ROM at all, as a port with PXE off.
    const netBoot = nic.boot && !plan.medium;
    const rom = !netBoot || plan.noIpxeRom || firmware === 'uefi-secureboot' ? '' : nicRom(nic.model, firmware, paths);
    out.push('-netdev', `tap,id=net${i},ifname=${qv(taps[i])},script=no,downscript=no`);
    // bootindex puts the booting NICs first, in profile order, ahead of any disk.
    const boot = netBoot ? [`bootindex=${++bootIndex}`] : [];
    out.push('-device', [dev.device, `netdev=net${i}`, `mac=${instance.macs[i]}`, ...dev.extra, `romfile=${qv(rom)}`, ...boot].join(','));
  });
  return out;
}

function mediumArgs(plan: VmPlan, firmware: Firmware): string[] {
  const m = plan.medium;
  if (!m) return [];
  if (m.kind === 'efi') {
    if (firmware === 'bios') throw new QemuArgsError(`${plan.instance.name}: an EFI program boots only with UEFI firmware, not bios`);
    return ['-kernel', m.path];
  }
  if (m.kind === 'cdrom') return ['-drive', `if=none,id=medium,file=${qv(m.path)},media=cdrom,readonly=on`, '-device', 'ide-cd,drive=medium,bootindex=0'];
  return [
    '-device', 'qemu-xhci,id=xhci',
    '-drive', `if=none,id=medium,file=${qv(m.path)},format=raw,snapshot=on`,
    '-device', 'usb-storage,bus=xhci.0,drive=medium,removable=on,bootindex=0',
  ];
}

/** The complete argv (without the binary) for one VM. */
export function qemuArgs(plan: VmPlan): string[] {
  const { instance } = plan;
  const profile: HwProfile = instance.profile;
  const firmware = plan.firmware ?? profile.firmware;
  const paths = plan.paths ?? DEBIAN_FIRMWARE;
  if (plan.noIpxeRom && firmware === 'bios') {
    throw new QemuArgsError(`${instance.name}: SeaBIOS has no network boot of its own; --no-ipxe-rom needs firmware uefi`);
  }
  if (plan.noIpxeRom && profile.nics.some((n) => n.model !== 'virtio')) {
    throw new QemuArgsError(`${instance.name}: OVMF drives only virtio NICs by itself; --no-ipxe-rom needs virtio NICs`);
  }
  // Secure Boot needs SMM, which only q35 has.
  const machine = firmware === 'uefi-secureboot' ? 'q35,smm=on' : profile.machine;
  return [
    '-name', qv(instance.name),
    '-accel', plan.accel,
    '-machine', machine,
    ...(plan.accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-smp', String(profile.cpus),
    '-m', String(profile.memoryMiB),
    '-uuid', vmUuid(instance.name, instance.macs),
    '-smbios', `type=1,manufacturer=zeroboot,product=${qv(profile.name)},serial=${qv(instance.name)}`,
    '-nodefaults',
    '-nographic',
    '-monitor', 'none',
    '-serial', plan.serial ?? 'stdio',
    '-no-reboot',
    ...firmwareArgs(firmware, plan, paths),
    ...nicArgs(plan, firmware, paths),
    ...diskArgs(plan),
    ...mediumArgs(plan, firmware),
  ];
}
