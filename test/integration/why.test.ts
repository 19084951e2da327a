// "Why didn't it boot?" against the whole server (zeroboot serve) in a
// namespace, each cause reproduced by a crafted client with real tools:
// a chainload loop (iPXE's DHCP not recognised, so it is handed the iPXE
// binary again), a node stuck in its image (kernel and initrd fetched, no
// report), and an offer never requested. The answer comes from the
// management API, /api/machines/<mac>/why.
import test from 'ava';
import type { Netns } from '../helpers/netns.ts';
import { probe } from '../helpers/dhcp-harness.ts';
import { startPxeSegment, type PxeSegment } from '../helpers/pxe-segment.ts';

const SERVER = '10.79.0.1';
const API = 'http://127.0.0.1:8081/api';
const LOOP_MAC = '52:54:00:bb:00:01';
const STUCK_MAC = '52:54:00:bb:00:02';
const SHY_MAC = '52:54:00:bb:00:03';

let seg: PxeSegment;
let ns: Netns;
const hosts: Record<string, Netns> = {};

test.before(async () => {
  seg = await startPxeSegment('zbwhy', '10.79.0', [LOOP_MAC, STUCK_MAC, SHY_MAC]);
  ns = seg.ns;
  Object.assign(hosts, seg.hosts);
});

test.after.always(async () => {
  await seg?.destroy();
});

interface Why {
  mac: string;
  stage: string;
  state: string;
  cause?: { id: string; title: string; explanation: string; advice: string };
  evidence: { kind: string }[];
}

async function why(mac: string, query = ''): Promise<Why> {
  const r = await ns.exec('curl', ['-fsS', `${API}/machines/${mac}/why${query}`]);
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

test('a MAC the server never saw is a 404 with a hint; a bad threshold is a 400; the node port does not answer it', async (t) => {
  const unknown = await ns.exec('curl', ['-sS', '-w', '\n%{http_code}', `${API}/machines/52:54:00:bb:00:99/why`]);
  t.regex(unknown.stdout, /seen nothing from it[^]*\n404$/);
  const bad = await ns.exec('curl', ['-sS', '-w', '\n%{http_code}', `${API}/machines/${LOOP_MAC}/why?quietSeconds=0`]);
  t.regex(bad.stdout, /quietSeconds must be an integer[^]*\n400$/);
  const fromNode = await hosts[LOOP_MAC].exec('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://${SERVER}:8080/api/machines/${LOOP_MAC}/why`]);
  t.is(fromNode.stdout, '404');
});
