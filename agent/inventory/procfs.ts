// Pure parsers for /proc/cpuinfo and /proc/meminfo text.
import type { CpuInfo } from './types.ts';

export class ProcParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProcParseError';
  }
}

/** `key : value` blocks, one per logical CPU, separated by blank lines. */
function cpuBlocks(text: string): Map<string, string>[] {
  return text
    .split(/\n\s*\n/)
    .map((block) => {
      const m = new Map<string, string>();
      for (const line of block.split('\n')) {
        const i = line.indexOf(':');
        if (i > 0) m.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
      }
      return m;
    })
    .filter((m) => m.has('processor'));
}

export function parseCpuinfo(text: string): CpuInfo {
  const blocks = cpuBlocks(text);
  if (blocks.length === 0) throw new ProcParseError('/proc/cpuinfo holds no "processor" entry');
  const first = blocks[0];
  const flags = (first.get('flags') ?? '').split(/\s+/);
  return {
    model: first.get('model name') ?? first.get('cpu model') ?? 'unknown',
    vendor: first.get('vendor_id') ?? 'unknown',
    logical: blocks.length,
    hypervisorFlag: flags.includes('hypervisor'),
  };
}

/** MemTotal in bytes (the kernel prints kB, meaning KiB). */
export function parseMeminfo(text: string): number {
  const m = /^MemTotal:\s+(\d+)\s*kB$/m.exec(text);
  if (!m) throw new ProcParseError('/proc/meminfo has no "MemTotal: <n> kB" line');
  return Number(m[1]) * 1024;
}
