import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { BootTimeline } from '../../boot/timeline.ts';
import { watchGrub } from '../../boot/grub/watch.ts';

const MAC = '52:54:00:00:00:09';

test('GRUB downloaded but its configuration never asked for: the timeline says where GRUB went and what to set', async (t) => {
  const timeline = new BootTimeline();
  const stop = watchGrub({ timeline, address: '10.0.0.1', proxyMode: true, timeoutMs: 40 });
  t.teardown(stop);
  timeline.record(MAC, 'tftp.done', { file: 'image/grubx64.efi', bytes: 1 });
  await sleep(120);
  const err = timeline.events(MAC).find((e) => e.kind === 'grub.error');
  t.truthy(err);
  t.regex(err!.reason ?? '', /never asked this server for its configuration.*\(10\.0\.0\.1\) as next-server/);
});

test('a configuration request in time, or a stop, leaves no error', async (t) => {
  const timeline = new BootTimeline();
  const stop = watchGrub({ timeline, address: '10.0.0.1', proxyMode: false, timeoutMs: 40 });
  timeline.record(MAC, 'tftp.done', { file: 'image/grubx64.efi', bytes: 1 });
  timeline.record(MAC, 'tftp.request', { file: 'grub/grub.cfg' });
  const other = '52:54:00:00:00:0a';
  timeline.record(other, 'tftp.done', { file: 'grubx64.efi', bytes: 1 });
  stop();
  await sleep(120);
  t.false(timeline.events(MAC).some((e) => e.kind === 'grub.error'));
  t.false(timeline.events(other).some((e) => e.kind === 'grub.error'));
});
