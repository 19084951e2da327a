// Benchmarks' flags: a wrong one is one line on stderr and exit 2, as for
// every zeroboot command, instead of parseArgs' stack trace.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export function parseBenchArgs<T extends ParseArgsConfig>(script: string, config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (e) {
    console.error(`${script}: ${(e as Error).message.split('\n')[0]}`);
    process.exit(2);
  }
}
