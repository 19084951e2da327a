import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isMapping, parseYamlText, readYamlFile, YamlError } from '../../lib/yaml.ts';
import { ConfigError, configError, loadConfig } from '../../boot/config.ts';
import { ImageSpecError, parseImageYaml } from '../../image/spec.ts';
import { parseProfileYaml, ProfileError } from '../../qemu/profile.ts';

test('one line naming the file: invalid YAML, an unreadable file', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-yaml-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const bad = path.join(dir, 'bad.yaml');
  await writeFile(bad, 'a: [unclosed\n');
  const e = await t.throwsAsync(readYamlFile(bad), { instanceOf: YamlError });
  t.regex(e!.message, /^\/.*bad\.yaml: not valid YAML: [^\n]+$/);
  t.is(e!.source, bad);
  const missing = path.join(dir, 'missing.yaml');
  const m = await t.throwsAsync(readYamlFile(missing), { instanceOf: YamlError });
  t.is(m!.message, `cannot read ${missing}: ENOENT`);
  t.is((m!.cause as NodeJS.ErrnoException).code, 'ENOENT');
  await writeFile(path.join(dir, 'good.yaml'), 'a: { b: 1 }\n');
  t.deepEqual(await readYamlFile(path.join(dir, 'good.yaml')), { a: { b: 1 } });
  const c = await t.throwsAsync(loadConfig(bad), { instanceOf: ConfigError });
  t.regex(c!.message, /bad\.yaml: not valid YAML/);
});

test('each document keeps its own error class, all of them YamlErrors naming file and key', (t) => {
  const image = t.throws(() => parseImageYaml('name: x\n', 'img.yaml'), { instanceOf: ImageSpecError });
  t.true(image instanceof YamlError);
  t.like(image, { source: 'img.yaml', key: 'kernel', field: 'kernel', message: 'img.yaml: kernel: is required (for example: { package: linux-image-amd64 })' });
  const invalid = t.throws(() => parseImageYaml('name: [', 'img.yaml'), { instanceOf: ImageSpecError });
  t.like(invalid, { source: 'img.yaml', key: '' });
  t.true(t.throws(() => parseProfileYaml('name: [', 'p.yaml'), { instanceOf: ProfileError }) instanceof YamlError);
  t.true(t.throws(() => parseYamlText('x: [', 'c.yaml', configError), { instanceOf: ConfigError }) instanceof YamlError);
  t.true(isMapping({}));
  t.false(isMapping([]) || isMapping(null) || isMapping('x'));
});
