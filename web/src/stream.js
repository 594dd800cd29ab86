// The live stream: one WebSocket to /api/v1/stream carrying a snapshot then deltas for the
// current subscription (viewport bbox + type prefix). After a drop it reconnects with
// exponential backoff and jitter, resubscribing with the latest filter; the server answers a
// (re)subscription with a fresh snapshot, so nothing is lost and no reload is needed.
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;

export class Stream {
  constructor({ url, onState, onMessage }) {
    this.url = url;
    this.onState = onState;
    this.onMessage = onMessage;
    this.filter = { type: 'subscribe', bbox: null, type_prefix: null };
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.started = false;
  }

  start() {
    this.started = true;
    this.connect();
  }

  /** Changes the subscription; sent now if connected, else on the next connect. */
  subscribe(filter) {
    this.filter = filter;
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(filter));
  }

  connect() {
    clearTimeout(this.timer);
    this.onState('connecting');
    const q = new URLSearchParams();
    if (this.filter.bbox) q.set('bbox', this.filter.bbox.join(','));
    if (this.filter.type_prefix) q.set('type', this.filter.type_prefix);
    const qs = q.toString();
    let ws;
    try {
      ws = new WebSocket(qs ? `${this.url}?${qs}` : this.url);
    } catch (e) {
      this.retry(String(e));
      return;
    }
    this.ws = ws;
    const sent = JSON.stringify(this.filter);
    ws.onopen = () => {
      this.attempt = 0;
      this.onState('live');
      // The filter may have changed while connecting.
      if (JSON.stringify(this.filter) !== sent) ws.send(JSON.stringify(this.filter));
    };
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        console.warn('stream: a message was not JSON');
        return;
      }
      this.onMessage(msg);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.retry(ev.code === 1006 ? 'connection lost' : `closed (${ev.code})`);
    };
    // onerror is always followed by onclose, which handles the retry.
    ws.onerror = () => {};
  }

  retry(why) {
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt) * (0.75 + Math.random() * 0.5);
    this.attempt = Math.min(this.attempt + 1, 10);
    this.onState('down', `${why}; retrying in ${Math.ceil(delay / 1000)} s`);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** Test hook: drop the connection as a network failure would. */
  drop() {
    if (this.ws) this.ws.close(4000, 'dropped by the test hook');
  }
}
