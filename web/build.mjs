// Builds the console into dist/: esbuild bundles src/main.js (JS + CSS, content-hashed names),
// the Natural Earth basemap is copied from world-atlas, index.html is written with the hashed
// names, and every text asset gets a .gz twin so the server can send it compressed for free.
import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(fileURLToPath(import.meta.url));
const final = path.join(root, 'dist');
// Build into a private directory and swap it in at the end, so a concurrent cargo build that
// is embedding dist/ never sees it half written.
const dist = path.join(root, `.dist-tmp-${process.pid}`);
const assets = path.join(dist, 'assets');
fs.rmSync(dist, { recursive: true, force: true });
fs.mkdirSync(assets, { recursive: true });

const result = await esbuild.build({
  entryPoints: [path.join(root, 'src/main.js')],
  bundle: true,
  minify: true,
  sourcemap: false,
  format: 'iife',
  target: ['chrome100', 'firefox100', 'safari15'],
  outdir: assets,
  entryNames: '[name]-[hash]',
  loader: { '.png': 'dataurl', '.svg': 'dataurl' },
  metafile: true,
  logLevel: 'warning',
  legalComments: 'none',
});

const outputs = Object.keys(result.metafile.outputs).map((p) => path.basename(p));
const js = outputs.find((f) => f.endsWith('.js'));
const css = outputs.find((f) => f.endsWith('.css'));

// Basemap: Natural Earth 1:110m for the world view and 1:50m for theatre scale.
const basemap = {};
for (const scale of ['110m', '50m']) {
  const src = path.join(root, 'node_modules/world-atlas', `countries-${scale}.json`);
  const bytes = fs.readFileSync(src);
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 8);
  const name = `countries-${scale}-${hash}.json`;
  fs.writeFileSync(path.join(assets, name), bytes);
  basemap[scale] = `assets/${name}`;
}

const template = fs.readFileSync(path.join(root, 'src/index.html'), 'utf8');
const html = template
  .replace('%CSS%', `assets/${css}`)
  .replace('%JS%', `assets/${js}`)
  .replace('%BASEMAP%', JSON.stringify(basemap).replace(/"/g, '&quot;'));
fs.writeFileSync(path.join(dist, 'index.html'), html);
fs.copyFileSync(path.join(root, 'src/favicon.svg'), path.join(dist, 'favicon.svg'));

// Precompressed twins for text assets.
for (const dir of [dist, assets]) {
  for (const f of fs.readdirSync(dir)) {
    const p = path.join(dir, f);
    if (fs.statSync(p).isFile() && /\.(js|css|html|json|svg)$/.test(f)) {
      fs.writeFileSync(`${p}.gz`, gzipSync(fs.readFileSync(p), { level: 9 }));
    }
  }
}
const old = path.join(root, `.dist-old-${process.pid}`);
if (fs.existsSync(final)) fs.renameSync(final, old);
fs.renameSync(dist, final);
fs.rmSync(old, { recursive: true, force: true });
console.log(`console built: ${js}, ${css}, basemap ${Object.values(basemap).join(', ')}`);
