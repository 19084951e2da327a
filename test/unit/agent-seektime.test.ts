import test from 'ava';
import { decideType, type TypeFacts } from '../../agent/disks/seektime.ts';

const f = (o: Partial<TypeFacts>): TypeFacts => ({ name: 'sda', bus: 'sata', rotational: true, virtualized: false, debugVm: false, ...o });

test('on hardware the measurement wins over the flag, both ways (RAID cards and HBAs misreport it)', (t) => {
  t.deepEqual(decideType(f({ rotational: true, measuredMs: 0.08 })), { type: 'ssd', by: 'measurement' });
  t.deepEqual(decideType(f({ rotational: false, measuredMs: 7.9 })), { type: 'hdd', by: 'measurement' });
  t.deepEqual(decideType(f({ rotational: false, measuredMs: 0.5 })), { type: 'hdd', by: 'measurement' }, '0.5 ms is not below 0.5 ms');
  t.deepEqual(decideType(f({ rotational: true })), { type: 'hdd', by: 'rotational flag' }, 'no measurement: the flag');
});

test('in a VM an emulated bus that states a rotation rate keeps its flag: the measurement times the host cache', (t) => {
  for (const bus of ['scsi', 'sata', 'sas', 'nvme']) {
    t.deepEqual(decideType(f({ bus, virtualized: true, rotational: true, measuredMs: 0.05 })), { type: 'hdd', by: 'rotational flag' }, bus);
    t.deepEqual(decideType(f({ bus, virtualized: true, rotational: false, measuredMs: 3 })), { type: 'ssd', by: 'rotational flag' }, bus);
  }
  // virtio-blk always says rotational: only the measurement can tell.
  t.deepEqual(decideType(f({ name: 'vda', bus: 'virtio', virtualized: true, rotational: true, measuredMs: 0.05 })), { type: 'ssd', by: 'measurement' });
});

test('zos-debug-vm: the reference rig rule for virtio disks (vdd, vde HDD), the flag for the others', (t) => {
  for (const name of ['vda', 'vdb', 'vdc']) t.deepEqual(decideType(f({ name, bus: 'virtio', debugVm: true, measuredMs: 9 })), { type: 'ssd', by: 'zos-debug-vm rule' });
  for (const name of ['vdd', 'vde']) t.deepEqual(decideType(f({ name, bus: 'virtio', debugVm: true, measuredMs: 0.01 })), { type: 'hdd', by: 'zos-debug-vm rule' });
  t.deepEqual(decideType(f({ bus: 'scsi', debugVm: true, rotational: false, measuredMs: 9 })), { type: 'ssd', by: 'rotational flag' });
});
