import test from 'ava';
import { progressBar, renderProgress } from '../../lib/progress.ts';

function fakeTty(isTTY: boolean): { stream: NodeJS.WriteStream; written: string[] } {
  const written: string[] = [];
  const stream = { isTTY, columns: 80, write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream;
  return { stream, written };
}

test('renders a bar with percent and MiB, clipped to the terminal width', (t) => {
  const line = renderProgress('packing', 50 * 1048576, 100 * 1048576, '12 files', 80);
  t.regex(line, /^packing \[#+-+\]  50% 50\.0 MiB\/100\.0 MiB  12 files$/);
  t.true(line.length <= 79);
  t.is(renderProgress('packing', 3 * 1048576, undefined, '7 files', 80), 'packing 3.0 MiB  7 files');
  t.true(renderProgress('x'.repeat(200), 1, 2, undefined, 40).length <= 39);
  t.regex(renderProgress('p', 5, 2, undefined, 80), /100%/, 'never above 100%');
});

test('draws at most once per interval, clears at the end', (t) => {
  let now = 1000;
  const { stream, written } = fakeTty(true);
  const bar = progressBar('packing', { stream, intervalMs: 100, now: () => now });
  bar.update(1, 10);
  bar.update(2, 10);
  now += 50;
  bar.update(3, 10);
  t.is(written.length, 1, 'only the first of three updates within 100 ms');
  now += 60;
  bar.update(4, 10);
  t.is(written.length, 2);
  t.true(written[1].startsWith('\r\x1b[K'));
  bar.end();
  t.is(written[2], '\r\x1b[K');
});

test('writes nothing when the stream is not a terminal', (t) => {
  const { stream, written } = fakeTty(false);
  const bar = progressBar('packing', { stream });
  bar.update(1, 10, 'x');
  bar.end();
  t.deepEqual(written, []);
});
