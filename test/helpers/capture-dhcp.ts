// Regenerates the golden DHCP packets in test/fixtures/dhcp/ from real
// clients: busybox udhcpc, ISC dhclient, QEMU's iPXE ROM and OVMF's own PXE,
// answered by dnsmasq, all inside a private network namespace.
//
//   node test/helpers/capture-dhcp.ts [outdir]
//
// Transaction IDs are random per run: after regenerating, update the values
// asserted in test/unit/dhcp-codec.test.ts (README.md lists them).
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Netns, waitForOutput } from './netns.ts';

export const UUID = '11223344-5566-7788-99aa-bbccddeeff00';

interface Client {
  name: string; // fixture prefix
  mac: string;
  run(ns: Netns, tmp: string): Promise<void>;
}

/** UDP payloads of the DHCP packets in a classic pcap (linktype Ethernet). */
export function dhcpPayloads(pcap: Buffer): Buffer[] {
  const magic = pcap.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && pcap.readUInt32BE(0) !== 0xa1b2c3d4 && pcap.readUInt32BE(0) !== 0xa1b23c4d) throw new Error('not a classic pcap file');
  const u32 = (o: number) => (le ? pcap.readUInt32LE(o) : pcap.readUInt32BE(o));
  if (u32(20) !== 1) throw new Error(`pcap link type ${u32(20)} is not Ethernet`);
  const out: Buffer[] = [];
  for (let off = 24; off + 16 <= pcap.length; ) {
    const incl = u32(off + 8);
    const frame = pcap.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    if (frame.length < 14 + 20 + 8 || frame.readUInt16BE(12) !== 0x0800) continue;
    const ip = frame.subarray(14);
    const ihl = (ip[0] & 0x0f) * 4;
    if (ip[9] !== 17) continue;
    const udp = ip.subarray(ihl);
    const sport = udp.readUInt16BE(0);
    const dport = udp.readUInt16BE(2);
    if (![67, 68].includes(sport) || ![67, 68].includes(dport)) continue;
    out.push(Buffer.from(udp.subarray(8, udp.readUInt16BE(4))));
  }
  return out;
}

/** The UUID's 16 bytes as firmware sends them: first three fields little-endian. */
function smbiosUuidHex(uuid: string): string {
  const [a, b, c, d, e] = uuid.split('-');
  const rev = (h: string) => h.match(/../g)!.reverse().join('');
  return rev(a) + rev(b) + rev(c) + d + e;
}

function macHex(mac: string): string {
  return mac.replace(/:/g, '').toLowerCase();
}

async function hostRun(ns: Netns, mac: string, cmd: string, args: string[], mayFail = false): Promise<void> {
  const h = await ns.host('br0', { mac });
  const r = await h.exec(cmd, args, { timeout: 30_000 });
  if (r.code !== 0 && !mayFail) throw new Error(`${cmd} failed (${r.code}): ${r.stderr.slice(-500)}`);
}

async function qemu(ns: Netns, mac: string, extra: string[], romfile: string, timeoutMs: number, dnsmasq: ChildProcess): Promise<void> {
  const tap = `tap${mac.slice(-2)}`;
  await ns.ip('tuntap', 'add', 'dev', tap, 'mode', 'tap');
  await ns.ip('link', 'set', tap, 'master', 'br0');
  await ns.ip('link', 'set', tap, 'up');
  const acked = waitForOutput(dnsmasq, new RegExp(`DHCPACK\\(br0\\) \\S+ ${mac}`), timeoutMs);
  // Debian's ipxe-qemu ROMs carry PCI ID 1af4:1041 (modern virtio-net only):
  // SeaBIOS skips them on the default transitional device (1af4:1000).
  const vm = ns.spawn('qemu-system-x86_64', [
    '-accel', 'tcg', '-nographic', '-monitor', 'none', '-serial', 'null', '-m', '256',
    '-uuid', UUID,
    '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`,
    '-device', `virtio-net-pci,netdev=n0,mac=${mac},disable-legacy=on,romfile=${romfile}`,
    '-boot', 'n', ...extra,
  ]);
  try {
    await acked;
    // The ACK is on the wire: give tshark a moment to see it.
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    if (vm.pid) process.kill(vm.pid, 'SIGKILL');
  }
}

