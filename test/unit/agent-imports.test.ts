// The agent runs on the node from the same tree as the server: it may use
// the shared definitions (lib/) and the RESP client, nothing of the server;
// the registry (server side) shares only lib/ with it.
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

test('boot/registry/ imports only itself and lib/', (t) => {
  const all = importsUnder('boot/registry');
  t.true(all.length > 3);
  t.deepEqual(all.filter(([, to]) => !/^(boot\/registry|lib)\//.test(to)), []);
});
