// Where in the file a key is: the line of a dotted key path
// ("profiles[0].kernel") in the YAML text, so an error line can read
// `zeroboot.yaml:14: profiles[0].kernal: unknown key ...` and the farmer's
// editor can jump there.
import { LineCounter, parseDocument, isMap, isSeq, isScalar } from 'yaml';
import type { Node } from 'yaml';

/** "profiles[0].kernel" -> ["profiles", 0, "kernel"]; undefined when the text does not start with a key path. */
export function keyPath(message: string): (string | number)[] | undefined {
  const m = /^([A-Za-z_][\w-]*(?:\[\d+\])*(?:\.[A-Za-z_][\w-]*(?:\[\d+\])*)*)(?=[: ]|$)/.exec(message);
  if (!m) return undefined;
  const out: (string | number)[] = [];
  for (const part of m[1].split('.')) {
    const [name, ...idx] = part.split('[');
    out.push(name, ...idx.map((i) => Number(i.slice(0, -1))));
  }
  return out;
}

/** The 1-based line of the deepest part of `path` the document has; undefined when not even its first key is there. */
export function lineOfKey(text: string, path: (string | number)[]): number | undefined {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter });
  let node: unknown = doc.contents;
  let offset: number | undefined;
  for (const seg of path) {
    if (isMap(node) && typeof seg === 'string') {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === seg);
      if (!pair) break;
      offset = (pair.key as Node).range?.[0];
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
      node = node.items[seg];
      offset = (node as Node).range?.[0];
    } else {
      break;
    }
  }
  return offset === undefined ? undefined : counter.linePos(offset).line;
}
