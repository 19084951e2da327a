// Argument parsing for every command: node:util parseArgs in strict mode,
// with its errors turned into one line a user can act on.
import { parseArgs } from 'node:util';

export class UsageError extends Error {}

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

export interface Parsed {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
}

export function parseCommand(command: string, argv: string[], options: OptionSpec): Parsed {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    return { values, positionals };
  } catch (e) {
    const msg = (e as Error).message.replace(/\. To specify a positional argument.*$/s, '').split('\n')[0];
    throw new UsageError(`${command}: ${msg} (see 'zeroboot ${command} --help')`);
  }
}

/** A subcommand: its arguments in, the exit code out. */
export type Subcommand = (argv: string[]) => Promise<number>;

/**
 * Runs the subcommand `argv[0]` of `command`. Without one, or with --help,
 * prints `help` (exit 2 when nothing was asked, 0 for --help); an unknown
 * one is a usage error listing the known ones.
 */
export async function dispatch(command: string, argv: string[], subcommands: Record<string, Subcommand>, help: string): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(help);
    return sub === undefined ? 2 : 0;
  }
  const run = Object.hasOwn(subcommands, sub) ? subcommands[sub] : undefined;
  if (!run) throw new UsageError(`${command}: unknown command "${sub}" (use ${Object.keys(subcommands).join(', ')})`);
  return run(rest);
}

export function stringOpt(p: Parsed, name: string): string | undefined {
  const v = p.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function listOpt(p: Parsed, name: string): string[] {
  const v = p.values[name];
  if (Array.isArray(v)) return v.map(String);
  return typeof v === 'string' ? [v] : [];
}

export function intOpt(p: Parsed, command: string, name: string, min: number, max: number): number | undefined {
  const v = stringOpt(p, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) throw new UsageError(`${command}: --${name} must be an integer between ${min} and ${max}, got "${v}"`);
  return n;
}
