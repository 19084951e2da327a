// `zeroboot agent`: the node agent (agent/run.ts), or with --once its
// read-only look (agent/once.ts).
import { existsSync } from 'node:fs';
import { intOpt, listOpt, parseCommand, stringOpt, UsageError } from '../args.ts';

export const AGENT_HELP = `Usage: zeroboot agent [--server URL] [--interval S] [--mount-root DIR] [--run-dir DIR]
                      [--disk DEV]... [--cmdline TEXT]
       zeroboot agent --once [--json] [--root DIR]

  Without --once: prepares blank disks as pools (never one holding any
  signature), types them SSD/HDD, loads or makes the node key, runs one zdb
  per HDD pool and sends a signed report to the server now and every
  --interval seconds (default 60), until stopped (SIGTERM/SIGINT stop the
  zdbs). The zdbs start once the first report is out (or 10 s after it
  was sent without an answer); blank disks are formatted then too, and
  listed as preparing until then. Settings come from /proc/cmdline; --server replaces zeroboot.server.
  --mount-root  where pools are mounted (default /mnt)
  --run-dir     where zdb sockets go (default /run/zeroboot)
  --disk DEV    look at this block device only (repeatable); loop devices
                are then allowed: for tests and benchmarks on a host
  --cmdline T   settings from T instead of /proc/cmdline
  --root DIR    read proc/, sys/ and dev/ under DIR (a recorded tree: its
                disks cannot be opened, so the node runs diskless)

  --once        look at this machine once and print it: settings from the
                kernel command line, inventory (CPUs, memory, DMI, NICs,
                disks, virtualisation, Secure Boot) and what each disk is
                (skipped, foreign with the reason, blank, candidate pool).
                Reads only: nothing is formatted, mounted or measured.
  --json        one JSON document instead of lines
  --root DIR    read proc/ and sys/ under DIR (a recorded tree) instead of /
`;

export async function agentCommand(argv: string[]): Promise<number> {
  const p = parseCommand('agent', argv, {
    once: { type: 'boolean' },
    json: { type: 'boolean' },
    root: { type: 'string' },
    server: { type: 'string' },
    interval: { type: 'string' },
    'mount-root': { type: 'string' },
    'run-dir': { type: 'string' },
    disk: { type: 'string', multiple: true },
    cmdline: { type: 'string' },
  });
  if (p.values.help) {
    process.stdout.write(AGENT_HELP);
    return 0;
  }
  if (p.positionals.length > 0) throw new UsageError(`agent: unexpected argument "${p.positionals[0]}"`);
  if (!p.values.once) return runAgent(p);
  if (p.values.disk !== undefined || p.values.cmdline !== undefined) throw new UsageError('agent: --disk and --cmdline go without --once');
  const root = checkedRoot(p);
  const { lookOnce, onceLines } = await import('../../agent/once.ts');
  const view = await lookOnce({ root });
  process.stdout.write(p.values.json ? JSON.stringify(view, null, 2) + '\n' : onceLines(view).map((l) => `${l}\n`).join(''));
  return 0;
}

function checkedRoot(p: import('../args.ts').Parsed): string | undefined {
  const root = stringOpt(p, 'root');
  if (root !== undefined && !existsSync(`${root}/proc/cpuinfo`)) throw new UsageError(`agent: --root ${root} holds no proc/cpuinfo (give a tree recorded by test/fixtures/agent/record.sh)`);
  return root;
}

async function runAgent(p: import('../args.ts').Parsed): Promise<number> {
  if (p.values.json !== undefined) throw new UsageError('agent: --json goes with --once');
  const root = checkedRoot(p);
  const { agentCmdline, readAgentCmdline, serverUrlOf } = await import('../../agent/cmdline.ts');
  const text = stringOpt(p, 'cmdline');
  const cmdline = text === undefined ? await readAgentCmdline() : agentCmdline(text);
  const disks = listOpt(p, 'disk');
  for (const d of disks) if (!d.startsWith('/dev/')) throw new UsageError(`agent: --disk ${d}: give a /dev path`);
  const server = serverUrlOf(stringOpt(p, 'server'), 'agent: --server') ?? cmdline.server;
  if (!server) throw new UsageError('agent: no server to report to: boot with zeroboot.server=<url> or pass --server URL');
  const interval = intOpt(p, 'agent', 'interval', 5, 86_400) ?? 60;
  const { Agent } = await import('../../agent/run.ts');
  const log = (msg: string) => process.stderr.write(`zeroboot agent: ${msg}\n`);
  const agent = await Agent.bringUp({
    cmdline: { ...cmdline, server },
    ...(root ? { root } : {}),
    mountRoot: stringOpt(p, 'mount-root') ?? '/mnt',
    runDir: stringOpt(p, 'run-dir') ?? '/run/zeroboot',
    ...(disks.length > 0 ? { onlyDevices: disks, allowLoop: true } : {}),
    zeroboot: [process.execPath, '--disable-warning=ExperimentalWarning', process.argv[1]],
    // The first report first: blank disks are formatted and the zdbs start once it is out (agent/run.ts).
    deferZdbs: true,
    deferPools: true,
    log,
  });
  const preparing = agent.disks.filter((d) => d.state === 'preparing').length;
  log(`node ${agent.identity.nodeId}${agent.identity.diskless ? ' (diskless: key in memory only)' : ''}, ${agent.zdbs.length} zdb(s)${preparing ? `, ${preparing} blank disk(s) to prepare after the first report` : ''}, reporting to ${server} every ${interval} s (up ${Math.round(process.uptime() * 1000)} ms after Node started)`);
  // One line per accepted report on stdout (the node's console), for a harness or a person watching it.
  let sent = 0;
  agent.startReporting(interval * 1000, () => process.stdout.write(`ZEROBOOT-AGENT node=${agent.identity.nodeId} report=accepted n=${++sent}\n`));
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await agent.stop();
  return 0;
}
