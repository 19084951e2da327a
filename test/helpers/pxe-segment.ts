// A boot segment for tests: `zeroboot serve` (full DHCP mode, or proxy) on a
// bridge in its own namespace, a small store (kernel, initrd, and the signed
// chain's shim and GRUB when asked), and client hosts with chosen MACs that
// walk the PXE path with real tools (udhcpc as a BIOS or UEFI PXE ROM or as
// iPXE, atftp). The management API answers on the namespace's loopback
// (http://127.0.0.1:8081). destroy() removes it all.
import { mkdtemp, writeFile, mkdir, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { Netns, waitForOutput } from './netns.ts';
import { SIGNED_LOADERS } from '../../lib/loaders.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface PxeSegment {
  ns: Netns;
  dir: string;
  server: ChildProcess;
  /** The server's address on the bridge. */
  address: string;
  hosts: Record<string, Netns>;
  /** DHCP as a PXE ROM (BIOS, or UEFI x64 with `arch: 'efi'`) or as iPXE (user class "iPXE"); the leased address is put on the host. */
  dhcp(mac: string, ipxe: boolean, arch?: 'bios' | 'efi'): Promise<{ ip: string; bootFile: string }>;
  /** A TFTP download from the server, to `local` (default /dev/null). */
  tftp(mac: string, file: string, local?: string): Promise<void>;
  destroy(): Promise<void>;
}

export interface PxeSegmentOptions {
  /** The server's DHCP mode (default full). Proxy mode has no pool: another server is assumed to give the addresses. */
  mode?: 'full' | 'proxy';
  /** Addresses in the pool, from .100 (default 21). */
  poolSize?: number;
  /** Hosts with a fixed address on the bridge, MAC -> CIDR, beside the DHCP clients. */
  staticHosts?: Record<string, string>;
  kernelBytes?: number;
  initrdBytes?: number;
  /** The profile boots UEFI PXE clients through the signed chain (shimx64.efi, grubx64.efi next to the kernel). */
  secureBoot?: boolean;
}

/** `net` is the first three octets of a /24 (the server is .1, the pool .100 onwards). */
export async function startPxeSegment(prefix: string, net: string, macs: string[], opts: PxeSegmentOptions = {}): Promise<PxeSegment> {
  const address = `${net}.1`;
  const mode = opts.mode ?? 'full';
  const dhcp = mode === 'full' ? `{ mode: full, pool: { start: ${net}.100, end: ${net}.${99 + (opts.poolSize ?? 21)}, router: ${address} } }` : '{ mode: proxy }';
  const dir = await mkdtemp(path.join(tmpdir(), `zb-${prefix}-`));
  await mkdir(path.join(dir, 'images'), { recursive: true });
  await writeFile(path.join(dir, 'images/vmlinuz'), Buffer.alloc(opts.kernelBytes ?? 200_000, 7));
  await writeFile(path.join(dir, 'images/initramfs.img'), Buffer.alloc(opts.initrdBytes ?? 100_000, 8));
  // Stand-ins: the server only serves them, the client only counts them.
  if (opts.secureBoot) for (const f of SIGNED_LOADERS) await writeFile(path.join(dir, 'images', f), Buffer.alloc(50_000, 9));
  await writeFile(path.join(dir, 'udhcpc.sh'), '#!/bin/sh\n[ "$1" = bound ] || exit 0\necho "ip=$ip"; echo "boot_file=$boot_file"\n');
  await chmod(path.join(dir, 'udhcpc.sh'), 0o755);
  await writeFile(
    path.join(dir, 'zeroboot.yaml'),
    `server:
  address: ${address}
  interfaces: [br0]
  stateDir: state
  dhcp: ${dhcp}
  http: { port: 8080 }
store:
  - { prefix: images, dir: images }
profiles:
  - { name: zos, kernel: images/vmlinuz, initrd: images/initramfs.img, args: { runmode: test }${opts.secureBoot ? ', secureBoot: true' : ''} }
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
    for (const [mac, cidr] of Object.entries(opts.staticHosts ?? {})) hosts[mac] = await ns.host('br0', { mac, cidr });
    const server = ns.spawn(path.join(ROOT, 'bin/zeroboot'), ['serve', '--config', path.join(dir, 'zeroboot.yaml')]);
    await waitForOutput(server, new RegExp(`dhcp +${mode} on br0`), 60_000);
    return {
      ns,
      dir,
      server,
      address,
      hosts,
      async dhcp(mac, ipxe, arch = 'bios') {
        const host = hosts[mac];
        const rom = arch === 'efi' ? ['-V', 'PXEClient:Arch:00007:UNDI:003016', '-x', '0x5d:0007'] : ['-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '0x5d:0000'];
        const r = await host.exec('busybox', ['udhcpc', '-f', '-q', '-n', '-i', 'eth0', '-t', '4', '-T', '2', ...rom, ...(ipxe ? ['-x', '0x4d:69505845'] : []), '-s', path.join(dir, 'udhcpc.sh')], { timeout: 60_000 });
        const ip = /^ip=(.*)$/m.exec(r.stdout)?.[1];
        const bootFile = /^boot_file=(.*)$/m.exec(r.stdout)?.[1];
        if (!ip || !bootFile) throw new Error(`udhcpc got no lease: ${r.stdout} ${r.stderr}`);
        await host.exec('ip', ['addr', 'replace', `${ip}/24`, 'dev', 'eth0']);
        return { ip, bootFile };
      },
      async tftp(mac, file, local = '/dev/null') {
        const r = await hosts[mac].exec('atftp', ['--option', 'blksize 1400', '-g', '-r', file, '-l', local, address], { timeout: 60_000 });
        if (r.code !== 0) throw new Error(`atftp ${file}: ${r.stderr}`);
      },
      destroy,
    };
  } catch (e) {
    await destroy();
    throw e;
  }
}
