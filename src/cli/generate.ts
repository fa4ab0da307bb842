/**
 * cli/generate.ts — a deterministic generator of ad events, for `tallydb bench ingest` and bench/: the same seed
 * gives the same events on every machine. Default shape: ~100k images with zipf skew (s = 1), 50 locations,
 * 3 genders, 3 devices, 5% clicks with a cost, unique event ids, spread evenly over `spanMs` ending at `end`.
 */
export interface GenOptions {
  count: number;
  end: number;
  spanMs: number;
  images?: number;
  /** Zipf exponent of image popularity; default 1. */
  zipf?: number;
  locations?: number;
  seed?: number;
  /** Prefix of event ids, so that runs against one datasource do not collide. */
  idPrefix?: string;
}

export interface AdEvent {
  ts: number;
  event_id: string;
  event: 'click' | 'impression';
  image_id: string;
  location: string;
  gender: string;
  device: string;
  cost?: number;
}

export const LOCATIONS = ['bangalore', ...Array.from({ length: 49 }, (_, i) => `city${i + 1}`)];
export const GENDERS = ['male', 'female', 'other'];
export const DEVICES = ['android', 'ios', 'web'];

/** mulberry32: small, fast, and good enough for benchmark data. */
export function rng(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Cumulative weights of ranks 1..n under zipf(s), for sampling by binary search. */
function zipfCdf(n: number, s: number): Float64Array {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 1; k <= n; k++) cdf[k - 1] = sum += 1 / Math.pow(k, s);
  for (let k = 0; k < n; k++) cdf[k] = cdf[k]! / sum;
  return cdf;
}

function sample(cdf: Float64Array, u: number): number {
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cdf[mid]! < u) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function* generate(o: GenOptions): Generator<AdEvent> {
  const rnd = rng(o.seed ?? 42);
  const cdf = zipfCdf(o.images ?? 100_000, o.zipf ?? 1);
  const locations = LOCATIONS.slice(0, Math.max(1, Math.min(LOCATIONS.length, o.locations ?? LOCATIONS.length)));
  const prefix = o.idPrefix ?? 'ev-';
  const start = o.end - o.spanMs;
  for (let i = 0; i < o.count; i++) {
    const click = rnd() < 0.05;
    const e: AdEvent = {
      ts: start + Math.floor((i / o.count) * o.spanMs),
      event_id: `${prefix}${i}`,
      event: click ? 'click' : 'impression',
      image_id: `img${sample(cdf, rnd())}`,
      location: locations[Math.floor(rnd() * locations.length)]!,
      gender: GENDERS[Math.floor(rnd() * 3)]!,
      device: DEVICES[Math.floor(rnd() * 3)]!,
    };
    if (click) e.cost = Math.round(rnd() * 100) / 100;
    yield e;
  }
}

export function batches(o: GenOptions, size: number): AdEvent[][] {
  const out: AdEvent[][] = [];
  let cur: AdEvent[] = [];
  for (const e of generate(o)) {
    cur.push(e);
    if (cur.length === size) {
      out.push(cur);
      cur = [];
    }
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

export const AD_DATASOURCE = {
  name: 'events',
  dimensions: ['event', 'image_id', 'location', 'gender', 'device'],
  metrics: [{ name: 'cost', type: 'float' as const }],
  dedupKey: 'event_id',
};
