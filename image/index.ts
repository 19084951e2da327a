// The image builder's public surface: parse an image description, build it.
export { parseImageSpec, parseImageYaml, ImageSpecError, COMPRESSIONS } from './spec.ts';
export type { ImageSpec, PackageRef, Compression, SecureBootPackages } from './spec.ts';
export { buildImage, kernelLayout, packageEntries, BOOT_SCRIPT_FILE, MANIFEST_FILE } from './build.ts';
export { ImageBuildError } from './errors.ts';
export type { ImageManifest, ArtifactInfo, PackageInfo, BuildOptions } from './build.ts';
export { DebianCache, AptError, PackageNotFoundError, ChecksumError, DEFAULT_CACHE_DIR, parseAptShow, sha256File, runCommand } from './debian.ts';
export type { AptRecord, DebianCacheOptions, Runner, CommandResult } from './debian.ts';
export { writeCpio, normaliseEntries, cpioPath, CpioError } from './cpio.ts';
export type { CpioEntry, CpioOptions } from './cpio.ts';
export { parseModinfo, elfSection, ElfError } from './elf-modinfo.ts';
export type { ModInfo } from './elf-modinfo.ts';
export { resolveModules, modulesDep, loadOrderFile, readModuleFile, moduleName, KernelModuleTree, ModuleError, UnknownModuleError } from './modules.ts';
export type { ModuleSource, ResolvedModule, ModuleResolution } from './modules.ts';
export { initScript, udhcpcScript, MARKERS, FAIL_REASONS } from './init.ts';
export { imageBootScript, KERNEL_FILE, INITRD_FILE } from './boot-script.ts';
export { SHIM_FILE, GRUB_FILE, SHIM_PACKAGE, GRUB_PACKAGE, SHIM_SOURCE, GRUB_SOURCE, secureBootLoaders, requireSigned } from './secure-boot.ts';
export { peSignature, isAuthenticodeSigned, PeFormatError, WIN_CERT_TYPE_PKCS_SIGNED_DATA } from './pe-signature.ts';
export type { PeSignatureInfo } from './pe-signature.ts';
