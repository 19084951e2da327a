// Tests use the rig's namespace library and the shared process helpers unchanged.
export * from '../../qemu/netns.ts';
export { sh, waitForOutput } from '../../lib/process.ts';
