// The QEMU rig: hardware profiles, QEMU command lines, serial consoles, the
// private network and the rig that ties them together for the CLI and tests.
export { startRig, Rig, Vm, RigError, rigServerConfig, mergeDocs } from './rig.ts';
export type { RigOptions, BootOptions, MachineTimeline } from './rig.ts';
export type { DhcpMode } from '../boot/config.ts';
export { loadProfile, listProfiles, listProfileNames, parseProfile, parseProfileYaml, instanceOf, deriveMac, parseSize, ProfileError, DEFAULT_PROFILES_DIR } from './profile.ts';
export type { HwProfile, Instance, NicSpec, DiskSpec, Firmware, NicModel, DiskType, DiskBus, DiskFormat, MachineType } from './profile.ts';
export { qemuArgs, nicRom, varsTemplate, vmUuid, QemuArgsError, DEBIAN_FIRMWARE, QEMU_BINARY } from './args.ts';
export type { VmPlan, DiskFile, FirmwarePaths, BootMedium } from './args.ts';
export { probeKvm, chooseAccel, ACCEL_ENV } from './kvm-probe.ts';
export type { Accel, AccelMode, KvmProbeResult } from './kvm-probe.ts';
export { SerialConsole, ConsoleTimeoutError, ConsoleExitError, cleanTerminalText } from './console.ts';
export type { ConsoleOptions, ConsoleExit } from './console.ts';
export { RigNetwork, parseSubnet, parseIpv6Prefix, NetworkConfigError } from './network.ts';
export type { RigNetworkOptions, Subnet } from './network.ts';
export { readRigStates, writeRigState, cleanupRig, RIG_STATE_DIR, RigStateError } from './rig-state.ts';
export type { RigState } from './rig-state.ts';
export { Netns } from './netns.ts';
export { waitForOutput, sh } from '../lib/process.ts';
