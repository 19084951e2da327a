// Machine summaries shared through PostgreSQL (boot/state/pg-machines.ts),
// in process against a started cluster: a row is written when a machine's
// stage changes, not per packet (a trigger counts the writes), the other
// server hears of it, and every side stays bounded when a network claims
// more MACs than the cap.
import test from 'ava';
import { sharedPostgres } from '../helpers/postgres.ts';
import { PgState } from '../../boot/state/pg.ts';
import { PgMachines } from '../../boot/state/pg-machines.ts';
import { BootTimeline } from '../../boot/timeline.ts';

const pg = sharedPostgres(test);

async function server(name: string, max?: number): Promise<{ timeline: BootTimeline; machines: PgMachines; state: PgState }> {
  const state = await PgState.open(pg.db.url, { max: 2 });
  pg.keep(state);
  const timeline = new BootTimeline();
  const machines = await PgMachines.open(state, { timeline, server: name, ...(max ? { max } : {}) });
  pg.keep(machines);
  return { timeline, machines, state };
}

async function until(what: string, ok: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`never: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const writes = async (s: PgState) => (await s.pool.query('SELECT n FROM machine_writes')).rows[0].n as number;

test.serial('the same stage again and again over many flushes is one write; a new stage is one more, and the other server shows it', async (t) => {
  const a = await server('http://a');
  const b = await server('http://b');
  await a.state.pool.query('CREATE TABLE machine_writes (n integer NOT NULL); INSERT INTO machine_writes VALUES (0)');
  await a.state.pool.query(`CREATE FUNCTION count_machine_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE machine_writes SET n = n + 1; RETURN NEW; END $$`);
  await a.state.pool.query('CREATE TRIGGER machine_write AFTER INSERT OR UPDATE ON zeroboot_machines FOR EACH ROW EXECUTE FUNCTION count_machine_write()');
  const mac = '52:54:00:dd:00:01';
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 25; i++) a.timeline.record(mac, 'dhcp.discover', { xid: i });
    // Past a flush each round: a write per round would show.
    await new Promise((r) => setTimeout(r, 400));
  }
  await until('B shows the discover', () => b.machines.get(mac)?.stage === 'dhcp.discover');
  t.is(await writes(a.state), 1);
  a.timeline.record(mac, 'dhcp.offer', { ip: '10.0.0.5' });
  await until('B shows the offer', () => b.machines.get(mac)?.stage === 'dhcp.offer');
  t.is(await writes(a.state), 2);
  t.is(b.machines.get(mac)!.server, 'http://a');
  t.is(a.machines.get(mac), undefined, "A's own rows are not peers");
  await a.state.pool.query('DROP TRIGGER machine_write ON zeroboot_machines');
});

test.serial('more MACs than the cap: the table and the peers held stay at the cap', async (t) => {
  const max = 50;
  const c = await server('http://c', max);
  const d = await server('http://d', max);
  const macOf = (i: number) => `02:00:00:00:00:${i.toString(16).padStart(2, '0')}`;
  for (let i = 0; i < 4 * max; i++) c.timeline.record(macOf(i), 'dhcp.discover');
  await until('D hears of the newest MAC', () => d.machines.get(macOf(4 * max - 1)) !== undefined);
  await until('the table pruned', async () => (await c.state.pool.query("SELECT count(*)::int AS n FROM zeroboot_machines WHERE server = 'http://c'")).rows[0].n <= max);
  t.true([...d.machines.macs()].length <= max);
});

test.serial('the notification connection is cut: the server reconnects, and what changed meanwhile reaches it', async (t) => {
  const e = await server('http://e');
  const f = await server('http://f');
  const killer = await PgState.open(pg.db.url, { max: 1 });
  pg.keep(killer);
  // Every LISTEN connection is cut (all servers of this file); while F's is down, E writes a new stage.
  const cut = await killer.pool.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'zeroboot-listen'");
  t.true(cut.rowCount! >= 2);
  const mac = '52:54:00:dd:00:77';
  e.timeline.record(mac, 'tftp.request', { file: 'ipxe.efi' });
  await until('F shows it after reconnecting', () => f.machines.get(mac)?.stage === 'tftp.request');
  t.is(f.machines.get(mac)!.server, 'http://e');
});
