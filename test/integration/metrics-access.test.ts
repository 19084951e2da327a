// Who may read /metrics, on loopback: behind the management token like the
// API (a scrape job sends it as a bearer token), GET and HEAD only, and
// nothing on the node-facing port.
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../boot/config.ts';
import { startBootServer, type BootServer } from '../../boot/server.ts';
import { silentLogger } from '../../boot/log.ts';
import { parsePromText, sampleValue } from '../../harness/prom-text.ts';

const run = promisify(execFile);
let dir: string;
let server: BootServer;
let metricsUrl: string;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'zb-metrics-access-'));
  server = await startBootServer(
    parseConfig({
      server: {
        address: '127.0.0.1',
        stateDir: dir,
        ipxeDir: '/usr/lib/ipxe',
        dhcp: { mode: 'off' },
        tftp: { enabled: false },
        http: { host: '127.0.0.1', port: 0 },
        management: { host: '127.0.0.1', port: 0, auth: 'token' },
      },
      profiles: [],
    }),
    silentLogger,
  );
  metricsUrl = server.endpoints.metrics!;
});

test.after.always(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

async function curl(args: string[]): Promise<{ status: string; body: string; type: string }> {
  const { stdout } = await run('curl', ['-sS', '--max-time', '30', '-w', '\n%{http_code} %{content_type}', ...args]);
  const nl = stdout.lastIndexOf('\n');
  const [status, ...type] = stdout.slice(nl + 1).split(' ');
  return { status, body: stdout.slice(0, nl), type: type.join(' ') };
}

test('behind the bearer token; GET and HEAD only', async (t) => {
  t.regex(metricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  t.is((await curl([metricsUrl])).status, '401');
  t.is((await curl(['-H', 'Authorization: Bearer wrong-token-0123456789', metricsUrl])).status, '401');
  const auth = ['-H', `Authorization: Bearer ${server.apiToken!.token}`];
  const ok = await curl([...auth, metricsUrl]);
  t.is(ok.status, '200');
  t.regex(ok.type, /^text\/plain; version=0\.0\.4/);
  t.is(sampleValue(parsePromText(ok.body), 'zeroboot_boots_started_total'), 0);
  const head = await curl([...auth, '-I', metricsUrl]);
  t.regex(head.body, /^HTTP\/1\.1 200/);
  t.is((await curl([...auth, '-X', 'POST', metricsUrl])).status, '405');
});

test('the node-facing port has no /metrics, and counts the refusal', async (t) => {
  const r = await curl([`${server.http.url}/metrics`]);
  t.is(r.status, '404');
  t.notRegex(r.body, /zeroboot_/);
  const samples = parsePromText((await curl(['-H', `Authorization: Bearer ${server.apiToken!.token}`, metricsUrl])).body);
  t.true(sampleValue(samples, 'zeroboot_http_requests_total', { route: 'file', code: '4xx' }) >= 1);
});
