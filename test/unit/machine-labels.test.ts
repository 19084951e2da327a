import test from 'ava';
import { MachineLabels } from '../../boot/machine-labels.ts';

test('labels from each protocol merge per MAC, newer values win', (t) => {
  const l = new MachineLabels();
  l.note('52:54:00:00:00:01', { uuid: 'u1' });
  l.note('52:54:00:00:00:01', { arch: 'x86_64' });
  l.note('52:54:00:00:00:01', { arch: 'x86_64', hostname: 'n1' });
  t.deepEqual(l.get('52:54:00:00:00:01'), { mac: '52:54:00:00:00:01', uuid: 'u1', arch: 'x86_64', hostname: 'n1' });
  t.is(l.get('52:54:00:00:00:02'), undefined);
});

test('bounded: the least recently changed MAC goes first', (t) => {
  const l = new MachineLabels(2);
  l.note('a', { uuid: '1' });
  l.note('b', { uuid: '2' });
  l.note('a', { uuid: '3' });
  l.note('c', { uuid: '4' });
  t.is(l.get('b'), undefined);
  t.is(l.get('a')?.uuid, '3');
  t.is(l.get('c')?.uuid, '4');
});
