// "Why didn't it boot?" against the whole server (zeroboot serve) in a
// namespace, each cause reproduced by a crafted client with real tools:
// a chainload loop (iPXE's DHCP not recognised, so it is handed the iPXE
// binary again), a node stuck in its image (kernel and initrd fetched, no
// report), an offer never requested, GRUB fetched but its configuration
// asked of another server, and (with the server in proxy mode) a PXE ROM
// that ignores the proxy offers. The answer comes from the management API,
// /api/machines/<mac>/why.
import test from 'ava';
import type { Netns } from '../helpers/netns.ts';
import { probe } from '../helpers/dhcp-harness.ts';
import { startPxeSegment, type PxeSegment } from '../helpers/pxe-segment.ts';

const SERVER = '10.79.0.1';
const API = 'http://127.0.0.1:8081/api';
const LOOP_MAC = '52:54:00:bb:00:01';
const STUCK_MAC = '52:54:00:bb:00:02';
const SHY_MAC = '52:54:00:bb:00:03';
const GRUB_LOST_MAC = '52:54:00:bb:00:04';
const GRUB_OK_MAC = '52:54:00:bb:00:05';
// The proxy segment: a ROM that ignores our proxy offers, and one that does the :4011 exchange.
const PROXY_SERVER = '10.79.1.1';
const DEAF_MAC = '52:54:00:bb:01:01';
const HEARS_MAC = '52:54:00:bb:01:02';
const HEARS_IP = '10.79.1.60';
const ROM = { 60: Buffer.from('PXEClient:Arch:00000:UNDI:002001').toString('hex'), 93: '0000' };
// After GRUB's download the server waits this long for its configuration request (boot/grub/watch.ts).
const GRUB_WAIT_MS = 30_000;

let seg: PxeSegment;
let proxySeg: PxeSegment;
let ns: Netns;
const hosts: Record<string, Netns> = {};

test.before(async () => {
  [seg, proxySeg] = await Promise.all([
    startPxeSegment('zbwhy', '10.79.0', [LOOP_MAC, STUCK_MAC, SHY_MAC, GRUB_LOST_MAC, GRUB_OK_MAC], { secureBoot: true }),
    // No pool: another server gives the addresses; the ROM that does the :4011 exchange holds one of its.
    startPxeSegment('zbwhyp', '10.79.1', [DEAF_MAC], { mode: 'proxy', staticHosts: { [HEARS_MAC]: `${HEARS_IP}/24` } }),
  ]);
  ns = seg.ns;
  Object.assign(hosts, seg.hosts);
});

test.after.always(async () => {
  await seg?.destroy();
  await proxySeg?.destroy();
});

interface Why {
  mac: string;
  stage: string;
  state: string;
  cause?: { id: string; title: string; explanation: string; advice: string };
  evidence: { kind: string }[];
}

async function why(mac: string, query = '', on: Netns = ns): Promise<Why> {
  const r = await on.exec('curl', ['-fsS', `${API}/machines/${mac}/why${query}`]);
  if (r.code !== 0) throw new Error(`why ${mac}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Why;
}

async function until(what: string, f: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('a chainload loop: iPXE is given the iPXE binary again; the cause names it and what to do', async (t) => {
  const first = await seg.dhcp(LOOP_MAC, false);
  t.is(first.bootFile, 'undionly.kpxe');
  await seg.tftp(LOOP_MAC, first.bootFile);
  // An iPXE build that sends no user class "iPXE" looks like the ROM again.
  const again = await seg.dhcp(LOOP_MAC, false);
  t.is(again.bootFile, 'undionly.kpxe');
  await seg.tftp(LOOP_MAC, again.bootFile);
  await until('the loop diagnosed', async () => (await why(LOOP_MAC, '?quietSeconds=1')).cause?.id === 'chainload-loop');
  const w = await why(LOOP_MAC, '?quietSeconds=1');
  t.is(w.stage, 'loader');
  t.regex(w.cause!.explanation, /undionly\.kpxe was fetched 2 times/);
  t.regex(w.cause!.advice, /user class "iPXE"/);
  t.is(w.evidence.length, 2);
});

test('stuck in the image: kernel and initrd fetched, no report; progressing until the report deadline passes', async (t) => {
  const host = hosts[STUCK_MAC];
  const pxe = await seg.dhcp(STUCK_MAC, false);
  await seg.tftp(STUCK_MAC, pxe.bootFile);
  const ipxe = await seg.dhcp(STUCK_MAC, true);
  t.is(ipxe.bootFile, `http://${SERVER}:8080/boot.ipxe`);
  const script = await host.exec('curl', ['-fsS', `http://${SERVER}:8080/ipxe?mac=${STUCK_MAC.replace(/:/g, '-')}`]);
  for (const url of new Set(script.stdout.match(/http:\/\/\S*(vmlinuz|initramfs\.img)\S*/g) ?? [])) {
    const r = await host.exec('curl', ['-fsS', '-o', '/dev/null', url]);
    t.is(r.code, 0, url);
  }
  const fresh = await why(STUCK_MAC);
  t.is(fresh.state, 'progressing', 'within the report deadline nothing is wrong yet');
  t.is(fresh.cause, undefined);
  await until('the report deadline', async () => (await why(STUCK_MAC, '?reportSeconds=1')).cause?.id === 'stuck-in-image');
  const w = await why(STUCK_MAC, '?reportSeconds=1');
  t.is(w.stage, 'initrd');
  t.regex(w.cause!.advice, /no driver for its NIC/);
});

