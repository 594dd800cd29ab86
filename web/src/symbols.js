// MIL-STD-2525 symbols from SIDCs (milsymbol), cached per SIDC + state so 50,000 entities cost a
// few hundred renders, plus the classification helpers the filters and clusters use.
import ms from 'milsymbol';

const cache = new Map();
const MAX_CACHE = 4096; // distinct SIDC × state combinations kept; oldest dropped beyond that

/** A cached canvas for `sidc` in `state` ('live' | 'stale'), with its anchor. */
export function symbol(sidc, state, size = 18) {
  const key = `${sidc}|${state}|${size}`;
  let s = cache.get(key);
  if (s) return s;
  const opts = { size, standard: '2525' };
  if (state === 'stale') {
    opts.monoColor = '#8c8c8c';
    opts.fillOpacity = 0.5;
  }
  let sym = new ms.Symbol(sidc || 'SUZP-----------', opts);
  if (!sym.isValid()) sym = new ms.Symbol('SUZP-----------', opts);
  const canvas = sym.asCanvas(window.devicePixelRatio || 1);
  const anchor = sym.getAnchor();
  const size2 = sym.getSize();
  s = { canvas, ax: anchor.x, ay: anchor.y, w: size2.width, h: size2.height, url: null };
  if (cache.size >= MAX_CACHE) cache.delete(cache.keys().next().value);
  cache.set(key, s);
  return s;
}

/** A data: URL of the symbol (for list rows). */
export function symbolUrl(sidc, state) {
  const s = symbol(sidc, state);
  if (!s.url) s.url = s.canvas.toDataURL();
  return s.url;
}

/** friend | hostile | neutral | unknown, from the SIDC's standard identity. */
export function affiliation(sidc) {
  switch ((sidc || '')[1]) {
    case 'F': case 'A': case 'D': case 'M': return 'friend';
    case 'H': case 'S': case 'J': case 'K': return 'hostile';
    case 'N': case 'L': return 'neutral';
    default: return 'unknown';
  }
}

/** Domain letter from the CoT type (`a-f-G-…` → `G`), `-` when it has none. */
export function domain(cotType) {
  const parts = (cotType || '').split('-');
  return parts[0] === 'a' && parts[2] ? parts[2] : '-';
}

export const AFF_COLOUR = { friend: '#80e0ff', hostile: '#ff8080', neutral: '#aaffaa', unknown: '#ffff80' };
