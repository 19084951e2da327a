// A boot segment for tests: `zeroboot serve` in full DHCP mode on a bridge
// in its own namespace, a small store (kernel, initrd), and client hosts with
// chosen MACs that walk the PXE path with real tools (udhcpc as a BIOS PXE
// ROM or as iPXE, atftp). The management API answers on the namespace's
// loopback (http://127.0.0.1:8081). destroy() removes it all.
import { mkdtemp, writeFile, mkdir, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { Netns, waitForOutput } from './netns.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface PxeSegment {
  ns: Netns;
  dir: string;
  server: ChildProcess;
  /** The server's address on the bridge. */
  address: string;
  hosts: Record<string, Netns>;
  /** DHCP as a BIOS PXE ROM (or as iPXE: user class "iPXE"); the leased address is put on the host. */
  dhcp(mac: string, ipxe: boolean): Promise<{ ip: string; bootFile: string }>;
  /** A TFTP download from the server (to /dev/null). */
  tftp(mac: string, file: string): Promise<void>;
  destroy(): Promise<void>;
}

/** `net` is the first three octets of a /24 (the server is .1, the pool .100-.120). */
export async function startPxeSegment(prefix: string, net: string, macs: string[]): Promise<PxeSegment> {
  const address = `${net}.1`;
  const dir = await mkdtemp(path.join(tmpdir(), `zb-${prefix}-`));
  await mkdir(path.join(dir, 'images'), { recursive: true });
  await writeFile(path.join(dir, 'images/vmlinuz'), Buffer.alloc(200_000, 7));
  await writeFile(path.join(dir, 'images/initramfs.img'), Buffer.alloc(100_000, 8));
  await writeFile(path.join(dir, 'udhcpc.sh'), '#!/bin/sh\n[ "$1" = bound ] || exit 0\necho "ip=$ip"; echo "boot_file=$boot_file"\n');
  await chmod(path.join(dir, 'udhcpc.sh'), 0o755);
  await writeFile(
    path.join(dir, 'zeroboot.yaml'),
    `server:
  address: ${address}
  interfaces: [br0]
  stateDir: state
  dhcp: { mode: full, pool: { start: ${net}.100, end: ${net}.120, router: ${address} } }
  http: { port: 8080 }
store:
  - { prefix: images, dir: images }
profiles:
  - { name: zos, kernel: images/vmlinuz, initrd: images/initramfs.img, args: { runmode: test } }
groups:
  - { name: all, profile: zos, selector: {} }
`,
  );
  const ns = await Netns.create(prefix);
  const destroy = async () => {
    await ns.destroy();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await ns.bridge('br0', `${address}/24`);
    const hosts: Record<string, Netns> = {};
    for (const mac of macs) hosts[mac] = await ns.host('br0', { mac });
    const server = ns.spawn(path.join(ROOT, 'bin/zeroboot'), ['serve', '--config', path.join(dir, 'zeroboot.yaml')]);
    await waitForOutput(server, /dhcp +full on br0/, 60_000);
    return {
      ns,
      dir,
      server,
      address,
      hosts,
      async dhcp(mac, ipxe) {
        const host = hosts[mac];
        const r = await host.exec('busybox', ['udhcpc', '-f', '-q', '-n', '-i', 'eth0', '-t', '4', '-T', '2', '-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '0x5d:0000', ...(ipxe ? ['-x', '0x4d:69505845'] : []), '-s', path.join(dir, 'udhcpc.sh')], { timeout: 60_000 });
        const ip = /^ip=(.*)$/m.exec(r.stdout)?.[1];
        const bootFile = /^boot_file=(.*)$/m.exec(r.stdout)?.[1];
        if (!ip || !bootFile) throw new Error(`udhcpc got no lease: ${r.stdout} ${r.stderr}`);
        await host.exec('ip', ['addr', 'replace', `${ip}/24`, 'dev', 'eth0']);
        return { ip, bootFile };
      },
      async tftp(mac, file) {
        const r = await hosts[mac].exec('atftp', ['--option', 'blksize 1400', '-g', '-r', file, '-l', '/dev/null', address], { timeout: 60_000 });
        if (r.code !== 0) throw new Error(`atftp ${file}: ${r.stderr}`);
      },
      destroy,
    };
  } catch (e) {
    await destroy();
    throw e;
  }
}
