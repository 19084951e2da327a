// What `zeroboot demo` shows of a node: its last signed report as the boot
// server's registry holds it (GET /api/nodes/<id>), cut down to the
// inventory, the disks (type, state, foreign reason), capacity and zdb
// endpoints, and rendered as text. The JSON document (--json) and the text
// come from the same view. The report was written by the node, so every
// field is read defensively: a missing or odd field shows as absent, never
// as a crash.

export interface NicView {
  name: string;
  mac: string;
  driver?: string;
  link: string;
  speedMbps?: number;
  addresses: string[];
  /** The NIC the node booted from (BOOTIF). */
  boot: boolean;
}

export interface DiskView {
  name: string;
  sizeBytes: number;
  bus: string;
  /** ssd / hdd once the node made it a pool; absent for disks it left alone. */
  type?: string;
  /** What decided the type (measurement, rotational flag, ...). */
  typeBy?: string;
  state: string;
  /** Why the disk is in that state; for a foreign disk, the signature found. */
  reason: string;
  label?: string;
  model?: string;
  serial?: string;
}

export interface ZdbView {
  disk: string;
  /** host:port a workload connects to (the boot NIC's IPv4 address). */
  endpoint: string;
  healthy: boolean;
  restarts: number;
  lastExit?: string;
}

export interface NodeView {
  nodeId: string;
  publicKey?: string;
  firstSeen?: string;
  lastReport?: string;
  reports?: number;
  bootMac?: string;
  runmode?: string;
  diskless: boolean;
  cpu: { model?: string; logical?: number };
  memoryBytes?: number;
  dmi: { vendor?: string; product?: string; serial?: string; uuid?: string };
  virtualized?: boolean;
  secureBoot?: string;
  nics: NicView[];
  disks: DiskView[];
  capacity: { cru?: number; mru?: number; sru?: number; hru?: number };
  zdbs: ZdbView[];
}

