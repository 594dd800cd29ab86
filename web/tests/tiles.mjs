// Offline basemaps in headless Chromium: the console's PMTiles and MBTiles layers must fetch
// their tiles from the node, with everything else blocked. Usage:
//   node tests/tiles.mjs <base-url> <screenshot-dir>
// Run by crates/app/cli/tests/console_tiles.rs against a node configured with both files
// (every tile of zooms 0-3 is one green PNG). Requests are counted per source; any request
// leaving the node, failed tile, or browser error fails the run.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const [base, shots] = process.argv.slice(2);
if (!base || !shots) {
  console.error('usage: node tests/tiles.mjs <base-url> <screenshot-dir>');
  process.exit(2);
}
fs.mkdirSync(shots, { recursive: true });
const origin = new URL(base).origin;
const TIMEOUT = 20000;
const PMTILES = '/api/v1/console/tiles.pmtiles';
const MBTILES = '/api/v1/console/tiles/';

const errors = [];
const escaped = [];
const served = { pmtiles: 0, mbtiles: 0 };
let step = 'start';
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
let failed = false;
try {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(`${origin}/`) || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
    escaped.push(url);
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()} (${m.location()?.url || ''})`); });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('response', (r) => {
    const u = new URL(r.url());
    if (u.origin !== origin) return;
    const ok = r.status() === 200 || r.status() === 206;
    if (u.pathname === PMTILES) { if (ok) served.pmtiles++; else errors.push(`PMTiles ${r.status()}`); }
    if (u.pathname.startsWith(MBTILES)) {
      if (ok && r.headers()['content-type'] === 'image/png') served.mbtiles++;
      else errors.push(`MBTiles ${u.pathname}: ${r.status()} ${r.headers()['content-type']}`);
    }
  });

  step = 'load';
  await page.goto(base, { waitUntil: 'load' });
  await page.waitForFunction(() => window.rampart && window.rampart.baseLayers(), null, { timeout: TIMEOUT });
  const layers = await page.evaluate(() => window.rampart.baseLayers());
  for (const want of ['Operator tiles (PMTiles)', 'Operator tiles (MBTiles)']) {
    if (!layers.includes(want)) throw new Error(`no ${want} layer: ${layers.join(', ')}`);
  }

  for (const [name, key] of [['Operator tiles (PMTiles)', 'pmtiles'], ['Operator tiles (MBTiles)', 'mbtiles']]) {
    step = name;
    const before = served[key];
    await page.evaluate((n) => {
      window.rampart.showBaseLayer(n);
      window.rampart.map.setView([48, 10], 3, { animate: false });
    }, name);
    // PMTiles: the header and root directory, then one range per tile; MBTiles: one request
    // per tile. A 1000×700 view at zoom 3 needs at least 6 tiles.
    const need = key === 'pmtiles' ? 2 : 6;
    const deadline = Date.now() + TIMEOUT;
    while (served[key] - before < need) {
      if (Date.now() > deadline) throw new Error(`${name}: only ${served[key] - before} tile requests answered`);
      await page.waitForTimeout(100);
    }
    // And the tiles are on the map, decoded.
    await page.waitForFunction(() => [...document.querySelectorAll('.leaflet-tile-pane img.leaflet-tile')]
      .filter((i) => i.complete && i.naturalWidth === 256 && i.style.display !== 'none').length >= 6, null, { timeout: TIMEOUT });
    await page.screenshot({ path: path.join(shots, `tiles-${key}.png`) });
    console.log(`[tiles] ${name}: ${served[key] - before} requests answered by the node`);
  }

  step = 'checks';
  if (escaped.length) throw new Error(`requests left the node: ${escaped.join(', ')}`);
  if (errors.length) throw new Error(`errors:\n${errors.join('\n')}`);
  console.log('[tiles] tiles checks passed');
} catch (e) {
  failed = true;
  console.error(`[tiles] FAILED at ${step}: ${e.message}`);
  if (errors.length) console.error(errors.join('\n'));
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
