// The management API's bearer token: made on first start into the state
// directory (mode 0600, only the server's user reads it), reused afterwards.
// A token file others can read is refused rather than trusted.
import { randomBytes, createHash, timingSafeEqual } from 'node:crypto';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

export const TOKEN_FILE = 'api-token';

export class ApiTokenError extends Error {}

export interface ApiToken {
  token: string;
  file: string;
  /** True when this start made it: the one time it is printed. */
  created: boolean;
}

async function readToken(file: string): Promise<string> {
  const st = await stat(file);
  if ((st.mode & 0o077) !== 0) throw new ApiTokenError(`${file} can be read by other users (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 ${file}, or delete it for a new token`);
  const token = (await readFile(file, 'utf8')).trim();
  if (token.length < 16) throw new ApiTokenError(`${file} holds no usable token (under 16 characters); delete it and restart for a new one`);
  return token;
}

export async function loadApiToken(stateDir: string): Promise<ApiToken> {
  const file = path.join(stateDir, TOKEN_FILE);
  try {
    await mkdir(stateDir, { recursive: true });
    const token = randomBytes(32).toString('base64url');
    // 'wx': never overwrite a token another start already wrote.
    const fh = await open(file, 'wx', 0o600);
    try {
      await fh.writeFile(token + '\n');
    } finally {
      await fh.close();
    }
    return { token, file, created: true };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new ApiTokenError(`cannot write the API token to ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  try {
    return { token: await readToken(file), file, created: false };
  } catch (e) {
    if (e instanceof ApiTokenError) throw e;
    throw new ApiTokenError(`cannot read the API token ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Whether an Authorization header carries `token` as a bearer token; constant time in the token. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer +(\S+) *$/i.exec(header ?? '');
  return !!m && timingSafeEqual(digest(m[1]), digest(token));
}
