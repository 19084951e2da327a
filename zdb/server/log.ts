// The server's log lines, shaped like the reference's: seconds since start
// in brackets, then the message (`[     0.001234] [+] ...`). Written to
// stdout; --background with --logfile points stdout at the file.

export interface ZdbLog {
  info(msg: string): void;
  /** only with --verbose */
  verbose(msg: string): void;
  warn(msg: string): void;
}

/** Control bytes as \xNN: a client's namespace name or key can not start a line of its own (or move the cursor). */
export function escapeControl(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function createZdbLog(opts: { verbose: boolean; write?: (line: string) => void; start?: bigint }): ZdbLog {
  const start = opts.start ?? process.hrtime.bigint();
  const write = opts.write ?? ((line: string) => process.stdout.write(line));
  const stamp = () => {
    const s = Number(process.hrtime.bigint() - start) / 1e9;
    return `[${s.toFixed(6).padStart(15)}]`;
  };
  return {
    info: (m) => write(`${stamp()} ${escapeControl(m)}\n`),
    verbose: (m) => {
      if (opts.verbose) write(`${stamp()} ${escapeControl(m)}\n`);
    },
    warn: (m) => write(`${stamp()} ${escapeControl(m)}\n`),
  };
}

export const silentZdbLog: ZdbLog = { info() {}, verbose() {}, warn() {} };
