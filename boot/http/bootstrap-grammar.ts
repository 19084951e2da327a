// The Zero-OS bootstrap service's URL grammar, as farmers already use it:
// `/<format>/<runmode>[/<farmid>[/<extra>[/<kernel>]]]` and `/kernel/<name>`.
// Pure: a request path in, a typed request or a typed refusal (with the HTTP
// status the reference answers) out. Every segment comes from the node
// network, so each is held to a narrow shape here, before anything is built.
import { cmdlineWords, CmdlineError, LEADING_ARGS, REFERENCE_ARGS, RUNMODES, SERVER_ARG } from '../../lib/cmdline.ts';
import type { KernelArgs, Runmode } from '../../lib/cmdline.ts';

/**
 * Formats built per request (script or media). `uefimg` is the USB image: it
 * holds the FAT file system with EFI/BOOT/BOOTX64.EFI the reference's uefimg
 * is. `krn` (iPXE as a Linux kernel with the script inside) is parsed so its
 * URLs get the same answers, but it is not offered (501).
 */
export const BOOTSTRAP_FORMATS = ['ipxe', 'uefi', 'iso', 'usb', 'uefimg', 'krn'] as const;
export type BootstrapFormat = (typeof BOOTSTRAP_FORMATS)[number];

/** The kernel's COMMAND_LINE_SIZE on x86 (bytes, with the NUL): a longer line is cut by the boot loader. */
export const MAX_CMDLINE_BYTES = 2047;
/** Longest `<extra>` segment accepted (decoded). */
export const MAX_EXTRA_BYTES = 1024;
/** Longest path the grammar reads at all. */
export const MAX_PATH_BYTES = 4096;
const KERNEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const U32_MAX = 4_294_967_295;

/** A refusal with the status to answer: 400 malformed, 401 unknown runmode (as the reference), 404 missing kernel or no such route. */
export class BootstrapRequestError extends Error {
  readonly status: 400 | 401 | 404;
  constructor(status: 400 | 401 | 404, message: string) {
    super(message);
    this.status = status;
  }
}

export type BootstrapRequest =
  | {
      kind: 'build';
      format: BootstrapFormat;
      runmode: Runmode;
      /** Absent: the node boots into farm 0 (no farmer_id word, as the reference). */
      farmId?: number;
      /** Extra kernel command line words, `___` already turned into `/`. */
      extra: string[];
      /** The kernel named in the URL (a profile name); absent: the default one. */
      kernel?: string;
    }
  | { kind: 'kernel'; name: string; /** Absent: the kernel itself; a number: that initrd of the set. */ initrd?: number };

export function isBootstrapFormat(s: string): s is BootstrapFormat {
  return (BOOTSTRAP_FORMATS as readonly string[]).includes(s);
}

/** Whether a request path belongs to the grammar (the exact `/ipxe` stays the per-machine script). */
export function ownsBootstrapPath(path: string): boolean {
  const slash = path.indexOf('/', 1);
  if (slash < 0) return false;
  const first = path.slice(1, slash);
  return first === 'kernel' || isBootstrapFormat(first);
}

function decodeSegment(raw: string, what: string): string {
  let s: string;
  try {
    s = decodeURIComponent(raw);
  } catch {
    throw new BootstrapRequestError(400, `bad percent-encoding in the ${what}`);
  }
  if (/[\u0000-\u001f\u007f]/.test(s)) throw new BootstrapRequestError(400, `the ${what} holds a control character`);
  return s;
}

/** A name segment (kernel): no separator, raw or encoded, and no dot-only name, so it can never lead out of a folder. */
function kernelName(raw: string): string {
  const name = decodeSegment(raw, 'kernel name');
  if (!KERNEL_NAME.test(name)) throw new BootstrapRequestError(400, `kernel name ${JSON.stringify(name.slice(0, 80))} refused: 1 to 64 letters, digits, "." "_" "-", starting with a letter or digit`);
  return name;
}

function farmIdOf(raw: string): number {
  const s = decodeSegment(raw, 'farm id');
  // Digits only: "1e3", "0x10", " 7" and "-1" are numbers to JavaScript, not to the node.
  if (!/^[0-9]{1,10}$/.test(s) || Number(s) > U32_MAX) throw new BootstrapRequestError(400, `farm id ${JSON.stringify(s.slice(0, 40))} refused: an integer from 0 to ${U32_MAX}`);
  return Number(s);
}

function extraOf(raw: string): string[] {
  // The reference's `___` stands for `/`; an encoded slash reads the same.
  const text = decodeSegment(raw, 'extra kernel arguments').replaceAll('___', '/');
  if (Buffer.byteLength(text) > MAX_EXTRA_BYTES) throw new BootstrapRequestError(400, `extra kernel arguments refused: longer than ${MAX_EXTRA_BYTES} bytes`);
  try {
    return cmdlineWords({}, text);
  } catch (e) {
    if (e instanceof CmdlineError) throw new BootstrapRequestError(400, e.message);
    throw e;
  }
}

