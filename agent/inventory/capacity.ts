// Capacity units as zos reports them: CRU = logical CPUs, MRU = memory
// bytes, SRU = bytes of the SSD pools, HRU = bytes of the HDD pools. Only
// disks the node owns (prepared or recognised as ours) are pools; a foreign
// disk is never counted.

export interface Capacity {
  cru: number;
  mru: number;
  sru: number;
  hru: number;
}

export interface Pool {
  sizeBytes: number;
  type: 'ssd' | 'hdd';
}

export function capacity(logicalCpus: number, memoryBytes: number, pools: Pool[]): Capacity {
  let sru = 0;
  let hru = 0;
  for (const p of pools) {
    if (p.type === 'ssd') sru += p.sizeBytes;
    else hru += p.sizeBytes;
  }
  return { cru: logicalCpus, mru: memoryBytes, sru, hru };
}
