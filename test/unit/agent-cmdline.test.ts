import test from 'ava';
import { agentCmdline, AgentCmdlineError, SERVER_ARG } from '../../agent/cmdline.ts';
import { FarmerIdError, RunmodeError } from '../../lib/cmdline.ts';

// The line zos's own parser test reads (kernel.rs), plus our server and BOOTIF.
const ZOS_LINE = 'intel_iommu=on kvm-intel.nested=1 console=ttyS1,115200n8 console="tty1" consoleblank=0 with_spaces="with spaces" loglevel=7 zos-debug zos-debug-vm farmer_id="11" runmode=dev version=v3 nomodeset';

test('a zos line with our server and BOOTIF reads as typed settings', (t) => {
  const c = agentCmdline(`${ZOS_LINE} ${SERVER_ARG}=http://10.0.0.1:8080/ BOOTIF=01-52-54-00-AB-CD-EF initrd=initrd0`);
  t.deepEqual(c, { runmode: 'dev', farmerId: 11, debugVm: true, missingSsd: false, debug: true, server: 'http://10.0.0.1:8080', bootMac: '52:54:00:ab:cd:ef' });
});

test('defaults: prod, no farm, no flags, no server, no boot NIC', (t) => {
  t.deepEqual(agentCmdline('console=ttyS0 quiet'), { runmode: 'prod', farmerId: undefined, debugVm: false, missingSsd: false, debug: false, server: undefined, bootMac: undefined });
  t.true(agentCmdline('missing-ssd').missingSsd);
});

test('flags after "--" belong to init, not to the kernel', (t) => {
  t.false(agentCmdline('quiet -- zos-debug-vm').debugVm);
});

test('bad values are one typed error naming the argument', (t) => {
  t.is(t.throws(() => agentCmdline('runmode=production'), { instanceOf: RunmodeError })!.key, 'runmode');
  t.throws(() => agentCmdline('runmode'), { instanceOf: RunmodeError, message: /bare runmode/ });
  for (const bad of ['farmer_id=-1', 'farmer_id=0x10', 'farmer_id=4294967296', 'farmer_id']) t.throws(() => agentCmdline(bad), { instanceOf: FarmerIdError }, bad);
  t.is(agentCmdline('farmer_id=4294967295').farmerId, 4294967295);
  for (const bad of ['BOOTIF=52-54-00-ab-cd-ef', 'BOOTIF=01-52-54-00-ab-cd', 'BOOTIF']) {
    t.is(t.throws(() => agentCmdline(bad), { instanceOf: AgentCmdlineError }, bad)!.key, 'BOOTIF');
  }
  for (const bad of ['ftp://x', 'notaurl', 'http://u:p@x', 'http://x/?a=1', '']) {
    const e = t.throws(() => agentCmdline(`${SERVER_ARG}=${bad}`), { instanceOf: AgentCmdlineError }, bad);
    t.is(e!.key, SERVER_ARG);
  }
  t.throws(() => agentCmdline(SERVER_ARG), { message: /got nothing/ });
});

test('a URL path is kept, trailing slashes dropped; a word named like an Object member is no key', (t) => {
  t.is(agentCmdline(`${SERVER_ARG}=https://boot.example/zb//`).server, 'https://boot.example/zb');
  t.is(agentCmdline('constructor toString').runmode, 'prod');
});
