// The kernel command line a machine boots with, built from its merged
// arguments. The Zero-OS reference prints `nomodeset version=.. runmode=..
// panic=..` first; the rest follow sorted so the line is stable across
// config edits. Values land inside an iPXE script, so they are held to a
// character set that cannot split a word, expand a setting or start a command.

export type KernelArgs = Record<string, string | number | null>;

export const RUNMODES = ['prod', 'test', 'dev', 'qa'] as const;
export type Runmode = (typeof RUNMODES)[number];

/** Arguments printed first, in this order, when present. */
export const LEADING_ARGS = ['nomodeset', 'version', 'runmode', 'panic'] as const;

/** The arguments the Zero-OS bootstrap service always generates. */
export const REFERENCE_ARGS: KernelArgs = { nomodeset: null, version: 'v3', runmode: 'prod', panic: 7200 };

const U32_MAX = 4_294_967_295;
const KEY = /^[A-Za-z0-9_.:-]+$/;
// No whitespace, quotes, `$`, `{`, `}`, `&`, `|`, `#`, `\`, `;` or controls.
const VALUE = /^[A-Za-z0-9_.,:/?@+=%~^-]*$/;

export class CmdlineError extends Error {
  readonly key: string;
  constructor(key: string, message: string) {
    super(message);
    this.key = key;
  }
}
export class RunmodeError extends CmdlineError {}
export class FarmerIdError extends CmdlineError {}

function valueText(key: string, value: string | number | null): string | null {
  if (value === null) return null;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new CmdlineError(key, `kernel argument ${key} must be a finite number, got ${value}`);
    return String(value);
  }
  if (typeof value !== 'string') throw new CmdlineError(key, `kernel argument ${key} must be a string, number or null`);
  return value;
}

function checkRunmode(value: string | null): void {
  if (value === null || !(RUNMODES as readonly string[]).includes(value)) {
    throw new RunmodeError('runmode', `runmode must be one of ${RUNMODES.join(', ')}, got ${value === null ? 'a bare key' : JSON.stringify(value)}`);
  }
}

function checkFarmerId(value: string | null): void {
  // Digits only: "1e3", " 7" and "0x10" are numbers to JavaScript, not to the node.
  if (value === null || !/^[0-9]{1,10}$/.test(value) || Number(value) > U32_MAX) {
    throw new FarmerIdError('farmer_id', `farmer_id must be an integer from 0 to ${U32_MAX}, got ${value === null ? 'a bare key' : JSON.stringify(value)}`);
  }
}

/** One `key=value` (or bare `key`) word per argument, in boot order. */
export function cmdlineWords(args: KernelArgs, extra?: string): string[] {
  const words: string[] = [];
  const keys = Object.keys(args);
  const leading = LEADING_ARGS.filter((k) => keys.includes(k));
  const rest = keys.filter((k) => !(LEADING_ARGS as readonly string[]).includes(k)).sort();
  for (const key of [...leading, ...rest]) {
    if (!KEY.test(key)) throw new CmdlineError(key, `kernel argument name ${JSON.stringify(key)} may only hold letters, digits, "_", ".", ":" and "-"`);
    const value = valueText(key, args[key]);
    if (key === 'runmode') checkRunmode(value);
    if (key === 'farmer_id') checkFarmerId(value);
    if (value !== null && !VALUE.test(value)) {
      throw new CmdlineError(key, `kernel argument ${key}=${JSON.stringify(value)} holds a character iPXE or the kernel would split on (allowed: letters, digits and _ . , : / ? @ + = % ~ ^ -)`);
    }
    words.push(value === null ? key : `${key}=${value}`);
  }
  for (const word of (extra ?? '').split(/[ \t]+/).filter((w) => w !== '')) {
    if (!VALUE.test(word)) throw new CmdlineError('cmdline', `extra kernel command line word ${JSON.stringify(word)} holds a character that is not allowed (letters, digits and _ . , : / ? @ + = % ~ ^ -)`);
    words.push(word);
  }
  return words;
}

/** The kernel command line: leading reference arguments, the rest sorted, then `extra` verbatim. */
export function buildCmdline(args: KernelArgs, extra?: string): string {
  return cmdlineWords(args, extra).join(' ');
}
