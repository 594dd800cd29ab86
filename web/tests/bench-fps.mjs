// Frame-rate benchmark of the console with many entities, in headless Chromium.
// Usage: node tests/bench-fps.mjs <base-url> [entities=50000] [seconds=6]
//        (BENCH_SEED=0 to use the entities the node already has, e.g. a moving demo)
//
// Seeds <entities> entities over a theatre (55 types, all affiliations) through the report
// API, opens the console, waits until it holds them all, then drags the map around with the
// mouse (as an operator pans) for <seconds> at three zoom levels, counting
// requestAnimationFrame callbacks. Prints fps per zoom level and the slowest frame.
import { chromium } from 'playwright-core';

const [base, nArg, secArg] = process.argv.slice(2);
if (!base) { console.error('usage: node tests/bench-fps.mjs <base-url> [entities] [seconds]'); process.exit(2); }
const N = Number(nArg || 50000);
const SECONDS = Number(secArg || 6);
const TYPES = ['a-f-G-U-C-I', 'a-f-G-U-C-A', 'a-f-G-E-V', 'a-f-A-M-F', 'a-f-S-X', 'a-h-G-U-C-I', 'a-h-G-U-C-A',
  'a-h-A-M-F-F', 'a-h-S-X', 'a-n-S-X', 'a-n-A-C-F', 'a-u-G', 'a-u-S', 'a-f-G-U-S-T', 'a-h-G-E-W-M'];

// Deterministic pseudo-random positions (no Math.random: same picture every run).
let seed = 12345;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);

async function seedEntities() {
  const now = Date.now();
  const stale = new Date(now + 3600_000).toISOString();
  const time = new Date(now).toISOString();
  for (let i = 0; i < N; i += 10000) {
    const batch = [];
    for (let j = i; j < Math.min(N, i + 10000); j++) {
      batch.push({ uid: `bench-${j}`, type: TYPES[j % TYPES.length], callsign: `B${j}`,
        lat: 45 + rnd() * 15, lon: 0 + rnd() * 25, course: rnd() * 360, speed: 5, time, stale });
    }
    const res = await fetch(`${base}/api/v1/reports`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(batch) });
    if (!res.ok) throw new Error(`seeding: HTTP ${res.status}: ${await res.text()}`);
  }
}

// BENCH_SEED=0: the node already holds the entities (e.g. `rampart demo --entities 50000`).
if (process.env.BENCH_SEED !== '0') await seedEntities();
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage'] });
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  const t0 = Date.now();
  await page.goto(base);
  await page.waitForFunction((n) => window.rampart && window.rampart.count() >= n, N, { timeout: 120000 });
  console.log(`loaded ${N} entities in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const box = await page.locator('#map').boundingBox();
  const cx = box.x + box.width / 2, cy = box.y + box.height / 2;
  // Centre on the middle of the picture.
  const centre = await page.evaluate(() => {
    let lat = 0, lon = 0, n = 0;
    for (const e of window.rampart.entities.values()) { lat += e.props.lat; lon += e.props.lon; n++; }
    return [lat / n, lon / n];
  });
  const results = [];
  for (const zoom of [5, 7, 10]) {
    await page.evaluate(([z, c]) => window.rampart.map.setView(c, z, { animate: false }), [zoom, centre]);
    await page.waitForTimeout(1500);
    const drawn = await page.evaluate(() => window.rampart.drawn());
    await page.evaluate(() => {
      window.__frames = 0; window.__worst = 0; window.__stop = false;
      let last = performance.now();
      const tick = (t) => { window.__frames++; window.__worst = Math.max(window.__worst, t - last); last = t; if (!window.__stop) requestAnimationFrame(tick); };
      requestAnimationFrame(tick);
      window.__start = performance.now();
    });
    await page.mouse.move(cx, cy);
    await page.mouse.down();
    const end = Date.now() + SECONDS * 1000;
    let k = 0;
    while (Date.now() < end) {
      // A slow circle of radius 250 px, one mouse event per ~16 ms, like a hand dragging.
      const a = (k++ / 60) * Math.PI;
      await page.mouse.move(cx + Math.cos(a) * 250, cy + Math.sin(a) * 250);
      await page.waitForTimeout(8);
    }
    await page.mouse.up();
    const r = await page.evaluate(() => { window.__stop = true; return { frames: window.__frames, ms: performance.now() - window.__start, worst: window.__worst }; });
    const fps = (r.frames * 1000) / r.ms;
    results.push({ zoom, fps, worst: r.worst, drawn });
    console.log(`zoom ${zoom}: ${fps.toFixed(1)} fps while panning, slowest frame ${r.worst.toFixed(1)} ms; ` +
      `${drawn.symbols} symbols + ${drawn.clusters} clusters drawn, redraw ${drawn.ms.toFixed(1)} ms`);
  }
  const min = Math.min(...results.map((r) => r.fps));
  console.log(`minimum ${min.toFixed(1)} fps with ${N} entities`);
} finally {
  await browser.close();
}
