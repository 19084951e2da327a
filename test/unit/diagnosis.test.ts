// Every cause of the "why didn't it boot?" table from a crafted timeline,
// and the states around them (progressing, reported).
import test from 'ava';
import { diagnose, type DiagnosisInput } from '../../boot/diagnosis.ts';
import type { BootEvent, BootEventKind, EventDetail } from '../../boot/timeline.ts';

const MAC = '52:54:00:00:00:01';
const T0 = Date.parse('2026-12-05T10:00:00Z');
const ev = (s: number, kind: BootEventKind, detail?: EventDetail, reason?: string): BootEvent => ({ time: new Date(T0 + s * 1000).toISOString(), mac: MAC, kind, ...(detail ? { detail } : {}), ...(reason ? { reason } : {}) });
const at = (events: BootEvent[], s: number, over: Partial<DiagnosisInput> = {}) => diagnose({ events, now: T0 + s * 1000, quietMs: 30_000, reportMs: 180_000, ...over });

const pxe = [ev(0, 'dhcp.discover', { arch: 0 }), ev(0, 'dhcp.offer', { ip: '10.0.0.5', bootfile: 'undionly.kpxe' }), ev(1, 'dhcp.request'), ev(1, 'dhcp.ack', { ip: '10.0.0.5', bootfile: 'undionly.kpxe' })];
const loader = [ev(2, 'tftp.request', { file: 'undionly.kpxe' }), ev(3, 'tftp.done', { file: 'undionly.kpxe' })];
const ipxe = [ev(4, 'dhcp.discover', { ipxe: true }), ev(4, 'dhcp.offer', { ip: '10.0.0.5', ipxe: true }), ev(4, 'dhcp.request', { ipxe: true }), ev(4, 'dhcp.ack', { ip: '10.0.0.5', ipxe: true })];
const image = [ev(5, 'http.script'), ev(5, 'http.script'), ev(8, 'http.kernel', { path: 'images/vmlinuz' }), ev(12, 'http.initrd', { path: 'images/initrd' })];
const full = [...pxe, ...loader, ...ipxe, ...image];

test('a boot in progress has no cause; past the report deadline it is stuck in the image; a report after the kernel means reported', (t) => {
  t.like(at(full, 20), { stage: 'initrd', state: 'progressing', cause: undefined });
  t.like(at(full, 200), { stage: 'initrd', state: 'stopped' });
  t.is(at(full, 200).cause?.id, 'stuck-in-image');
  t.like(at(full, 200, { reportedAt: T0 + 30_000 }), { stage: 'reported', state: 'reported', cause: undefined });
  // A report from an earlier boot does not count for this one.
  t.is(at(full, 200, { reportedAt: T0 - 1000 }).cause?.id, 'stuck-in-image');
});

test('the iPXE binary fetched twice with no script between is a chainload loop, even across new DISCOVERs', (t) => {
  const events = [...pxe, ...loader, ...pxe.map((e) => ({ ...e, time: new Date(T0 + 6000).toISOString() })), ev(7, 'tftp.request', { file: 'undionly.kpxe' }), ev(8, 'tftp.done', { file: 'undionly.kpxe' })];
  const d = at(events, 9);
  t.is(d.cause?.id, 'chainload-loop');
  t.is(d.evidence.length, 2);
  t.is(at([...full, ...pxe.map((e) => ({ ...e, time: new Date(T0 + 300_000).toISOString() })), ...loader.map((e) => ({ ...e, time: new Date(T0 + 301_000).toISOString() }))], 305).cause?.id, undefined, 'a reboot after a script is a new attempt, not a loop');
});

test('proxy offers followed by nothing are a ROM ignoring proxyDHCP; a request on 4011 or a TFTP download is not', (t) => {
  const offers = [ev(0, 'dhcp.discover', { arch: 0 }), ev(0, 'dhcp.offer', { bootfile: 'undionly.kpxe' }), ev(4, 'dhcp.discover', { arch: 0 }), ev(4, 'dhcp.offer', { bootfile: 'undionly.kpxe' })];
  t.is(at(offers, 10).cause, undefined, 'still within the quiet time');
  t.is(at(offers, 40).cause?.id, 'proxy-ignored');
  t.is(at([...offers, ev(5, 'dhcp.request', { bootServer: true })], 40).cause?.id, undefined);
  t.is(at([...offers, ev(5, 'tftp.request', { file: 'undionly.kpxe' })], 40).cause?.id, undefined);
});

test('an offer with an address never requested', (t) => {
  const d = at(pxe.slice(0, 2), 40);
  t.is(d.cause?.id, 'offer-not-taken');
  t.like(d, { stage: 'dhcp', state: 'stopped' });
});

test('GRUB that never asked for its configuration points at the wrong server', (t) => {
  const events = [...pxe, ev(2, 'tftp.done', { file: 'images/grubx64.efi' }), ev(33, 'grub.error', { file: 'images/grubx64.efi' }, 'GRUB was downloaded but never asked this server for its configuration: it is asking another server; set next-server')];
  t.is(at(events, 40).cause?.id, 'grub-wrong-server');
});

test('a failed download or TFTP transfer names the file and the reason; a later success clears it; probes and optional files are no failures', (t) => {
  const failed = [...full.slice(0, -2), ev(8, 'http.error', { path: '/images/vmlinuz', status: 404 }, 'status 404')];
  const d = at(failed, 9);
  t.is(d.cause?.id, 'download-failed');
  t.regex(d.cause!.explanation, /images\/vmlinuz with status 404/);
  t.is(at([...failed, ev(9, 'http.kernel'), ev(10, 'http.initrd')], 11).cause, undefined);
  const tftpFail = [...pxe, ev(2, 'tftp.error', { file: 'undionly.kpxe' }, 'client stopped acknowledging')];
  t.is(at(tftpFail, 3).cause?.id, 'tftp-failed');
  t.is(at([...pxe, ev(2, 'tftp.error', { file: 'x.kpxe', probe: true })], 3).cause, undefined);
  t.is(at([...pxe, ev(2, 'tftp.error', { file: 'revocations.efi', optional: true })], 3).cause, undefined);
});

test('ignored DHCP packets say the rule that dropped them', (t) => {
  const d = at([ev(0, 'dhcp.ignored', undefined, 'reserved for another client')], 1);
  t.is(d.cause?.id, 'dhcp-ignored');
  t.is(d.cause?.explanation, 'reserved for another client');
});
