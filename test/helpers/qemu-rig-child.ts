// A process that owns a rig, for the clean-up tests: starts a rig, boots one
// VM, prints `READY <namespace> <qemu pid> <server url>`, then ends the way
// argv[2] says: `exit` (process.exit without stop), `throw` (an uncaught
// error), `wait` (until a signal arrives or the parent kills it).
import { startRig } from '../../qemu/rig.ts';

const [mode = 'wait', stateFile] = process.argv.slice(2);
const rig = await startRig({ stateFile, kvm: 'off' });
const [vm] = await rig.boot('small-bios');
process.stdout.write(`READY ${rig.ns.name} ${vm.pid} ${rig.serverUrl}\n`);
if (mode === 'exit') process.exit(0);
if (mode === 'throw') setTimeout(() => {
  throw new Error('the owner crashed');
}, 10);
if (mode === 'wait') setInterval(() => undefined, 1000);
