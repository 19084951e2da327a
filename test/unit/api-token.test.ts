import test from 'ava';
import { mkdtemp, rm, stat, chmod, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadApiToken, bearerMatches, ApiTokenError } from '../../boot/http/api-token.ts';

test('the token is made once, mode 0600, and reused', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-token-'));
  try {
    const state = path.join(dir, 'state');
    const first = await loadApiToken(state);
    t.true(first.created);
    t.true(first.token.length >= 40);
    t.is((await stat(first.file)).mode & 0o777, 0o600);
    const again = await loadApiToken(state);
    t.false(again.created);
    t.is(again.token, first.token);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a token file others can read, or an empty one, is refused with what to do', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-token-'));
  try {
    const { file } = await loadApiToken(dir);
    await chmod(file, 0o644);
    await t.throwsAsync(loadApiToken(dir), { instanceOf: ApiTokenError, message: /can be read by other users.*chmod 600/ });
    await writeFile(file, '\n', { mode: 0o600 });
    await chmod(file, 0o600);
    await t.throwsAsync(loadApiToken(dir), { instanceOf: ApiTokenError, message: /no usable token/ });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('bearer header check', (t) => {
  t.true(bearerMatches('Bearer abc', 'abc'));
  t.true(bearerMatches('bearer abc', 'abc'));
  t.false(bearerMatches('Bearer abcd', 'abc'));
  t.false(bearerMatches('Basic abc', 'abc'));
  t.false(bearerMatches(undefined, 'abc'));
});
