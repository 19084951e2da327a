// The `zeroboot` command: picks a subcommand and turns every failure into
// one line on stderr and a non-zero exit code (2 for usage, 1 otherwise).
import { UsageError } from './args.ts';
import { keepRunningWhenOutputCloses } from '../lib/stdio.ts';

const HELP = `Usage: zeroboot <command> [options]

Commands:
  serve     run the netboot server (DHCP, TFTP, HTTP/iPXE)
  image     build a bootable image (kernel, initramfs, iPXE script) from Debian packages
  qemu      start or stop emulated servers from hardware profiles, PXE-booting from the server
  flist     pack a directory into an flist (.fl + chunk store), list, cat, unpack, verify it
  zdb       run a 0-db compatible key-value server (same flags, protocol and files as 0-db v2)
  demo      start the server in a private network namespace and boot a test client

Run 'zeroboot <command> --help' for the options of a command.
`;

// Loaded on demand so `--help` and usage errors do not pay for every module.
const COMMANDS: Record<string, () => Promise<(argv: string[]) => Promise<number>>> = {
  serve: async () => (await import('./commands/serve.ts')).serveCommand,
  demo: async () => (await import('./commands/demo.ts')).demoCommand,
  image: async () => (await import('./commands/image.ts')).imageCommand,
  qemu: async () => (await import('./commands/qemu.ts')).qemuCommand,
  zdb: async () => (await import('./commands/zdb.ts')).zdbCommand,
  flist: async () => (await import('./commands/flist.ts')).flistCommand,
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP);
    return command === undefined ? 2 : 0;
  }
  const load = COMMANDS[command];
  if (!load) throw new UsageError(`unknown command "${command}" (see 'zeroboot --help')`);
  return (await load())(rest);
}

keepRunningWhenOutputCloses();
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    process.stderr.write(`zeroboot: ${err.message.split('\n')[0]}\n`);
    if (process.env.ZEROBOOT_DEBUG) process.stderr.write(`${err.stack}\n`);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  },
);
