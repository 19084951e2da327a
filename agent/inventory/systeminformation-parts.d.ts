// systeminformation's per-subject modules, which si.ts imports instead of
// the package's index (that one loads all 23 of them); typed from the
// package's own declarations.
declare module 'systeminformation/lib/cpu.js' {
  export const cpu: typeof import('systeminformation').cpu;
}
declare module 'systeminformation/lib/memory.js' {
  export const mem: typeof import('systeminformation').mem;
}
declare module 'systeminformation/lib/system.js' {
  export const system: typeof import('systeminformation').system;
}
declare module 'systeminformation/lib/filesystem.js' {
  export const blockDevices: typeof import('systeminformation').blockDevices;
  export const diskLayout: typeof import('systeminformation').diskLayout;
}
declare module 'systeminformation/lib/network.js' {
  export const networkInterfaces: typeof import('systeminformation').networkInterfaces;
}
