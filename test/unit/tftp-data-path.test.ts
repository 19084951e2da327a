// Which data path a TFTP server gets: the native addon when built, the
// JavaScript one when asked or (said once in the log) when the addon is missing.
import test from 'ava';
import { chooseDataPath, loadTftpDataAddon } from '../../boot/tftp/native-addon.ts';
import { TftpServerError } from '../../boot/tftp/limits.ts';
import { createLogger } from '../../boot/log.ts';

const missing = () => loadTftpDataAddon('/nonexistent/tftpdata.node');

function capture() {
  const lines: string[] = [];
  return { lines, log: createLogger({ level: 'debug', write: (l) => lines.push(l) }) };
}

test('a missing addon is reported in one line', (t) => {
  const r = missing();
  t.true('missing' in r && r.missing.length > 0 && !r.missing.includes('\n'));
});

test("'auto' without the addon falls back to the JS path and says so once, at warn", (t) => {
  const { lines, log } = capture();
  t.is(chooseDataPath('auto', log, missing), undefined);
  t.is(lines.length, 1);
  t.regex(lines[0]!, /warn.*native data path not built.*JavaScript path/);
});

test("'native' without the addon is a configuration error; 'js' never loads it", (t) => {
  const { lines, log } = capture();
  t.throws(() => chooseDataPath('native', log, missing), { instanceOf: TftpServerError, message: /not built \(run: bash scripts\/setup\.sh\)/ });
  t.is(chooseDataPath('js', log, () => t.fail('loaded') as never), undefined);
  t.is(lines.length, 0);
});

test('the built addon loads and is chosen by auto without a word', (t) => {
  const { lines, log } = capture();
  const addon = chooseDataPath('auto', log);
  t.truthy(addon, 'build/Release/tftpdata.node (bash scripts/setup.sh builds it)');
  t.deepEqual(Object.keys(addon!).sort(), ['acked', 'open', 'port', 'start', 'stop', 'supply']);
  t.is(lines.length, 0);
});
