// The built-in basemap: Natural Earth land, coastlines and country borders (world-atlas
// TopoJSON, served by the node itself), a graticule, and optionally the operator's own tiles:
// an XYZ URL on their network, a raster PMTiles file or an MBTiles file (raster, or vector
// tiles drawn on a canvas here) on the node.
import L from 'leaflet';
import { feature, mesh } from 'topojson-client';
import { PMTiles, leafletRasterLayer } from 'pmtiles';
import { VectorTile } from '@mapbox/vector-tile';
import { PbfReader } from 'pbf';

// A Mapbox vector tile layer drawn on canvas: polygons filled with the land colour, lines in
// the border colour, points as dots. Enough for an operator's own topographic extract; the
// tile is decoded once per tile request and never refetched while it stays in view.
const VectorGrid = L.GridLayer.extend({
  createTile(coords, done) {
    const size = this.getTileSize();
    const canvas = L.DomUtil.create('canvas', 'leaflet-tile');
    canvas.width = size.x; canvas.height = size.y;
    const url = L.Util.template(this.options.url, coords);
    fetch(url).then(async (res) => {
      if (res.status === 404) return; // no tile here: leave it empty
      if (!res.ok) throw new Error(`tile ${url}: HTTP ${res.status}`);
      const tile = new VectorTile(new PbfReader(new Uint8Array(await res.arrayBuffer())));
      const ctx = canvas.getContext('2d');
      const fill = cssVar('--land'), line = cssVar('--border-line'), coast = cssVar('--coast');
      for (const name of Object.keys(tile.layers)) {
        const layer = tile.layers[name];
        for (let i = 0; i < layer.length; i++) {
          const f = layer.feature(i);
          const k = size.x / f.extent;
          ctx.beginPath();
          for (const ring of f.loadGeometry()) {
            ring.forEach((p, j) => (j ? ctx.lineTo(p.x * k, p.y * k) : ctx.moveTo(p.x * k, p.y * k)));
            if (f.type === 1) ctx.arc(ring[0].x * k, ring[0].y * k, 2, 0, 2 * Math.PI);
          }
          if (f.type === 3) { ctx.fillStyle = fill; ctx.fill('evenodd'); ctx.strokeStyle = coast; ctx.lineWidth = 0.8; ctx.stroke(); }
          else if (f.type === 2) { ctx.strokeStyle = line; ctx.lineWidth = 1; ctx.stroke(); }
          else { ctx.fillStyle = line; ctx.fill(); }
        }
      }
    }).then(() => done(null, canvas), (e) => { console.warn(e); done(null, canvas); });
    return canvas;
  },
});

const DETAIL_ZOOM = 4; // from this zoom the 1:50m data replaces 1:110m

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function graticule(step, renderer) {
  const lines = [];
  for (let lon = -180; lon <= 180; lon += step) lines.push([[-85, lon], [85, lon]]);
  for (let lat = -80; lat <= 80; lat += step) {
    const row = [];
    for (let lon = -180; lon <= 180; lon += 5) row.push([lat, lon]);
    lines.push(row);
  }
  return L.polyline(lines, { renderer, interactive: false, weight: 0.6, dashArray: step >= 10 ? null : '2 4' });
}

