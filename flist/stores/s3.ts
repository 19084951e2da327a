// s3:// and s3s:// — chunks as objects named by the id's hex in one bucket
// (rfs's layout), through @aws-sdk/client-s3 with path-style URLs, so any
// S3 server (Ceph radosgw, MinIO, Garage) answers. A missing object is a
// missing chunk; every other failure is a StoreError naming the store
// (password stripped) and the chunk, on one line.
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { HttpRequest } from '@aws-sdk/types';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { chunkHex } from './chunk-id.ts';
import { StoreAuthError, StoreError } from './errors.ts';
import { DEFAULT_TRANSFERS } from './limit.ts';
import type { ChunkStore } from './types.ts';
import type { S3StoreUrl } from './url.ts';

export interface S3StoreOptions {
  /** for a whole request, body and retries included (default 60 s) */
  timeoutMs?: number;
  /** for the TCP (and TLS) connection (default 10 s) */
  connectTimeoutMs?: number;
  /** the largest chunk accepted (default 1 MiB, as the http store) */
  maxBytes?: number;
  /** attempts per request, the SDK's retries with backoff (default 3) */
  attempts?: number;
  /** sockets kept per store: at least the transfers in flight, or requests queue in the agent */
  sockets?: number;
  /** extra CA certificates for s3s (a private radosgw); the system's are used too */
  ca?: string | Buffer;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_BYTES = 1 << 20;
const DEFAULT_ATTEMPTS = 3;
/** rfs leaves the region empty when the URL has none; the SDK needs one, and radosgw accepts any */
const DEFAULT_REGION = 'us-east-1';
/** S3 error codes that mean the key or secret was refused */
const AUTH_CODES = new Set(['SignatureDoesNotMatch', 'InvalidAccessKeyId', 'AccessDenied', 'InvalidToken', 'ExpiredToken']);

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

export class S3Store implements ChunkStore {
  readonly url: string;
  // This module (and the SDK with it, about 0.1 s of CPU to load) is only
  // imported by lazy-s3.ts when an s3:// store is first used.
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly anonymous: boolean;
  private readonly timeoutMs: number;
  private readonly maxBytes: number;

  constructor(desc: S3StoreUrl, opts: S3StoreOptions = {}) {
    this.url = desc.url;
    this.bucket = desc.bucket;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
    const sockets = Math.max(opts.sockets ?? DEFAULT_TRANSFERS + 12, 1);
    const agent = { keepAlive: true, maxSockets: sockets };
    // a route read from an .fl has its secret stripped: such a store reads a public bucket, unsigned
    this.anonymous = desc.secretKey === undefined;
    const host = desc.host.includes(':') ? `[${desc.host}]` : desc.host;
    this.client = new S3Client({
      endpoint: `${desc.tls ? 'https' : 'http'}://${host}:${desc.port}`,
      region: desc.region || DEFAULT_REGION,
      forcePathStyle: true,
      // always explicit: without them the SDK walks its default chain (env, ~/.aws, the EC2 metadata address)
      credentials: { accessKeyId: desc.accessKey ?? '', secretAccessKey: desc.secretKey ?? '' },
      ...(this.anonymous ? { signer: { sign: async (request: HttpRequest) => request } } : {}),
      // checksums only where S3 requires them: radosgw and older servers refuse or ignore the new default trailers
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: opts.attempts ?? DEFAULT_ATTEMPTS,
      requestHandler: {
        connectionTimeout: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        // per attempt; without throwOnRequestTimeout the SDK would only warn on stderr
        requestTimeout: this.timeoutMs,
        throwOnRequestTimeout: true,
        httpAgent: new http.Agent(agent),
        httpsAgent: new https.Agent({ ...agent, ...(opts.ca ? { ca: [...tls.rootCertificates, opts.ca] } : {}) }),
      },
    });
  }

  async get(id: Buffer): Promise<Buffer | undefined> {
    const hex = chunkHex(id);
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: hex }), { abortSignal: signal });
      const body = res.Body;
      if (!body) throw new StoreError(this.url, `reading chunk ${hex}: an answer without a body`);
      if ((res.ContentLength ?? 0) > this.maxBytes) {
        (body as { destroy?: () => void }).destroy?.();
        throw new StoreError(this.url, `reading chunk ${hex}: ${res.ContentLength} bytes is more than a chunk can be (${this.maxBytes})`);
      }
      const bytes = await body.transformToByteArray();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    } catch (e) {
      if (e instanceof StoreError) throw e;
      if ((e as SdkError).name === 'NoSuchKey') return undefined;
      throw this.failure('reading', hex, e, signal);
    }
  }

  async has(id: Buffer): Promise<boolean> {
    const hex = chunkHex(id);
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: hex }), { abortSignal: signal });
      return true;
    } catch (e) {
      // a HEAD answer has no body, so no error code: 404 is all it says (a missing bucket too)
      if ((e as SdkError).$metadata?.httpStatusCode === 404) return false;
      throw this.failure('looking for', hex, e, signal);
    }
  }

  /** Idempotent: the same id always names the same bytes, so writing it again changes nothing. */
  async put(id: Buffer, data: Buffer): Promise<void> {
    const hex = chunkHex(id);
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: hex, Body: data, ContentLength: data.length }), { abortSignal: signal });
    } catch (e) {
      throw this.failure('writing', hex, e, signal);
    }
  }

  /** S3 acknowledges a PUT once the object is stored: nothing more to ask for. */
  async sync(): Promise<void> {}

  async close(): Promise<void> {
    this.client.destroy();
  }

  private failure(doing: string, hex: string, e: unknown, signal: AbortSignal): StoreError {
    const err = e as SdkError;
    const status = err.$metadata?.httpStatusCode;
    const prefix = `${doing} chunk ${hex}`;
    if (signal.aborted) return new StoreError(this.url, `${prefix}: no answer within ${this.timeoutMs} ms`);
    if (status === undefined) return new StoreError(this.url, `${prefix}: ${networkReason(err)}`);
    const code = err.name && err.name !== 'Unknown' && !/^\d+$/.test(err.name) ? err.name : undefined;
    if ((code && AUTH_CODES.has(code)) || status === 403) {
      const hint = this.anonymous ? 'the URL has no secret (s3://key:secret@host:port/bucket)' : 'check the access key and secret';
      return new StoreAuthError(this.url, `${prefix}: the server refused the credentials (${code ?? 'HTTP'} ${status}); ${hint}`);
    }
    if (code === 'NoSuchBucket') return new StoreError(this.url, `${prefix}: the bucket "${this.bucket}" does not exist (create it first)`);
    return new StoreError(this.url, `${prefix}: the server answered ${code ?? 'HTTP'} ${status}`);
  }
}

/** Node's errno (ECONNREFUSED...) when there is one; the SDK's timeouts carry a message. */
function networkReason(err: SdkError): string {
  if (err.code && /CERT|SELF_SIGNED|ERR_TLS/.test(err.code)) return `the server's TLS certificate was refused (${err.code})`;
  if (err.code) return `cannot reach the server (${err.code})`;
  const line = (err.message ?? String(err)).split('\n')[0];
  return err.name && err.name !== 'Error' ? `${err.name}: ${line}` : line;
}
