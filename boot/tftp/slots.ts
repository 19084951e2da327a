// The server's transfer slots: requests being opened or transferring, one per
// client address and port, with a count per client address so one host cannot
// take every slot (a flood of requests it never acknowledges would otherwise
// lock every other machine out until they time out).
export interface Client {
  address: string;
  port: number;
}

export class TransferSlots<T> {
  private readonly byClient = new Map<string, T>();
  private readonly perHost = new Map<string, number>();

  get size(): number {
    return this.byClient.size;
  }

  get(c: Client): T | undefined {
    return this.byClient.get(key(c));
  }

  /** Slots held by one client address, over all its ports. */
  heldBy(address: string): number {
    return this.perHost.get(address) ?? 0;
  }

  /** Takes the client's slot, or gives its slot a new holder. */
  set(c: Client, value: T): void {
    const k = key(c);
    if (!this.byClient.has(k)) this.perHost.set(c.address, this.heldBy(c.address) + 1);
    this.byClient.set(k, value);
  }

  delete(c: Client): void {
    if (!this.byClient.delete(key(c))) return;
    const n = this.heldBy(c.address) - 1;
    if (n > 0) this.perHost.set(c.address, n);
    else this.perHost.delete(c.address);
  }

  values(): IterableIterator<T> {
    return this.byClient.values();
  }
}

function key(c: Client): string {
  return `${c.address}:${c.port}`;
}
