// What `zeroboot demo` shows of a node's signed report: the boot NIC marked,
// SSD/HDD and foreign reasons, capacity, zdb endpoints on the boot NIC's
// address; odd or missing fields from the node never crash the view.
import test from 'ava';
import { nodeView, renderNodeView, formatBytes, NodeReportError } from '../../cli/commands/node-report-view.ts';

const GiB = 2 ** 30;

// The shape GET /api/nodes/<id> answers: the registry summary plus the node's last payload.
const detail = {
  nodeId: 'n-abc',
  macs: ['66:54:b2:ea:ab:47'],
  diskless: false,
  firstSeen: '2026-12-05T06:30:00.000Z',
  lastReport: '2026-12-05T06:30:00.000Z',
  reports: 1,
  publicKey: 'pk',
  report: {
    version: 1,
    nodeId: 'n-abc',
    mac: '66:54:b2:ea:ab:47',
    bootMac: '66:54:b2:ea:ab:47',
    diskless: false,
    runmode: 'test',
    inventory: {
      cpu: { model: 'QEMU Virtual CPU version 2.5+', vendor: 'AuthenticAMD', logical: 2, hypervisorFlag: true },
      memoryBytes: 2 * GiB - 100 * 2 ** 20,
      dmi: { vendor: 'zeroboot', product: 'nvme-uefi', serial: 'nvme-uefi-0' },
      nics: [
        { name: 'lo', mac: '00:00:00:00:00:00', physical: false, link: 'unknown', addresses: ['127.0.0.1'] },
        { name: 'eth0', mac: '6a:d8:81:09:25:6b', driver: 'e1000e', physical: true, link: 'up', speedMbps: 1000, addresses: [] },
        { name: 'eth1', mac: '66:54:b2:ea:ab:47', driver: 'virtio_net', physical: true, link: 'up', addresses: ['10.77.0.100', 'fe80::1'] },
      ],
      disks: [
        { name: 'nvme0n1', sizeBytes: 8 * GiB, model: 'QEMU NVMe Ctrl', serial: 'zb0-aa0001', bus: 'nvme' },
        { name: 'sda', sizeBytes: 16 * GiB, bus: 'sata' },
        { name: 'sdb', sizeBytes: 16 * GiB, bus: 'sata' },
      ],
      virtualized: true,
      secureBoot: 'disabled',
    },
    capacity: { cru: 2, mru: 2 * GiB - 100 * 2 ** 20, sru: 8 * GiB, hru: 16 * GiB },
    disks: [
      { name: 'nvme0n1', sizeBytes: 8 * GiB, bus: 'nvme', state: 'prepared', reason: 'blank disk', label: 'u-1', type: 'ssd', by: 'rotational flag' },
      { name: 'sda', sizeBytes: 16 * GiB, bus: 'sata', state: 'reused', reason: 'our pool', label: 'u-2', type: 'hdd', by: 'persisted' },
      { name: 'sdb', sizeBytes: 16 * GiB, bus: 'sata', state: 'foreign', reason: 'gpt partition table' },
    ],
    zdbs: [{ disk: 'sda', port: 9900, socket: '/run/zeroboot/zdb-sda.sock', healthy: true, restarts: 1, lastExit: 'exited SIGKILL' }],
  },
};

test('the view: boot NIC marked, virtual NICs left out, disk types and foreign reason, zdb on the boot address', (t) => {
  const v = nodeView(detail);
  t.deepEqual(v.nics.map((n) => [n.name, n.boot]), [['eth0', false], ['eth1', true]]);
  t.deepEqual(v.disks.map((d) => [d.name, d.type, d.state]), [['nvme0n1', 'ssd', 'prepared'], ['sda', 'hdd', 'reused'], ['sdb', undefined, 'foreign']]);
  t.is(v.disks[2].reason, 'gpt partition table');
  t.is(v.disks[0].model, 'QEMU NVMe Ctrl');
  t.deepEqual(v.zdbs, [{ disk: 'sda', endpoint: '10.77.0.100:9900', healthy: true, restarts: 1, lastExit: 'exited SIGKILL' }]);
  t.deepEqual(v.capacity, { cru: 2, mru: 2 * GiB - 100 * 2 ** 20, sru: 8 * GiB, hru: 16 * GiB });
  t.is(v.bootMac, '66:54:b2:ea:ab:47');
  // --json prints the view: it must survive a JSON round trip unchanged (no undefined keys, no class instances).
  t.deepEqual(JSON.parse(JSON.stringify(v)), v);
});

test('the text: every section, the boot NIC starred, the foreign reason, capacity units', (t) => {
  const text = renderNodeView(nodeView(detail)).join('\n');
  t.regex(text, /node {6}n-abc\n/);
  t.regex(text, /cpu {7}2 x QEMU Virtual CPU version 2\.5\+/);
  t.regex(text, /memory {4}1\.9 GiB/);
  t.regex(text, /\* eth1 +66:54:b2:ea:ab:47 +virtio_net +link up +10\.77\.0\.100/);
  t.regex(text, / {3}eth0 +6a:d8:81:09:25:6b +e1000e +link up 1000 Mb\/s/);
  t.regex(text, /disks {5}1 SSD, 1 HDD, 1 not used/);
  t.regex(text, /nvme0n1 +8\.0 GiB +nvme +SSD \(rotational flag\) +prepared +label u-1/);
  t.regex(text, /sdb +16\.0 GiB +sata +- +foreign +foreign: gpt partition table/);
  t.regex(text, /capacity +CRU 2 +MRU 1\.9 GiB +SRU 8\.0 GiB +HRU 16\.0 GiB/);
  t.regex(text, /zdbs {6}1\n +sda +10\.77\.0\.100:9900 +healthy, restarts 1, last exit: exited SIGKILL/);
});

test('a sparse or odd report shows what is there and never throws; no nodeId is a clear error', (t) => {
  const v = nodeView({ nodeId: 'x', report: { inventory: { nics: 'junk', cpu: null }, disks: [null, 7], zdbs: [{ port: 'a' }] } });
  t.deepEqual(v.nics, []);
  t.is(v.disks.length, 2);
  t.is(v.disks[0].state, 'unknown');
  t.is(v.zdbs[0].endpoint, '<node>:?');
  t.notThrows(() => renderNodeView(v));
  t.throws(() => nodeView({ report: {} }), { instanceOf: NodeReportError, message: /no nodeId/ });
  t.throws(() => nodeView('nope'), { instanceOf: NodeReportError });
});

test('formatBytes: binary units, one decimal', (t) => {
  t.is(formatBytes(512), '512 B');
  t.is(formatBytes(8 * GiB), '8.0 GiB');
  t.is(formatBytes(1536 * 2 ** 20), '1.5 GiB');
  t.is(formatBytes(undefined), '?');
});
