import test from 'ava';
import { classify, clientFacts, archFromVendorClass, DEFAULT_RULES } from '../../boot/dhcp/classifier.ts';
import type { ClientFacts } from '../../boot/dhcp/classifier.ts';
import { decodeDhcp, encodeDhcp } from '../../boot/dhcp/codec.ts';
import type { DhcpPacket } from '../../boot/dhcp/codec.ts';
import { IpxeSubOpt, Opt, encodeEncapsulated } from '../../boot/dhcp/options.ts';

const base = 'http://10.0.0.1:8080';

function facts(f: Partial<ClientFacts>): ClientFacts {
  return { archs: f.arch === undefined ? [] : [f.arch], userClass: [], ipxeEncap: false, ...f };
}

test('BIOS PXE gets undionly.kpxe over TFTP with PXEClient echoed and option 43', (t) => {
  const d = classify(facts({ arch: 0, vendorClass: 'PXEClient:Arch:00000:UNDI:002001' }), { httpBase: base });
  t.is(d.bootfile, 'undionly.kpxe');
  t.is(d.transport, 'tftp');
  t.is(d.echoVendor, 'PXEClient');
  t.true(d.pxeOptions);
  t.true(d.netboot);
  t.is(d.rule, 'bios-pxe');
});

test('UEFI x64 PXE gets snponly.efi for arch 7 and 9 (RFC 4578 errata swap)', (t) => {
  for (const arch of [7, 9]) {
    const d = classify(facts({ arch, vendorClass: 'PXEClient' }), { httpBase: base });
    t.is(d.bootfile, 'snponly.efi', `arch ${arch}`);
    t.is(d.transport, 'tftp');
  }
});

test('ARM64 UEFI PXE gets snp.efi; IA32 and ARM32 are refused with a reason', (t) => {
  t.is(classify(facts({ arch: 11, vendorClass: 'PXEClient' }), { httpBase: base }).bootfile, 'snp.efi');
  for (const arch of [6, 10]) {
    const d = classify(facts({ arch, vendorClass: 'PXEClient' }), { httpBase: base });
    t.is(d.bootfile, undefined);
    t.true(d.netboot);
    t.regex(d.refused ?? '', /32-bit/);
  }
});

test('iPXE by user class gets the HTTP script, never a binary (no chainload loop)', (t) => {
  for (const arch of [0, 7, 9, 11]) {
    const d = classify(facts({ arch, vendorClass: 'PXEClient:Arch:00000', userClass: ['iPXE'] }), { httpBase: base });
    t.is(d.bootfile, `${base}/boot.ipxe`);
    t.is(d.transport, 'http');
    t.is(d.echoVendor, 'PXEClient');
    t.false(d.pxeOptions);
  }
});

test('option 175 alone marks iPXE (Mellanox FlexBoot sends no user class)', (t) => {
  const d = classify(facts({ arch: 0, vendorClass: 'PXEClient', ipxeEncap: true }), { httpBase: base });
  t.is(d.rule, 'ipxe');
  t.is(d.bootfile, `${base}/boot.ipxe`);
});

test('iPXE whose option 175 lacks the HTTP feature is refused, not looped', (t) => {
  const without = classify(facts({ arch: 0, ipxeEncap: true, ipxeFeatures: [IpxeSubOpt.FEATURE_TFTP] }), { httpBase: base });
  t.is(without.rule, 'ipxe-without-http');
  t.is(without.bootfile, undefined);
  t.truthy(without.refused);
  const withHttp = classify(facts({ arch: 0, ipxeEncap: true, ipxeFeatures: [IpxeSubOpt.FEATURE_HTTP] }), { httpBase: base });
  t.is(withHttp.bootfile, `${base}/boot.ipxe`);
});

test('UEFI HTTP Boot gets an HTTP URL of the iPXE EFI binary and HTTPClient echoed', (t) => {
  const x64 = classify(facts({ arch: 16, vendorClass: 'HTTPClient:Arch:00016:UNDI:003001' }), { httpBase: base });
  t.is(x64.bootfile, `${base}/ipxe/snponly.efi`);
  t.is(x64.transport, 'http');
  t.is(x64.echoVendor, 'HTTPClient');
  t.false(x64.pxeOptions);
  t.is(classify(facts({ arch: 19 }), { httpBase: base }).bootfile, `${base}/ipxe/snp.efi`);
  t.is(classify(facts({ vendorClass: 'HTTPClient' }), { httpBase: base }).bootfile, `${base}/ipxe/snponly.efi`);
  t.truthy(classify(facts({ arch: 15 }), { httpBase: base }).refused);
});

test('an ordinary DHCP client is not a network-boot client', (t) => {
  const d = classify(facts({ vendorClass: 'udhcp 1.35.0' }), { httpBase: base });
  t.false(d.netboot);
  t.is(d.bootfile, undefined);
  t.is(d.refused, undefined);
  t.is(d.echoVendor, undefined);
});

test('a PXEClient without option 93 is an old BIOS ROM; the Arch: field of option 60 counts as the arch', (t) => {
  t.is(classify(facts({ vendorClass: 'PXEClient' }), { httpBase: base }).bootfile, 'undionly.kpxe');
  t.is(archFromVendorClass('PXEClient:Arch:00007:UNDI:003016'), 7);
  t.is(archFromVendorClass('HTTPClient:Arch:00016:UNDI:003001'), 16);
  t.is(archFromVendorClass('MSFT 5.0'), undefined);
});

