// GET /metrics scraped while a client boots through the whole server, run
// by its CLI in a namespace: real udhcpc (as the PXE ROM, then as iPXE),
// atftp for the loader, curl for the script, kernel and initrd and for a
// report signed by the agent's own code. The counts each stage should move
// are read from the parsed text. A hostile host then claims hundreds of
// MACs and sends packets whose ignore reasons all differ: the counts move,
// the number of series does not. Nodes reach /metrics on neither port.
import test from 'ava';
import { writeFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Netns } from '../helpers/netns.ts';
import { probe } from '../helpers/dhcp-harness.ts';
import { startPxeSegment, type PxeSegment } from '../helpers/pxe-segment.ts';
import { parsePromText, sampleValue, type Sample } from '../../harness/prom-text.ts';
import { collectInventory } from '../../agent/inventory/index.ts';
import { capacity } from '../../agent/inventory/capacity.ts';
import { loadOrCreateIdentity } from '../../agent/identity.ts';
import { buildReport, signReport } from '../../agent/report.ts';
import { REPORT_PATH } from '../../lib/signed-report.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAC = '52:54:00:ab:00:01';
const ATTACKER = '52:54:00:ab:00:66';
const SERVER = '10.79.0.1';
const METRICS = 'http://127.0.0.1:8081/metrics';
const FIX = path.join(ROOT, 'test/fixtures/agent');
const KERNEL_BYTES = 2 * 1024 * 1024 + 5;
const INITRD_BYTES = 300_000;

let seg: PxeSegment;
let ns: Netns;
let client: Netns;
let attacker: Netns;
let dir: string;

test.before(async () => {
  // A pool of 4: the attacker's flood runs it dry, so "pool_full" is counted too.
  seg = await startPxeSegment('zbmetric', '10.79.0', [MAC], { poolSize: 4, staticHosts: { [ATTACKER]: '10.79.0.66/24' }, kernelBytes: KERNEL_BYTES, initrdBytes: INITRD_BYTES });
  ({ ns, dir } = seg);
  client = seg.hosts[MAC];
  attacker = seg.hosts[ATTACKER];
});

test.after.always(async () => {
  await seg?.destroy();
});

async function scrape(): Promise<{ text: string; samples: Sample[] }> {
  const r = await ns.exec('curl', ['-fsS', '--max-time', '30', METRICS]);
  if (r.code !== 0) throw new Error(`scrape failed: ${r.stderr}`);
  return { text: r.stdout, samples: parsePromText(r.stdout) };
}

/** Scrapes until `ok` holds (the server handles packets after the client has sent them), or the deadline. */
async function scrapeUntil(ok: (s: Sample[]) => boolean, timeoutMs = 30_000): Promise<Sample[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const { samples } = await scrape();
    if (ok(samples) || Date.now() > end) return samples;
    await new Promise((r) => setTimeout(r, 200));
  }
}

