// Drives the dashboard in Debian's chromium through playwright-core, inside
// the test's namespace (the management listener is that namespace's
// loopback): waits for a machine to appear live, for it to be marked with a
// cause, opens it and reads the "why" panel; screenshots each step into the
// artifacts folder. Prints one JSON line with what it saw.
//   node dashboard-browser.ts '{"url": "...", "mac": "...", "artifacts": "...", "timeoutMs": 90000}'
import { chromium } from 'playwright-core';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

const args = JSON.parse(process.argv[2]) as { url: string; mac: string; artifacts: string; timeoutMs: number };
await mkdir(args.artifacts, { recursive: true });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });
const seen: Record<string, unknown> = {};
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => (m.type() === 'error' ? errors.push(m.text()) : undefined));
  await page.goto(args.url);
  await page.waitForFunction(() => document.getElementById('live')?.textContent === 'live', undefined, { timeout: args.timeoutMs });
  const row = page.locator(`.row[data-mac="${args.mac}"]`);
  await row.waitFor({ timeout: args.timeoutMs });
  seen.firstRow = await row.innerText();
  await page.screenshot({ path: path.join(args.artifacts, 'dashboard-1-appeared.png') });
  // The test moves the machine on only after this line.
  process.stdout.write('appeared\n');
  await page.waitForFunction((mac) => /downloaded again/.test(document.querySelector(`.row[data-mac="${mac}"]`)?.textContent ?? ''), args.mac, { timeout: args.timeoutMs });
  seen.laterRow = await row.innerText();
  await page.fill('#search', args.mac.slice(-5));
  seen.filtered = await page.locator('.row').count();
  await row.click();
  await page.locator('#why strong').waitFor({ timeout: args.timeoutMs });
  seen.why = await page.locator('#why').innerText();
  seen.timelineRows = await page.locator('#detail table tr').count();
  await page.screenshot({ path: path.join(args.artifacts, 'dashboard-2-why.png'), fullPage: true });
  seen.errors = errors;
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(seen) + '\n');