test('a per-MAC override beats the table for firmware, but not a binary for iPXE', (t) => {
  const bios = classify(facts({ arch: 0, vendorClass: 'PXEClient' }), { httpBase: base, override: 'ipxe.pxe' });
  t.is(bios.bootfile, 'ipxe.pxe');
  t.is(bios.transport, 'tftp');
  t.regex(bios.rule, /^override/);
  const ipxe = facts({ arch: 0, vendorClass: 'PXEClient', userClass: ['iPXE'] });
  t.is(classify(ipxe, { httpBase: base, override: 'ipxe.pxe' }).bootfile, `${base}/boot.ipxe`);
  const url = classify(ipxe, { httpBase: base, override: 'http://other/custom.ipxe' });
  t.is(url.bootfile, 'http://other/custom.ipxe');
  t.is(url.transport, 'http');
});

test('the table ends with a catch-all row so every client is classified', (t) => {
  t.deepEqual(DEFAULT_RULES[DEFAULT_RULES.length - 1].match, {});
  t.is(classify(facts({}), { httpBase: base }).rule, 'plain');
});

function packet(options: [number, Buffer][]): DhcpPacket {
  const p: DhcpPacket = {
    op: 1, htype: 1, hlen: 6, hops: 0, xid: 1, secs: 0, flags: 0,
    ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0',
    chaddr: Buffer.alloc(16), sname: '', file: '',
    options: new Map([[Opt.MESSAGE_TYPE, Buffer.from([1])], ...options]),
  };
  return decodeDhcp(encodeDhcp(p));
}

test('clientFacts reads 93 as a list, 60, 77 (plain and RFC 3004), 175 features and 97', (t) => {
  const uuid = Buffer.concat([Buffer.from([0]), Buffer.from('33221100554477668899aabbccddeeff', 'hex')]);
  const f = clientFacts(packet([
    [Opt.CLIENT_ARCH, Buffer.from([0, 7, 0, 0])],
    [Opt.VENDOR_CLASS, Buffer.from('PXEClient:Arch:00007:UNDI:003016')],
    [Opt.USER_CLASS, Buffer.from('iPXE')],
    [Opt.IPXE_ENCAP, encodeEncapsulated([[IpxeSubOpt.FEATURE_HTTP, Buffer.from([1])], [IpxeSubOpt.FEATURE_PXE_EXT, Buffer.from([2])]])],
    [Opt.CLIENT_UUID, uuid],
  ]));
  t.is(f.arch, 7);
  t.deepEqual(f.archs, [7, 0]);
  t.deepEqual(f.userClass, ['iPXE']);
  t.true(f.ipxeEncap);
  t.deepEqual(f.ipxeFeatures, [IpxeSubOpt.FEATURE_HTTP, IpxeSubOpt.FEATURE_PXE_EXT]);
  t.is(f.uuid, '00112233-4455-6677-8899-aabbccddeeff');
  const rfc = clientFacts(packet([[Opt.USER_CLASS, Buffer.from([4, ...Buffer.from('iPXE'), 3, ...Buffer.from('foo')])]]));
  t.deepEqual(rfc.userClass, ['iPXE', 'foo']);
  t.is(classify(rfc, { httpBase: base }).rule, 'ipxe');
});

test('malformed options do not throw and do not invent facts', (t) => {
  const f = clientFacts(packet([
    [Opt.CLIENT_ARCH, Buffer.from([7])],
    [Opt.IPXE_ENCAP, Buffer.from([19, 9, 1])],
    [Opt.CLIENT_UUID, Buffer.from([1, 2, 3])],
  ]));
  t.is(f.arch, undefined);
  t.true(f.ipxeEncap);
  t.is(f.ipxeFeatures, undefined);
  t.is(f.uuid, undefined);
  // Features unknown: still served the script rather than refused.
  t.is(classify(f, { httpBase: base }).rule, 'ipxe');
});

test('signed chain: a UEFI x64 PXE client whose profile has secureBoot gets shim; iPXE, HTTP Boot, BIOS and ARM64 do not', (t) => {
  const shim = 'image/shimx64.efi';
  for (const arch of [7, 9]) {
    const d = classify(facts({ arch, vendorClass: 'PXEClient' }), { httpBase: base, shim });
    t.is(d.bootfile, shim, `arch ${arch}`);
    t.is(d.transport, 'tftp');
    t.is(d.rule, 'uefi-x64 (signed chain)');
    t.is(d.echoVendor, 'PXEClient');
  }
  // iPXE already runs (Secure Boot is off there): it gets the script, never shim
  t.is(classify(facts({ arch: 7, userClass: ['iPXE'] }), { httpBase: base, shim }).bootfile, `${base}/boot.ipxe`);
  t.is(classify(facts({ arch: 0, vendorClass: 'PXEClient' }), { httpBase: base, shim }).bootfile, 'undionly.kpxe');
  t.is(classify(facts({ arch: 11, vendorClass: 'PXEClient' }), { httpBase: base, shim }).bootfile, 'snp.efi');
  t.is(classify(facts({ arch: 16, vendorClass: 'HTTPClient' }), { httpBase: base, shim }).bootfile, `${base}/ipxe/snponly.efi`);
  // a per-MAC boot file still wins
  t.is(classify(facts({ arch: 7, vendorClass: 'PXEClient' }), { httpBase: base, shim, override: 'custom.efi' }).bootfile, 'custom.efi');
});
