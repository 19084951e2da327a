// Tests use the rig's namespace library unchanged.
export * from '../../qemu/netns.ts';
