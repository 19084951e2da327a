// curl as an independent HTTP client for tests: the path sent as written
// (--path-as-is, so "..", "%2e" and "//" reach the server), the status and
// headers of the last response (curl's own JSON of them), the body as bytes.
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';

export interface CurlResult {
  status: number;
  /** Lower-case names; the last value of a repeated header. */
  headers: Record<string, string>;
  body: Buffer;
}

let seq = 0;

/** Runs curl on `url` with `extra` arguments; the body passes through a file in `scratch`. */
export function curl(scratch: string, url: string, extra: string[] = []): Promise<CurlResult> {
  const bfile = path.join(scratch, `curl-${process.pid}-${seq++}.b`);
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '--max-time', '120', '--path-as-is', '-o', bfile, '-w', '%{http_code} %{header_json}', ...extra, url], async (err, stdout) => {
      if (err) return reject(err);
      const space = stdout.indexOf(' ');
      const json = JSON.parse(stdout.slice(space + 1)) as Record<string, string[]>;
      const headers = Object.fromEntries(Object.entries(json).map(([k, v]) => [k.toLowerCase(), v[v.length - 1]]));
      const body = await readFile(bfile).catch(() => Buffer.alloc(0));
      await rm(bfile, { force: true });
      resolve({ status: Number(stdout.slice(0, space)), headers, body });
    });
  });
}
