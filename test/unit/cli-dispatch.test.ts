import test from 'ava';
import { dispatch, UsageError } from '../../cli/args.ts';

test('dispatch runs the named subcommand with the rest of the arguments; an unknown one is a usage error naming the known', async (t) => {
  const seen: string[][] = [];
  const subs = { up: async (argv: string[]) => (seen.push(argv), 0), down: async () => 3 };
  t.is(await dispatch('qemu', ['up', '--count', '2'], subs, 'help\n'), 0);
  t.deepEqual(seen, [['--count', '2']]);
  t.is(await dispatch('qemu', ['down'], subs, 'help\n'), 3);
  await t.throwsAsync(dispatch('qemu', ['sideways'], subs, 'help\n'), { instanceOf: UsageError, message: 'qemu: unknown command "sideways" (use up, down)' });
  await t.throwsAsync(dispatch('qemu', ['toString'], subs, 'help\n'), { instanceOf: UsageError }, 'only own entries are subcommands');
});