test('an offer never requested: the client took another server\'s offer or never heard ours', async (t) => {
  const replies = await probe(hosts[SHY_MAC], {
    bind: { port: 68 },
    to: { address: '255.255.255.255', port: 67 },
    packets: [{ mac: SHY_MAC, xid: 0x51, flags: 0x8000, options: { 53: '01', 60: Buffer.from('PXEClient:Arch:00000:UNDI:002001').toString('hex'), 93: '0000' } }],
    waitMs: 5000,
    expect: 1,
  });
  t.is(replies.length, 1, 'the server offered');
  await until('the offer seen as not taken', async () => (await why(SHY_MAC, '?quietSeconds=1')).cause?.id === 'offer-not-taken');
  const w = await why(SHY_MAC, '?quietSeconds=1');
  t.is(w.stage, 'dhcp');
  t.regex(w.cause!.explanation, /offer\(s\) of 10\.79\.0\.1\d\d went out/);
});

test('GRUB fetched, its configuration asked of another server: the cause says next-server; GRUB that asks here is not blamed', async (t) => {
  // Both walk the signed chain as a UEFI PXE ROM: shim, then GRUB, over TFTP.
  const walk = async (mac: string) => {
    const rom = await seg.dhcp(mac, false, 'efi');
    t.is(rom.bootFile, 'images/shimx64.efi');
    await seg.tftp(mac, rom.bootFile);
    await seg.tftp(mac, 'images/grubx64.efi');
  };
  await Promise.all([walk(GRUB_LOST_MAC), walk(GRUB_OK_MAC)]);
  // The GRUB that found this server asks for its per-machine configuration; the other asks someone else.
  await seg.tftp(GRUB_OK_MAC, `images/grub/grub.cfg-${GRUB_OK_MAC}`);
  const fresh = await why(GRUB_LOST_MAC, '?quietSeconds=1');
  t.not(fresh.cause?.id, 'grub-wrong-server', 'not before GRUB had time to ask');
  await until('GRUB seen asking elsewhere', async () => (await why(GRUB_LOST_MAC, '?quietSeconds=1')).cause?.id === 'grub-wrong-server', GRUB_WAIT_MS + 60_000);
  const w = await why(GRUB_LOST_MAC, '?quietSeconds=1');
  t.is(w.stage, 'loader');
  t.regex(w.cause!.explanation, /GRUB came over TFTP from this server/);
  t.regex(w.cause!.advice, /next-server/);
  t.is(w.evidence.length, 1);
  t.is(w.evidence[0].kind, 'grub.error');
  const ok = await why(GRUB_OK_MAC, '?quietSeconds=1');
  t.not(ok.cause?.id, 'grub-wrong-server', JSON.stringify(ok));
});

test('proxy mode: a PXE ROM that ignores the proxy offers (nothing on :4011, no TFTP) is named; one that asks on :4011 is not', async (t) => {
  const pns = proxySeg.ns;
  const discover = (host: Netns, mac: string, xid: number) =>
    probe(host, { bind: { port: 68 }, to: { address: '255.255.255.255', port: 67 }, packets: [{ mac, xid, flags: 0x8000, options: { 53: '01', ...ROM } }], waitMs: 5000, expect: 1 });
  const deaf = await discover(proxySeg.hosts[DEAF_MAC], DEAF_MAC, 0x61);
  t.is(deaf.length, 1, 'the server sent its proxy offer');
  t.is(deaf[0].yiaddr, '0.0.0.0', 'a proxy offer gives no address');
  t.is(deaf[0].file, 'undionly.kpxe');
  const hears = proxySeg.hosts[HEARS_MAC];
  t.is((await discover(hears, HEARS_MAC, 0x62)).length, 1);
  // The ROM that listens: its address came from the other server, it asks us on :4011.
  const ack = await probe(hears, { bind: { port: 68 }, to: { address: PROXY_SERVER, port: 4011 }, packets: [{ mac: HEARS_MAC, xid: 0x63, ciaddr: HEARS_IP, options: { 53: '03', ...ROM } }], waitMs: 5000, expect: 1 });
  t.is(ack.length, 1, 'the :4011 exchange was answered');
  const fresh = await why(DEAF_MAC, '', pns);
  t.is(fresh.state, 'progressing', 'within the quiet time nothing is wrong yet');
  await until('the ignored proxy offer diagnosed', async () => (await why(DEAF_MAC, '?quietSeconds=1', pns)).cause?.id === 'proxy-ignored');
  const w = await why(DEAF_MAC, '?quietSeconds=1', pns);
  t.is(w.stage, 'dhcp');
  t.regex(w.cause!.explanation, /1 proxy offer\(s\) went out \(boot file undionly\.kpxe\)/);
  t.regex(w.cause!.advice, /options 66\/67/);
  t.is(w.evidence.length, 1);
  const heard = await why(HEARS_MAC, '?quietSeconds=1', pns);
  t.not(heard.cause?.id, 'proxy-ignored', JSON.stringify(heard));
});

test('a MAC the server never saw is a 404 with a hint; a bad threshold is a 400; the node port does not answer it', async (t) => {
  const unknown = await ns.exec('curl', ['-sS', '-w', '\n%{http_code}', `${API}/machines/52:54:00:bb:00:99/why`]);
  t.regex(unknown.stdout, /seen nothing from it[^]*\n404$/);
  const bad = await ns.exec('curl', ['-sS', '-w', '\n%{http_code}', `${API}/machines/${LOOP_MAC}/why?quietSeconds=0`]);
  t.regex(bad.stdout, /quietSeconds must be an integer[^]*\n400$/);
  const fromNode = await hosts[LOOP_MAC].exec('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://${SERVER}:8080/api/machines/${LOOP_MAC}/why`]);
  t.is(fromNode.stdout, '404');
});
