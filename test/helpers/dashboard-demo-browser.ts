// Drives the dashboard of a running `zeroboot demo --broken` in Debian's
// chromium (playwright-core, headless), inside the demo's namespace (the
// management listener is that namespace's loopback). Records every state the
// page shows for each machine as it changes (no reload), then opens the
// broken machine's "why" panel and the good machine's serial console, and
// screenshots each step. Prints one JSON line with what it saw.
//   node dashboard-demo-browser.ts '{"url": "...", "good": "<mac>", "broken": "<mac>", "artifacts": "...", "timeoutMs": 600000}'
import { chromium } from 'playwright-core';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

const args = JSON.parse(process.argv[2]) as { url: string; good: string; broken: string; artifacts: string; timeoutMs: number };
await mkdir(args.artifacts, { recursive: true });
const shot = (name: string) => path.join(args.artifacts, `dashboard-demo-${name}.png`);
/** The rows the page holds (its top-level `machines`, a script-scope binding). */
const ROWS = '[...machines.values()].map((m) => ({ mac: m.mac, stage: m.bootStage, state: m.state, cause: m.cause ? m.cause.title : "" }))';
/** The text in the page's terminal (its top-level `term`). */
const TERM_TEXT = '(() => { if (!term) return ""; const b = term.buffer.active; const out = []; for (let i = 0; i < b.length; i++) out.push(b.getLine(i)?.translateToString(true) ?? ""); return out.join("\\n"); })()';

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });
const seen: { states: Record<string, string[]>; navigations: number; why?: string; consoleStatus?: string; consoleMarker?: string; node?: string; errors: string[] } = { states: {}, navigations: 0, errors: [] };
const deadline = Date.now() + args.timeoutMs;
const left = () => Math.max(1000, deadline - Date.now());
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on('pageerror', (e) => seen.errors.push(e.message));
  page.on('console', (m) => (m.type() === 'error' ? seen.errors.push(m.text()) : undefined));
  page.on('framenavigated', (f) => (f === page.mainFrame() ? seen.navigations++ : undefined));
  await page.goto(args.url);
  await page.waitForFunction(() => document.getElementById('live')?.textContent === 'live', undefined, { timeout: left() });
  process.stdout.write('live\n');
  const record = async () => {
    for (const r of await page.evaluate<{ mac: string; stage: string; state: string; cause: string }[]>(ROWS)) {
      const s = `${r.stage}/${r.state}${r.cause ? `/${r.cause}` : ''}`;
      const list = (seen.states[r.mac] ??= []);
      if (list[list.length - 1] !== s) {
        list.push(s);
        process.stderr.write(`${new Date().toISOString()} ${r.mac} ${s}\n`);
      }
    }
  };
  const shots = new Set<string>();
  // Watch until the broken machine has its cause and the good one reported.
  for (;;) {
    await record();
    const broken = seen.states[args.broken] ?? [];
    const good = seen.states[args.good] ?? [];
    if (good.length === 1 && !shots.has('appeared')) {
      shots.add('appeared');
      await page.screenshot({ path: shot('1-appeared') });
    }
    if (broken.some((s) => s.includes('A download failed')) && good.some((s) => s.startsWith('reported'))) break;
    if (Date.now() > deadline) throw new Error(`timed out; the page showed ${JSON.stringify(seen.states)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  await page.screenshot({ path: shot('2-progressed') });

  await page.locator(`.row[data-mac="${args.broken}"]`).click();
  await page.locator('#why strong').waitFor({ timeout: left() });
  await page.locator('#why pre.tail').waitFor({ timeout: left() });
  seen.why = await page.locator('#why').innerText();
  await page.screenshot({ path: shot('3-why'), fullPage: true });

  await page.locator(`.row[data-mac="${args.good}"]`).click();
  await page.waitForFunction(() => / · (live|ended)/.test(document.getElementById('constatus')?.textContent ?? ''), undefined, { timeout: left() });
  for (;;) {
    const text = await page.evaluate<string>(TERM_TEXT);
    const m = /ZEROBOOT-UP[^\n]*/.exec(text);
    if (m) {
      seen.consoleMarker = m[0].trim();
      break;
    }
    if (Date.now() > deadline) throw new Error(`the console never showed ZEROBOOT-UP; it showed:\n${text.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  seen.consoleStatus = await page.locator('#constatus').innerText();
  // The node's own panel: id, last report, disks, zdbs and inventory from its signed report (re-opened until the report is in).
  for (;;) {
    const body = await page.locator('#body').innerText();
    if (/Inventory/.test(body)) {
      seen.node = body;
      break;
    }
    if (Date.now() > deadline) throw new Error(`the node panel never showed the report; it showed:\n${body.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 1000));
    await page.locator(`.row[data-mac="${args.good}"]`).click();
  }
  await page.screenshot({ path: shot('4-console'), fullPage: true });
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(seen) + '\n');
