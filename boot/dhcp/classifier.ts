// Which boot file a DHCP client gets, as a data table: the first row whose
// match fits the client's facts wins. Facts come from options 93, 60, 77, 175
// and 97; a per-MAC override from the machine entries beats the table.
import type { DhcpPacket } from './codec.ts';
import { IPXE_BIOS_FILE, IPXE_UEFI_FILE } from '../../lib/loaders.ts';
import { IpxeSubOpt, Opt, optEncapsulated, optString, optU16List, optUserClass, optUuid } from './options.ts';

/** What the client told us about itself. */
export interface ClientFacts {
  /** Option 93 (a list; the first entry is the one booting), else the "Arch:" field of option 60. */
  arch?: number;
  archs: number[];
  vendorClass?: string;
  userClass: string[];
  /** Option 175 was sent: the client is iPXE (Mellanox FlexBoot sends this but no user class). */
  ipxeEncap: boolean;
  /** iPXE feature flags from option 175 (sub-options with a non-zero value); undefined when unknown. */
  ipxeFeatures?: number[];
  uuid?: string;
}

export type BootAction =
  /** The per-machine iPXE script over HTTP: never the iPXE binary again (chainload loop). */
  | { kind: 'script' }
  /**
   * An iPXE binary over TFTP, by plain name from the ipxe directory; with
   * `shim`, a client whose profile boots the signed chain gets shim instead.
   */
  | { kind: 'tftp'; file: string; shim?: boolean }
  /** An iPXE binary by HTTP URL, for UEFI HTTP Boot. */
  | { kind: 'http'; file: string }
  /** A network-boot client we cannot serve; the reason lands in the timeline. */
  | { kind: 'refuse'; reason: string }
  /** Not a network-boot client: an address only (full mode), nothing in proxy mode. */
  | { kind: 'none' };

export interface RuleMatch {
  /** Client is iPXE (user class "iPXE" or option 175). */
  ipxe?: boolean;
  /** Client sent option 175 without this feature flag. */
  ipxeLacks?: number;
  arch?: number[];
  /** No architecture known (neither option 93 nor an Arch: field in option 60). */
  noArch?: boolean;
  /** Option 60 starts with this. */
  vendor?: string;
}

export interface ClassRule {
  name: string;
  match: RuleMatch;
  action: BootAction;
  /** Option 60 to send back (PXE and HTTP Boot firmware drop offers without it). */
  echoVendor?: 'PXEClient' | 'HTTPClient';
  /** Send option 43 PXE discovery control ("boot file is in this offer"). */
  pxeOptions?: boolean;
  /** Why the row exists. */
  note: string;
}

export const ARCH = {
  BIOS: 0,
  EFI_IA32: 6,
  EFI_BC: 7,
  EFI_X64: 9,
  EFI_ARM32: 10,
  EFI_ARM64: 11,
  HTTP_IA32: 15,
  HTTP_X64: 16,
  HTTP_ARM64: 19,
} as const;

