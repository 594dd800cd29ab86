// The entity layer: one canvas drawn by hand (no per-entity DOM or Leaflet objects), so 50,000
// entities cost one pass per redraw. Leaflet's Renderer base moves and scales the canvas while
// panning and zooming, so a pan is a CSS transform and needs no redraw at all.
//
// Level of detail: entities are binned into screen cells; a cell holding one entity draws its
// symbol, heading and callsign, a cell holding several draws a cluster disc with the count in
// the colour of its dominant affiliation. Clicking a cluster zooms into it.
import L from 'leaflet';
import { symbol, AFF_COLOUR } from './symbols.js';

const CELL = 44; // px: cluster cell size
const NO_CLUSTER_ZOOM = 15; // from this zoom every entity is drawn individually
const LABEL_LIMIT = 1500; // most callsign labels drawn in one frame

/** Web Mercator of lon/lat into [0,1]² (what Leaflet's pixel space is at zoom 0, over 256). */
export function mercator(lat, lon) {
  const s = Math.sin((Math.max(-85.0511, Math.min(85.0511, lat)) * Math.PI) / 180);
  return [(lon + 180) / 360, 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)];
}

export const EntityLayer = L.Renderer.extend({
  options: { padding: 0.35 },

  initialize(source, options) {
    L.Renderer.prototype.initialize.call(this, options);
    // source(): { items: iterable of {uid, nx, ny, sidc, stale, course, callsign, aff}, selected }
    this._source = source;
    this.hits = []; // what was drawn last: {x, y, r, uid | cluster bounds}
    this.drawnSymbols = 0;
    this.drawnClusters = 0;
    this.lastDrawMs = 0;
  },

  _initContainer() {
    const c = (this._container = document.createElement('canvas'));
    c.className = 'rp-entities';
    c.style.pointerEvents = 'none';
    this._ctx = c.getContext('2d');
  },

  _destroyContainer() {
    L.DomUtil.remove(this._container);
    delete this._container;
  },

  _update() {
    if (this._map._animatingZoom && this._bounds) return;
    L.Renderer.prototype._update.call(this);
    const b = this._bounds;
    const size = b.getSize();
    const m = window.devicePixelRatio || 1;
    L.DomUtil.setPosition(this._container, b.min);
    this._container.width = m * size.x;
    this._container.height = m * size.y;
    this._container.style.width = `${size.x}px`;
    this._container.style.height = `${size.y}px`;
    this.redraw();
  },

  // Renderer hooks for vector paths: this layer has none.
  _updatePaths() {},

  redraw() {
    if (!this._map || !this._bounds) return;
    const t0 = performance.now();
    const map = this._map;
    const ctx = this._ctx;
    const m = window.devicePixelRatio || 1;
    const b = this._bounds;
    const size = b.getSize();
    ctx.setTransform(m, 0, 0, m, 0, 0);
    ctx.clearRect(0, 0, size.x, size.y);
    const zoom = map.getZoom();
    const scale = 256 * Math.pow(2, zoom);
    const origin = map.getPixelOrigin();
    // canvas x = world px − pixel origin − canvas top-left (layer point)
    const ox = origin.x + b.min.x;
    const oy = origin.y + b.min.y;
    // container point = layer point + pane offset: for hit tests in container space.
    const pane = map.containerPointToLayerPoint([0, 0]);
    const cx0 = b.min.x - pane.x;
    const cy0 = b.min.y - pane.y;
    const { items, selected } = this._source();
    const cluster = zoom < NO_CLUSTER_ZOOM;
    // Cells cover the canvas plus one cell of margin each side; an array beats a Map here.
    const cols = Math.ceil(size.x / CELL) + 3;
    const rows = Math.ceil(size.y / CELL) + 3;
    const grid = new Array(cols * rows);
    const cells = [];
    const singles = [];
    const worldW = scale;
    for (const e of items) {
      let x = e.nx * scale - ox;
      const y = e.ny * scale - oy;
      if (y < -CELL || y > size.y + CELL) continue;
      // The map may show the world more than once: bring x into the canvas if a copy is there.
      if (x < -CELL) x += worldW * Math.ceil((-CELL - x) / worldW);
      else if (x > size.x + CELL) x -= worldW * Math.ceil((x - size.x - CELL) / worldW);
      if (x < -CELL || x > size.x + CELL) continue;
      if (!cluster || e.uid === selected) {
        singles.push([e, x, y]);
        continue;
      }
      const key = (Math.floor(y / CELL) + 1) * cols + Math.floor(x / CELL) + 1;
      let c = grid[key];
      if (!c) {
        c = { n: 0, sx: 0, sy: 0, first: e, fx: x, fy: y, friend: 0, hostile: 0, neutral: 0, unknown: 0,
          minx: x, maxx: x, miny: y, maxy: y };
        grid[key] = c;
        cells.push(c);
      }
      c.n++; c.sx += x; c.sy += y; c[e.aff]++;
      if (x < c.minx) c.minx = x; if (x > c.maxx) c.maxx = x;
      if (y < c.miny) c.miny = y; if (y > c.maxy) c.maxy = y;
    }
    const hits = [];
    const styles = getComputedStyle(document.documentElement);
    const labelColour = styles.getPropertyValue('--label').trim() || '#000';
    const halo = styles.getPropertyValue('--halo').trim() || '#fff';
    const selColour = styles.getPropertyValue('--select').trim() || '#f0a';
    let clusters = 0;
    ctx.textBaseline = 'middle';
    for (const c of cells) {
      if (c.n === 1) { singles.push([c.first, c.fx, c.fy]); continue; }
      clusters++;
      const x = c.sx / c.n, y = c.sy / c.n;
      let dom = 'unknown', best = -1;
      for (const a of ['friend', 'hostile', 'neutral', 'unknown']) if (c[a] > best) { best = c[a]; dom = a; }
      const r = Math.min(22, 9 + Math.log2(c.n) * 2);
      ctx.beginPath();
      ctx.arc(x, y, r, 0, 2 * Math.PI);
      ctx.fillStyle = AFF_COLOUR[dom];
      ctx.globalAlpha = 0.85;
      ctx.fill();
      ctx.globalAlpha = 1;
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = '#000';
      ctx.stroke();
      ctx.fillStyle = '#000';
      ctx.font = '600 11px system-ui, sans-serif';
      ctx.textAlign = 'center';
      ctx.fillText(c.n > 9999 ? `${Math.round(c.n / 1000)}k` : String(c.n), x, y);
      hits.push({ x: x + cx0, y: y + cy0, r, cluster: true, n: c.n,
        box: [c.minx + cx0, c.miny + cy0, c.maxx + cx0, c.maxy + cy0] });
    }
    ctx.textAlign = 'left';
    ctx.font = '12px system-ui, sans-serif';
    const labels = singles.length <= LABEL_LIMIT;
    for (const [e, x, y] of singles) {
      const s = symbol(e.sidc, e.stale ? 'stale' : 'live');
      const w = s.w, h = s.h;
      if (e.course != null && !e.stale) {
        const a = (e.course * Math.PI) / 180;
        const len = Math.max(w, h) * 0.5 + 14;
        ctx.beginPath();
        ctx.moveTo(x, y);
        ctx.lineTo(x + Math.sin(a) * len, y - Math.cos(a) * len);
        ctx.strokeStyle = labelColour;
        ctx.lineWidth = 2;
        ctx.stroke();
      }
      ctx.drawImage(s.canvas, x - s.ax, y - s.ay, w, h);
      if (e.uid === selected) {
        ctx.beginPath();
        ctx.arc(x, y, Math.max(w, h) * 0.7, 0, 2 * Math.PI);
        ctx.strokeStyle = selColour;
        ctx.lineWidth = 3;
        ctx.stroke();
      }
      if (labels && e.callsign) {
        const lx = x - s.ax + w + 3;
        ctx.lineWidth = 3;
        ctx.strokeStyle = halo;
        ctx.strokeText(e.callsign, lx, y);
        ctx.fillStyle = e.stale ? '#8c8c8c' : labelColour;
        ctx.fillText(e.callsign, lx, y);
      }
      hits.push({ x: x + cx0, y: y + cy0, r: Math.max(w, h) * 0.5 + 2, uid: e.uid });
    }
    this.hits = hits;
    this.drawnSymbols = singles.length;
    this.drawnClusters = clusters;
    this.lastDrawMs = performance.now() - t0;
  },

  /** The drawn thing under the container point `p` (nearest within its radius), if any. */
  hitTest(p) {
    let best = null, bestD = Infinity;
    for (const h of this.hits) {
      const d = Math.hypot(h.x - p.x, h.y - p.y);
      if (d <= h.r && d < bestD) { best = h; bestD = d; }
    }
    return best;
  },
});
