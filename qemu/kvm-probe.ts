// Whether KVM really works: /dev/kvm can exist and still be a shim under
// which guests crash or crawl, so the only proof is a guest that gets
// through firmware start-up in a few seconds. Anything else means TCG.
import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { QEMU_BINARY } from './args.ts';
import { killPid } from '../lib/process.ts';

export type Accel = 'tcg' | 'kvm';
/** auto: probe; off/tcg: never KVM; kvm: KVM without probing. */
export type AccelMode = 'auto' | 'off' | 'tcg' | 'kvm';

/** Setting this to "tcg" forces TCG whatever the caller asked for. */
export const ACCEL_ENV = 'ZEROBOOT_QEMU_ACCEL';

export interface KvmProbeResult {
  usable: boolean;
  reason: string;
}

/** SeaBIOS prints this once it has walked every boot device: POST is done. */
const POST_DONE = 'No bootable device';

export async function probeKvm(opts: { timeoutMs?: number; qemu?: string; device?: string } = {}): Promise<KvmProbeResult> {
  const device = opts.device ?? '/dev/kvm';
  try {
    await access(device, constants.R_OK | constants.W_OK);
  } catch {
    return { usable: false, reason: `${device} is missing or not accessible` };
  }
  const timeoutMs = opts.timeoutMs ?? 5000;
  return new Promise((resolve) => {
    const args = ['-accel', 'kvm', '-machine', 'pc', '-m', '64', '-nodefaults', '-nographic', '-monitor', 'none', '-serial', 'stdio', '-no-reboot'];
    const child = spawn(opts.qemu ?? QEMU_BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let settled = false;
    const finish = (r: KvmProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.exitCode === null && child.pid) killPid(child.pid);
      resolve(r);
    };
    const onData = (d: Buffer) => {
      out += d.toString('latin1');
      if (out.includes(POST_DONE)) finish({ usable: true, reason: 'a KVM guest finished firmware start-up' });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (e) => finish({ usable: false, reason: `cannot start ${opts.qemu ?? QEMU_BINARY}: ${e.message}` }));
    child.on('exit', (code, signal) => {
      const last = out.trim().split('\n').pop()?.trim();
      finish({ usable: false, reason: `the KVM probe guest exited (${signal ?? code})${last ? `: ${last}` : ''}` });
    });
    const timer = setTimeout(() => finish({ usable: false, reason: `a KVM guest did not finish firmware start-up within ${timeoutMs} ms` }), timeoutMs);
  });
}

/**
 * The accelerator to use. TCG unless KVM is asked for or proven to work;
 * the environment variable can force TCG for a whole test run.
 */
export async function chooseAccel(mode: AccelMode = 'auto', env: NodeJS.ProcessEnv = process.env, probe = probeKvm): Promise<{ accel: Accel; reason: string }> {
  if (env[ACCEL_ENV] === 'tcg') return { accel: 'tcg', reason: `${ACCEL_ENV}=tcg` };
  if (mode === 'off' || mode === 'tcg') return { accel: 'tcg', reason: 'KVM switched off' };
  if (mode === 'kvm') return { accel: 'kvm', reason: 'KVM asked for' };
  const r = await probe();
  return r.usable ? { accel: 'kvm', reason: r.reason } : { accel: 'tcg', reason: `TCG: ${r.reason}` };
}
