// The dashboard's third-party files, served by the management listener from
// the installed package (no CDN): xterm.js and its stylesheet for the
// console view. Read once at start; their sha256 goes into the page (the
// script's integrity attribute) and the page's Content-Security-Policy, so
// only these exact bytes may run.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

export interface DashboardAsset {
  body: Buffer;
  contentType: string;
  /** base64 sha256, as CSP hash sources and integrity attributes write it. */
  sha256: string;
}

/** Paths under /dashboard/ and the package files they come from. */
const FILES: Record<string, { module: string; contentType: string }> = {
  'xterm.js': { module: '@xterm/xterm/lib/xterm.js', contentType: 'text/javascript; charset=utf-8' },
  'xterm.css': { module: '@xterm/xterm/css/xterm.css', contentType: 'text/css; charset=utf-8' },
};

export type DashboardAssets = Map<string, DashboardAsset>;

export async function loadDashboardAssets(): Promise<DashboardAssets> {
  const require = createRequire(import.meta.url);
  const out: DashboardAssets = new Map();
  for (const [name, f] of Object.entries(FILES)) {
    // The source map comment would make a browser's developer tools ask for a file we do not serve.
    const text = (await readFile(require.resolve(f.module), 'utf8')).replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n');
    const body = Buffer.from(text);
    out.set(name, { body, contentType: f.contentType, sha256: createHash('sha256').update(body).digest('base64') });
  }
  return out;
}
