// A benchmark stopped with Ctrl-C or killed by `timeout` skips its `finally`
// blocks, and network namespaces outlive the process that made them. This
// removes them (and what runs in them), and temporary folders, on SIGINT,
// SIGTERM or SIGHUP.
import { rmSync } from 'node:fs';

export interface RemovableSync {
  destroySync(): void;
}

const SIGNAL_NUMBERS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;
type HandledSignal = keyof typeof SIGNAL_NUMBERS;

/**
 * Until the returned function is called, a SIGINT, SIGTERM or SIGHUP removes
 * what `items` holds at that moment (last added first) and exits with 128 + the
 * signal's number, as a shell reports a process killed by it. `items` may grow.
 */
export function removeOnSignal(items: readonly RemovableSync[]): () => void {
  const signals = Object.keys(SIGNAL_NUMBERS) as HandledSignal[];
  const on = (signal: HandledSignal) => {
    for (const item of [...items].reverse()) item.destroySync();
    process.exit(128 + SIGNAL_NUMBERS[signal]);
  };
  for (const s of signals) process.on(s, on);
  return () => {
    for (const s of signals) process.off(s, on);
  };
}

/** A temporary folder as an item for removeOnSignal. */
export function folder(dir: string): RemovableSync {
  return { destroySync: () => rmSync(dir, { recursive: true, force: true }) };
}
