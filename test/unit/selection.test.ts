import test from 'ava';
import { createSelector, matches, NoProfileError } from '../../boot/selection.ts';
import type { Profile } from '../../boot/selection.ts';

const prof = (name: string, args: Profile['args'] = {}): Profile => ({ name, kernel: `${name}/vmlinuz`, initrd: [`${name}/initrd`], args });

const profiles = [prof('prod', { runmode: 'prod', farmer_id: 1 }), prof('test', { runmode: 'test' }), prof('rack', { runmode: 'prod' })];

test('the most specific matching group wins, whatever the file order', (t) => {
  const s = createSelector(
    profiles,
    [
      { name: 'all', profile: 'prod', selector: {} },
      { name: 'uefi', profile: 'test', selector: { arch: 'x86_64' } },
      { name: 'one', profile: 'rack', selector: { arch: 'x86_64', serial: 'S1' }, args: { farmer_id: 9 } },
    ],
    [],
  );
  t.is(s.select({ mac: '52:54:00:00:00:01' }).profile.name, 'prod');
  t.is(s.select({ arch: 'x86_64' }).profile.name, 'test');
  const one = s.select({ arch: 'x86_64', serial: 'S1' });
  t.is(one.profile.name, 'rack');
  t.is(one.group, 'one');
  t.deepEqual(one.args, { runmode: 'prod', farmer_id: 9 });
});

test('equal specificity keeps file order', (t) => {
  const s = createSelector(profiles, [
    { name: 'first', profile: 'prod', selector: { arch: 'x86_64' } },
    { name: 'second', profile: 'test', selector: { hostname: 'n1' } },
  ], []);
  t.is(s.select({ arch: 'x86_64', hostname: 'n1' }).group, 'first');
});

test('a per-MAC machine entry beats every group, in any MAC spelling', (t) => {
  const s = createSelector(profiles, [{ name: 'x', profile: 'prod', selector: { mac: '52:54:00:00:00:02', arch: 'x86_64' } }], [
    { mac: '52:54:00:00:00:02', profile: 'test', args: { farmer_id: 42 } },
  ]);
  const sel = s.select({ mac: '52-54-00-00-00-02', arch: 'x86_64' });
  t.is(sel.profile.name, 'test');
  t.is(sel.group, undefined);
  t.deepEqual(sel.args, { runmode: 'test', farmer_id: 42 });
  t.regex(sel.reason, /machine entry/);
});

test('machine args without a profile merge over the group', (t) => {
  const s = createSelector(profiles, [{ name: 'all', profile: 'prod', selector: {} }], [{ mac: '52:54:00:00:00:03', args: { farmer_id: 5 } }]);
  const sel = s.select({ mac: '52:54:00:00:00:03' });
  t.is(sel.profile.name, 'prod');
  t.deepEqual(sel.args, { runmode: 'prod', farmer_id: 5 });
});

test('no match is a typed error that names the machine', (t) => {
  const s = createSelector(profiles, [{ name: 'a', profile: 'prod', selector: { arch: 'arm64' } }], []);
  const err = t.throws(() => s.select({ mac: '52:54:00:00:00:04', arch: 'x86_64' }), { instanceOf: NoProfileError });
  t.regex(err!.message, /mac=52:54:00:00:00:04/);
});

test('selectors compare MACs and UUIDs case-insensitively, other labels exactly', (t) => {
  t.true(matches({ mac: 'AA:BB:CC:DD:EE:FF' }, { mac: 'aa-bb-cc-dd-ee-ff' }));
  t.true(matches({ uuid: 'ABCD' }, { uuid: 'abcd' }));
  t.false(matches({ hostname: 'Node1' }, { hostname: 'node1' }));
  t.false(matches({ serial: 'x' }, {}));
});
