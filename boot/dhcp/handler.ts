// The one interface the three DHCP services share: full (addresses and boot
// files on :67), proxy (boot files only on :67) and the PXE boot server
// (:4011). A handler sees one screened request and says what to do; it never
// touches a socket or the disk, so each can be tested with plain packets.
// Full mode with leases in PostgreSQL says it later (a promise); the others
// answer at once.
import type { DhcpPacket } from './codec.ts';
import type { BootDecision } from './classifier.ts';
import type { Answer } from './reply.ts';
import type { LeaseRecord } from './leases.ts';

/** A request that passed the common checks (request.ts), with the policy decision for its client. */
export interface Exchange {
  packet: DhcpPacket;
  mac: string;
  /** Option 53. */
  type: number;
  decision: BootDecision;
  iface: { name: string; address: string; servesPool: boolean };
  /** The machine entry's hostname, when one is configured. */
  hostname?: string;
}

export type Outcome =
  /** Send `answer`; with `persist`, only once that record is on disk (an ACK must not outrun its lease). */
  | { kind: 'reply'; answer: Answer; persist?: LeaseRecord }
  /** Store a change that has no answer (DECLINE, RELEASE). */
  | { kind: 'store'; record: LeaseRecord; what: string }
  /** Say nothing, for this reason (the timeline shows it). */
  | { kind: 'ignore'; reason: string };

export interface DhcpHandler {
  handle(x: Exchange): Outcome | Promise<Outcome>;
}

export function ignore(reason: string): Outcome {
  return { kind: 'ignore', reason };
}

export const TYPE_NAME: Record<number, string> = {
  1: 'DISCOVER', 2: 'OFFER', 3: 'REQUEST', 4: 'DECLINE', 5: 'ACK', 6: 'NAK', 7: 'RELEASE', 8: 'INFORM',
};
