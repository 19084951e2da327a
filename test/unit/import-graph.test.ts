// The shape of the house, checked on every run: which folder may import
// which. Reads the relative import specifiers of every .ts file (static,
// `export ... from`, `import type` and dynamic `import()` alike), so a type
// import counts too: a folder that must stand alone must not need another's
// types either.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const FOLDERS = ['lib', 'flist', 'boot', 'cli', 'image', 'qemu', 'zdb', 'harness', 'test', 'bench', 'scripts'];
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+)['"]/g;

function tsFiles(dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => (e.isDirectory() ? (e.name === 'node_modules' ? [] : tsFiles(join(dir, e.name))) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** Project-relative file -> the project-relative files it imports. */
function importGraph(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const file of FOLDERS.flatMap((f) => tsFiles(join(ROOT, f)))) {
    const deps = new Set<string>();
    for (const m of readFileSync(file, 'utf8').matchAll(SPECIFIER)) deps.add(relative(ROOT, resolve(dirname(file), m[1])));
    graph.set(relative(ROOT, file), deps);
  }
  return graph;
}

/** Each import circle once, as `a -> b -> a`. */
function cycles(graph: Map<string, Set<string>>): string[] {
  const found: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    path.push(file);
    for (const dep of graph.get(file) ?? []) {
      if (!graph.has(dep)) continue;
      if (state.get(dep) === 'open') found.push([...path.slice(path.indexOf(dep)), dep].join(' -> '));
      else if (!state.has(dep)) visit(dep);
    }
    path.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return found;
}

/** `from -> to` for every import from a file matching `from` of a file matching `to`. */
function edges(graph: Map<string, Set<string>>, from: (f: string) => boolean, to: (f: string) => boolean): string[] {
  return [...graph].flatMap(([file, deps]) => (from(file) ? [...deps].filter(to).map((d) => `${file} -> ${d}`) : []));
}

const under = (folder: string) => (f: string) => f.startsWith(`${folder}/`);
const graph = importGraph();

test('the graph reader sees the project (guards the checks below against reading nothing)', (t) => {
  t.true(graph.size > 150);
  t.true(graph.get('boot/server.ts')?.has('boot/timeline.ts'));
});

test('no import circles at all', (t) => {
  t.deepEqual(cycles(graph), []);
});

test('lib/ imports nothing else from the project', (t) => {
  t.deepEqual(edges(graph, under('lib'), (d) => !under('lib')(d)), []);
});

test('image/ imports nothing from boot/http or boot/grub (the renderers it shares live in lib/)', (t) => {
  t.deepEqual(edges(graph, under('image'), (d) => under('boot/http')(d) || under('boot/grub')(d)), []);
});

test('the protocols in boot/ stand side by side: dhcp, tftp, http and grub import nothing from each other', (t) => {
  const protocols = ['boot/dhcp', 'boot/tftp', 'boot/http', 'boot/grub'];
  const protocolOf = (f: string) => protocols.find((p) => under(p)(f));
  t.deepEqual(edges(graph, (f) => protocolOf(f) !== undefined, (d) => protocolOf(d) !== undefined).filter((e) => {
    const [from, to] = e.split(' -> ');
    return protocolOf(from) !== protocolOf(to);
  }), []);
});

test('bench/ and harness/ import nothing from test/ (they share harness/ instead)', (t) => {
  t.deepEqual(edges(graph, (f) => under('bench')(f) || under('harness')(f), under('test')), []);
});

test('flist/ stands beside the boot server: it imports only lib/ and the zdb RESP client, nothing from boot/, image/, qemu/ or cli/', (t) => {
  t.deepEqual(edges(graph, under('flist'), (d) => !under('flist')(d) && !under('lib')(d) && !under('zdb/resp')(d)), []);
});
