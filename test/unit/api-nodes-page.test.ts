// GET /api/nodes in pages: `limit` (default 100, at most 1000) nodes after
// `cursor` (the previous page's `next`), in node-id order, so a walk over a
// few thousand nodes sees each once, even while nodes join and leave.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { ApiError, nodesPage, PAGE_DEFAULT, PAGE_MAX } from '../../boot/http/api.ts';
import type { NodesContext } from '../../boot/http/api.ts';
import type { NodeRecord } from '../../boot/registry/store.ts';
import { nodeIdOf } from '../../lib/signed-report.ts';

const record = (): NodeRecord => ({ nodeId: nodeIdOf(randomBytes(32)), publicKey: '', macs: [], diskless: false, firstSeen: 0, lastSeen: 0, reports: 1, lastReport: {} });

function registry(n: number): { ctx: NodesContext; nodes: Map<string, NodeRecord> } {
  const nodes = new Map<string, NodeRecord>();
  for (let i = 0; i < n; i++) {
    const r = record();
    nodes.set(r.nodeId, r);
  }
  return { nodes, ctx: { nodes: { list: () => [...nodes.values()], get: (id) => nodes.get(id) }, labelsFor: () => undefined } };
}

const page = (ctx: NodesContext, q: Record<string, string>) => nodesPage(ctx, new URLSearchParams(q));

test('3,000 nodes walked 250 at a time: each once, in node-id order, next null on the last page', (t) => {
  const { ctx, nodes } = registry(3000);
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  const started = performance.now();
  do {
    const p = page(ctx, { limit: '250', ...(cursor ? { cursor } : {}) });
    t.is(p.total, 3000);
    t.true(p.nodes.length <= 250);
    seen.push(...p.nodes.map((n) => n.nodeId));
    cursor = p.next;
    pages++;
  } while (cursor);
  t.log(`${pages} pages in ${(performance.now() - started).toFixed(1)} ms`);
  t.is(pages, 12);
  t.deepEqual(seen, [...nodes.keys()].sort());
});

test('nodes joining and leaving during a walk: every node there throughout is seen exactly once', (t) => {
  const { ctx, nodes } = registry(2000);
  const throughout = new Set(nodes.keys());
  const seen: string[] = [];
  let cursor: string | null = null;
  let round = 0;
  do {
    const p = page(ctx, { limit: '100', ...(cursor ? { cursor } : {}) });
    seen.push(...p.nodes.map((n) => n.nodeId));
    cursor = p.next;
    // Between pages: 20 new nodes (ids anywhere in the order) and 5 gone.
    for (let i = 0; i < 20; i++) {
      const r = record();
      nodes.set(r.nodeId, r);
    }
    for (const id of [...nodes.keys()].slice(round * 5, round * 5 + 5)) {
      nodes.delete(id);
      throughout.delete(id);
    }
    round++;
  } while (cursor);
  t.is(new Set(seen).size, seen.length, 'no node twice');
  t.deepEqual(seen, [...seen].sort(), 'in order');
  for (const id of throughout) t.true(seen.includes(id), id);
});

test('the limit is bounded and defaults to 100; a cursor that is no node id is refused', (t) => {
  const { ctx } = registry(PAGE_MAX + 50);
  t.is(page(ctx, {}).nodes.length, PAGE_DEFAULT);
  t.is(page(ctx, { limit: String(PAGE_MAX) }).nodes.length, PAGE_MAX);
  for (const limit of ['0', String(PAGE_MAX + 1), '1e3', '-5', 'all']) {
    const e = t.throws(() => page(ctx, { limit }), { instanceOf: ApiError });
    t.is(e?.status, 400);
    t.regex(e!.message, /limit must be an integer from 1 to 1000/);
  }
  for (const cursor of ['', 'not/an id', 'O0Il', 'x'.repeat(200)]) {
    const e = t.throws(() => page(ctx, { cursor }), { instanceOf: ApiError }, cursor);
    t.is(e?.status, 400);
  }
  // Past the last node: an empty last page.
  t.deepEqual(page(ctx, { cursor: 'zzzzzzzz' }), { total: PAGE_MAX + 50, next: null, nodes: [] });
});
