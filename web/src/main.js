// Rampart operator console: the live picture on a map, fed by the WebSocket stream, with
// panels for the entity list, details, history playback, ingest status and the slots the
// rules and devices features fill when the node offers them. Everything is served by the node.
import { ensureLogin } from './auth.js';
import 'leaflet/dist/leaflet.css';
import './style.css';
import L from 'leaflet';
import { EntityLayer, mercator } from './layer.js';
import { addBasemap } from './basemap.js';
import { affiliation, domain, symbolUrl } from './symbols.js';
import { Stream } from './stream.js';
import { initPanels } from './panels.js';

const $ = (id) => document.getElementById(id);

// ---- state ---------------------------------------------------------------------------------

/** uid → entity view: the GeoJSON properties plus derived fields used for drawing. */
const entities = new Map();
const state = {
  selected: null,
  filters: { aff: '', dom: '', type: '', q: '', stale: true },
  playback: null, // { points: Map uid→{meta, pts}, t } while replaying history
  version: 0, // bumped on every change of `entities`
};

function view(props) {
  const [nx, ny] = mercator(props.lat, props.lon);
  return {
    uid: props.uid, nx, ny, sidc: props.sidc, stale: !!props.is_stale, course: props.course,
    callsign: props.callsign || props.uid, aff: affiliation(props.sidc), dom: domain(props.type), props,
  };
}

function matches(e) {
  const f = state.filters;
  if (f.aff && e.aff !== f.aff) return false;
  if (f.dom && e.dom !== f.dom) return false;
  if (!f.stale && e.stale) return false;
  if (f.type && !typeMatches(e.props.type, f.type)) return false;
  if (f.q) {
    const q = f.q.toLowerCase();
    if (!e.uid.toLowerCase().includes(q) && !(e.callsign || '').toLowerCase().includes(q)) return false;
  }
  return true;
}

/** CoT type prefix on atom boundaries, like the server's filter. */
function typeMatches(type, prefix) {
  return type === prefix || (type || '').startsWith(prefix.endsWith('-') ? prefix : `${prefix}-`);
}

function noFilter() {
  const f = state.filters;
  return !f.aff && !f.dom && f.stale && !f.type && !f.q;
}
function visibleItems() {
  if (state.playback) return playbackItems(state.playback.t);
  if (noFilter()) return entities.values();
  const out = [];
  for (const e of entities.values()) if (matches(e)) out.push(e);
  return out;
}

// ---- map -----------------------------------------------------------------------------------

const map = L.map('map', {
  zoomControl: true, minZoom: 2, maxZoom: 18, worldCopyJump: true, keyboard: true,
  zoomSnap: 0.5, attributionControl: true, preferCanvas: true,
}).setView([30, 10], 3);
map.attributionControl.setPrefix('Natural Earth via world-atlas · Leaflet · milsymbol');
// Own panes keep trails and units above every basemap layer, whatever order those load in.
map.createPane('trails').style.zIndex = 440;
map.createPane('entities').style.zIndex = 450;
const layer = new EntityLayer(() => ({ items: visibleItems(), selected: state.selected }), { pane: 'entities' });
layer.addTo(map);
const trailRenderer = L.canvas({ pane: 'trails', padding: 0.5 });
const trailLayer = L.layerGroup().addTo(map);
const tip = L.DomUtil.create('div', 'rp-tip', map.getContainer());

let drawQueued = false;
let lastDraw = 0;
const DRAW_INTERVAL_MS = 250; // live updates redraw at most 4 times a second
function scheduleDraw(now = false) {
  if (drawQueued) return;
  drawQueued = true;
  const wait = now ? 0 : Math.max(0, DRAW_INTERVAL_MS - (performance.now() - lastDraw));
  setTimeout(() => requestAnimationFrame(() => {
    drawQueued = false;
    // While the operator drags or zooms, the canvas moves with the map; data redraws wait for
    // the gesture to end (moveend redraws anyway), so panning stays smooth under heavy updates.
    if (!now && (map.dragging?._draggable?._moving || map._animatingZoom)) { scheduleDraw(); return; }
    lastDraw = performance.now();
    layer.redraw();
    updateCounts();
  }), wait);
}

