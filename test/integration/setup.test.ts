// The set-up's Node install step, run the way a fresh Debian 12 machine runs
// it: the system node and npm, an empty prefix. A machine that already has
// Node 24 under the set-up's prefix never runs this step again, so without
// this test a broken install step would only show on a fresh machine.
import test from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PREFIX = process.env.ZEROBOOT_NODE_PREFIX ?? '/opt/zeroboot-node';

/** The environment of a root shell before the set-up: no set-up Node on PATH, no npm run-script variables. */
function systemEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'NODE_OPTIONS' && k !== 'ZEROBOOT_NODE_PREFIX') env[k] = v;
  const ours = path.join(PREFIX, 'bin');
  env.PATH = (process.env.PATH ?? '').split(':').filter((d) => d && path.resolve(d) !== ours && !d.includes('node_modules/.bin')).join(':');
  return env;
}

function systemNodeMajor(): number {
  try {
    return Number(execFileSync('node', ['-p', 'process.versions.node.split(".")[0]'], { env: systemEnv(), encoding: 'utf8' }).trim());
  } catch {
    return 0;
  }
}

const major = systemNodeMajor();
const run = major >= 22 ? test.skip : test.serial;
const why = major >= 22 ? ' [skipped: the system node is already >= 22, so the set-up installs none]' : '';

test('setup.sh installs Node through install-node.sh', (t) => {
  t.regex(readFileSync(path.join(ROOT, 'scripts/setup.sh'), 'utf8'), /bash scripts\/install-node\.sh "\$ZEROBOOT_NODE_PREFIX"/);
});

run(`the Node install step works with the system node ${major || '(none)'} and its npm, into an empty prefix${why}`, async (t) => {
  t.timeout(10 * 60_000);
  const prefix = await mkdtemp(path.join(tmpdir(), 'zb-node-'));
  t.teardown(() => rm(prefix, { recursive: true, force: true }));
  const env = systemEnv();
  const r = await new Promise<{ code: number; out: string }>((resolve) => {
    execFile('bash', [path.join(ROOT, 'scripts/install-node.sh'), prefix], { env, cwd: ROOT, timeout: 9 * 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    );
  });
  t.is(r.code, 0, r.out);
  t.regex(r.out, /^v24\./m);
  // What env.sh makes of that prefix: this node first on PATH, its headers for node-gyp.
  const sourced = execFileSync('bash', ['-c', '. scripts/env.sh; command -v node; node -p process.versions.node; echo "$npm_config_nodedir"'], {
    env: { ...env, ZEROBOOT_NODE_PREFIX: prefix },
    cwd: ROOT,
    encoding: 'utf8',
  }).trim().split('\n');
  t.is(sourced[0], path.join(prefix, 'bin/node'));
  t.regex(sourced[1] ?? '', /^24\./);
  t.true(existsSync(path.join(sourced[2] ?? '/nonexistent', 'include/node/node_api.h')), `node-gyp headers under "${sourced[2]}"`);
});
