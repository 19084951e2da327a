// The agent runs on the node from the same tree as the server: it may use
// the shared definitions (lib/) and the RESP client, nothing of the server;
// the registry (server side) shares only lib/ with it; of the registry, only
// http.ts (the request glue) also uses the server's logger and its helper
// for a client's address.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const IMPORT = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+)['"]/g;

function importsUnder(folder: string): [string, string][] {
  const out: [string, string][] = [];
  for (const e of readdirSync(join(ROOT, folder), { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || !e.name.endsWith('.ts')) continue;
    const file = join(e.parentPath, e.name);
    for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) out.push([relative(ROOT, file), relative(ROOT, resolve(dirname(file), m[1]))]);
  }
  return out;
}

test('agent/ imports only agent/, lib/ and zdb/resp/', (t) => {
  const all = importsUnder('agent');
  t.true(all.length > 20);
  t.deepEqual(all.filter(([, to]) => !/^(agent|lib|zdb\/resp)\//.test(to)), []);
});

test('boot/registry/ imports only itself and lib/ (http.ts also boot/log.ts and boot/leased-addresses.ts)', (t) => {
  const all = importsUnder('boot/registry');
  t.true(all.length > 3);
  const glue = new Set(['boot/log.ts', 'boot/leased-addresses.ts']);
  t.deepEqual(all.filter(([from, to]) => !/^(boot\/registry|lib)\//.test(to) && !(from === 'boot/registry/http.ts' && glue.has(to))), []);
});

// fetch() loads undici on first use, ~17 MB of RSS kept for the agent's whole life (bench/agent-rss.ts).
test('agent/ sends over node:http, never fetch()', (t) => {
  const calls: string[] = [];
  for (const e of readdirSync(join(ROOT, 'agent'), { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || !e.name.endsWith('.ts')) continue;
    const file = join(e.parentPath, e.name);
    if (/\bfetch\s*\(/.test(readFileSync(file, 'utf8').replace(/^\s*(\/\/|\*).*$/gm, ''))) calls.push(relative(ROOT, file));
  }
  t.deepEqual(calls, []);
});