test.serial('a boot moves DHCP, TFTP, HTTP, stage and report counts; zdb health comes from the report', async (t) => {
  const before = (await scrape()).samples;
  t.is(sampleValue(before, 'zeroboot_boots_started_total'), 0);

  const pxe = await seg.dhcp(MAC, false);
  t.is(pxe.bootFile, 'undionly.kpxe');
  const loader = path.join(dir, 'undionly.kpxe');
  await seg.tftp(MAC, 'undionly.kpxe', loader);
  const loaderBytes = (await readFile(loader)).length;
  const ipxe = await seg.dhcp(MAC, true);
  t.is(ipxe.bootFile, `http://${SERVER}:8080/boot.ipxe`);
  t.is((await client.exec('curl', ['-fsS', '-o', '/dev/null', `http://${SERVER}:8080/boot.ipxe`])).code, 0);
  const script = (await client.exec('curl', ['-fsS', `http://${SERVER}:8080/ipxe?mac=${MAC.replace(/:/g, '-')}&arch=x86_64`])).stdout;
  const kernelUrl = script.match(/http:\/\/\S*vmlinuz\S*/)?.[0];
  const initrdUrl = script.match(/http:\/\/\S*initramfs\.img\S*/)?.[0];
  t.truthy(kernelUrl && initrdUrl, script);
  for (const url of [kernelUrl!, initrdUrl!]) t.is((await client.exec('curl', ['-fsS', '-o', '/dev/null', url])).code, 0, url);

  // The node's report, signed with a real key, posted from the node's address by curl.
  await mkdir(path.join(dir, 'pool'), { recursive: true });
  const { identity } = await loadOrCreateIdentity([path.join(dir, 'pool')]);
  const inventory = collectInventory({ root: path.join(FIX, 'qemu-storage-uefi') });
  const zdbs = [
    { disk: 'sda', port: 9900, socket: '/var/run/zdb-sda.sock', healthy: true, restarts: 2 },
    { disk: 'sdb', port: 9901, socket: '/var/run/zdb-sdb.sock', healthy: false, restarts: 5, lastError: 'health: timeout' },
  ];
  const cap = capacity(inventory.cpu.logical, inventory.memoryBytes, [{ sizeBytes: 1e12, type: 'hdd' }]);
  const envelope = signReport(buildReport({ identity, inventory, capacity: cap, disks: [], zdbs, bootMac: MAC, runmode: 'test' }), identity);
  await writeFile(path.join(dir, 'report.json'), JSON.stringify(envelope));
  const post = (file: string) => client.exec('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'content-type: application/json', '--data-binary', `@${file}`, `http://${SERVER}:8080${REPORT_PATH}`]);
  t.is((await post(path.join(dir, 'report.json'))).stdout, '200');
  await writeFile(path.join(dir, 'forged.json'), JSON.stringify({ ...envelope, signature: Buffer.alloc(64).toString('base64') }));
  t.not((await post(path.join(dir, 'forged.json'))).stdout, '200');

  const s = await scrapeUntil((x) => sampleValue(x, 'zeroboot_boot_stage_reached_total', { stage: 'report' }) >= 1);
  const v = (name: string, labels: Record<string, string> = {}) => sampleValue(s, name, labels);
  // The ROM's exchange and iPXE's: two DISCOVERs and two REQUESTs, each answered.
  t.true(v('zeroboot_dhcp_requests_total', { type: 'discover' }) >= 2);
  t.true(v('zeroboot_dhcp_requests_total', { type: 'request' }) >= 2);
  t.true(v('zeroboot_dhcp_replies_total', { type: 'offer' }) >= 2);
  t.true(v('zeroboot_dhcp_replies_total', { type: 'ack' }) >= 2);
  // Each reply's answer time: every OFFER and ACK observed once, the ACKs after their lease reached the disk.
  t.is(v('zeroboot_dhcp_reply_seconds_count', { type: 'offer' }), v('zeroboot_dhcp_replies_total', { type: 'offer' }));
  t.is(v('zeroboot_dhcp_reply_seconds_count', { type: 'ack' }), v('zeroboot_dhcp_replies_total', { type: 'ack' }));
  t.true(v('zeroboot_dhcp_reply_seconds_sum', { type: 'ack' }) > 0);
  t.true(v('zeroboot_dhcp_reply_seconds_bucket', { type: 'ack', le: '1' }) >= 2);
  t.is(v('zeroboot_tftp_transfers_total', { result: 'done' }), 1);
  t.is(v('zeroboot_tftp_bytes_total'), loaderBytes);
  t.is(v('zeroboot_tftp_transfer_seconds_count'), 1);
  t.is(v('zeroboot_http_requests_total', { route: 'script', code: '2xx' }), 2);
  t.is(v('zeroboot_http_requests_total', { route: 'file', code: '2xx' }), 2);
  t.true(v('zeroboot_http_response_bytes_total', { route: 'file' }) > KERNEL_BYTES + INITRD_BYTES);
  t.is(v('zeroboot_http_requests_total', { route: 'report', code: '2xx' }), 1);
  t.is(v('zeroboot_http_requests_total', { route: 'report', code: '4xx' }), 1);
  t.is(v('zeroboot_node_reports_total', { result: 'accepted' }), 1);
  t.is(v('zeroboot_node_reports_total', { result: 'refused' }), 1);
  // One boot, through every stage, with a latency observed for each.
  t.is(v('zeroboot_boots_started_total'), 1);
  for (const stage of ['dhcp', 'loader', 'config', 'kernel', 'initrd', 'report']) {
    t.is(v('zeroboot_boot_stage_reached_total', { stage }), 1, stage);
    t.is(v('zeroboot_boot_stage_seconds_count', { stage }), 1, stage);
  }
  t.true(v('zeroboot_boot_stage_seconds_sum', { stage: 'report' }) >= v('zeroboot_boot_stage_seconds_sum', { stage: 'dhcp' }));
  t.is(v('zeroboot_machines_by_stage', { stage: 'report' }), 1);
  t.is(v('zeroboot_nodes', { diskless: 'false' }), 1);
  t.is(v('zeroboot_zdb_processes', { healthy: 'true' }), 1);
  t.is(v('zeroboot_zdb_processes', { healthy: 'false' }), 1);
  t.is(v('zeroboot_zdb_restarts'), 7);
  t.true(v('zeroboot_event_loop_delay_seconds', { stat: 'max' }) >= 0);
  t.true(v('process_resident_memory_bytes') > 0);
});

test.serial('a host claiming 300 MACs, with ignore reasons that all differ, moves counts but adds no series', async (t) => {
  const before = await scrape();
  const mac = (i: number) => `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
  const discovers = Array.from({ length: 300 }, (_, i) => ({ mac: mac(i), xid: i + 1, options: { 53: '01' } }));
  // "relayed N times": a different reason text per packet, from MACs never seen.
  const loops = Array.from({ length: 40 }, (_, i) => ({ mac: mac(1000 + i), hops: 17 + i, options: { 53: '01' } }));
  const garbage = Array.from({ length: 5 }, (_, i) => ({ raw: `0101060${i}deadbeef` }));
  // In three bursts, each far below what the server's socket buffer holds even at Linux's default rmem_max.
  for (const packets of [discovers.slice(0, 150), discovers.slice(150), [...loops, ...garbage]]) {
    await probe(attacker, { to: { address: '255.255.255.255', port: 67 }, packets, waitMs: 500 });
  }
  // And over HTTP: 60 paths and MACs of its choosing, in one curl.
  const urls = Array.from({ length: 30 }, (_, i) => [`http://${SERVER}:8080/no/such/file-${i}`, `http://${SERVER}:8080/ipxe?mac=${mac(2000 + i)}`]).flat();
  const http = await attacker.exec('curl', ['-sS', ...urls.flatMap((u) => ['-o', '/dev/null', u])], { timeout: 60_000 });
  t.is(http.code, 0, http.stderr);
  const v0 = (name: string, labels: Record<string, string> = {}) => sampleValue(before.samples, name, labels);
  const after = await scrapeUntil((x) => sampleValue(x, 'zeroboot_boots_started_total') >= v0('zeroboot_boots_started_total') + 300 && sampleValue(x, 'zeroboot_dhcp_ignored_total', { reason: 'malformed' }) >= 5 && sampleValue(x, 'zeroboot_http_requests_total', { route: 'file', code: '4xx' }) >= v0('zeroboot_http_requests_total', { route: 'file', code: '4xx' }) + 30);
  const v1 = (name: string, labels: Record<string, string> = {}) => sampleValue(after, name, labels);
  t.is(v1('zeroboot_boots_started_total') - v0('zeroboot_boots_started_total'), 300);
  t.true(v1('zeroboot_dhcp_requests_total', { type: 'discover' }) - v0('zeroboot_dhcp_requests_total', { type: 'discover' }) >= 300);
  t.is(v1('zeroboot_dhcp_ignored_total', { reason: 'relay_loop' }) - v0('zeroboot_dhcp_ignored_total', { reason: 'relay_loop' }), 40);
  t.is(v1('zeroboot_dhcp_ignored_total', { reason: 'malformed' }) - v0('zeroboot_dhcp_ignored_total', { reason: 'malformed' }), 5);
  t.true(v1('zeroboot_dhcp_ignored_total', { reason: 'pool_full' }) > 0, 'a pool of 4 runs dry under 300 clients');
  t.is(v1('zeroboot_http_requests_total', { route: 'file', code: '4xx' }) - v0('zeroboot_http_requests_total', { route: 'file', code: '4xx' }), 30);
  t.is(v1('zeroboot_http_requests_total', { route: 'script', code: '2xx' }) - v0('zeroboot_http_requests_total', { route: 'script', code: '2xx' }), 30);
  const series = (samples: Sample[]) => samples.map((s) => `${s.name}${JSON.stringify(s.labels)}`);
  t.deepEqual(series(after), series(before.samples), 'the same series, in the same order');
  t.notRegex((await scrape()).text, /02:00:00|02-00-00|relayed|file-\d/, 'no MAC, path or reason text in the exposition');
});

test.serial('nodes cannot read /metrics: 404 on the node-facing port, no connection to the management port', async (t) => {
  const node = await client.exec('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://${SERVER}:8080/metrics`]);
  t.is(node.stdout, '404');
  const mgmt = await client.exec('curl', ['-sS', '--max-time', '10', `http://${SERVER}:8081/metrics`]);
  t.is(mgmt.code, 7, `curl exit 7 (could not connect), got ${mgmt.code}: ${mgmt.stderr}`);
  t.regex((await scrape()).text, /^# TYPE zeroboot_dhcp_requests_total counter$/m, 'the server itself reads it on loopback');
});
