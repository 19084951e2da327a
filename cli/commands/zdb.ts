// `zeroboot zdb <0-db flags>`: the 0-db compatible server, with the
// reference's flags, defaults and exit codes (see zdb/cli.ts).
import { runZdb } from '../../zdb/index.ts';

export async function zdbCommand(argv: string[]): Promise<number> {
  const code = await runZdb(argv);
  // after a signal the reference exits at once with 128 + signal; nothing is left to wait for
  if (code >= 128) process.exit(code);
  return code;
}
