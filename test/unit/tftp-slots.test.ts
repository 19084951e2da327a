import test from 'ava';
import { TransferSlots } from '../../boot/tftp/slots.ts';

test('slots count per client address over all its ports; a new holder of the same slot is not counted twice', (t) => {
  const s = new TransferSlots<string>();
  const a1 = { address: '10.0.0.1', port: 1000 };
  const a2 = { address: '10.0.0.1', port: 1001 };
  const b = { address: '10.0.0.2', port: 1000 };
  s.set(a1, 'opening');
  s.set(a1, 'transfer');
  s.set(a2, 'transfer');
  s.set(b, 'transfer');
  t.is(s.size, 3);
  t.is(s.heldBy('10.0.0.1'), 2);
  t.is(s.get(a1), 'transfer');
  s.delete(a1);
  s.delete(a1);
  t.is(s.heldBy('10.0.0.1'), 1);
  s.delete(a2);
  t.is(s.heldBy('10.0.0.1'), 0);
  t.is(s.heldBy('10.0.0.2'), 1);
  t.deepEqual([...s.values()], ['transfer']);
});
