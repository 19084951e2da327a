// Disk I/O counters: bytes moved and failed calls, per file set (a
// namespace's index or data files, for NSINFO's stats_*) and summed for the
// whole process (INFO's *_disk_* lines, which outlive deleted namespaces).
export interface IoCounters {
  readBytes: number;
  writeBytes: number;
  readFailed: number;
  writeFailed: number;
  /** unix time of the last failure, 0 when none */
  lastFailure: number;
}

export function newIoCounters(): IoCounters {
  return { readBytes: 0, writeBytes: 0, readFailed: 0, writeFailed: 0, lastFailure: 0 };
}

/** Counts into every sink given (the file set's own and the process totals). */
export class IoMeter {
  readonly own = newIoCounters();
  private readonly sinks: IoCounters[];

  constructor(total?: IoCounters) {
    this.sinks = total ? [this.own, total] : [this.own];
  }

  read(bytes: number): void {
    for (const s of this.sinks) s.readBytes += bytes;
  }

  wrote(bytes: number): void {
    for (const s of this.sinks) s.writeBytes += bytes;
  }

  failed(kind: 'read' | 'write'): void {
    const now = Math.floor(Date.now() / 1000);
    for (const s of this.sinks) {
      if (kind === 'read') s.readFailed++;
      else s.writeFailed++;
      s.lastFailure = now;
    }
  }
}
