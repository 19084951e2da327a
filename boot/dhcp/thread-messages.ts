// What the DHCP thread (thread-worker.ts) and the main thread (thread.ts)
// tell each other. Plain data only: structured clone carries it, and no
// closure crosses a thread.
import type { BootEventKind, EventDetail } from '../timeline.ts';
import type { Group, Labels, MachineOverride } from '../selection.ts';
import type { Profile } from '../../lib/profile.ts';
import type { Level } from '../log.ts';
import type { LeaseInfo } from './leases.ts';
import type { DhcpSettings } from './settings.ts';

/** One thing the DHCP thread did that the main thread's timeline, labels or log must see, in order. */
export type Entry =
  // The last field is when the DHCP thread saw it (ms): the timeline keeps that time, not the replay's.
  | ['event', string, BootEventKind, EventDetail | undefined, string | undefined, number]
  | ['ignored', string, BootEventKind, string, EventDetail | undefined, number]
  | ['labels', string, Labels]
  | ['log', Level, string, Record<string, unknown> | undefined];

/** The worker's configuration: the selector is re-created from its parts there. */
export interface WorkerConfig {
  settings: DhcpSettings;
  selection: { profiles: Profile[]; groups: Group[]; machines: MachineOverride[] };
  /** The main thread's labels when the worker starts (HTTP learns some that DHCP's selection uses). */
  labels: [string, Labels][];
}

export type FromWorker =
  | { type: 'ready'; leases: LeaseInfo[] }
  | { type: 'failed'; message: string; dhcpError: boolean }
  /** `dropped`: entries not kept while the main thread was behind; `leases`: a new lease listing. */
  /** `entries`: Entry[] as JSON (cheaper than structured clone for many small objects; absent values are null). */
  | { type: 'batch'; entries: string; dropped: number; leases?: LeaseInfo[] }
  | { type: 'closed' }
  /** An exception nothing caught: the worker stopped its sockets and ends. */
  | { type: 'crashed'; error: string };

export type ToWorker = { type: 'ack' } | { type: 'close' } | { type: 'crash' } | { type: 'labels'; mac: string; labels: Labels };
