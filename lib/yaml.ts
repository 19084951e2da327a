// YAML documents read by people's hands (the server configuration, image
// descriptions, hardware profiles): one reader, one error class whose
// message names the file and the key, so the author can fix the file from a
// single line. Each document's own error class extends YamlError.
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';

export interface YamlPlace {
  /** The file (or a name for the text), "" when not known. */
  source?: string;
  /** Dotted path of the offending key ("server.dhcp.mode"), "" for the whole document. */
  key?: string;
  /** The underlying failure (the errno of an unreadable file). */
  cause?: unknown;
}

export class YamlError extends Error {
  override name = 'YamlError';
  readonly source: string;
  readonly key: string;
  /** The message without the file and key. */
  readonly detail: string;
  constructor(detail: string, where: YamlPlace = {}) {
    const source = where.source ?? '';
    const key = where.key ?? '';
    super(`${source ? `${source}: ` : ''}${key ? `${key}: ` : ''}${detail}`, where.cause === undefined ? undefined : { cause: where.cause });
    this.source = source;
    this.key = key;
    this.detail = detail;
  }
}

/** Builds the caller's own error class (a subclass of YamlError) for a reader failure. */
export type YamlErrorFactory = (detail: string, where: YamlPlace) => YamlError;
const plain: YamlErrorFactory = (detail, where) => new YamlError(detail, where);

export type YamlMapping = Record<string, unknown>;

export function isMapping(v: unknown): v is YamlMapping {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The document in `text`; invalid YAML is one line: `<source>: not valid YAML: <the parser's first line>`. */
export function parseYamlText(text: string, source: string, fail: YamlErrorFactory = plain): unknown {
  try {
    return parse(text);
  } catch (e) {
    throw fail(`not valid YAML: ${(e as Error).message.split('\n')[0]}`, { source });
  }
}

/** The text of a YAML file; an unreadable one is `cannot read <file>: <errno code>`. */
export async function readYamlText(file: string, fail: YamlErrorFactory = plain): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw fail(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
  }
}

/** The document in a YAML file (see readYamlText and parseYamlText for its errors). */
export async function readYamlFile(file: string, fail: YamlErrorFactory = plain): Promise<unknown> {
  return parseYamlText(await readYamlText(file, fail), file, fail);
}
