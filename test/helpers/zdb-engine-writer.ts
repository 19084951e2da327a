// Child process for the engine crash test: writes keys with --sync semantics
// (await engine.sync() before acknowledging) and prints "ack <n>" per write
// until killed. argv: <dataDir> <indexDir> <datasize>
import { openEngine } from '../../zdb/engine/index.ts';

const [dataDir, indexDir, datasize] = process.argv.slice(2);
const engine = openEngine({ dataDir, indexDir, datasize: Number(datasize), sync: true });
const ns = engine.get('default');
if (!ns) throw new Error('no default namespace');
for (let i = 0; ; i++) {
  ns.set(Buffer.from(`crash-${i}`), Buffer.alloc(100 + (i % 3000), i % 251));
  if (i % 7 === 3) ns.del(Buffer.from(`crash-${i - 2}`));
  await engine.sync();
  process.stdout.write(`ack ${i}\n`);
}
