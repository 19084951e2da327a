// The kernel command line: the server renders the line a machine boots
// with from its merged arguments, and a node reads it back from
// /proc/cmdline. The Zero-OS reference prints `nomodeset version=..
// runmode=.. panic=..` first; the rest follow sorted so the line is stable
// across config edits. Rendered values land inside an iPXE script or a GRUB
// configuration, so they are held to a character set that cannot split a
// word, expand a setting or start a command. Parsing follows the kernel's
// own rules (lib/cmdline.c next_arg), so any line a boot loader passed reads
// as the kernel read it.

export type KernelArgs = Record<string, string | number | null>;

export const RUNMODES = ['prod', 'test', 'dev', 'qa'] as const;
export type Runmode = (typeof RUNMODES)[number];

/** The kernel argument naming the boot server's base URL (`zeroboot.server=http://10.0.0.1:8080`): the server writes it, the node's agent reads it. */
export const SERVER_ARG = 'zeroboot.server';

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

/** One word of a command line as the kernel splits it: `key=value`, or a bare `key` (value null). */
export interface CmdlineParam {
  key: string;
  value: string | null;
}

// The kernel's isspace(): blank, \t \n \v \f \r.
const isSpace = (c: string) => c === ' ' || (c >= '\t' && c <= '\r');

/**
 * Splits a command line as the kernel does (lib/cmdline.c `next_arg`):
 * words end at whitespace outside double quotes; the first `=` (not at the
 * word's start) splits key and value; a value or a whole word in quotes
 * loses its enclosing quotes, quotes elsewhere stay. Words after a bare `--`
 * are the init program's (`init`), not the kernel's.
 */
export function parseCmdlineParams(line: string): { params: CmdlineParam[]; init: CmdlineParam[] } {
  const params: CmdlineParam[] = [];
  const init: CmdlineParam[] = [];
  let into = params;
  let pos = 0;
  const skipSpaces = () => {
    while (pos < line.length && isSpace(line[pos])) pos++;
  };
  skipSpaces();
  while (pos < line.length) {
    let start = pos;
    let inQuote = false;
    let quoted = false;
    if (line[start] === '"') {
      start++;
      inQuote = quoted = true;
    }
    let end = start;
    let equals = 0;
    for (; end < line.length; end++) {
      const c = line[end];
      if (isSpace(c) && !inQuote) break;
      // As in C, 0 means "none": a `=` opening the word is part of the key.
      if (equals === 0 && c === '=') equals = end - start;
      if (c === '"') inQuote = !inQuote;
    }
    // `end` is one past the word; the kernel cuts a closing quote by writing NUL over it.
    let wordEnd = end;
    let key: string;
    let value: string | null = null;
    if (equals === 0) {
      if (quoted && end > start && line[end - 1] === '"') wordEnd = end - 1;
      key = line.slice(start, wordEnd);
    } else {
      key = line.slice(start, start + equals);
      let valueStart = start + equals + 1;
      if (line[valueStart] === '"') {
        valueStart++;
        if (line[end - 1] === '"') wordEnd = end - 1;
      }
      if (quoted && end > start && line[end - 1] === '"') wordEnd = end - 1;
      value = line.slice(valueStart, Math.max(valueStart, wordEnd));
    }
    pos = end < line.length ? end + 1 : end;
    skipSpaces();
    if (into === params && value === null && key === '--') {
      into = init;
      continue;
    }
    into.push({ key, value });
  }
  return { params, init };
}

/** The kernel's parameters of a command line (before any `--`) by key; a key given twice keeps its last value, as most kernel parameters do. */
export function parseCmdline(line: string): KernelArgs {
  // fromEntries defines own properties, so a `__proto__` word is a key like any other.
  const byKey = new Map<string, string | null>();
  for (const { key, value } of parseCmdlineParams(line).params) byKey.set(key, value);
  return Object.fromEntries(byKey);
}

/**
 * The arguments plus `zeroboot.server=<base>`, unless the profile, group or
 * machine already sets it (an operator's URL wins, e.g. behind a proxy), or
 * the base holds a character a kernel argument may not (an IPv6 literal's
 * brackets): then the node boots without it rather than not at all.
 */
export function withServer(args: KernelArgs, extra: string | undefined, base: string): KernelArgs {
  if (Object.hasOwn(args, SERVER_ARG) || (extra ?? '').split(/[ \t]+/).some((w) => w.startsWith(`${SERVER_ARG}=`))) return args;
  const withArg = { ...args, [SERVER_ARG]: base.replace(/\/+$/, '') };
  try {
    cmdlineWords({ [SERVER_ARG]: withArg[SERVER_ARG] });
  } catch {
    return args;
  }
  return withArg;
}
