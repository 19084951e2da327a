// A one-line progress bar for long commands, on a terminal only: redrawn at
// most every `intervalMs` (a redraw per file would cost more than the work on
// a tree of small files), cleared at the end; nothing at all is written when
// the stream is not a TTY (logs and pipes get only the final summary).

export interface ProgressBar {
  /** `done` of `total` units (bytes); without a total, only the count is shown. `detail` follows the figures. */
  update(done: number, total?: number, detail?: string): void;
  /** Clears the line, if anything was drawn. */
  end(): void;
}

export interface ProgressOptions {
  stream?: NodeJS.WriteStream;
  intervalMs?: number;
  now?: () => number;
}

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

/** The line for a state; `width` is the terminal's columns. Pure, for tests. */
export function renderProgress(label: string, done: number, total: number | undefined, detail: string | undefined, width: number): string {
  const tail = detail ? `  ${detail}` : '';
  if (total === undefined || total <= 0) return `${label} ${mib(done)}${tail}`.slice(0, width - 1);
  const frac = Math.min(1, Math.max(0, done / total));
  const figures = ` ${String(Math.floor(frac * 100)).padStart(3)}% ${mib(done)}/${mib(total)}${tail}`;
  const barWidth = Math.max(0, Math.min(40, width - 1 - label.length - 3 - figures.length));
  const filled = Math.round(frac * barWidth);
  const bar = barWidth > 0 ? ` [${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]` : '';
  return `${label}${bar}${figures}`.slice(0, width - 1);
}

export function progressBar(label: string, opts: ProgressOptions = {}): ProgressBar {
  const stream = opts.stream ?? process.stderr;
  if (!stream.isTTY) return { update: () => undefined, end: () => undefined };
  const interval = opts.intervalMs ?? 100;
  const now = opts.now ?? Date.now;
  let last = -Infinity;
  let shown = false;
  return {
    update(done, total, detail) {
      const t = now();
      if (t - last < interval) return;
      last = t;
      shown = true;
      stream.write(`\r\x1b[K${renderProgress(label, done, total, detail, stream.columns || 80)}`);
    },
    end() {
      if (shown) stream.write('\r\x1b[K');
      shown = false;
    },
  };
}
