// HTTP timeline events name the address the request came from (`client`,
// like TFTP's), so a machine first seen over HTTP shows its address in the
// machine list (the dashboard's rows) before DHCP or TFTP has seen it: here
// the server runs in proxy mode, another server would give the addresses,
// and the machine only asks for its script and kernel.
import test from 'ava';
import { startPxeSegment, type PxeSegment } from '../helpers/pxe-segment.ts';

const SERVER = '10.81.0.1';
const MAC = '52:54:00:ee:00:01';
const IP = '10.81.0.70';
const API = 'http://127.0.0.1:8081/api';

let seg: PxeSegment;

test.before(async () => {
  seg = await startPxeSegment('zbhttpip', '10.81.0', [], { mode: 'proxy', staticHosts: { [MAC]: `${IP}/24` } });
});

test.after.always(async () => {
  await seg?.destroy();
});

async function api<T>(path: string): Promise<T> {
  const r = await seg.ns.exec('curl', ['-fsS', '--max-time', '30', `${API}${path}`]);
  if (r.code !== 0) throw new Error(`${path}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

test('a machine seen only over HTTP: its script, kernel and a refused download carry its address; the machine list shows it', async (t) => {
  const host = seg.hosts[MAC];
  const dashed = MAC.replace(/:/g, '-');
  const script = await host.exec('curl', ['-fsS', `http://${SERVER}:8080/ipxe?mac=${dashed}`]);
  t.is(script.code, 0, script.stderr);
  const kernel = script.stdout.match(/http:\/\/\S*vmlinuz\S*/)?.[0];
  t.truthy(kernel, script.stdout);
  t.is((await host.exec('curl', ['-fsS', '-o', '/dev/null', kernel!])).code, 0);
  t.is((await host.exec('curl', ['-sS', '-o', '/dev/null', `http://${SERVER}:8080/images/missing?mac=${dashed}`])).code, 0);

  const detail = await api<{ timeline: { kind: string; detail?: { client?: string } }[] }>(`/machines/${MAC}`);
  t.deepEqual(detail.timeline.map((e) => [e.kind, e.detail?.client]), [['http.script', IP], ['http.kernel', IP], ['http.error', IP]]);
  // The list is rebuilt after a change; the row names the address though no lease of ours does.
  const deadline = Date.now() + 30_000;
  let row: { mac: string; ip?: string } | undefined;
  while (!row?.ip && Date.now() < deadline) {
    row = (await api<{ machines: { mac: string; ip?: string }[] }>('/machines')).machines.find((m) => m.mac === MAC);
    if (!row?.ip) await new Promise((r) => setTimeout(r, 250));
  }
  t.is(row?.ip, IP);
});
