// bin/zeroboot is a shell script and cannot import boot/runtime-flags.ts or
// agent/runtime-flags.ts, so the two spellings of the serve and agent
// processes' Node flags are kept equal here.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { AGENT_NODE_FLAGS } from '../../agent/runtime-flags.ts';
import { SERVE_NODE_FLAGS } from '../../boot/runtime-flags.ts';

test('bin/zeroboot passes serve exactly the flags of boot/runtime-flags.ts', async (t) => {
  const script = await readFile(new URL('../../bin/zeroboot', import.meta.url), 'utf8');
  const m = /\[ "\$\{1:-\}" = serve \] && flags=\(([^)]*)\)/.exec(script);
  t.truthy(m, 'bin/zeroboot sets its serve flags in one flags=(...) line');
  t.deepEqual(m![1].trim().split(/\s+/), [...SERVE_NODE_FLAGS]);
});

test('bin/zeroboot passes agent exactly the flags of agent/runtime-flags.ts', async (t) => {
  const script = await readFile(new URL('../../bin/zeroboot', import.meta.url), 'utf8');
  const m = /\[ "\$\{1:-\}" = agent \] && flags=\(([^)]*)\)/.exec(script);
  t.truthy(m, 'bin/zeroboot sets its agent flags in one flags=(...) line');
  t.deepEqual(m![1].trim().split(/\s+/), [...AGENT_NODE_FLAGS]);
});
