// The dashboard page: one self-contained HTML document (no build step, no
// third-party script) served by the management listener at /dashboard/.
// It lists machines live from /api/events (server-sent events), renders only
// the rows in view (so 1,000 and more machines stay smooth), filters by
// state and searches MAC, hostname and address; a row opens the machine's
// timeline, its "why didn't it boot?" answer and its node's report
// (inventory, disks, zdbs) from the JSON API. Every value is put in the page
// as text (textContent), never as HTML: MACs, hostnames and reasons come
// from the hostile node network. A rig VM's serial console shows live in an
// xterm.js terminal (served from the installed package, see
// dashboard-assets.ts) over the websocket /api/console/<mac>.
import { createHash } from 'node:crypto';
import type { DashboardAssets } from './dashboard-assets.ts';

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>zeroboot</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="xterm.css">
<style>
  :root { font: 14px system-ui, sans-serif; color: #1d2329; background: #f5f6f8; }
  body { margin: 0; display: grid; grid-template-columns: minmax(520px, 1fr) minmax(420px, 1fr); grid-template-rows: auto minmax(0, 1fr); height: 100vh; }
  header { grid-column: 1 / 3; display: flex; gap: 12px; align-items: center; padding: 8px 14px; background: #1d2329; color: #fff; }
  header h1 { font-size: 16px; margin: 0 12px 0 0; }
  header input, header select { font: inherit; padding: 4px 6px; }
  #counts { margin-left: auto; font-variant-numeric: tabular-nums; }
  #list { overflow-y: auto; position: relative; border-right: 1px solid #ccd; background: #fff; }
  #spacer { position: relative; }
  .row { position: absolute; left: 0; right: 0; height: 28px; display: grid; grid-template-columns: 150px 110px 110px 1fr 90px; gap: 8px; align-items: center; padding: 0 10px; border-bottom: 1px solid #eef; cursor: pointer; white-space: nowrap; overflow: hidden; }
  .row:hover, .row.sel { background: #e8f0fe; }
  .mono { font-family: ui-monospace, monospace; }
  .state { font-size: 12px; padding: 1px 6px; border-radius: 8px; justify-self: start; }
  .s-reported { background: #d4f4dd; } .s-progressing { background: #fff1c2; } .s-stopped { background: #fcd9d9; }
  #detail { overflow-y: auto; padding: 12px 16px; }
  #detail h2 { font-size: 15px; margin: 16px 0 6px; }
  #why { border-left: 4px solid #c33; background: #fff; padding: 8px 12px; }
  #why.ok { border-color: #2a2; }
  table { border-collapse: collapse; width: 100%; background: #fff; }
  td, th { text-align: left; padding: 3px 6px; border-bottom: 1px solid #eef; font-size: 13px; vertical-align: top; }
  .muted { color: #778; }
  #term { background: #000; padding: 4px; }
  pre.tail { background: #111; color: #ddd; padding: 6px; font-size: 12px; overflow-x: auto; }
</style>
</head>
<body>
<header>
  <h1>zeroboot</h1>
  <input id="search" type="search" placeholder="search MAC, hostname, IP" aria-label="search">
  <select id="filter" aria-label="state">
    <option value="">all</option><option value="progressing">progressing</option><option value="stopped">stopped</option><option value="reported">reported</option>
  </select>
  <span id="live" class="muted">connecting…</span>
  <span id="counts"></span>
</header>
<div id="list"><div id="spacer"></div></div>
<div id="detail"><div id="head"><p class="muted">Select a machine.</p></div><div id="con"></div><div id="body"></div></div>
<script src="xterm.js" integrity="XTERM_INTEGRITY"></script>
<script>
"use strict";
const ROW = 28;
const machines = new Map();
let shown = [];
let selected = null;
const list = document.getElementById('list');
const spacer = document.getElementById('spacer');
const search = document.getElementById('search');
const filter = document.getElementById('filter');

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function refilter() {
  const q = search.value.trim().toLowerCase();
  const f = filter.value;
  shown = [...machines.values()].filter((m) =>
    (!f || m.state === f) && (!q || [m.mac, m.hostname, m.ip, m.nodeId].some((v) => v && String(v).toLowerCase().includes(q))));
  shown.sort((a, b) => (a.mac < b.mac ? -1 : 1));
  spacer.style.height = shown.length * ROW + 'px';
  const c = { progressing: 0, stopped: 0, reported: 0 };
  for (const m of machines.values()) c[m.state] = (c[m.state] || 0) + 1;
  document.getElementById('counts').textContent = machines.size + ' machines · ' + c.reported + ' reported · ' + c.progressing + ' booting · ' + c.stopped + ' stopped';
  render();
}

// Only the rows in view (and a few around) exist in the page.
function render() {
  const first = Math.max(0, Math.floor(list.scrollTop / ROW) - 5);
  const last = Math.min(shown.length, first + Math.ceil(list.clientHeight / ROW) + 10);
  spacer.replaceChildren();
  for (let i = first; i < last; i++) {
    const m = shown[i];
    const r = el('div', undefined, 'row' + (m.mac === selected ? ' sel' : ''));
    r.style.top = i * ROW + 'px';
    r.dataset.mac = m.mac;
    r.append(el('span', m.mac, 'mono'), el('span', m.hostname || '', ''), el('span', m.ip || '', 'mono'),
      el('span', m.cause ? m.cause.title : m.bootStage, m.cause ? '' : 'muted'), el('span', m.state, 'state s-' + m.state));
    r.onclick = () => open(m.mac);
    spacer.append(r);
  }
}

async function json(url) {
  const r = await fetch(url, { credentials: 'same-origin' });
  if (!r.ok) throw new Error(url + ': ' + r.status);
  return r.json();
}

function kv(rows) {
  const t = el('table');
  for (const [k, v] of rows) { const tr = el('tr'); tr.append(el('th', k), el('td', v)); t.append(tr); }
  return t;
}

async function open(mac) {
  selected = mac;
  render();
  const [m, why] = await Promise.all([json('/api/machines/' + mac), json('/api/machines/' + mac + '/why')]);
  if (selected !== mac) return;
  const parts = [el('h2', mac, 'mono')];
  const w = el('div');
  w.id = 'why';
  if (why.cause) {
    w.append(el('strong', why.cause.title), el('p', why.cause.explanation), el('p', 'What to do: ' + why.cause.advice));
    if (why.console && why.console.length) w.append(el('p', 'The last lines of its console:'), el('pre', why.console.join('\\n'), 'tail'));
  } else {
    w.className = 'ok';
    w.append(el('strong', why.state === 'reported' ? 'Booted and reported' : why.state === 'progressing' ? 'Booting: ' + why.stage : 'Stopped at ' + why.stage + ' (no known cause)'));
  }
  parts.push(el('h2', 'Why'), w);
  document.getElementById('head').replaceChildren(...parts);
  attachConsole(mac);
  parts.length = 0;
  const row = machines.get(mac);
  if (row && row.nodeId) {
    try {
      const node = await json('/api/nodes/' + row.nodeId);
      const rep = node.report || {};
      parts.push(el('h2', 'Node ' + node.nodeId));
      parts.push(kv([['last report', node.lastReport], ['capacity', JSON.stringify(node.capacity || rep.capacity || {})]]));
      const disks = el('table');
      disks.append(...(rep.disks || []).map((x) => { const tr = el('tr'); tr.append(el('td', x.name || x.device || x.path || '', 'mono'), el('td', x.type || ''), el('td', x.state || ''), el('td', x.reason || x.label || '')); return tr; }));
      parts.push(el('h2', 'Disks'), disks);
      const zdbs = el('table');
      zdbs.append(...(rep.zdbs || []).map((z) => { const tr = el('tr'); tr.append(el('td', z.disk, 'mono'), el('td', 'port ' + z.port, 'mono'), el('td', z.healthy ? 'healthy' : 'unhealthy' + (z.lastError ? ': ' + z.lastError : '')), el('td', z.restarts + ' restarts')); return tr; }));
      parts.push(el('h2', 'zdbs'), zdbs);
      const inv = rep.inventory || {};
      parts.push(el('h2', 'Inventory'), kv([['CPU', inv.cpu ? (inv.cpu.model + ' × ' + inv.cpu.logical) : ''], ['memory', typeof inv.memoryBytes === 'number' ? (inv.memoryBytes / 1073741824).toFixed(1) + ' GiB' + (typeof inv.memoryInstalledBytes === 'number' ? ' (' + (inv.memoryInstalledBytes / 1073741824).toFixed(1) + ' GiB installed)' : '') : ''], ['NICs', (inv.nics || []).map((n) => n.name + ' ' + n.mac).join(', ')]]));
    } catch (e) { parts.push(el('p', String(e), 'muted')); }
  }
  const tl = el('table');
  tl.append(...m.timeline.slice(-200).reverse().map((e) => { const tr = el('tr'); tr.append(el('td', e.time.slice(11, 23), 'mono'), el('td', e.kind), el('td', e.reason || JSON.stringify(e.detail || {}))); return tr; }));
  parts.push(el('h2', 'Timeline (latest first)'), tl);
  document.getElementById('body').replaceChildren(...parts);
}

// The selected machine's serial console, when it is a rig VM the server holds one for; kept while it stays selected.
let term = null;
let sock = null;
let termMac = null;
function attachConsole(mac) {
  if (termMac === mac) return;
  if (sock) sock.close();
  if (term) term.dispose();
  termMac = mac;
  const status = el('span', 'connecting…', 'muted');
  status.id = 'constatus';
  const box = el('div');
  box.id = 'term';
  document.getElementById('con').replaceChildren(el('h2', 'Console '), status, box);
  term = new Terminal({ rows: 24, cols: 100, fontSize: 12, scrollback: 5000, disableStdin: true, convertEol: false });
  term.open(box);
  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/api/console/' + encodeURIComponent(mac));
  sock = ws;
  ws.binaryType = 'arraybuffer';
  const t = term;
  ws.onmessage = (msg) => {
    if (typeof msg.data === 'string') {
      const info = JSON.parse(msg.data);
      status.textContent = info.name + (info.live ? ' · live' : ' · ended') + (info.input ? ' · input on' : ' · read-only');
      if (info.input) { t.options.disableStdin = false; t.onData((d) => { if (ws.readyState === 1) ws.send(d); }); }
      return;
    }
    t.write(new Uint8Array(msg.data));
  };
  ws.onclose = (e) => {
    if (sock !== ws) return;
    status.textContent = e.code === 4404 ? 'no console: not a rig VM the server was told about' : (status.textContent.replace(' · live', '') + ' · closed (' + (e.reason || e.code) + ')');
    if (e.code === 4404) box.remove();
  };
}

list.addEventListener('scroll', render);
search.addEventListener('input', refilter);
filter.addEventListener('change', refilter);
window.addEventListener('resize', render);

const feed = new EventSource('/api/events');
feed.onopen = () => { document.getElementById('live').textContent = 'live'; };
feed.onerror = () => { document.getElementById('live').textContent = 'reconnecting…'; };
feed.onmessage = (msg) => {
  const { changed, removed } = JSON.parse(msg.data);
  for (const m of changed) machines.set(m.mac, m);
  for (const mac of removed) machines.delete(mac);
  refilter();
  if (selected && changed.some((m) => m.mac === selected)) open(selected);
};
</script>
</body>
</html>
`;

const sha256 = (s: string) => createHash('sha256').update(s).digest('base64');

export interface DashboardPage {
  html: string;
  csp: string;
}

/**
 * The page and its Content-Security-Policy: its one inline script and
 * xterm.js, each allowed by hash (nothing else may run); xterm's stylesheet
 * from this origin; fetches, the event feed and the console websocket to
 * this origin only.
 */
export function dashboardPage(assets: DashboardAssets): DashboardPage {
  const xterm = assets.get('xterm.js')!.sha256;
  const html = PAGE.replace('XTERM_INTEGRITY', `sha256-${xterm}`);
  const inline = /<script>([^]*)<\/script>/.exec(html)![1];
  const csp = `default-src 'none'; script-src 'sha256-${sha256(inline)}' 'sha256-${xterm}'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
  return { html, csp };
}
