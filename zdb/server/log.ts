// The server's log lines, shaped like the reference's: seconds since start
// in brackets, then the message (`[     0.001234] [+] ...`). Written to
// stdout; --background with --logfile points stdout at the file.

export interface ZdbLog {
  info(msg: string): void;
  /** only with --verbose */
  verbose(msg: string): void;
  warn(msg: string): void;
}

export function createZdbLog(opts: { verbose: boolean; write?: (line: string) => void; start?: bigint }): ZdbLog {
  const start = opts.start ?? process.hrtime.bigint();
  const write = opts.write ?? ((line: string) => process.stdout.write(line));
  const stamp = () => {
    const s = Number(process.hrtime.bigint() - start) / 1e9;
    return `[${s.toFixed(6).padStart(15)}]`;
  };
  return {
    info: (m) => write(`${stamp()} ${m}\n`),
    verbose: (m) => {
      if (opts.verbose) write(`${stamp()} ${m}\n`);
    },
    warn: (m) => write(`${stamp()} ${m}\n`),
  };
}

export const silentZdbLog: ZdbLog = { info() {}, verbose() {}, warn() {} };
