// `zeroboot agent`: the node agent. This round only its read-only look is
// wired (`--once`); the long-running agent (prepare pools, zdbs, reports)
// is assembled from agent/ once /init starts it.
import { parseCommand, stringOpt, UsageError } from '../args.ts';

export const AGENT_HELP = `Usage: zeroboot agent --once [--json] [--root DIR]

  --once        look at this machine once and print it: settings from the
                kernel command line, inventory (CPUs, memory, DMI, NICs,
                disks, virtualisation, Secure Boot) and what each disk is
                (skipped, foreign with the reason, blank, candidate pool).
                Reads only: nothing is formatted, mounted or measured.
  --json        one JSON document instead of lines
  --root DIR    read proc/ and sys/ under DIR (a recorded tree) instead of /
`;

export async function agentCommand(argv: string[]): Promise<number> {
  const p = parseCommand('agent', argv, { once: { type: 'boolean' }, json: { type: 'boolean' }, root: { type: 'string' } });
  if (p.values.help) {
    process.stdout.write(AGENT_HELP);
    return 0;
  }
  if (p.positionals.length > 0) throw new UsageError(`agent: unexpected argument "${p.positionals[0]}"`);
  if (!p.values.once) throw new UsageError("agent: only --once is available yet (see 'zeroboot agent --help')");
  const root = stringOpt(p, 'root');
  const { existsSync } = await import('node:fs');
  if (root !== undefined && !existsSync(`${root}/proc/cpuinfo`)) throw new UsageError(`agent: --root ${root} holds no proc/cpuinfo (give a tree recorded by test/fixtures/agent/record.sh)`);
  const { lookOnce, onceLines } = await import('../../agent/once.ts');
  const view = await lookOnce({ root });
  process.stdout.write(p.values.json ? JSON.stringify(view, null, 2) + '\n' : onceLines(view).map((l) => `${l}\n`).join(''));
  return 0;
}
