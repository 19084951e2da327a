// Benchmarks' flags: a wrong one is one line on stderr and exit 2, as for
// every zeroboot command, instead of parseArgs' stack trace.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export function parseBenchArgs<T extends ParseArgsConfig>(script: string, config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (e) {
    console.error(`${script}: ${(e as Error).message.split('\n')[0]}`);
    process.exit(2);
  }
}

/** One line on stderr and exit 2. */
export function refuseFlag(script: string, message: string): never {
  console.error(`${script}: ${message}`);
  process.exit(2);
}

/** A flag's value as a positive integer (at most `max`), else one line and exit 2. */
export function positiveInt(script: string, name: string, value: string, max = 1e9): number {
  const n = Number(value);
  if (!/^[1-9]\d*$/.test(value) || n > max) refuseFlag(script, `--${name} must be a positive integer${max < 1e9 ? ` up to ${max}` : ''}, got "${value}"`);
  return n;
}

/** A flag's value that must be one of `allowed` ('' for the flag left out), else one line and exit 2. */
export function oneOf<T extends string>(script: string, name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    const shown = allowed.filter((v) => v !== '');
    const list = shown.length > 1 ? `${shown.slice(0, -1).join(', ')} or ${shown.at(-1)}` : shown.join('');
    refuseFlag(script, `--${name} must be ${list}, got "${value}"`);
  }
  return value as T;
}
