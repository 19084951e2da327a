// image.yaml parsing: the accepted shape, defaults, and errors naming the field.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { parseImageYaml, ImageSpecError } from '../../image/spec.ts';

test('images/default.yaml parses', async (t) => {
  const spec = parseImageYaml(await readFile(new URL('../../images/default.yaml', import.meta.url), 'utf8'), 'images/default.yaml');
  t.is(spec.name, 'default');
  t.deepEqual(spec.kernel, { name: 'linux-image-amd64' });
  t.true(spec.modules.includes('virtio_pci') && spec.modules.includes('e1000'));
  t.deepEqual(spec.packages, []);
  t.deepEqual(spec.layers, [{ name: 'busybox-static', at: 'initramfs', source: { kind: 'deb', package: { name: 'busybox-static' } } }]);
  t.is(spec.compression, 'gzip');
  t.deepEqual(spec.secureBoot, { shim: { name: 'shim-signed' }, grub: { name: 'grub-efi-amd64-signed' } });
});

test('secureBoot: off by default and when false (no key at all), true takes apt\'s candidates, a mapping pins versions', (t) => {
  t.false('secureBoot' in parseImageYaml('name: x\nkernel: linux-image-amd64\n'));
  t.false('secureBoot' in parseImageYaml('name: x\nkernel: linux-image-amd64\nsecureBoot: false\n'));
  t.deepEqual(parseImageYaml('name: x\nkernel: linux-image-amd64\nsecureBoot: true\n').secureBoot, { shim: { name: 'shim-signed' }, grub: { name: 'grub-efi-amd64-signed' } });
  const pinned = parseImageYaml('name: x\nkernel: linux-image-amd64\nsecureBoot: { shim: "shim-signed=1.51~1+deb12u1+16.1-2~deb12u1", grub: { package: grub-efi-amd64-signed, version: "1+2.06+13+deb12u2" } }\n');
  t.deepEqual(pinned.secureBoot, { shim: { name: 'shim-signed', version: '1.51~1+deb12u1+16.1-2~deb12u1' }, grub: { name: 'grub-efi-amd64-signed', version: '1+2.06+13+deb12u2' } });
  t.deepEqual(parseImageYaml('name: x\nkernel: linux-image-amd64\nsecureBoot: { grub: "grub-efi-amd64-signed=1+2.06+13+deb12u1" }\n').secureBoot, { shim: { name: 'shim-signed' }, grub: { name: 'grub-efi-amd64-signed', version: '1+2.06+13+deb12u1' } });
});

test('package references: name, name=version, mapping; defaults', (t) => {
  const spec = parseImageYaml('name: x\nkernel: linux-image-6.1.0-56-amd64=6.1.192-2\npackages: [busybox-static=1:1.35.0-4+deb12u1+b1, {package: foo, version: 2}]\nmodules: [virtio-net]\n');
  t.deepEqual(spec.kernel, { name: 'linux-image-6.1.0-56-amd64', version: '6.1.192-2' });
  t.deepEqual(spec.packages, [{ name: 'busybox-static', version: '1:1.35.0-4+deb12u1+b1' }, { name: 'foo', version: '2' }]);
  t.deepEqual(spec.modules, ['virtio_net']);
  const minimal = parseImageYaml('name: x\nkernel: { package: linux-image-amd64 }\n');
  t.deepEqual(minimal.packages, [{ name: 'busybox-static' }]);
  t.deepEqual(minimal.cmdline, {});
});

test('errors name the file and the field', (t) => {
  const cases: [string, string, RegExp][] = [
    ['kernel: linux-image-amd64\n', 'name', /must be 1-64/],
    ['name: x\n', 'kernel', /is required/],
    ['name: x\nkernel: busybox\n', 'kernel.package', /linux-image-\*/],
    ['name: x\nkernel: linux-image-amd64\nmodules: [a, a]\n', 'modules[1]', /listed twice/],
    ['name: x\nkernel: linux-image-amd64\nmodules: ["a b"]\n', 'modules[0]', /module name/],
    ['name: x\nkernel: linux-image-amd64\ncmdline: { runmode: fast }\n', 'cmdline.runmode', /runmode must be one of/],
    ['name: x\nkernel: linux-image-amd64\ncmdline: { console: "ttyS0 init=/bin/sh" }\n', 'cmdline.console', /character/],
    ['name: x\nkernel: linux-image-amd64\ncompression: lz4\n', 'compression', /gzip, zstd, none/],
    ['name: x\nkernel: linux-image-amd64\nextra: 1\n', 'extra', /unknown key \(known: .*, secureBoot\)/],
    ['name: x\nkernel: linux-image-amd64\nsecureBoot: yes please\n', 'secureBoot', /must be true, false or a mapping/],
    ['name: x\nkernel: linux-image-amd64\nsecureBoot: 1\n', 'secureBoot', /must be true, false/],
    ['name: x\nkernel: linux-image-amd64\nsecureBoot: [shim-signed]\n', 'secureBoot', /must be true, false/],
    ['name: x\nkernel: linux-image-amd64\nsecureBoot: { shim: shim-unsigned }\n', 'secureBoot.shim', /must be the shim-signed package/],
    ['name: x\nkernel: linux-image-amd64\nsecureBoot: { grub: "grub-efi-amd64-signed=a=b" }\n', 'secureBoot.grub', /more than one "="/],
    ['name: x\nkernel: linux-image-amd64\nsecureBoot: { kernel: x }\n', 'secureBoot.kernel', /unknown key \(known: shim, grub\)/],
    ['name: x\nkernel: { package: linux-image-amd64, vers: 1 }\n', 'kernel.vers', /unknown key/],
    ['[1, 2]\n', '', /must be a YAML mapping/],
    ['name: [\n', '', /not valid YAML/],
  ];
  for (const [text, field, message] of cases) {
    const e = t.throws(() => parseImageYaml(text, 'img.yaml'), { instanceOf: ImageSpecError }, text);
    t.is(e.field, field, text);
    t.regex(e.message, message, text);
    t.true(e.message.startsWith(`img.yaml: ${field ? field + ': ' : ''}`), e.message);
  }
});
