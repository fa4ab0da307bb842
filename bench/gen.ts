/**
 * bench/gen.ts — a deterministic generator of ad events: the same seed gives the same events on every machine.
 * Shape (issue 6): ~100k images with zipf-like skew, 50 locations, 3 genders, 3 devices, 5% clicks with a cost,
 * unique event ids, spread evenly over `spanMs` ending at `end`.
 */
export interface GenOptions {
  count: number;
  end: number;
  spanMs: number;
  images?: number;
  seed?: number;
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

export function* generate(o: GenOptions): Generator<AdEvent> {
  const rnd = rng(o.seed ?? 42);
  const images = o.images ?? 100_000;
  const start = o.end - o.spanMs;
  for (let i = 0; i < o.count; i++) {
    const click = rnd() < 0.05;
    // Zipf-like: image k drawn with weight ~ 1/k (inverse CDF of a log-uniform).
    const img = Math.min(images - 1, Math.floor(Math.exp(rnd() * Math.log(images))) - 1);
    const e: AdEvent = {
      ts: start + Math.floor((i / o.count) * o.spanMs),
      event_id: `ev-${i}`,
      event: click ? 'click' : 'impression',
      image_id: `img${img}`,
      location: LOCATIONS[Math.floor(rnd() * LOCATIONS.length)]!,
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
