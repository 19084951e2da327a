// `zeroboot image build <image.yaml> -o <dir>`: builds vmlinuz, initramfs.img,
// boot.ipxe and manifest.json from an image description (see image/spec.ts).
import { dispatch, parseCommand, stringOpt, UsageError } from '../args.ts';
import { imageSpecError } from '../../image/spec.ts';
import { readYamlText } from '../../lib/yaml.ts';

export const IMAGE_HELP = `Usage: zeroboot image build <image.yaml> -o <dir> [options]

Builds a network-boot image: the kernel from a linux-image package, the
kernel modules the description lists (with their dependencies, from each
module's depends=), the zeroboot /init, and the description's flist layers
(Debian packages, directories, .fl files; later layers win, .wh. whiteouts
apply) merged into the initramfs. Writes <dir>/vmlinuz, initramfs.img,
boot.ipxe, the boot media zos.efi (UKI), zos.iso (BIOS+UEFI) and zos-usb.img
(BIOS+UEFI; dd it to a stick), and manifest.json (sha256 of each, every layer
with the sha256 of its .fl); layers marked 'at: boot' go beside them as <name>.fl with chunks/.
The same description and inputs give byte-identical files.

Options:
  -o, --output DIR   output directory (created if missing)
  --cache DIR        download, unpack and layer cache (default /var/cache/zeroboot)
  --json             print the manifest as JSON
  -h, --help         show this help

SOURCE_DATE_EPOCH, when set, is the mtime of every initramfs entry (default 0).
`;

const OPTIONS = {
  output: { type: 'string', short: 'o' },
  cache: { type: 'string' },
  json: { type: 'boolean' },
} as const;

function sourceDateEpoch(): number | undefined {
  const v = process.env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return undefined;
  if (!/^\d{1,10}$/.test(v) || Number(v) > 0xffffffff) throw new UsageError(`image build: SOURCE_DATE_EPOCH must be a whole number of seconds up to 4294967295, got "${v}"`);
  return Number(v);
}

async function build(argv: string[]): Promise<number> {
  const p = parseCommand('image build', argv, OPTIONS);
  if (p.values.help) {
    process.stdout.write(IMAGE_HELP);
    return 0;
  }
  const [file, ...extra] = p.positionals;
  if (!file) throw new UsageError("image build: give the image description (see 'zeroboot image build --help')");
  if (extra.length > 0) throw new UsageError(`image build: unexpected argument "${extra[0]}"`);
  const outDir = stringOpt(p, 'output');
  if (!outDir) throw new UsageError('image build: give the output directory with -o DIR');
  const mtime = sourceDateEpoch();
  const text = await readYamlText(file, imageSpecError);
  const { parseImageYaml, buildImage } = await import('../../image/index.ts');
  const spec = parseImageYaml(text, file);
  const started = performance.now();
  const progress = process.stderr.isTTY ? (msg: string) => process.stderr.write(`zeroboot image: ${msg}\n`) : undefined;
  const manifest = await buildImage(spec, { outDir, cacheDir: stringOpt(p, 'cache'), mtime, progress });
  if (p.values.json) {
    process.stdout.write(JSON.stringify(manifest, null, 2) + '\n');
    return 0;
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const lines = [`zeroboot image: built ${manifest.name} in ${outDir} (${seconds} s)`, `kernel  ${manifest.kernel.package} ${manifest.kernel.version} (${manifest.kernel.release})`, `modules ${manifest.modules.join(' ')}`];
  for (const [name, a] of Object.entries(manifest.artifacts)) lines.push(`${name.padEnd(14)} ${String(a.size).padStart(9)}  sha256:${a.sha256}`);
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

export function imageCommand(argv: string[]): Promise<number> {
  return dispatch('image', argv, { build }, IMAGE_HELP);
}