export const DEFAULT_RULES: readonly ClassRule[] = [
  {
    name: 'ipxe-without-http',
    match: { ipxe: true, ipxeLacks: IpxeSubOpt.FEATURE_HTTP },
    action: { kind: 'refuse', reason: 'this iPXE build has no HTTP support, so it cannot fetch the boot script' },
    note: 'option 175 lists the features of the running iPXE; the script URL would fail',
  },
  {
    name: 'ipxe',
    match: { ipxe: true },
    action: { kind: 'script' },
    note: 'iPXE is already running (user class iPXE or option 175): hand it the script, never the binary again',
  },
  {
    name: 'uefi-http-x64',
    match: { arch: [ARCH.HTTP_X64] },
    action: { kind: 'http', file: IPXE_UEFI_FILE },
    echoVendor: 'HTTPClient',
    note: 'UEFI HTTP Boot wants a URL and HTTPClient echoed; snponly.efi uses the firmware NIC driver',
  },
  {
    name: 'uefi-http-arm64',
    match: { arch: [ARCH.HTTP_ARM64] },
    action: { kind: 'http', file: 'snp.efi' },
    echoVendor: 'HTTPClient',
    note: 'ARM64 UEFI HTTP Boot',
  },
  {
    name: 'uefi-http-ia32',
    match: { arch: [ARCH.HTTP_IA32] },
    action: { kind: 'refuse', reason: 'no 32-bit UEFI iPXE binary is available for HTTP Boot (arch 15)' },
    echoVendor: 'HTTPClient',
    note: 'Debian ships no IA32 EFI iPXE',
  },
  {
    name: 'uefi-http-unknown',
    match: { vendor: 'HTTPClient' },
    action: { kind: 'http', file: IPXE_UEFI_FILE },
    echoVendor: 'HTTPClient',
    note: 'HTTPClient without a usable arch: x64 is by far the most common HTTP Boot firmware',
  },
  {
    name: 'bios-pxe',
    match: { arch: [ARCH.BIOS] },
    action: { kind: 'tftp', file: IPXE_BIOS_FILE },
    echoVendor: 'PXEClient',
    pxeOptions: true,
    note: 'legacy BIOS PXE ROM: undionly keeps the ROM NIC driver',
  },
  {
    name: 'uefi-x64',
    match: { arch: [ARCH.EFI_BC, ARCH.EFI_X64] },
    action: { kind: 'tftp', file: IPXE_UEFI_FILE, shim: true },
    echoVendor: 'PXEClient',
    pxeOptions: true,
    note: 'RFC 4578 errata swaps 7 and 9 in the wild; both are x64 UEFI. snponly.efi: native drivers in ipxe.efi hang on some NICs; Secure Boot firmware refuses unsigned iPXE, so a secureBoot profile gets shim',
  },
  {
    name: 'uefi-arm64',
    match: { arch: [ARCH.EFI_ARM64] },
    action: { kind: 'tftp', file: 'snp.efi' },
    echoVendor: 'PXEClient',
    pxeOptions: true,
    note: 'ARM64 UEFI PXE',
  },
  {
    name: 'uefi-ia32',
    match: { arch: [ARCH.EFI_IA32] },
    action: { kind: 'refuse', reason: 'no 32-bit UEFI iPXE binary is available (arch 6)' },
    echoVendor: 'PXEClient',
    note: 'Debian ships no IA32 EFI iPXE',
  },
  {
    name: 'uefi-arm32',
    match: { arch: [ARCH.EFI_ARM32] },
    action: { kind: 'refuse', reason: 'no 32-bit ARM UEFI iPXE binary is available (arch 10)' },
    echoVendor: 'PXEClient',
    note: 'Debian ships no ARM32 EFI iPXE',
  },
  {
    name: 'pxe-unknown-arch',
    match: { vendor: 'PXEClient', noArch: true },
    action: { kind: 'tftp', file: IPXE_BIOS_FILE },
    echoVendor: 'PXEClient',
    pxeOptions: true,
    note: 'old BIOS ROMs predate option 93',
  },
  {
    name: 'pxe-other-arch',
    match: { vendor: 'PXEClient' },
    action: { kind: 'refuse', reason: 'unsupported client architecture' },
    echoVendor: 'PXEClient',
    note: 'a PXE client whose architecture has no iPXE binary here',
  },
  {
    name: 'plain',
    match: {},
    action: { kind: 'none' },
    note: 'an ordinary DHCP client (an OS, udhcpc): an address, no boot file',
  },
];

export interface ClassifyContext {
  /** Base URL of the HTTP server, no trailing slash (e.g. http://10.0.0.1:8080). */
  httpBase: string;
  /** Per-MAC boot file override: a plain TFTP name or a URL. */
  override?: string;
  /** TFTP path of shim when the client's profile boots the signed chain (Profile.secureBoot). */
  shim?: string;
  rules?: readonly ClassRule[];
}

export interface BootDecision {
  /** The rule that matched (or "override"). */
  rule: string;
  /** A network-boot client (PXE, HTTP Boot or iPXE): proxy mode answers only these. */
  netboot: boolean;
  /** TFTP file name or HTTP URL; absent when the client gets no boot file. */
  bootfile?: string;
  transport?: 'tftp' | 'http';
  echoVendor?: 'PXEClient' | 'HTTPClient';
  pxeOptions: boolean;
  /** Set when a network-boot client gets no boot file, with the reason. */
  refused?: string;
}