map.on('click', (ev) => {
  if (state.drawing) return; // a geofence is being drawn: clicks place its corners
  const hit = layer.hitTest(ev.containerPoint);
  if (!hit) return;
  if (hit.cluster) {
    const [x0, y0, x1, y1] = hit.box;
    const bounds = L.latLngBounds(map.containerPointToLatLng([x0, y0]), map.containerPointToLatLng([x1, y1]));
    map.fitBounds(bounds.pad(0.3), { maxZoom: Math.max(map.getZoom() + 2, 6) });
  } else {
    select(hit.uid, { pan: false });
  }
});
const hideTip = () => { tip.style.display = 'none'; };
map.getContainer().addEventListener('mouseleave', hideTip);
map.on('movestart zoomstart', hideTip);
map.on('mousemove', (ev) => {
  const hit = layer.hitTest(ev.containerPoint);
  if (!hit) { tip.style.display = 'none'; map.getContainer().style.cursor = ''; return; }
  map.getContainer().style.cursor = 'pointer';
  const e = hit.uid && (entities.get(hit.uid) || playbackEntity(hit.uid));
  tip.textContent = hit.cluster ? `${hit.n} entities — click to zoom in` : `${e?.callsign ?? hit.uid} · ${e?.props.type ?? ''}`;
  tip.style.left = `${ev.containerPoint.x + 14}px`;
  tip.style.top = `${ev.containerPoint.y + 10}px`;
  tip.style.display = 'block';
});

// ---- live stream ---------------------------------------------------------------------------