export class NodeReportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NodeReportError';
  }
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {});
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.map(obj) : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function defined<T extends Obj>(o: T): T {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** The view of GET /api/nodes/<id>'s answer (the registry's summary plus `report`, the node's last signed payload). */
export function nodeView(detail: unknown): NodeView {
  const d = obj(detail);
  const nodeId = str(d.nodeId);
  if (!nodeId) throw new NodeReportError('the registry answer has no nodeId: not a GET /api/nodes/<id> answer');
  const r = obj(d.report);
  const inv = obj(r.inventory);
  const bootMac = str(r.bootMac) ?? str(r.mac);
  const nics: NicView[] = list(inv.nics)
    .filter((n) => n.physical !== false)
    .map((n) =>
      defined({
        name: str(n.name) ?? '?',
        mac: str(n.mac) ?? '?',
        driver: str(n.driver),
        link: str(n.link) ?? 'unknown',
        speedMbps: num(n.speedMbps),
        addresses: Array.isArray(n.addresses) ? n.addresses.filter((a): a is string => typeof a === 'string') : [],
        boot: bootMac !== undefined && n.mac === bootMac,
      }),
    );
  const invDisks = new Map(list(inv.disks).map((x) => [str(x.name), x]));
  const disks: DiskView[] = list(r.disks).map((x) => {
    const i = invDisks.get(str(x.name)) ?? {};
    return defined({
      name: str(x.name) ?? '?',
      sizeBytes: num(x.sizeBytes) ?? num(i.sizeBytes) ?? 0,
      bus: str(x.bus) ?? str(i.bus) ?? 'unknown',
      type: str(x.type),
      typeBy: str(x.by),
      state: str(x.state) ?? 'unknown',
      reason: str(x.reason) ?? '',
      label: str(x.label),
      model: str(i.model),
      serial: str(i.serial),
    });
  });
  // Workloads reach a zdb on the address the node booted with.
  const bootNic = nics.find((n) => n.boot) ?? nics[0];
  const host = bootNic?.addresses.find((a) => IPV4.test(a)) ?? '<node>';
  const zdbs: ZdbView[] = list(r.zdbs).map((z) =>
    defined({
      disk: str(z.disk) ?? '?',
      endpoint: `${host}:${num(z.port) ?? '?'}`,
      healthy: z.healthy === true,
      restarts: num(z.restarts) ?? 0,
      lastExit: str(z.lastExit),
    }),
  );
  const cpu = obj(inv.cpu);
  const dmi = obj(inv.dmi);
  const cap = obj(r.capacity ?? d.capacity);
  return defined({
    nodeId,
    publicKey: str(d.publicKey),
    firstSeen: str(d.firstSeen),
    lastReport: str(d.lastReport),
    reports: num(d.reports),
    bootMac,
    runmode: str(r.runmode),
    diskless: r.diskless === true || d.diskless === true,
    cpu: defined({ model: str(cpu.model), logical: num(cpu.logical) }),
    memoryBytes: num(inv.memoryBytes),
    dmi: defined({ vendor: str(dmi.vendor), product: str(dmi.product), serial: str(dmi.serial), uuid: str(dmi.uuid) }),
    virtualized: typeof inv.virtualized === 'boolean' ? inv.virtualized : undefined,
    secureBoot: str(inv.secureBoot),
    nics,
    disks,
    capacity: defined({ cru: num(cap.cru), mru: num(cap.mru), sru: num(cap.sru), hru: num(cap.hru) }),
    zdbs,
  });
}

/** Bytes in binary units with one decimal (8.0 GiB). */
export function formatBytes(n: number | undefined): string {
  if (n === undefined) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** The view as indented text lines (no trailing newline on each). */
export function renderNodeView(v: NodeView): string[] {
  const out: string[] = [];
  out.push(`  node      ${v.nodeId}${v.diskless ? ' (diskless: key in memory only)' : ''}`);
  if (v.lastReport) out.push(`  reports   ${v.reports ?? '?'} accepted, first ${v.firstSeen ?? '?'}, last ${v.lastReport}`);
  out.push(`  cpu       ${v.cpu.logical ?? '?'} x ${v.cpu.model ?? 'unknown model'}`);
  out.push(`  memory    ${formatBytes(v.memoryBytes)}`);
  const dmi = [v.dmi.vendor, v.dmi.product].filter(Boolean).join(' ');
  if (dmi || v.dmi.serial) out.push(`  dmi       ${dmi || '?'}${v.dmi.serial ? `, serial ${v.dmi.serial}` : ''}${v.dmi.uuid ? `, uuid ${v.dmi.uuid}` : ''}`);
  out.push(`  platform  ${v.virtualized === undefined ? '?' : v.virtualized ? 'virtualized' : 'bare metal'}, secure boot ${v.secureBoot ?? '?'}, runmode ${v.runmode ?? '?'}`);
  out.push(`  nics      (* = boot NIC${v.bootMac ? ` ${v.bootMac}` : ''})`);
  for (const n of v.nics) {
    const speed = n.speedMbps !== undefined ? ` ${n.speedMbps} Mb/s` : '';
    out.push(`    ${n.boot ? '*' : ' '} ${n.name.padEnd(8)} ${n.mac}  ${(n.driver ?? '-').padEnd(10)} link ${n.link}${speed}  ${n.addresses.filter((a) => IPV4.test(a)).join(' ')}`.trimEnd());
  }
  if (v.nics.length === 0) out.push('    (none reported)');
  const ssd = v.disks.filter((d) => d.type === 'ssd').length;
  const hdd = v.disks.filter((d) => d.type === 'hdd').length;
  out.push(`  disks     ${ssd} SSD, ${hdd} HDD${v.disks.length > ssd + hdd ? `, ${v.disks.length - ssd - hdd} not used` : ''}`);
  for (const d of v.disks) {
    const type = d.type ? `${d.type.toUpperCase()}${d.typeBy ? ` (${d.typeBy})` : ''}` : '-';
    const why = d.state === 'foreign' ? `  foreign: ${d.reason}` : d.label ? `  label ${d.label}` : d.reason ? `  ${d.reason}` : '';
    out.push(`    ${d.name.padEnd(8)} ${formatBytes(d.sizeBytes).padStart(9)}  ${d.bus.padEnd(6)} ${type.padEnd(26)} ${d.state}${why}`);
  }
  const c = v.capacity;
  out.push(`  capacity  CRU ${c.cru ?? '?'}  MRU ${formatBytes(c.mru)}  SRU ${formatBytes(c.sru)}  HRU ${formatBytes(c.hru)}`);
  out.push(`  zdbs      ${v.zdbs.length}`);
  for (const z of v.zdbs) {
    out.push(`    ${z.disk.padEnd(8)} ${z.endpoint.padEnd(21)} ${z.healthy ? 'healthy' : 'unhealthy'}, restarts ${z.restarts}${z.lastExit ? `, last exit: ${z.lastExit}` : ''}`);
  }
  return out;
}
