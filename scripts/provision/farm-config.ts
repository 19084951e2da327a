// The server configuration a farm gets: one profile booting the built
// image with the farm's kernel command line (the bootstrap service's:
// version, runmode, farmer_id), and a machines entry per CSV row
// (reservation, host name, profile). Rendered the same way every run, so
// an unchanged farm writes an unchanged file.
import { stringify } from 'yaml';
import { parseConfig, ConfigError } from '../../boot/config.ts';
import { ProvisionError } from './exit-codes.ts';
import type { FarmNode } from './farm-csv.ts';
import { defaultPool, inSubnet } from './host-checks.ts';
import type { FarmInterface } from './host-checks.ts';

/** The runmodes Zero-OS knows (the bootstrap grammar's /<runmode>/). */
export const RUNMODES = ['prod', 'dev', 'test', 'qa'] as const;
export type Runmode = (typeof RUNMODES)[number];

export const PROFILE = 'zos';
/** Defined when the image carries the signed chain (shimx64.efi, grubx64.efi). */
export const SECURE_PROFILE = 'zos-secureboot';

export interface FarmSettings {
  farmId: number;
  runmode: Runmode;
  iface: FarmInterface;
  dhcpMode: 'full' | 'proxy';
  nodes: FarmNode[];
  imageDir: string;
  stateDir: string;
  httpPort: number;
  apiPort: number;
  /** The image has shimx64.efi and grubx64.efi: offer the signed-chain profile. */
  signedChain: boolean;
  /** Extra kernel arguments (name -> value, null for a bare flag). */
  kernelArgs: Record<string, string | null>;
  pool?: { start: string; end: string };
}

export function checkRows(s: Pick<FarmSettings, 'nodes' | 'iface' | 'signedChain'>): void {
  const profiles = s.signedChain ? [PROFILE, SECURE_PROFILE] : [PROFILE];
  for (const n of s.nodes) {
    if (n.ip && !inSubnet(s.iface, n.ip)) throw new ProvisionError('badCsv', `${n.mac} (${n.hostname}): ${n.ip} is not in ${s.iface.name}'s subnet ${s.iface.address}/${s.iface.prefixLength}`);
    if (n.ip === s.iface.address) throw new ProvisionError('badCsv', `${n.mac} (${n.hostname}): ${n.ip} is this server's own address`);
    if (n.profile && !profiles.includes(n.profile)) throw new ProvisionError('badCsv', `${n.mac} (${n.hostname}): profile "${n.profile}" is not one this farm defines (${profiles.join(', ')}${s.signedChain ? '' : `; ${SECURE_PROFILE} needs an image built with secureBoot: true`})`);
  }
}

/** The farm's kernel arguments: the profile's, and the command line written into its boot media. */
export function farmKernelArgs(s: Pick<FarmSettings, 'farmId' | 'runmode' | 'iface' | 'httpPort' | 'kernelArgs'>): Record<string, string | number | null> {
  return {
    nomodeset: null,
    version: 'v3',
    runmode: s.runmode,
    panic: 7200,
    farmer_id: s.farmId,
    console: 'ttyS0',
    // Where /init's agent sends its signed reports: this server, whatever DHCP said.
    'zeroboot.server': `http://${s.iface.address}:${s.httpPort}`,
    ...s.kernelArgs,
  };
}

export function farmConfig(s: FarmSettings): Record<string, unknown> {
  const address = s.iface.address;
  const args = farmKernelArgs(s);
  const profile = { kernel: 'image/vmlinuz', initrd: 'image/initramfs.img', args };
  const pool = s.pool ?? defaultPool(s.iface);
  return {
    server: {
      address,
      interfaces: [s.iface.name],
      stateDir: s.stateDir,
      dhcp: s.dhcpMode === 'full'
        ? { mode: 'full', pool: { start: pool.start, end: pool.end, subnetMask: s.iface.netmask, leaseSeconds: 3600 } }
        : { mode: 'proxy' },
      http: { port: s.httpPort },
      management: { host: '127.0.0.1', port: s.apiPort },
      tftp: { port: 69 },
      ipxeDir: '/usr/lib/ipxe',
    },
    store: [{ prefix: 'image', dir: s.imageDir }],
    profiles: [
      { name: PROFILE, ...profile },
      ...(s.signedChain ? [{ name: SECURE_PROFILE, ...profile, secureBoot: true }] : []),
    ],
    groups: [{ name: 'default', profile: PROFILE, selector: {} }],
    machines: s.nodes.map((n) => ({
      mac: n.mac,
      hostname: n.hostname,
      // In proxy mode the other server hands out addresses; proxyAdvice() says which to reserve there.
      ...(n.ip && s.dhcpMode === 'full' ? { ip: n.ip } : {}),
      ...(n.profile ? { profile: n.profile } : {}),
    })),
  };
}

/** The file's text: a header, then the configuration, checked by the server's own parser. */
export function renderFarmConfig(s: FarmSettings): string {
  const doc = farmConfig(s);
  try {
    parseConfig(doc, '/');
  } catch (e) {
    if (e instanceof ConfigError) throw new ProvisionError('badConfig', `the configuration the script made is not valid: ${e.message}`);
    throw e;
  }
  return `# Written by scripts/provision-farm.mjs for farm ${s.farmId} (${s.runmode}); a re-run rewrites it.\n` + stringify(doc, { lineWidth: 0 });
}
