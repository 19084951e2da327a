// The live table while nodes boot: one row per listed machine (and per
// machine the server saw that the list does not name), from the management
// API's machine list and node registry: MAC, hostname, stage, IP, node id,
// disks, zdbs.
import type { FarmNode } from './farm-csv.ts';

interface EventLike { kind: string; reason?: string }
export interface MachineLike { mac: string; last: EventLike | null; lease?: { ip: string; hostname?: string }; labels?: { hostname?: string } }
export interface NodeSummaryLike { nodeId: string; macs: string[]; hostname?: string; reports: number }
export interface NodeDetailLike {
  nodeId: string;
  report: {
    inventory?: { nics?: { mac: string; addresses?: string[] }[] };
    disks?: { state: string }[];
    zdbs?: { healthy: boolean }[];
  };
}

export interface NodeRow {
  mac: string;
  hostname: string;
  stage: string;
  ip: string;
  nodeId: string;
  disks: string;
  zdbs: string;
  listed: boolean;
  reported: boolean;
}

const STAGES: [RegExp, string][] = [
  [/^dhcp\./, 'dhcp'],
  [/^tftp\./, 'tftp'],
  [/^http\.script$/, 'ipxe script'],
  [/^http\.kernel$/, 'kernel'],
  [/^http\.initrd$/, 'initrd'],
  [/^http\./, 'http'],
  [/^grub\./, 'grub'],
];

/** How far a machine got, from its last event (or `reported` once its agent's report is in). */
export function stageOf(m: MachineLike | undefined, reported: boolean): string {
  if (reported) return 'reported';
  if (!m?.last) return 'not seen';
  const base = STAGES.find(([re]) => re.test(m.last!.kind))?.[1] ?? m.last.kind;
  return m.last.reason ? `${base}: ${m.last.reason}` : base;
}

function addressOf(d: NodeDetailLike | undefined, mac: string): string | undefined {
  const nic = d?.report.inventory?.nics?.find((n) => n.mac === mac);
  return nic?.addresses?.find((a) => /^\d+\.\d+\.\d+\.\d+/.test(a))?.split('/')[0];
}

/** `hidden`: MACs that are no server (the DHCP probe's own, which this farm's server answers on a second run). */
export function nodeRows(listed: FarmNode[], machines: MachineLike[], nodes: NodeSummaryLike[], details: Map<string, NodeDetailLike>, hidden: string[] = []): NodeRow[] {
  machines = machines.filter((m) => !hidden.includes(m.mac) || listed.some((n) => n.mac === m.mac));
  const byMac = new Map(machines.map((m) => [m.mac, m]));
  const macs = [...listed.map((n) => n.mac), ...machines.map((m) => m.mac).filter((mac) => !listed.some((n) => n.mac === mac)).sort()];
  return macs.map((mac) => {
    const m = byMac.get(mac);
    const want = listed.find((n) => n.mac === mac);
    const node = nodes.find((n) => n.macs.includes(mac));
    const d = node ? details.get(node.nodeId) : undefined;
    const reported = (node?.reports ?? 0) > 0;
    const disks = d?.report.disks;
    const zdbs = d?.report.zdbs;
    return {
      mac,
      hostname: want?.hostname ?? node?.hostname ?? m?.lease?.hostname ?? m?.labels?.hostname ?? '-',
      stage: stageOf(m, reported),
      ip: m?.lease?.ip ?? addressOf(d, mac) ?? '-',
      nodeId: node?.nodeId ?? '-',
      disks: disks ? `${disks.length} (${disks.filter((x) => x.state === 'prepared' || x.state === 'reused').length} pool)` : '-',
      zdbs: zdbs ? `${zdbs.filter((z) => z.healthy).length}/${zdbs.length} ok` : '-',
      listed: want !== undefined,
      reported,
    };
  });
}

const COLUMNS = ['mac', 'hostname', 'stage', 'ip', 'nodeId', 'disks', 'zdbs'] as const;
const HEADS = ['MAC', 'HOSTNAME', 'STAGE', 'IP', 'NODE ID', 'DISKS', 'ZDBS'];

export function renderTable(rows: NodeRow[]): string {
  const cells = [HEADS, ...rows.map((r) => COLUMNS.map((c) => (c === 'nodeId' && r.nodeId.length > 16 ? `${r.nodeId.slice(0, 15)}…` : r[c]) + (c === 'hostname' && !r.listed ? ' (unlisted)' : '')))];
  const widths = HEADS.map((_, i) => Math.max(...cells.map((row) => row[i].length)));
  return cells.map((row) => row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n';
}
