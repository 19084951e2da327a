// The README's main command: `zeroboot demo` boots a QEMU node to the image's
// marker, prints its timeline and the node agent's signed report as the
// server's registry holds it, and leaves nothing behind. Two boots: the
// default profile as text, storage-uefi (1 SSD + 4 HDD: 4 zdbs) as --json.
import test from 'ava';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sh } from '../helpers/netns.ts';
import { instanceOf, loadProfile } from '../../qemu/profile.ts';
import type { DemoResult } from '../../cli/commands/demo.ts';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/zeroboot');

function demo(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BIN, ['demo', '--timeout', '240', ...args], { timeout: 420_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function namespaceGone(t: import('ava').ExecutionContext, output: string): Promise<void> {
  const ns = /torn down: namespace (\S+),/.exec(output)?.[1];
  t.truthy(ns);
  t.false((await sh('ip', ['netns', 'list'])).split('\n').some((l) => l.split(' ')[0] === ns), `namespace ${ns} is gone`);
}

test.serial('zeroboot demo boots a node, shows every stage and its signed report, and tears down', async (t) => {
  // demo() waits up to 7 minutes, more than ava's 5 between results: guest files run two at a time.
  t.timeout(8 * 60_000);
  const out = await demo([]);
  t.is(out.code, 0, out.stdout + out.stderr);
  t.regex(out.stdout, /up after [\d.]+ s from QEMU start: ZEROBOOT-UP ip=10\.77\.0\.\d+ mac=[0-9a-f:]{17}/);
  const timeline = out.stdout.slice(out.stdout.indexOf('== timeline'));
  for (const kind of ['dhcp.discover', 'dhcp.offer', 'dhcp.request', 'dhcp.ack', 'http.script', 'http.kernel', 'http.initrd']) {
    t.regex(timeline, new RegExp(`\\s${kind.replace('.', '\\.')}\\s`), kind);
  }
  t.regex(timeline, /http\.kernel\s+path=image\/vmlinuz status=200/);
  const report = out.stdout.slice(out.stdout.indexOf('== node report'));
  const mac = instanceOf(await loadProfile('small-bios'), 0).bootMac;
  t.regex(out.stdout, /first signed report accepted [\d.]+ s after QEMU start/);
  t.regex(report, /cpu {7}2 x /);
  t.regex(report, /memory {4}1\.\d GiB/);
  t.regex(report, new RegExp(`\\* eth0 +${mac} +virtio_net +link up +10\\.77\\.0\\.\\d+`));
  // small-bios: two 8G SCSI SSDs, made pools; no HDD, so no zdb.
  t.regex(report, /disks {5}2 SSD, 0 HDD\n/);
  t.is(report.match(/ 8\.0 GiB +scsi +SSD .*prepared/g)?.length, 2);
  t.regex(report, /capacity +CRU 2 +MRU 1\.\d GiB +SRU 16\.0 GiB +HRU 0 B/);
  t.regex(report, /zdbs {6}0\n/);
  await namespaceGone(t, out.stdout);
});

test.serial('zeroboot demo --profile storage-uefi --json: one document, 1 SSD and 4 HDDs with 4 zdbs', async (t) => {
  t.timeout(8 * 60_000);
  const out = await demo(['--profile', 'storage-uefi', '--json']);
  t.is(out.code, 0, out.stdout + out.stderr);
  const doc = JSON.parse(out.stdout) as DemoResult;
  const hw = await loadProfile('storage-uefi');
  t.is(doc.profile, 'storage-uefi');
  t.is(doc.up.mac, instanceOf(hw, 0).bootMac);
  t.true(doc.timeline.some((e) => e.kind === 'http.initrd'));
  const node = doc.node!;
  t.truthy(node.nodeId);
  t.true(typeof doc.firstReportSeconds === 'number');
  t.is(node.cpu.logical, 2);
  t.deepEqual(node.nics.map((n) => n.mac).sort(), [...instanceOf(hw, 0).macs].sort());
  t.deepEqual(node.nics.filter((n) => n.boot).map((n) => n.mac), [instanceOf(hw, 0).bootMac]);
  t.deepEqual(node.disks.map((d) => d.type).sort(), ['hdd', 'hdd', 'hdd', 'hdd', 'ssd']);
  t.is(node.zdbs.length, 4);
  t.true(node.zdbs.every((z) => z.healthy), 'the demo shows a report in which every zdb answers');
  t.true(node.zdbs.every((z) => /^10\.77\.0\.\d+:99\d\d$/.test(z.endpoint)), JSON.stringify(node.zdbs));
  t.is(node.capacity.sru, 16 * 2 ** 30);
  t.is(node.capacity.hru, 4 * 32 * 2 ** 30);
  // The progress went to stderr; stdout held the document only.
  t.regex(out.stderr, /== node report/);
  await namespaceGone(t, out.stderr);
});