/**
 * Parses a request path (still percent-encoded, no query). Segments split on
 * the raw `/` before decoding, so `%2F` never adds a segment; one trailing
 * slash is allowed (the reference's routes ignore it), empty segments are not.
 */
export function parseBootstrapPath(path: string): BootstrapRequest {
  if (path.length > MAX_PATH_BYTES) throw new BootstrapRequestError(400, `path refused: longer than ${MAX_PATH_BYTES} bytes`);
  const trimmed = path.endsWith('/') ? path.slice(0, -1) : path;
  const parts = trimmed.slice(1).split('/');
  const [format, ...rest] = parts;
  if (rest.some((p) => p === '')) throw new BootstrapRequestError(404, 'not found: empty path segment (the grammar is /<format>/<runmode>[/<farmid>[/<extra>[/<kernel>]]])');
  if (format === 'kernel') {
    if (rest.length === 1) return { kind: 'kernel', name: kernelName(rest[0]) };
    if (rest.length === 3 && rest[1] === 'initrd' && /^[0-9]{1,2}$/.test(rest[2])) return { kind: 'kernel', name: kernelName(rest[0]), initrd: Number(rest[2]) };
    throw new BootstrapRequestError(404, 'not found: kernels are /kernel/<name> and /kernel/<name>/initrd/<n>');
  }
  if (!isBootstrapFormat(format)) throw new BootstrapRequestError(404, `not found: unknown format ${JSON.stringify(format.slice(0, 40))} (known: ${BOOTSTRAP_FORMATS.join(', ')}, kernel)`);
  if (rest.length === 0) throw new BootstrapRequestError(404, `not found: /${format}/<runmode> needs a runmode (${RUNMODES.join(', ')})`);
  if (rest.length > 4) throw new BootstrapRequestError(404, `not found: /${format}/<runmode>/<farmid>/<extra>/<kernel> has at most 4 segments after the format`);
  const runmode = decodeSegment(rest[0], 'runmode');
  if (!(RUNMODES as readonly string[]).includes(runmode)) throw new BootstrapRequestError(401, `unknown runmode ${JSON.stringify(runmode.slice(0, 40))} (known: ${RUNMODES.join(', ')})`);
  const request: BootstrapRequest = { kind: 'build', format, runmode: runmode as Runmode, extra: [] };
  if (rest.length > 1) request.farmId = farmIdOf(rest[1]);
  if (rest.length > 2) request.extra = extraOf(rest[2]);
  if (rest.length > 3) request.kernel = kernelName(rest[3]);
  return request;
}

/**
 * The kernel command line of a bootstrap request: the reference's words
 * first and in its order (`nomodeset version=v3 runmode=<mode> panic=7200
 * [farmer_id=<id>]`), then the kernel set's own arguments but those
 * (console=, ...), `zeroboot.server=<base>` so the node reports here
 * (unless the set or the extra names one), the set's own cmdline text, and
 * the extra words last, so they win as the kernel reads the last of a key.
 */
export function bootstrapCmdline(req: { runmode: Runmode; farmId?: number; extra: string[] }, kernelSet: { args: KernelArgs; cmdline?: string }, base: string): string {
  const reference: KernelArgs = { ...REFERENCE_ARGS, runmode: req.runmode };
  if (req.farmId !== undefined) reference.farmer_id = req.farmId;
  const words = cmdlineWords(reference);
  const own: KernelArgs = {};
  // The URL alone decides the farm, as with the reference (no farm id: farm 0).
  for (const [k, v] of Object.entries(kernelSet.args)) if (k !== 'farmer_id' && !(LEADING_ARGS as readonly string[]).includes(k)) own[k] = v;
  const setText = kernelSet.cmdline ?? '';
  const named = (w: string) => w.startsWith(`${SERVER_ARG}=`);
  if (!Object.hasOwn(own, SERVER_ARG) && !req.extra.some(named) && !setText.split(/[ \t]+/).some(named)) {
    const server = base.replace(/\/+$/, '');
    // A base the kernel could not read as one word (an IPv6 literal) is left out rather than failing the boot.
    try {
      cmdlineWords({ [SERVER_ARG]: server });
      own[SERVER_ARG] = server;
    } catch {
      /* left out */
    }
  }
  words.push(...cmdlineWords(own, setText), ...req.extra);
  const line = words.join(' ');
  if (Buffer.byteLength(line) > MAX_CMDLINE_BYTES) throw new BootstrapRequestError(400, `the kernel command line would be ${Buffer.byteLength(line)} bytes; the kernel keeps ${MAX_CMDLINE_BYTES}: shorten the extra arguments`);
  return line;
}
