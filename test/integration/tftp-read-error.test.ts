// A read error in the middle of a TFTP transfer: the file is cut short on
// disk while it is being sent (an image rebuilt in place). The client must
// get a TFTP ERROR instead of a silently short file, and the server must go
// on serving. Packets are built and parsed by hand (RFC 1350), not with the
// server's codec.
import test from 'ava';
import dgram from 'node:dgram';
import type { Socket } from 'node:dgram';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MountedStore } from '../../boot/store.ts';
import { BootTimeline } from '../../boot/timeline.ts';
import { silentLogger } from '../../boot/log.ts';
import { startTftpServer } from '../../boot/tftp/index.ts';

const HOST = '127.0.0.1';
const MAC = '52:54:00:7e:00:01';

type Packet = { op: 'data'; block: number; data: Buffer } | { op: 'error'; code: number; message: string } | { op: number };

function parse(b: Buffer): Packet {
  const op = b.readUInt16BE(0);
  if (op === 3) return { op: 'data', block: b.readUInt16BE(2), data: b.subarray(4) };
  if (op === 5) return { op: 'error', code: b.readUInt16BE(2), message: b.toString('latin1', 4, b.indexOf(0, 4)) };
  return { op };
}

// 8 KiB blocks: about a hundred round trips reach the second read-ahead chunk.
const BLKSIZE = 8192;
const rrq = (file: string) => Buffer.from(`\0\x01${file}\0octet\0blksize\0${BLKSIZE}\0`, 'latin1');
function ack(block: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(4, 0);
  b.writeUInt16BE(block & 0xffff, 2);
  return b;
}

class Peer {
  private readonly queue: { pkt: Packet; port: number }[] = [];
  private waiter: (() => void) | undefined;
  readonly socket: Socket;
  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('message', (raw, rinfo) => {
      this.queue.push({ pkt: parse(raw), port: rinfo.port });
      this.waiter?.();
    });
  }
  static async open(): Promise<Peer> {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, HOST, r));
    return new Peer(s);
  }
  async next(timeoutMs = 20_000): Promise<{ pkt: Packet; port: number }> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      if (Date.now() > deadline) throw new Error(`no packet within ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        const timer = setTimeout(r, 100);
        this.waiter = () => {
          clearTimeout(timer);
          r();
        };
      });
    }
    return this.queue.shift()!;
  }
  send(b: Buffer, port: number): void {
    this.socket.send(b, port, HOST);
  }
}

/** Polls until `probe` returns a value, for at most 30 s (a loaded machine). */
async function eventually<T>(probe: () => T | undefined): Promise<T | undefined> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const v = probe();
    if (v !== undefined || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Lock-step download; `afterBlock` runs once block N has arrived, before it is acknowledged. */
async function download(p: Peer, port: number, file: string, afterBlock?: (block: number) => Promise<void>): Promise<{ data: Buffer; error?: { code: number; message: string } }> {
  p.send(rrq(file), port);
  const parts: Buffer[] = [];
  let expected = 1;
  for (;;) {
    const { pkt, port: tid } = await p.next();
    // OACK (blksize accepted): acknowledged as block 0.
    if (pkt.op === 6) {
      p.send(ack(0), tid);
      continue;
    }
    if (pkt.op === 'error') return { data: Buffer.concat(parts), error: { code: pkt.code, message: pkt.message } };
    if (pkt.op !== 'data') throw new Error(`unexpected opcode ${pkt.op}`);
    if (pkt.block !== (expected & 0xffff)) continue;
    parts.push(pkt.data);
    await afterBlock?.(expected);
    p.send(ack(pkt.block), tid);
    if (pkt.data.length < BLKSIZE) return { data: Buffer.concat(parts) };
    expected++;
  }
}

for (const dataPath of ['native', 'js'] as const) {
  test(`a file cut short mid-transfer: the client gets a TFTP ERROR, the timeline a failure, and the server keeps serving [${dataPath}]`, async (t) => {
    t.timeout(180_000);
    const dir = await mkdtemp(path.join(tmpdir(), 'zb-tftp-readerr-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    // Larger than the server's read-ahead chunk (1 MiB), so a later chunk is read after the cut.
    const big = randomBytes(3 * 1024 * 1024);
    const small = randomBytes(20_000);
    await writeFile(path.join(dir, 'big.bin'), big);
    await writeFile(path.join(dir, 'small.bin'), small);
    const timeline = new BootTimeline();
    const server = await startTftpServer({
      store: new MountedStore([{ prefix: '', dir }]),
      address: HOST,
      port: 0,
      maxTransfers: 4,
      timeoutMs: 5000,
      retries: 2,
      timeline,
      log: silentLogger,
      macForIp: () => MAC,
      dataPath,
    });
    t.teardown(() => server.close());

    const p = await Peer.open();
    t.teardown(() => p.socket.close());
    const r = await download(p, server.port, 'big.bin', async (block) => {
      if (block === 1) await truncate(path.join(dir, 'big.bin'), 4096);
    });
    t.truthy(r.error, `the transfer ended without an error after ${r.data.length} bytes`);
    t.is(r.error?.code, 0);
    t.regex(r.error?.message ?? '', /cannot read/);
    t.true(r.data.length < big.length, 'not the whole file');
    t.deepEqual(r.data, big.subarray(0, r.data.length), 'what was sent is the file as it was');
    // The server records the outcome once the transfer's socket is closed,
    // which may come after the client has read the ERROR.
    const failure = await eventually(() => timeline.events(MAC).find((e) => e.kind === 'tftp.error'));
    t.truthy(failure, JSON.stringify(timeline.events(MAC)));
    t.regex(failure?.reason ?? '', /cannot read big\.bin/);
    t.false(timeline.events(MAC).some((e) => e.kind === 'tftp.done' && e.detail?.file === 'big.bin'));

    const q = await Peer.open();
    t.teardown(() => q.socket.close());
    const again = await download(q, server.port, 'small.bin');
    t.is(again.error, undefined);
    t.deepEqual(again.data, small, 'the next transfer is served whole');
  });
}