async function main(): Promise<void> {
  const outdir = process.argv[2] ?? join(import.meta.dirname, '..', 'fixtures', 'dhcp');
  await mkdir(outdir, { recursive: true });
  const tmp = await mkdtemp(join(tmpdir(), 'zb-capture-'));
  const ns = await Netns.create('zbcap');
  try {
    await ns.bridge('br0', '10.77.0.1/24');
    const pcapPath = join(tmp, 'capture.pcap');
    const tshark = ns.spawn('tshark', ['-i', 'br0', '-f', 'udp port 67 or udp port 68', '-F', 'pcap', '-w', pcapPath, '-P', '-l']);
    await waitForOutput(tshark, /Capturing on/, 20_000);
    const dnsmasqCommon = ['--no-daemon', '--port=0', '--interface=br0', '--bind-interfaces', '--user=root', '--no-resolv', '--no-hosts', '--pid-file', '--log-dhcp'];
    const dnsmasq = ns.spawn('dnsmasq', [
      ...dnsmasqCommon, '--no-ping', '--dhcp-authoritative', '--dhcp-range=10.77.0.100,10.77.0.200,12h',
      '--dhcp-boot=undionly.kpxe,,10.77.0.1', `--dhcp-leasefile=${join(tmp, 'leases')}`,
    ]);
    await waitForOutput(dnsmasq, /DHCP, IP range/, 10_000);

    const clientConf = join(tmp, 'dhclient.conf');
    await writeFile(
      clientConf,
      'send host-name "zeroboot-test";\nrequest subnet-mask, broadcast-address, time-offset, routers, domain-name, domain-name-servers, host-name, interface-mtu, ntp-servers;\n',
    );
    const clients: Client[] = [
      {
        name: 'udhcpc',
        mac: '02:00:00:00:00:a1',
        run: (n) => hostRun(n, '02:00:00:00:00:a1', 'busybox', ['udhcpc', '-i', 'eth0', '-f', '-q', '-n', '-t', '3', '-T', '1', '-s', '/bin/true']),
      },
      {
        name: 'udhcpc-pxe',
        mac: '02:00:00:00:00:a2',
        run: (n) =>
          hostRun(n, '02:00:00:00:00:a2', 'busybox', [
            'udhcpc', '-i', 'eth0', '-f', '-q', '-n', '-t', '3', '-T', '1', '-s', '/bin/true', '-V', 'PXEClient', '-x', '0x5d:0007',
          ]),
      },
      {
        name: 'dhclient',
        mac: '02:00:00:00:00:a3',
        run: (n, t) =>
          hostRun(n, '02:00:00:00:00:a3', 'dhclient', [
            '-1', '-v', '-cf', clientConf, '-sf', '/bin/true', '-lf', join(t, 'dhclient.leases'), '-pf', join(t, 'dhclient.pid'), 'eth0',
          ]).then(() => killDhclient(t)),
      },
      {
        name: 'ipxe-bios',
        mac: '52:54:00:00:00:b1',
        run: (n) => qemu(n, '52:54:00:00:00:b1', [], '/usr/lib/ipxe/qemu/pxe-virtio.rom', 90_000, dnsmasq),
      },
      {
        // Empty romfile: OVMF's own VirtioNetDxe + PXE base code, not iPXE.
        name: 'ovmf-pxe',
        mac: '52:54:00:00:00:b2',
        run: (n) => qemu(n, '52:54:00:00:00:b2', ['-bios', '/usr/share/ovmf/OVMF.fd'], '', 180_000, dnsmasq),
      },
      {
        name: 'ipxe-efi',
        mac: '52:54:00:00:00:b3',
        run: (n) => qemu(n, '52:54:00:00:00:b3', ['-bios', '/usr/share/ovmf/OVMF.fd'], '/usr/lib/ipxe/qemu/efi-virtio.rom', 180_000, dnsmasq),
      },
    ];
    const only = process.env.CAPTURE_ONLY?.split(',');
    for (const c of clients) {
      if (only && !only.includes(c.name)) continue;
      process.stdout.write(`capturing ${c.name} (${c.mac})...\n`);
      await c.run(ns, tmp);
    }

    // proxyDHCP: dnsmasq answers a PXE client with option 43 and no address.
    // udhcpc cannot use such an offer, so it gives up: only the OFFER matters.
    const proxy: Client = {
      name: 'udhcpc-proxy',
      mac: '02:00:00:00:00:a4',
      run: (n) =>
        hostRun(n, '02:00:00:00:00:a4', 'busybox', [
          'udhcpc', '-i', 'eth0', '-f', '-q', '-n', '-t', '2', '-T', '1', '-s', '/bin/true',
          '-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '0x5d:0000', '-x', '0x5e:010201', '-x', `0x61:00${smbiosUuidHex(UUID)}`,
        ], true),
    };
    clients.push(proxy);
    if (!only || only.includes(proxy.name)) {
      const exited = new Promise((r) => dnsmasq.once('exit', r));
      process.kill(dnsmasq.pid!, 'SIGKILL');
      await exited;
      const proxyDnsmasq = ns.spawn('dnsmasq', [
        ...dnsmasqCommon, '--dhcp-range=10.77.0.0,proxy', '--pxe-service=x86PC,Network boot,undionly', '--pxe-service=X86-64_EFI,Network boot,snponly',
      ]);
      await waitForOutput(proxyDnsmasq, /proxy on subnet/, 10_000);
      process.stdout.write(`capturing ${proxy.name} (${proxy.mac})...\n`);
      await proxy.run(ns, tmp);
    }
    // Let the last packets reach the file, then stop tshark so it flushes.
    await new Promise((r) => setTimeout(r, 1000));
    const exited = new Promise((r) => tshark.once('exit', r));
    process.kill(tshark.pid!, 'SIGINT');
    await exited;

    const pcap = await readFile(pcapPath);
    await writeFile(join(outdir, 'capture.pcap'), pcap);
    const payloads = dhcpPayloads(pcap);
    const typeNames: Record<number, string> = { 1: 'discover', 2: 'offer', 3: 'request', 5: 'ack' };
    const written = new Set<string>();
    for (const c of clients) {
      for (const p of payloads) {
        if (p.length < 240 || p.subarray(28, 34).toString('hex') !== macHex(c.mac)) continue;
        const type = messageTypeOf(p);
        const name = type !== undefined ? typeNames[type] : undefined;
        if (!name) continue;
        const file = `${c.name}-${name}.bin`;
        if (written.has(file)) continue; // first of each kind only (retransmissions differ only in secs)
        written.add(file);
        await writeFile(join(outdir, file), p);
        process.stdout.write(`  ${file} ${p.length} bytes xid 0x${p.readUInt32BE(4).toString(16)}\n`);
      }
    }
  } finally {
    await ns.destroy();
    await rm(tmp, { recursive: true, force: true });
  }
}

async function killDhclient(tmp: string): Promise<void> {
  const pid = Number((await readFile(join(tmp, 'dhclient.pid'), 'utf8').catch(() => '')).trim());
  if (pid > 0) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
}

// Independent of the codec under test on purpose: a plain scan for option 53.
function messageTypeOf(p: Buffer): number | undefined {
  for (let i = 240; i + 1 < p.length; ) {
    const code = p[i];
    if (code === 255) break;
    if (code === 0) {
      i++;
      continue;
    }
    if (code === 53) return p[i + 2];
    i += 2 + p[i + 1];
  }
  return undefined;
}

await main();