export function isIpxe(f: ClientFacts): boolean {
  return f.ipxeEncap || f.userClass.includes('iPXE');
}

export function matchesRule(m: RuleMatch, f: ClientFacts): boolean {
  const ipxe = isIpxe(f);
  if (m.ipxe !== undefined && m.ipxe !== ipxe) return false;
  if (m.ipxeLacks !== undefined && (!f.ipxeFeatures || f.ipxeFeatures.includes(m.ipxeLacks))) return false;
  if (m.arch && (f.arch === undefined || !m.arch.includes(f.arch))) return false;
  if (m.noArch && f.arch !== undefined) return false;
  if (m.vendor !== undefined && !(f.vendorClass ?? '').startsWith(m.vendor)) return false;
  return true;
}

export function classify(f: ClientFacts, ctx: ClassifyContext): BootDecision {
  const rules = ctx.rules ?? DEFAULT_RULES;
  const rule = rules.find((r) => matchesRule(r.match, f));
  if (!rule) return { rule: 'none', netboot: false, pxeOptions: false };
  const netboot = rule.action.kind !== 'none';
  // Echo what the client announced (iPXE sends PXEClient too); the row decides for firmware.
  const announced = f.vendorClass?.startsWith('HTTPClient') ? 'HTTPClient' : f.vendorClass?.startsWith('PXEClient') ? 'PXEClient' : undefined;
  const echoVendor = rule.echoVendor ?? announced;
  const base: BootDecision = { rule: rule.name, netboot, echoVendor, pxeOptions: rule.pxeOptions === true };

  if (ctx.override) {
    const url = /^[a-z]+:\/\//i.test(ctx.override);
    // A binary name handed to iPXE again would loop; only a URL or a script overrides there.
    if (!isIpxe(f) || url || ctx.override.endsWith('.ipxe')) {
      return { ...base, rule: `override (${rule.name})`, netboot: true, bootfile: ctx.override, transport: url ? 'http' : 'tftp', refused: undefined };
    }
  }
  const a = rule.action;
  switch (a.kind) {
    case 'script':
      return { ...base, bootfile: `${ctx.httpBase}/boot.ipxe`, transport: 'http' };
    case 'tftp':
      if (a.shim && ctx.shim) return { ...base, rule: `${rule.name} (signed chain)`, bootfile: ctx.shim, transport: 'tftp' };
      return { ...base, bootfile: a.file, transport: 'tftp' };
    case 'http':
      return { ...base, bootfile: `${ctx.httpBase}/ipxe/${a.file}`, transport: 'http' };
    case 'refuse':
      return { ...base, refused: a.reason };
    case 'none':
      return base;
  }
}

/** "PXEClient:Arch:00007:UNDI:003016" -> 7. */
export function archFromVendorClass(vc: string | undefined): number | undefined {
  const m = vc ? /^(?:PXEClient|HTTPClient):Arch:(\d{5})/.exec(vc) : null;
  return m ? Number(m[1]) : undefined;
}

export function clientFacts(p: DhcpPacket): ClientFacts {
  const archs = optU16List(p, Opt.CLIENT_ARCH) ?? [];
  const vendorClass = optString(p, Opt.VENDOR_CLASS);
  const encap = p.options.has(Opt.IPXE_ENCAP) ? optEncapsulated(p, Opt.IPXE_ENCAP) : undefined;
  // A malformed option 175 still says "iPXE"; its features are then unknown, not absent.
  let ipxeFeatures: number[] | undefined;
  if (encap) {
    ipxeFeatures = [];
    for (const [code, v] of encap) if (v.some((b) => b !== 0)) ipxeFeatures.push(code);
  }
  return {
    arch: archs.length > 0 ? archs[0] : archFromVendorClass(vendorClass),
    archs,
    vendorClass,
    userClass: optUserClass(p) ?? [],
    ipxeEncap: p.options.has(Opt.IPXE_ENCAP),
    ipxeFeatures,
    uuid: optUuid(p),
  };
}