export async function addBasemap(map, urls, config) {
  const renderer = L.canvas({ padding: 0.5 });
  const layers = {};
  const styled = [];
  const restyle = () => {
    for (const [layer, kind] of styled) {
      if (kind === 'land') layer.setStyle({ fillColor: cssVar('--land'), fillOpacity: 1, color: cssVar('--coast'), weight: 0.9 });
      else if (kind === 'borders') layer.setStyle({ color: cssVar('--border-line'), weight: 0.8 });
      else layer.setStyle({ color: cssVar('--grid'), opacity: 0.8 });
    }
  };
  const load = async (scale) => {
    const res = await fetch(urls[scale]);
    if (!res.ok) throw new Error(`basemap ${scale}: HTTP ${res.status}`);
    const topo = await res.json();
    const land = L.geoJSON(feature(topo, topo.objects.land), { renderer, interactive: false });
    const borders = L.geoJSON(mesh(topo, topo.objects.countries, (a, b) => a !== b), { renderer, interactive: false });
    styled.push([land, 'land'], [borders, 'borders']);
    return L.layerGroup([land, borders]);
  };
  const coarse = await load('110m');
  let fine = null;
  const g10 = graticule(10, renderer);
  const g2 = graticule(2, renderer);
  styled.push([g10, 'grid'], [g2, 'grid']);
  const natural = L.layerGroup([coarse, g10]);
  natural.addTo(map);
  restyle();
  const pick = async () => {
    if (!map.hasLayer(natural)) return;
    const z = map.getZoom();
    if (z >= DETAIL_ZOOM) {
      if (!fine) {
        fine = await load('50m');
        restyle();
      }
      if (natural.hasLayer(coarse)) { natural.removeLayer(coarse); natural.addLayer(fine); }
    } else if (fine && natural.hasLayer(fine)) {
      natural.removeLayer(fine); natural.addLayer(coarse);
    }
    if (z >= 5 && !natural.hasLayer(g2)) natural.addLayer(g2);
    if (z < 5 && natural.hasLayer(g2)) natural.removeLayer(g2);
  };
  map.on('zoomend', () => { pick().catch((e) => console.warn(e)); });
  await pick();
  layers['Natural Earth (built in)'] = natural;
  if (config.tile_url) {
    const tiles = L.tileLayer(config.tile_url, {
      maxZoom: config.tile_max_zoom || 18,
      attribution: config.tile_attribution || 'operator tiles',
    });
    layers['Operator tiles'] = tiles;
    // The operator's own tiles are the base when configured; Natural Earth stays one click away.
    map.removeLayer(natural);
    tiles.addTo(map);
  }
  if (config.pmtiles_url) {
    // The PMTiles Leaflet adapter looks Leaflet up as a global.
    window.L = L;
    const own = leafletRasterLayer(new PMTiles(config.pmtiles_url), {
      maxZoom: config.tile_max_zoom || 18,
      attribution: config.tile_attribution || 'operator tiles (PMTiles)',
    });
    layers['Operator tiles (PMTiles)'] = own;
    if (!config.tile_url) {
      map.removeLayer(natural);
      own.addTo(map);
    }
  }
  const mb = config.mbtiles;
  if (mb && mb.url) {
    const opts = {
      maxZoom: config.tile_max_zoom || 18,
      maxNativeZoom: mb.maxzoom ?? undefined,
      minNativeZoom: mb.minzoom ?? undefined,
      attribution: mb.attribution || config.tile_attribution || `operator tiles (MBTiles${mb.name ? `: ${mb.name}` : ''})`,
    };
    if (Array.isArray(mb.bounds)) opts.bounds = L.latLngBounds([mb.bounds[1], mb.bounds[0]], [mb.bounds[3], mb.bounds[2]]);
    const own = mb.raster ? L.tileLayer(mb.url, opts) : new VectorGrid({ ...opts, url: mb.url });
    layers['Operator tiles (MBTiles)'] = own;
    if (!config.tile_url && !config.pmtiles_url) {
      map.removeLayer(natural);
      own.addTo(map);
    }
  }
  L.control.layers(layers, {}, { collapsed: true }).addTo(map);
  // Switches the base layer (what the layer menu does; used by the tests).
  const show = (name) => {
    const want = layers[name];
    if (!want) throw new Error(`no base layer ${name}`);
    for (const l of Object.values(layers)) if (l !== want && map.hasLayer(l)) map.removeLayer(l);
    if (!map.hasLayer(want)) want.addTo(map);
  };
  return { restyle, layers: () => Object.keys(layers), show };
}
