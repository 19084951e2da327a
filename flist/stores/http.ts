// http(s):// — a read-only chunk store: GET <base>/<hex[0:2]>/<hex>, then
// <base>/<hex> (both layouts exist in the wild). 404 on both is a missing
// chunk; anything else that is not 200 is an error naming the URL and id.
// Every request has a deadline and every answer a size bound, so a slow or
// hostile server cannot hold a transfer slot or memory forever.
import { chunkHex } from './chunk-id.ts';
import { StoreError, StoreReadOnlyError } from './errors.ts';
import type { ChunkStore } from './types.ts';
import type { HttpStoreUrl } from './url.ts';

export interface HttpStoreOptions {
  /** for the whole request, body included (default 60 s) */
  timeoutMs?: number;
  /** the largest chunk accepted (default 1 MiB: a 512 KiB chunk that Snappy could not shrink, plus overhead) */
  maxBytes?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_BYTES = 1 << 20;

type Answer = { status: 'found'; data: Buffer } | { status: 'missing' };

export class HttpStore implements ChunkStore {
  readonly url: string;
  private readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly maxBytes: number;

  constructor(desc: HttpStoreUrl, opts: HttpStoreOptions = {}) {
    this.url = desc.url;
    this.base = desc.base;
    this.headers = {};
    if (desc.user !== undefined || desc.password !== undefined) {
      this.headers.authorization = `Basic ${Buffer.from(`${desc.user ?? ''}:${desc.password ?? ''}`).toString('base64')}`;
    }
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  }

  async get(id: Buffer): Promise<Buffer | undefined> {
    const hex = chunkHex(id);
    for (const url of this.candidates(hex)) {
      const a = await this.request('GET', url, hex);
      if (a.status === 'found') return a.data;
    }
    return undefined;
  }

  async has(id: Buffer): Promise<boolean> {
    const hex = chunkHex(id);
    for (const url of this.candidates(hex)) {
      if ((await this.request('HEAD', url, hex)).status === 'found') return true;
    }
    return false;
  }

  async put(): Promise<void> {
    throw new StoreReadOnlyError(this.url);
  }

  /** Read-only: nothing was written. */
  async sync(): Promise<void> {}

  async close(): Promise<void> {}

  private candidates(hex: string): string[] {
    return [`${this.base}/${hex.slice(0, 2)}/${hex}`, `${this.base}/${hex}`];
  }

  private async request(method: 'GET' | 'HEAD', url: string, hex: string): Promise<Answer> {
    const fail = (what: string) => new StoreError(this.url, `${method} ${url} for chunk ${hex}: ${what}`);
    const signal = AbortSignal.timeout(this.timeoutMs);
    let res: Response;
    try {
      res = await fetch(url, { method, headers: this.headers, signal, redirect: 'follow' });
    } catch (e) {
      throw fail(signal.aborted ? `no answer within ${this.timeoutMs} ms` : networkReason(e));
    }
    if (res.status === 404) {
      await res.body?.cancel();
      return { status: 'missing' };
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw fail(`answered ${res.status} ${res.statusText}`.trim());
    }
    if (method === 'HEAD') return { status: 'found', data: Buffer.alloc(0) };
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > this.maxBytes) {
      await res.body?.cancel();
      throw fail(`${declared} bytes is more than a chunk can be (${this.maxBytes})`);
    }
    try {
      return { status: 'found', data: await this.readBounded(res, () => fail(`more than ${this.maxBytes} bytes, more than a chunk can be`)) };
    } catch (e) {
      if (e instanceof StoreError) throw e;
      throw fail(signal.aborted ? `the body did not arrive within ${this.timeoutMs} ms` : networkReason(e));
    }
  }

  private async readBounded(res: Response, tooLarge: () => StoreError): Promise<Buffer> {
    const parts: Buffer[] = [];
    let size = 0;
    const reader = res.body!.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return Buffer.concat(parts, size);
      size += value.length;
      if (size > this.maxBytes) {
        await reader.cancel();
        throw tooLarge();
      }
      parts.push(Buffer.from(value.buffer, value.byteOffset, value.length));
    }
  }
}

/** fetch() hides the errno in `cause`. */
function networkReason(e: unknown): string {
  const cause = (e as { cause?: NodeJS.ErrnoException }).cause;
  return cause?.code ?? cause?.message ?? (e as Error).message;
}
