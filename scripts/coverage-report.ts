// Turns the raw V8 coverage written under NODE_V8_COVERAGE (one JSON file per
// process: ava workers and every server they spawned) into line coverage per
// folder, as a Markdown table. c8 is not installed, and Node's type stripping
// keeps every character's offset, so V8's byte ranges map onto the .ts files
// directly.
//   node scripts/coverage-report.ts <raw-dir> [--files]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { stripTypeScriptTypes } from 'node:module';

interface Range { startOffset: number; endOffset: number; count: number }
interface ScriptCoverage { url: string; functions: { ranges: Range[] }[] }

const ROOTS = ['boot', 'zdb', 'image', 'qemu', 'cli', 'lib'];
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function usage(): never {
  process.stderr.write('usage: node scripts/coverage-report.ts <NODE_V8_COVERAGE dir> [--files]\n');
  process.exit(2);
}

function sourceFiles(dir: string): string[] {
  let names: string[];
  try { names = readdirSync(dir); } catch { return []; }
  return names.flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

// A line counts if it holds code once types are stripped: blank, comment-only
// and type-only lines are neither covered nor missed.
function codeLines(source: string): boolean[] {
  const stripped = stripTypeScriptTypes(source, { mode: 'strip' });
  let inBlockComment = false;
  return stripped.split('\n').map((line) => {
    let text = line.trim();
    if (inBlockComment) {
      const end = text.indexOf('*/');
      if (end < 0) return false;
      inBlockComment = false;
      text = text.slice(end + 2).trim();
    }
    if (text.startsWith('/*') && !text.includes('*/')) { inBlockComment = true; return false; }
    return text !== '' && !text.startsWith('//') && !/^\/\*.*\*\/$/.test(text);
  });
}

// Count at each offset = the innermost range holding it. V8's ranges nest, so
// painting them outermost first leaves each offset with its innermost count.
function coveredLines(source: string, scripts: ScriptCoverage[], hit: boolean[]): void {
  const lineOf = new Int32Array(source.length + 1);
  let line = 0;
  for (let i = 0; i < source.length; i++) { lineOf[i] = line; if (source[i] === '\n') line++; }
  for (const script of scripts) {
    const ranges = script.functions.flatMap((f) => f.ranges)
      .sort((a, b) => a.startOffset - b.startOffset || b.endOffset - a.endOffset);
    const count = new Float64Array(source.length);
    for (const r of ranges) count.fill(r.count, r.startOffset, Math.min(r.endOffset, source.length));
    for (let i = 0; i < source.length; i++) {
      if (count[i] > 0 && source[i] !== ' ' && source[i] !== '\n' && source[i] !== '\t') hit[lineOf[i]] = true;
    }
  }
}

function main(): void {
  const args = process.argv.slice(2);
  const rawDir = args.find((a) => !a.startsWith('--'));
  if (!rawDir) usage();
  const perFile = args.includes('--files');

  const byUrl = new Map<string, ScriptCoverage[]>();
  const prefix = pathToFileURL(root).href + '/';
  for (const name of readdirSync(rawDir)) {
    if (!name.endsWith('.json')) continue;
    let parsed: { result?: ScriptCoverage[] };
    try { parsed = JSON.parse(readFileSync(join(rawDir, name), 'utf8')); } catch { continue; }
    for (const script of parsed.result ?? []) {
      if (!script.url.startsWith(prefix)) continue;
      const list = byUrl.get(script.url) ?? [];
      list.push(script);
      byUrl.set(script.url, list);
    }
  }

  const folders = new Map<string, { total: number; hit: number }>();
  const tops = new Map<string, { total: number; hit: number }>();
  const fileRows: string[] = [];
  const add = (map: Map<string, { total: number; hit: number }>, key: string, total: number, hit: number) => {
    const row = map.get(key) ?? { total: 0, hit: 0 };
    row.total += total; row.hit += hit;
    map.set(key, row);
  };
  for (const top of ROOTS) {
    for (const file of sourceFiles(join(root, top)).sort()) {
      const source = readFileSync(file, 'utf8');
      const code = codeLines(source);
      const hit = new Array<boolean>(code.length).fill(false);
      coveredLines(source, byUrl.get(pathToFileURL(file).href) ?? [], hit);
      const total = code.filter(Boolean).length;
      const covered = code.filter((isCode, i) => isCode && hit[i]).length;
      const rel = relative(root, file);
      add(folders, dirname(rel), total, covered);
      add(tops, top, total, covered);
      if (perFile) fileRows.push(`| ${rel} | ${pct(covered, total)} | ${covered}/${total} |`);
    }
  }

  const out = ['| folder | lines | covered/total |', '|---|---|---|'];
  for (const [folder, row] of [...folders].sort(([a], [b]) => a.localeCompare(b))) {
    out.push(`| ${folder} | ${pct(row.hit, row.total)} | ${row.hit}/${row.total} |`);
  }
  out.push('', '| top folder | lines | covered/total |', '|---|---|---|');
  for (const [top, row] of tops) out.push(`| ${top}/ | ${pct(row.hit, row.total)} | ${row.hit}/${row.total} |`);
  if (perFile) out.push('', '| file | lines | covered/total |', '|---|---|---|', ...fileRows);
  process.stdout.write(out.join('\n') + '\n');
}

function pct(hit: number, total: number): string {
  return total === 0 ? '-' : `${(100 * hit / total).toFixed(1)}%`;
}

main();
