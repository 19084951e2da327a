// Tests use the rig's namespace library unchanged.
export * from '../../qemu/netns.ts';
export * from '../../lib/process.ts';
