// The side panels: entity list (search + filters), details, history playback, ingest status,
// and the slots for alerts, geofences and devices, which show "not available" until the node
// offers those APIs (checked against its OpenAPI document, so nothing 404s in the console).
import L from 'leaflet';

const $ = (id) => document.getElementById(id);
const LIST_LIMIT = 300; // rows rendered in the entity list; the rest are counted
const STATUS_POLL_MS = 2000;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

function age(iso) {
  const ms = Date.now() - Date.parse(iso);
  if (!Number.isFinite(ms)) return '—';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}

function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 19);
}

export function initPanels(app) {
  const { entities, state } = app;
  const tabs = [...document.querySelectorAll('#tabs [role="tab"]')];
  let config = {};
  let api = null; // the node's OpenAPI paths

  // ---- tabs (arrow keys move between them, as WAI-ARIA tabs do) ----
  function showTab(i) {
    tabs.forEach((t, j) => {
      const on = i === j;
      t.setAttribute('aria-selected', String(on));
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute('aria-controls')).hidden = !on;
    });
    const id = tabs[i].id;
    if (id === 'tab-entities') renderList(true);
    if (id === 'tab-status') pollStatus();
    if (id === 'tab-history' && !state.playback && !periodEdited) setDefaultPeriod();
    if (id === 'tab-alerts') renderAlerts().catch((e) => console.warn(e));
    if (id === 'tab-geofences') renderGeofences().catch((e) => console.warn(e));
    if (id === 'tab-devices') renderDevices().catch((e) => console.warn(e));
  }
  tabs.forEach((t, i) => {
    t.addEventListener('click', () => showTab(i));
    t.addEventListener('keydown', (ev) => {
      const d = ev.key === 'ArrowRight' ? 1 : ev.key === 'ArrowLeft' ? -1 : 0;
      if (!d) return;
      const j = (i + d + tabs.length) % tabs.length;
      showTab(j);
      tabs[j].focus();
      ev.preventDefault();
    });
  });
  const visible = (id) => !$(id).hidden;

  // ---- entity list ----
  const f = state.filters;
  $('f-aff').addEventListener('change', (e) => { f.aff = e.target.value; app.refilter(); renderList(true); });
  $('f-dom').addEventListener('change', (e) => { f.dom = e.target.value; app.refilter(); renderList(true); });
  $('f-stale').addEventListener('change', (e) => { f.stale = e.target.checked; app.refilter(); renderList(true); });
  let typeTimer = null;
  $('f-type').addEventListener('input', (e) => {
    clearTimeout(typeTimer);
    typeTimer = setTimeout(() => { f.type = e.target.value.trim(); app.refilter(); renderList(true); }, 300);
  });
  let listTimer = null, lastList = 0, rows = [];
  function renderList(now = false) {
    if (!visible('panel-entities')) return;
    // Not while the operator drags the map: sorting a big picture would cost frames.
    if (!now && app.map.dragging?._draggable?._moving) {
      if (!listTimer) listTimer = setTimeout(() => { listTimer = null; renderList(); }, 500);
      return;
    }
    // Re-sorting a big picture costs tens of ms: refresh it less often the bigger it is.
    const every = entities.size > 10000 ? 3000 : 1000;
    if (!now && performance.now() - lastList < every) {
      if (!listTimer) listTimer = setTimeout(() => { listTimer = null; renderList(true); }, every);
      return;
    }
    lastList = performance.now();
    const match = [];
    const source = state.playback ? [...state.playback.tracks.keys()].map(app.playbackEntity).filter(Boolean) : entities.values();
    for (const e of source) if (app.matches(e)) match.push(e);
    match.sort((a, b) => (a.callsign < b.callsign ? -1 : a.callsign > b.callsign ? 1 : 0));
    const shown = match.slice(0, LIST_LIMIT);
    rows = shown.map((e) => e.uid);
    $('list-summary').textContent = match.length > LIST_LIMIT
      ? `${match.length.toLocaleString()} match; showing the first ${LIST_LIMIT} (narrow the search)`
      : `${match.length.toLocaleString()} match`;
    const focusedUid = document.activeElement?.closest?.('#list button')?.dataset.uid;
    const frag = document.createDocumentFragment();
    for (const e of shown) {
      const b = el('button', { type: 'button', 'data-uid': e.uid, 'aria-current': String(e.uid === state.selected),
        onclick: () => app.select(e.uid) },
      el('img', { src: app.symbolUrl(e.sidc, e.stale ? 'stale' : 'live'), alt: '' }),
      el('span', { class: 'cs' }, e.callsign),
      el('span', { class: 'meta' }, `${e.props.type}${e.stale ? ' · stale' : ''}`));
      frag.append(el('li', { class: e.stale ? 'stale' : '' }, b));
    }
    $('list').replaceChildren(frag);
    if (focusedUid) $('list').querySelector(`button[data-uid="${CSS.escape(focusedUid)}"]`)?.focus();
  }
  function step(d) {
    if (!rows.length) return;
    const i = rows.indexOf(state.selected);
    const j = i < 0 ? 0 : Math.max(0, Math.min(rows.length - 1, i + d));
    app.select(rows[j]);
    $('list').querySelector(`button[data-uid="${CSS.escape(rows[j])}"]`)?.focus();
  }

  // ---- details ----
  let detailsUid = null, cotShown = false;
  function showDetails(uid) {
    detailsUid = uid;
    cotShown = false;
    renderDetails();
    if (uid) showTab(1);
    renderList(true);
  }
  function kvTable(pairs) {
    return el('table', { class: 'kv' }, ...pairs.map(([k, v]) => el('tr', {}, el('th', { scope: 'row' }, k), el('td', {}, v ?? '—'))));
  }
  function provenance(pv) {
    if (pv == null) return [['provenance', null]];
    if (typeof pv !== 'object') return [['provenance', String(pv)]];
    return Object.entries(pv).map(([k, v]) => [k, v == null ? null : typeof v === 'object' ? JSON.stringify(v) : String(v)]);
  }
  function renderDetails() {
    const box = $('details');
    $('details-empty').hidden = !!detailsUid;
    if (!detailsUid) { box.replaceChildren(); return; }
    const e = entities.get(detailsUid) || app.playbackEntity(detailsUid);
    if (!e) { box.replaceChildren(el('p', { class: 'muted' }, `${detailsUid} is no longer in the picture.`)); return; }
    const p = e.props;
    const label = p.label || {};
    const attrs = Object.entries(p.attributes || {});
    const cotBox = el('div', { id: 'cot' });
    box.replaceChildren(
      el('h2', {}, el('img', { src: app.symbolUrl(e.sidc, e.stale ? 'stale' : 'live'), alt: '', style: 'height:28px;vertical-align:middle;margin-right:6px' }),
        p.callsign || p.uid, ' ', e.stale ? el('span', { class: 'badge stale' }, 'STALE') : null),
      el('p', { class: 'muted', id: 'details-age' }, `last report ${age(p.time)}`),
      kvTable([
        ['uid', p.uid], ['type', p.type], ['SIDC', p.sidc], ['affiliation', e.aff],
        ['position', `${p.lat.toFixed(6)}, ${p.lon.toFixed(6)}`], ['height (HAE)', p.hae != null ? `${p.hae} m` : null],
        ['course', p.course != null ? `${p.course.toFixed(1)}°` : null],
        ['speed', p.speed != null ? `${p.speed.toFixed(1)} m/s (${(p.speed * 1.943844).toFixed(1)} kn)` : null],
        ['ce / le', `${p.ce ?? '—'} / ${p.le ?? '—'} m`], ['how', p.how], ['time', p.time], ['start', p.start],
        ['stale at', p.stale], ['received', p.received],
      ]),
      el('h3', {}, 'Source'),
      kvTable(provenance(p.provenance)),
      el('h3', {}, 'Label'),
      kvTable([['classification', label.classification], ['releasability', (label.releasability || []).join(', ') || null]]),
      el('h3', {}, `Attributes (${attrs.length})`),
      attrs.length ? kvTable(attrs.map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)])) : el('p', { class: 'muted' }, 'none'),
      el('div', { class: 'filters', style: 'margin-top:8px' },
        el('button', { type: 'button', onclick: () => app.select(e.uid, { pan: true }) }, 'Centre (F)'),
        el('button', { type: 'button', id: 'trail-btn', 'aria-pressed': String(app.trailOn()), onclick: () => { app.toggleTrail(); setTimeout(renderDetails, 0); } },
          app.trailOn() ? 'Hide trail (R)' : 'Show trail (R)'),
        el('button', { type: 'button', id: 'cot-btn', onclick: () => showCot(e.uid, cotBox) }, 'Raw CoT')),
      cotBox,
    );
    if (cotShown) showCot(e.uid, cotBox);
  }
  async function showCot(uid, box) {
    cotShown = true;
    const res = await fetch(`/api/v1/entities?q=${encodeURIComponent(uid)}&format=cot&limit=100`);
    const text = await res.text();
    let out = text;
    try {
      const doc = new DOMParser().parseFromString(text, 'application/xml');
      const ev = [...doc.getElementsByTagName('event')].find((x) => x.getAttribute('uid') === uid);
      if (ev) out = new XMLSerializer().serializeToString(ev).replace(/></g, '>\n<');
    } catch { /* show the document as it came */ }
    box.replaceChildren(el('h3', {}, 'CoT'), el('pre', { class: 'cot', id: 'cot-xml' }, out));
  }
  let detailsTimer = null;
  function detailsChanged() {
    if (detailsTimer) return;
    detailsTimer = setTimeout(() => { detailsTimer = null; if (visible('panel-details')) renderDetails(); }, 1000);
  }
  setInterval(() => {
    const a = $('details-age');
    const e = detailsUid && (entities.get(detailsUid) || app.playbackEntity(detailsUid));
    if (a && e) a.textContent = `last report ${age(e.props.time)}`;
  }, 1000);

  // ---- history playback ----
  const slider = $('h-slider');
  let periodEdited = false; // until the operator edits the period, it follows "the last N minutes"
  for (const id of ['h-from', 'h-to']) $(id).addEventListener('input', () => { periodEdited = true; });
  let playTimer = null;
  function setDefaultPeriod() {
    const now = Date.now();
    $('h-to').value = toLocalInput(now);
    $('h-from').value = toLocalInput(now - (config.playback_default_secs || 600) * 1000);
  }
  $('h-load').addEventListener('click', async () => {
    const from = Date.parse($('h-from').value), to = Date.parse($('h-to').value);
    if (!(from < to)) { $('h-status').textContent = 'Choose a period whose start is before its end.'; return; }
    $('h-status').textContent = 'Loading…';
    const bbox = app.viewBbox().map((v) => v.toFixed(5));
    const wide = app.viewBbox()[2] - app.viewBbox()[0] >= 300;
    const q = new URLSearchParams({ from: new Date(from).toISOString(), to: new Date(to).toISOString() });
    if (!wide) q.set('bbox', bbox.join(','));
    if (f.type) q.set('type', f.type);
    try {
      const res = await fetch(`/api/v1/history?${q}`);
      const data = await res.json();
      if (!res.ok) { $('h-status').textContent = `The node refused: ${data.error || res.status}`; return; }
      const points = data.entities.reduce((n, t) => n + t.points.length, 0);
      $('h-status').textContent = `${data.entities.length} entities, ${points.toLocaleString()} positions` +
        (data.truncated ? ' (truncated by the node\u2019s limits: zoom in or shorten the period)' : '');
      slider.min = String(from); slider.max = String(to); slider.step = '1000'; slider.value = String(to);
      $('h-player').hidden = false;
      app.startPlayback(data, from, to);
      showTime();
    } catch (e) {
      $('h-status').textContent = `Could not load history: ${e}`;
    }
  });
  function showTime() { $('h-time').textContent = new Date(Number(slider.value)).toISOString().replace('T', ' ').slice(0, 19) + 'Z'; }
  slider.addEventListener('input', () => {
    if (!state.playback) return;
    app.setPlaybackTime(Number(slider.value));
    showTime();
    renderList();
  });
  function pause() { clearInterval(playTimer); playTimer = null; $('h-play').textContent = 'Play'; }
  $('h-play').addEventListener('click', () => {
    if (playTimer) { pause(); return; }
    if (!state.playback) return;
    if (Number(slider.value) >= Number(slider.max)) slider.value = slider.min;
    $('h-play').textContent = 'Pause';
    const tick = 100;
    playTimer = setInterval(() => {
      const v = Math.min(Number(slider.max), Number(slider.value) + tick * Number($('h-speed').value));
      slider.value = String(v);
      app.setPlaybackTime(v);
      showTime();
      if (v >= Number(slider.max)) pause();
    }, tick);
  });
  $('panel-history').addEventListener('keydown', (ev) => {
    if (ev.key === ' ' && ev.target.tagName !== 'BUTTON') { $('h-play').click(); ev.preventDefault(); }
  });
  function playbackStopped() { pause(); $('h-player').hidden = true; $('h-status').textContent = 'Back to live.'; }

  // ---- ingest status from /metrics ----
  let prev = null, statusTimer = null;
  function parseMetrics(text) {
    const out = [];
    for (const line of text.split('\n')) {
      if (!line || line[0] === '#') continue;
      const m = line.match(/^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/);
      if (!m) continue;
      const labels = {};
      for (const kv of (m[3] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[kv[1]] = kv[2];
      out.push({ name: m[1], labels, value: Number(m[4]) });
    }
    return out;
  }
  async function pollStatus() {
    clearTimeout(statusTimer);
    if (!visible('panel-status')) return;
    try {
      const [mtext, health] = await Promise.all([
        fetch('/metrics').then((r) => r.text()),
        fetch('/healthz').then((r) => r.json()),
      ]);
      const now = performance.now();
      const ms = parseMetrics(mtext);
      const sources = new Map();
      const src = (s) => { if (!sources.has(s)) sources.set(s, { accepted: 0, rejected: 0, reasons: {} }); return sources.get(s); };
      const gauge = {};
      for (const m of ms) {
        const s = m.labels.source;
        if (m.name === 'rampart_reports_accepted_total' && s) src(s).accepted += m.value;
        else if (m.name === 'rampart_reports_rejected_total' && s) {
          src(s).rejected += m.value;
          const r = m.labels.reason || 'other';
          src(s).reasons[r] = (src(s).reasons[r] || 0) + m.value;
        } else if (!Object.keys(m.labels).length) gauge[m.name] = m.value;
        else if (m.name === 'rampart_connections') gauge[`connections ${m.labels.kind}`] = m.value;
      }
      const rows = [...sources.entries()].sort();
      const rate = (name, v) => {
        if (!prev || !prev.values.has(name)) return '—';
        const dt = (now - prev.at) / 1000;
        return dt > 0 ? Math.max(0, (v - prev.values.get(name)) / dt).toFixed(1) : '—';
      };
      const values = new Map();
      const table = el('table', { class: 'kv', id: 'status-sources' },
        el('tr', {}, el('th', {}, 'source'), el('th', {}, 'accepted'), el('th', {}, 'per s'), el('th', {}, 'rejected'), el('th', {}, 'reasons')),
        ...rows.map(([name, s]) => {
          values.set(name, s.accepted);
          return el('tr', {}, el('td', {}, name), el('td', {}, s.accepted.toLocaleString()), el('td', {}, rate(name, s.accepted)),
            el('td', {}, s.rejected.toLocaleString()),
            el('td', {}, Object.entries(s.reasons).map(([r, n]) => `${r}: ${n}`).join(', ') || '—'));
        }));
      prev = { at: now, values };
      const pick = (k) => (gauge[k] ?? '—').toLocaleString();
      $('status').replaceChildren(
        el('p', {}, 'Node ', el('strong', {}, health.status), ` · ${Number(health.entities).toLocaleString()} live entities`),
        el('h3', {}, 'Sources'), table,
        el('h3', {}, 'Node'),
        kvTable([
          ['stale entities', pick('rampart_stale_entities')],
          ['duplicates', pick('rampart_reports_duplicate_total')],
          ['late reports', pick('rampart_reports_late_total')],
          ['history bytes', pick('rampart_store_bytes')],
          ['history segments', pick('rampart_store_segments')],
          ['stream resyncs', pick('rampart_stream_resyncs_total')],
          ['slow stream clients dropped', pick('rampart_stream_slow_disconnects_total')],
          ...Object.entries(gauge).filter(([k]) => k.startsWith('connections ')).map(([k, v]) => [k, v]),
        ]),
      );
    } catch (e) {
      $('status').replaceChildren(el('p', { class: 'muted' }, `Status unavailable: ${e}`));
    }
    statusTimer = setTimeout(pollStatus, STATUS_POLL_MS);
  }

  // ---- features other issues deliver: alerts, geofences, devices ----
  // Each is shown only when the node's OpenAPI document lists its path; a node without the
  // feature (or with it switched off: 503) gets a clear "not available" instead.
  const ALERT_POLL_MS = 5000;
  const geofenceLayer = L.layerGroup().addTo(app.map);
  let alertsTimer = null;
  async function loadApi() {
    if (api) return api;
    try {
      const doc = await fetch('/api/v1/openapi.json').then((r) => r.json());
      api = new Set(Object.keys(doc.paths || {}));
    } catch {
      api = new Set();
    }
    return api;
  }
  function notAvailable(what, path, why) {
    return el('p', { class: 'na' }, `${what}: not available on this node (${why || `it does not serve ${path}`}).`);
  }
  async function getJson(what, path) {
    const paths = await loadApi();
    if (!paths.has(path)) return { na: notAvailable(what, path) };
    const res = await fetch(path);
    let body = null;
    try { body = await res.json(); } catch { /* not JSON */ }
    if (!res.ok) return { na: notAvailable(what, path, body?.error || `HTTP ${res.status}`) };
    return { body };
  }
  function operator() {
    try { return localStorage.getItem('rampart-operator') || ''; } catch { return ''; }
  }
  let alertsGen = 0;
  async function renderAlerts() {
    clearTimeout(alertsTimer);
    // Renders overlap (the poll, a tab switch, an acknowledgement): only the latest one may
    // write the panel and schedule the next poll, so an older answer never overwrites a newer.
    const gen = ++alertsGen;
    const { na, body } = await getJson('Alerts', '/api/v1/alerts');
    if (gen !== alertsGen) return;
    if (na) { $('alerts').replaceChildren(na); $('tab-alerts').textContent = 'Alerts'; return; }
    const alerts = Array.isArray(body) ? body : [];
    const active = alerts.filter((a) => a.state !== 'cleared');
    $('tab-alerts').textContent = active.length ? `Alerts (${active.length})` : 'Alerts';
    const who = el('input', { id: 'ack-by', value: operator(), placeholder: 'your name / callsign', size: '16',
      oninput: (e) => { try { localStorage.setItem('rampart-operator', e.target.value.trim()); } catch { /* private */ } } });
    const rows = alerts.slice(0, 200).map((a) => {
      const ack = a.state === 'raised'
        ? el('button', { type: 'button', onclick: async () => {
          const by = operator();
          if (!by) { who.focus(); return; }
          const r = await fetch(`/api/v1/alerts/${a.id}/ack`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ by }) });
          if (!r.ok) console.warn('ack failed', r.status);
          renderAlerts();
        } }, 'Acknowledge')
        : null;
      const locate = a.position ? el('button', { type: 'button', onclick: () => app.map.setView([a.position[1], a.position[0]], Math.max(app.map.getZoom(), 10)) }, 'Show') : null;
      return el('li', { class: `alert ${a.state} p-${a.priority}`, 'data-alert-id': String(a.id), 'data-state': a.state },
        el('div', {}, el('strong', {}, `${a.priority}`.toUpperCase()), ` ${a.kind} · `, a.message),
        el('div', { class: 'meta' }, `${a.state}${a.acked_by ? ` by ${a.acked_by}` : ''} · raised ${age(a.raised_at)} · ${(a.entities || []).join(', ')}`),
        el('div', { class: 'filters' }, ack, locate,
          ...(a.entities || []).slice(0, 3).map((u) => el('button', { type: 'button', onclick: () => app.select(u) }, u))));
    });
    $('alerts').replaceChildren(
      el('div', { class: 'filters' }, el('label', {}, 'Acknowledge as ', who)),
      el('p', { class: 'muted' }, `${active.length} active, ${alerts.length} listed`),
      el('ol', { class: 'list alerts' }, ...rows),
    );
    clearTimeout(alertsTimer);
    if (visible('panel-alerts')) alertsTimer = setTimeout(renderAlerts, ALERT_POLL_MS);
  }
  function drawShape(shape, style) {
    const ll = (p) => [p[1], p[0]];
    switch (shape?.type) {
      case 'polygon': return L.polygon([shape.exterior.map(ll), ...(shape.holes || []).map((h) => h.map(ll))], style);
      case 'multi_polygon': return L.layerGroup(shape.polygons.map((p) => L.polygon([p.exterior.map(ll), ...(p.holes || []).map((h) => h.map(ll))], style)));
      case 'circle': return L.circle(ll(shape.center), { ...style, radius: shape.radius_m });
      case 'corridor': return L.polyline(shape.line.map(ll), { ...style, weight: 6, opacity: 0.6 });
      default: return null;
    }
  }
  // Drawing a geofence: click the corners on the map; Enter, a click on the first corner or
  // "Finish" closes the polygon; Esc cancels. New fences are POSTed, redrawn ones PUT.
  let drawing = null; // { pts: [[lat, lon]], preview, done(pts) }
  function startDrawing(done) {
    cancelDrawing();
    cancelEditing();
    const preview = L.polyline([], { color: '#ff9800', weight: 2, dashArray: '6 4', interactive: false }).addTo(geofenceLayer);
    drawing = { pts: [], preview, done };
    state.drawing = true;
    app.map.doubleClickZoom.disable();
    app.map.getContainer().style.cursor = 'crosshair';
    $('gf-status').textContent = 'Click the corners on the map; Enter or a click on the first corner finishes, Esc cancels.';
    $('gf-finish').hidden = false;
  }
  function cancelDrawing(msg = '') {
    if (!drawing) return;
    geofenceLayer.removeLayer(drawing.preview);
    drawing = null;
    state.drawing = false;
    app.map.doubleClickZoom.enable();
    app.map.getContainer().style.cursor = '';
    $('gf-status').textContent = msg;
    $('gf-finish').hidden = true;
  }
  async function finishDrawing() {
    if (!drawing) return;
    const { pts, done } = drawing;
    if (pts.length < 3) { $('gf-status').textContent = 'A geofence needs at least 3 corners.'; return; }
    cancelDrawing('Saving…');
    try {
      await done(pts);
      $('gf-status').textContent = 'Saved.';
    } catch (e) {
      $('gf-status').textContent = `Not saved: ${e.message}`;
    }
    renderGeofences();
  }
  app.map.on('click', (ev) => {
    if (!drawing) return;
    const first = drawing.pts[0];
    if (first && drawing.pts.length >= 3 && app.map.latLngToContainerPoint(first).distanceTo(ev.containerPoint) < 10) {
      finishDrawing();
      return;
    }
    drawing.pts.push([ev.latlng.lat, ev.latlng.lng]);
    drawing.preview.setLatLngs([...drawing.pts, drawing.pts[0]]);
  });
  document.addEventListener('keydown', (ev) => {
    if (!drawing) return;
    if (ev.key === 'Enter') { finishDrawing(); ev.preventDefault(); ev.stopImmediatePropagation(); }
    if (ev.key === 'Escape') { cancelDrawing('Cancelled.'); ev.preventDefault(); ev.stopImmediatePropagation(); }
  }, true);
  const ring = (pts) => [...pts.map(([lat, lon]) => [lon, lat]), [pts[0][1], pts[0][0]]];

  // Editing a polygon's corners on the map: drag a corner, or focus it (Tab) and move it with
  // the arrow keys (Shift: farther); click an edge's midpoint handle (or focus it and press
  // Enter) to add a corner there; Alt+click a corner, or press Delete/Backspace on it, to
  // remove it. Enter or "Save" stores the shape (PUT), Esc cancels.
  const NUDGE_PX = 4;
  let editing = null; // { g, path, pts: [[lat, lon]], outline, handles }
  function editStatus(extra = '') {
    $('gf-status').textContent = `Editing ${editing.g.name || editing.g.id}: ${editing.pts.length} corners. ` +
      'Drag a corner or use the arrow keys on it; a midpoint adds a corner; Alt+click or Delete removes one; Enter saves, Esc cancels.' +
      (extra ? ` ${extra}` : '');
  }
  function startEditing(g, path) {
    cancelDrawing();
    cancelEditing();
    const ext = g.shape.exterior.map(([lon, lat]) => [lat, lon]);
    const [a, b] = [ext[0], ext[ext.length - 1]];
    if (ext.length > 1 && a[0] === b[0] && a[1] === b[1]) ext.pop(); // the ring's closing point
    const outline = L.polygon(ext, { color: '#ff9800', weight: 2, dashArray: '6 4', fillOpacity: 0.12, interactive: false }).addTo(geofenceLayer);
    const handles = L.layerGroup().addTo(geofenceLayer);
    editing = { g, path, pts: ext, outline, handles };
    state.drawing = true; // map clicks do not select entities meanwhile
    app.map.doubleClickZoom.disable();
    $('gf-save').hidden = false;
    $('gf-cancel').hidden = false;
    renderHandles(0);
    editStatus();
  }
  function cancelEditing(msg) {
    if (!editing) return;
    geofenceLayer.removeLayer(editing.outline);
    geofenceLayer.removeLayer(editing.handles);
    editing = null;
    state.drawing = false;
    app.map.doubleClickZoom.enable();
    if ($('gf-save')) { $('gf-save').hidden = true; $('gf-cancel').hidden = true; }
    if (msg !== undefined) $('gf-status').textContent = msg;
  }
  function moveCorner(i, latlng) {
    editing.pts[i] = [latlng.lat, latlng.lng];
    editing.outline.setLatLngs(editing.pts);
  }
  function removeCorner(i) {
    if (editing.pts.length <= 3) { editStatus('A geofence needs at least 3 corners.'); return; }
    editing.pts.splice(i, 1);
    editing.outline.setLatLngs(editing.pts);
    renderHandles(Math.min(i, editing.pts.length - 1));
    editStatus();
  }
  function addCorner(i) { // between corner i and the next
    const p = editing.pts[i], q = editing.pts[(i + 1) % editing.pts.length];
    editing.pts.splice(i + 1, 0, [(p[0] + q[0]) / 2, (p[1] + q[1]) / 2]);
    editing.outline.setLatLngs(editing.pts);
    renderHandles(i + 1);
    editStatus();
  }
  function renderHandles(focus = null) {
    const { pts, handles } = editing;
    handles.clearLayers();
    const n = pts.length;
    pts.forEach((p, i) => {
      const m = L.marker(p, { draggable: true, keyboard: true, icon: L.divIcon({ className: 'gf-handle gf-vertex', iconSize: [14, 14] }) });
      m.on('drag', (ev) => moveCorner(i, ev.latlng));
      m.on('dragend', () => renderHandles(i));
      m.on('click', (ev) => { if (ev.originalEvent.altKey) removeCorner(i); });
      handles.addLayer(m);
      const e = m.getElement();
      e.dataset.gfVertex = String(i);
      e.setAttribute('role', 'button');
      e.setAttribute('aria-label', `Corner ${i + 1} of ${n}: arrow keys move it, Delete removes it`);
      e.addEventListener('keydown', (ev) => {
        const d = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[ev.key];
        if (d) {
          const step = NUDGE_PX * (ev.shiftKey ? 5 : 1);
          const at = app.map.latLngToContainerPoint(m.getLatLng()).add([d[0] * step, d[1] * step]);
          const ll = app.map.containerPointToLatLng(at);
          m.setLatLng(ll);
          moveCorner(i, ll);
        } else if (ev.key === 'Delete' || ev.key === 'Backspace') {
          removeCorner(i);
        } else {
          return;
        }
        ev.preventDefault();
        ev.stopPropagation(); // not the map's own arrow-key panning
      });
      if (focus === i) e.focus({ preventScroll: true });
    });
    pts.forEach((p, i) => {
      const q = pts[(i + 1) % n];
      const m = L.marker([(p[0] + q[0]) / 2, (p[1] + q[1]) / 2], { keyboard: true, icon: L.divIcon({ className: 'gf-handle gf-mid', iconSize: [10, 10] }) });
      m.on('click', () => addCorner(i));
      handles.addLayer(m);
      const e = m.getElement();
      e.dataset.gfMid = String(i);
      e.setAttribute('role', 'button');
      e.setAttribute('aria-label', `Add a corner between corners ${i + 1} and ${((i + 1) % n) + 1}`);
      e.addEventListener('keydown', (ev) => {
        if (ev.key !== 'Enter' && ev.key !== ' ') return;
        addCorner(i);
        ev.preventDefault();
        ev.stopPropagation();
      });
    });
  }
  async function saveEditing() {
    if (!editing) return;
    const { g, path, pts } = editing;
    cancelEditing('Saving…');
    try {
      await send('PUT', path, { ...g, shape: { ...g.shape, exterior: ring(pts) } });
      $('gf-status').textContent = 'Saved.';
    } catch (e) {
      $('gf-status').textContent = `Not saved: ${e.message}`;
    }
    renderGeofences();
  }
  document.addEventListener('keydown', (ev) => {
    if (!editing) return;
    const onMid = ev.target?.dataset?.gfMid !== undefined;
    if (ev.key === 'Enter' && !onMid) { saveEditing(); ev.preventDefault(); ev.stopImmediatePropagation(); }
    if (ev.key === 'Escape') { cancelEditing('Cancelled.'); ev.preventDefault(); ev.stopImmediatePropagation(); }
  }, true);
  async function send(method, path, body) {
    const r = await fetch(path, { method, headers: { 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
    if (!r.ok) {
      let msg = `HTTP ${r.status}`;
      try { msg = (await r.json()).error || msg; } catch { /* not JSON */ }
      throw new Error(msg);
    }
  }
  async function renderGeofences() {
    const { na, body } = await getJson('Geofences', '/api/v1/geofences');
    const keep = (l) => (drawing && l === drawing.preview) || (editing && (l === editing.outline || l === editing.handles));
    geofenceLayer.eachLayer((l) => { if (!keep(l)) geofenceLayer.removeLayer(l); });
    if (na) { $('geofences').replaceChildren(na); return; }
    const status = $('gf-status')?.textContent ?? '';
    const fences = Array.isArray(body) ? body : [];
    const style = { color: '#ff9800', weight: 2, fillOpacity: 0.08, interactive: false };
    const rows = fences.map((g) => {
      const layer = drawShape(g.shape, style);
      if (layer && !(editing && editing.g.id === g.id)) geofenceLayer.addLayer(layer);
      const path = `/api/v1/geofences/${encodeURIComponent(g.id)}`;
      return el('li', {},
        el('div', { class: 'gf-row' },
          el('span', { class: 'cs' }, g.name || g.id),
          el('span', { class: 'meta' }, `${g.shape?.type ?? '?'}${g.enabled === false ? ' · disabled' : ''}`)),
        el('div', { class: 'filters' },
          el('button', { type: 'button', onclick: () => { if (layer?.getBounds) app.map.fitBounds(layer.getBounds().pad(0.2)); } }, 'Show'),
          g.shape?.type === 'polygon'
            ? el('button', { type: 'button', 'data-gf-edit': g.id, onclick: () => startEditing(g, path) }, 'Edit corners')
            : null,
          el('button', { type: 'button', onclick: () => startDrawing((pts) => send('PUT', path, { ...g, shape: { type: 'polygon', exterior: ring(pts) } })) }, 'Redraw'),
          el('button', { type: 'button', onclick: async () => {
            try { await send('DELETE', path); } catch (e) { $('gf-status').textContent = `Not deleted: ${e.message}`; }
            renderGeofences();
          } }, 'Delete')));
    });
    const name = el('input', { id: 'gf-name', placeholder: 'name', size: '14' });
    const enter = el('input', { type: 'checkbox', id: 'gf-enter', checked: '' });
    const exit = el('input', { type: 'checkbox', id: 'gf-exit' });
    $('geofences').replaceChildren(
      el('div', { class: 'filters' },
        el('label', {}, 'Name ', name),
        el('label', { class: 'check' }, enter, ' enter'),
        el('label', { class: 'check' }, exit, ' exit'),
        el('button', { type: 'button', id: 'gf-draw', onclick: () => startDrawing((pts) => send('POST', '/api/v1/geofences', {
          name: name.value.trim() || `Geofence ${new Date().toISOString().slice(11, 19)}`,
          shape: { type: 'polygon', exterior: ring(pts) },
          triggers: { enter: enter.checked, exit: exit.checked },
        })) }, 'Draw new'),
        el('button', { type: 'button', id: 'gf-finish', hidden: '', onclick: finishDrawing }, 'Finish'),
        el('button', { type: 'button', id: 'gf-save', hidden: editing ? null : '', onclick: saveEditing }, 'Save corners'),
        el('button', { type: 'button', id: 'gf-cancel', hidden: editing ? null : '', onclick: () => cancelEditing('Cancelled.') }, 'Cancel')),
      // The panel is rebuilt after every change: keep what the status line last said
      // ("Saved.", "Not saved: …"), or the rebuild would wipe it before anyone reads it.
      el('p', { class: 'muted', id: 'gf-status', role: 'status' }, status),
      el('p', { class: 'muted' }, `${fences.length} geofences (orange on the map)`),
      el('ol', { class: 'list geofences' }, ...rows));
  }
  async function renderDevices() {
    const { na, body } = await getJson('Devices', '/api/v1/devices');
    if (na) { $('devices').replaceChildren(na); return; }
    const items = Array.isArray(body) ? body : body?.devices || body?.items || [];
    $('devices').replaceChildren(el('p', { class: 'muted' }, `${items.length} devices`),
      el('ol', { class: 'list' }, ...items.slice(0, 300).map((d) => el('li', {}, el('pre', { class: 'cot' }, JSON.stringify(d, null, 1))))));
  }
  async function renderSlots() {
    await Promise.all([renderAlerts(), renderGeofences(), renderDevices()].map((p) => p.catch((e) => console.warn(e))));
  }
  return {
    showTab, step, showDetails, playbackStopped,
    configure(c) {
      config = c || {};
      setDefaultPeriod();
      // Active alerts count on the tab, and geofences on the map, from the start.
      renderSlots();
    },
    entitiesChanged(now = false) { renderList(now); },
    detailsChanged,
  };
}
