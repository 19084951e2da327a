// Watches the signed chain from the timeline: once a machine has fetched
// GRUB, its configuration request should follow within seconds. When it does
// not, GRUB is asking another server: Debian's GRUB takes its TFTP server
// from the DHCP ACK, so next to another address server (proxy mode) that
// server must name us as next-server. The timeline then says so, instead of
// just stopping after grubx64.efi.
import type { BootEvent, BootTimeline } from '../timeline.ts';
import { GRUB_FILE } from '../../lib/loaders.ts';

export interface GrubWatchOptions {
  timeline: BootTimeline;
  /** Our address, named in the advice. */
  address: string;
  proxyMode: boolean;
  /** How long after the GRUB download its configuration request may take. */
  timeoutMs?: number;
}

export const GRUB_CONFIG_TIMEOUT_MS = 30_000;

/** Starts watching; returns the function that stops it. */
export function watchGrub(opts: GrubWatchOptions): () => void {
  const pending = new Map<string, NodeJS.Timeout>();
  const clear = (mac: string) => {
    const t = pending.get(mac);
    if (t) clearTimeout(t);
    pending.delete(mac);
  };
  const advice = opts.proxyMode
    ? `the address server must name this server (${opts.address}) as next-server (BOOTP siaddr), because Debian's GRUB takes its TFTP server from the address server's ACK`
    : `another DHCP server may be answering this machine and naming a different next-server`;
  const onEvent = (e: BootEvent) => {
    const file = typeof e.detail?.file === 'string' ? e.detail.file : '';
    if (e.kind === 'tftp.done' && (file === GRUB_FILE || file.endsWith(`/${GRUB_FILE}`))) {
      clear(e.mac);
      const timer = setTimeout(() => {
        pending.delete(e.mac);
        opts.timeline.record(e.mac, 'grub.error', { file }, `GRUB was downloaded but never asked this server for its configuration: it is asking another server; ${advice}`);
      }, opts.timeoutMs ?? GRUB_CONFIG_TIMEOUT_MS);
      timer.unref();
      pending.set(e.mac, timer);
    } else if (pending.has(e.mac) && (e.kind === 'grub.config' || e.kind === 'grub.error' || (e.kind === 'tftp.request' && /(^|\/)grub\//.test(file)))) {
      clear(e.mac);
    }
  };
  const unsubscribe = opts.timeline.subscribe(onEvent);
  return () => {
    unsubscribe();
    for (const mac of [...pending.keys()]) clear(mac);
  };
}