let fitted = false;
const stream = new Stream({
  url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/stream`,
  onState(s, detail) {
    const el = $('conn');
    el.dataset.state = s;
    el.textContent = s === 'live' ? 'LIVE' : s === 'connecting' ? 'connecting…' : `DISCONNECTED${detail ? ` — ${detail}` : ''}`;
  },
  onMessage(msg) {
    switch (msg.type) {
      case 'snapshot':
        entities.clear();
        for (const f of msg.features) entities.set(f.properties.uid, view(f.properties));
        if (msg.truncated) console.warn('snapshot truncated by the server limit');
        if (!fitted && entities.size) { fitted = true; fitToEntities(); }
        break;
      case 'update':
      case 'stale':
        for (const f of msg.features) {
          const v = view(f.properties);
          entities.set(v.uid, v);
          if (v.uid === state.selected) onSelectedUpdate(v);
        }
        break;
      case 'removed':
        for (const uid of msg.uids) entities.delete(uid);
        break;
      case 'error':
        console.warn('stream:', msg.error);
        return;
      default:
        return;
    }
    state.version++;
    scheduleDraw();
    panels.entitiesChanged();
  },
});

function fitToEntities() {
  let minLat = 90, maxLat = -90, minLon = 180, maxLon = -180;
  for (const e of entities.values()) {
    const { lat, lon } = e.props;
    minLat = Math.min(minLat, lat); maxLat = Math.max(maxLat, lat);
    minLon = Math.min(minLon, lon); maxLon = Math.max(maxLon, lon);
  }
  map.fitBounds([[minLat, minLon], [maxLat, maxLon]], { maxZoom: 11, padding: [30, 30], animate: false });
}

/** The subscription for the current view: padded viewport bbox (whole world when zoomed out). */
let subscribed = null;
function subscription() {
  const b = map.getBounds().pad(0.5);
  let bbox = null;
  const west = b.getWest(), east = b.getEast();
  if (east - west < 300 && map.getZoom() >= 4) {
    const wrap = (x) => ((((x + 180) % 360) + 360) % 360) - 180;
    bbox = [wrap(west), Math.max(-90, b.getSouth()), wrap(east), Math.min(90, b.getNorth())];
    bbox = bbox.map((v) => Math.round(v * 1e4) / 1e4);
  }
  const type = state.filters.type.trim();
  return { type: 'subscribe', bbox, type_prefix: type || null };
}
function covers(outer, inner) {
  if (!outer.bbox) return true;
  if (!inner.bbox) return false;
  const [a0, a1, a2, a3] = outer.bbox, [b0, b1, b2, b3] = inner.bbox;
  if (a0 > a2 || b0 > b2) return false; // antimeridian: resubscribe, keep it simple
  return b0 >= a0 && b1 >= a1 && b2 <= a2 && b3 <= a3;
}
function resubscribe(force = false) {
  const want = subscription();
  if (!fitted && !force) {
    // Before the first snapshot, take the whole picture so the view can fit it.
    want.bbox = null;
  }
  if (!force && subscribed && subscribed.type_prefix === want.type_prefix && covers(subscribed, subscription())) {
    // Still inside what we hold, and not wildly larger than needed.
    if (!subscribed.bbox || !want.bbox || area(subscribed.bbox) < 16 * area(want.bbox)) return;
  }
  subscribed = want;
  stream.subscribe(want);
}
function area(b) { return Math.abs((b[2] - b[0]) * (b[3] - b[1])); }
map.on('moveend', () => { if (fitted) resubscribe(); });
subscribed = { ...subscription(), bbox: null };
stream.subscribe(subscribed);

// ---- selection, details, trails ------------------------------------------------------------

let trail = null; // { uid, line, on }
function select(uid, { pan = true } = {}) {
  state.selected = uid;
  const e = entities.get(uid) || playbackEntity(uid);
  if (e && pan) map.panTo([e.props.lat, e.props.lon]);
  panels.showDetails(uid);
  scheduleDraw(true);
  if (uid && (!trail || trail.uid !== uid)) showTrail(uid, trail ? trail.on : true);
  if (!uid) clearTrail();
}
function clearTrail() {
  trailLayer.clearLayers();
  if (trail) trail.line = null;
}
async function showTrail(uid, on = true) {
  clearTrail();
  trail = { uid, line: null, on };
  if (!on) return;
  try {
    const res = await fetch(`/api/v1/entities/${encodeURIComponent(uid)}/track?limit=2000`);
    if (!res.ok) return;
    const fc = await res.json();
    if (!trail || trail.uid !== uid || !trail.on) return;
    const pts = fc.features.map((f) => [f.geometry.coordinates[1], f.geometry.coordinates[0]]);
    const colour = getComputedStyle(document.documentElement).getPropertyValue('--trail').trim();
    trail.line = L.polyline(pts, { color: colour, weight: 2.5, opacity: 0.9, interactive: false, renderer: trailRenderer }).addTo(trailLayer);
  } catch (err) {
    console.warn('track', err);
  }
}
function onSelectedUpdate(v) {
  if (trail && trail.uid === v.uid && trail.line) trail.line.addLatLng([v.props.lat, v.props.lon]);
  panels.detailsChanged(v);
}
function toggleTrail() {
  if (!state.selected) return;
  const on = !(trail && trail.on);
  showTrail(state.selected, on);
}

// ---- history playback ----------------------------------------------------------------------

function playbackEntity(uid) {
  const p = state.playback?.tracks.get(uid);
  return p ? positionAt(p, state.playback.t) : null;
}
function positionAt(track, t) {
  const pts = track.points; // [t_ms, lat, lon, course], oldest first
  let lo = 0, hi = pts.length - 1;
  if (!pts.length || pts[0][0] > t) return null;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (pts[mid][0] <= t) lo = mid; else hi = mid - 1;
  }
  const [pt, lat, lon, course] = pts[lo];
  const [nx, ny] = mercator(lat, lon);
  const live = entities.get(track.uid);
  const props = { ...(live?.props ?? {}), uid: track.uid, type: track.type, sidc: track.sidc, callsign: track.callsign,
    lat, lon, course, time: new Date(pt).toISOString() };
  return { uid: track.uid, nx, ny, sidc: track.sidc, stale: false, course, callsign: track.callsign || track.uid,
    aff: affiliation(track.sidc), dom: domain(track.type), props };
}
function* playbackItems(t) {
  for (const track of state.playback.tracks.values()) {
    const e = positionAt(track, t);
    if (e && matches(e)) yield e;
  }
}
function startPlayback(data, from, to) {
  const tracks = new Map();
  for (const tr of data.entities) tracks.set(tr.uid, tr);
  state.playback = { tracks, from, to, t: to };
  $('playback-banner').hidden = false;
  setPlaybackTime(to);
}
function setPlaybackTime(t) {
  if (!state.playback) return;
  state.playback.t = t;
  $('playback-clock').textContent = new Date(t).toISOString().replace('T', ' ').slice(0, 19) + 'Z';
  scheduleDraw(true);
}
function stopPlayback() {
  state.playback = null;
  $('playback-banner').hidden = true;
  panels.playbackStopped();
  scheduleDraw(true);
}
$('playback-exit').addEventListener('click', stopPlayback);

// ---- header, theme, keyboard ---------------------------------------------------------------

function updateCounts() {
  let stale = 0;
  for (const e of entities.values()) if (e.stale) stale++;
  $('counts').textContent = `${entities.size.toLocaleString()} entities · ${stale.toLocaleString()} stale · ` +
    `${layer.drawnSymbols} symbols, ${layer.drawnClusters} clusters`;
}

let basemap = null;
function setTheme(theme) {
  document.documentElement.dataset.theme = theme;
  $('theme').textContent = theme === 'night' ? 'Day' : 'Night';
  $('theme').setAttribute('aria-pressed', String(theme === 'night'));
  try { localStorage.setItem('rampart-theme', theme); } catch { /* private mode */ }
  basemap?.restyle();
  if (trail?.line) trail.line.setStyle({ color: getComputedStyle(document.documentElement).getPropertyValue('--trail').trim() });
  scheduleDraw(true);
}
$('theme').addEventListener('click', () => setTheme(document.documentElement.dataset.theme === 'night' ? 'day' : 'night'));
let savedTheme = null;
try { savedTheme = localStorage.getItem('rampart-theme'); } catch { /* private mode */ }
setTheme(savedTheme || (matchMedia('(prefers-color-scheme: dark)').matches ? 'night' : 'day'));
$('help-btn').addEventListener('click', () => $('help').showModal());

const search = $('search');
search.addEventListener('input', () => {
  state.filters.q = search.value.trim();
  scheduleDraw(true);
  panels.entitiesChanged(true);
});

document.addEventListener('keydown', (ev) => {
  const typing = ev.target.closest?.('input, select, textarea') && ev.key !== 'Escape';
  if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  switch (ev.key) {
    case '/': ev.preventDefault(); search.focus(); search.select(); break;
    case 'Escape':
      if (ev.target === search && search.value) { search.value = ''; search.dispatchEvent(new Event('input')); }
      else select(null);
      break;
    case 't': setTheme(document.documentElement.dataset.theme === 'night' ? 'day' : 'night'); break;
    case 'm': map.getContainer().focus(); break;
    case 'f': if (state.selected) select(state.selected, { pan: true }); break;
    case 'r': toggleTrail(); break;
    case 'l': if (state.playback) stopPlayback(); break;
    case 'j': panels.step(1); break;
    case 'k': panels.step(-1); break;
    case '?': $('help').showModal(); break;
    default:
      if (/^[1-7]$/.test(ev.key)) panels.showTab(Number(ev.key) - 1);
      else return;
  }
  ev.preventDefault();
});

// ---- panels --------------------------------------------------------------------------------

const panels = initPanels({
  entities, state, map, matches, select, symbolUrl, toggleTrail,
  trailOn: () => !!(trail && trail.on),
  refilter() { scheduleDraw(true); resubscribe(); },
  startPlayback, setPlaybackTime, stopPlayback, playbackEntity,
  viewBbox() {
    const b = map.getBounds();
    return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
  },
});

// ---- boot ----------------------------------------------------------------------------------

(async () => {
  await ensureLogin();
  const config = await fetch('/api/v1/console/config').then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
  panels.configure(config);
  const urls = JSON.parse(document.body.dataset.basemap);
  basemap = await addBasemap(map, urls, config);
  stream.start();
})().catch((e) => console.error('console failed to start:', e));

// Hooks for the end-to-end tests and the frame-rate benchmark (read-only views of the state).
window.rampart = {
  map, layer, entities, state, stream,
  count: () => entities.size,
  drawn: () => ({ symbols: layer.drawnSymbols, clusters: layer.drawnClusters, ms: layer.lastDrawMs }),
  /** The container point where `uid` was last drawn as a symbol, or null. */
  pointOf(uid) {
    const h = layer.hits.find((x) => x.uid === uid);
    if (!h) return null;
    const r = map.getContainer().getBoundingClientRect();
    return { x: h.x + r.left, y: h.y + r.top };
  },
  symbolUids: () => layer.hits.filter((h) => h.uid).map((h) => h.uid),
  /** The base layers offered, and switching between them (null until the basemap loaded). */
  baseLayers: () => basemap?.layers?.() ?? null,
  showBaseLayer: (name) => basemap.show(name),
  select,
  redrawNow: () => layer.redraw(),
};
