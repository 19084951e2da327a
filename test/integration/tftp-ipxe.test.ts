// Debian's /usr/lib/ipxe/ipxe.efi is a symlink into /boot. The composed boot
// server (boot/server.ts, DHCP off) serves it from the real directory over
// TFTP to tftp-hpa and over HTTP to curl, on loopback.
import test from 'ava';
import dgram from 'node:dgram';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../boot/config.ts';
import { startBootServer } from '../../boot/server.ts';
import { silentLogger } from '../../boot/log.ts';

const run = promisify(execFile);
const IPXE_DIR = '/usr/lib/ipxe';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A UDP port free a moment ago (the TFTP port must be set; 0 is not accepted by the config). */
async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

test('ipxe.efi, a symlink out of /usr/lib/ipxe, is served over TFTP (tftp-hpa) and HTTP (curl)', async (t) => {
  const link = path.join(IPXE_DIR, 'ipxe.efi');
  const target = await realpath(link);
  t.false(target.startsWith(IPXE_DIR + '/'), `${link} should lead out of ${IPXE_DIR} (it leads to ${target})`);
  const want = sha(await readFile(link));
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-tftp-ipxe-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const config = parseConfig({
    server: { address: '127.0.0.1', stateDir: dir, ipxeDir: IPXE_DIR, dhcp: { mode: 'off' }, tftp: { port: await freeUdpPort() }, http: { port: 0 } },
    profiles: [],
    groups: [],
  });
  const server = await startBootServer(config, silentLogger);
  t.teardown(() => server.close());

  const viaTftp = path.join(dir, 'tftp.efi');
  const hpa = await run('tftp', ['-m', 'binary', '127.0.0.1', String(server.tftp!.port), '-c', 'get', 'ipxe.efi', viaTftp]);
  t.notRegex(hpa.stdout + hpa.stderr, /Error/);
  t.is(sha(await readFile(viaTftp)), want);

  const viaHttp = path.join(dir, 'http.efi');
  const curl = await run('curl', ['-sS', '--fail', '--max-time', '30', `${server.http.url}/ipxe/ipxe.efi`, '-o', viaHttp]);
  t.is(curl.stderr, '');
  t.is(sha(await readFile(viaHttp)), want);
});
