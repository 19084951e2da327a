// A reader of the Prometheus text exposition format (version 0.0.4), written
// from its specification rather than taken from prom-client, so a test reads
// what a Prometheus server would: every sample line, its labels and value.
// Tests and benches (bench/boot-storm.ts) read the server's /metrics with it.
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export class PromTextError extends Error {}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/y;

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const m = LABEL.exec(text);
    if (!m) throw new PromTextError(`bad labels in line: ${line}`);
    labels[m[1]] = m[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  return labels;
}

function parseValue(v: string, line: string): number {
  if (v === '+Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  if (v === 'NaN') return NaN;
  const n = Number(v);
  if (Number.isNaN(n)) throw new PromTextError(`bad value in line: ${line}`);
  return n;
}

export function parsePromText(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) throw new PromTextError(`not a sample line: ${line}`);
    out.push({ name: m[1], labels: parseLabels(m[2] ?? '', line), value: parseValue(m[3], line) });
  }
  return out;
}

/** The value of the one sample named `name` whose labels include `labels`; throws when there is none or several. */
export function sampleValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length !== 1) throw new PromTextError(`${found.length} samples of ${name}${JSON.stringify(labels)}`);
  return found[0].value;
}
