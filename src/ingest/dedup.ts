/**
 * ingest/dedup.ts — bounded memory of recently accepted event ids, for idempotent retries.
 *
 * Invariant: while a key's event time is within `windowMs` of the watermark (the newest accepted event time) and
 * the key count stays under the capacity limit, `has(key)` is true exactly for keys that were `add`ed and not
 * `remove`d (up to 64-bit hash collisions, see below). Outside that, keys are forgotten and a retry is accepted
 * again; docs/ingest.md says so.
 *
 * Algorithm: keys are hashed to 64 bits and kept in one open-addressing table (linear probing) whose slots hold
 * (hi, lo, sub-window), the sub-window being the event time divided by `windowMs / SUBWINDOWS`. Forgetting is
 * raising the oldest live sub-window (`floorSub`): older slots become dead at once, at no cost per key, and are
 * dropped when the table is next rebuilt. A lookup is one probe sequence, whatever the window. Buckets follow
 * *event* time, not wall time, so replaying the same events (WAL recovery) rebuilds the same state.
 *
 * Memory: 12 bytes a slot at a load factor of 3/8..3/4 (live and dead slots), i.e. 16–32 bytes per remembered
 * key. With 64-bit hashes the chance that any two of n keys in the window collide (and a distinct event is wrongly
 * taken for a retry) is about n²/2^65: 1 in 28,000 for 36M keys (10k/s for an hour).
 */

const SUBWINDOWS = 8;
const EMPTY = -0x80000000;
const TOMB = -0x7fffffff;
const MAX_LOAD = 0.75;

/** A 64-bit string hash (two mixed 32-bit lanes, after cyrb53), written as (hi, lo) at out[2i], out[2i+1]. */
export function hashKeyInto(key: string, out: Uint32Array, i: number): void {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < key.length; i++) {
    const ch = key.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  out[2 * i] = h1 >>> 0;
  out[2 * i + 1] = h2 >>> 0;
}

export interface DedupStats {
  keys: number;
  bytes: number;
  /** Sub-windows dropped early because the key count reached its limit. */
  evictedEarly: number;
  /** Event-time span currently remembered, in ms (shorter than the window after early eviction). */
  effectiveWindowMs: number;
}

export class DedupIndex {
  private readonly subMs: number;
  /** Sub-windows are stored relative to this, as Int32 (±2^31 sub-windows is centuries for a 1-minute window). */
  private base = NaN;
  private hi: Uint32Array;
  private lo: Uint32Array;
  private sub: Int32Array;
  private mask: number;
  /** Slots not EMPTY: live, dead (expired) and tombstones. */
  private used = 0;
  /** Live keys per relative sub-window. */
  private readonly perSub = new Map<number, number>();
  private live = 0;
  private floorSub = -0x7ffffffe;
  private watermark = -Infinity;
  private evictedEarly = 0;

  constructor(private readonly windowMs: number, private readonly maxKeys: number, capacity = 1024) {
    this.subMs = Math.max(1, Math.ceil(windowMs / SUBWINDOWS));
    this.hi = new Uint32Array(capacity);
    this.lo = new Uint32Array(capacity);
    this.sub = new Int32Array(capacity).fill(EMPTY);
    this.mask = capacity - 1;
  }

  private subOf(ts: number): number {
    const s = Math.floor(ts / this.subMs);
    if (Number.isNaN(this.base)) this.base = s;
    return Math.max(-0x7ffffffe, Math.min(0x7fffffff, s - this.base));
  }

  /** The slot holding live key (hi, lo), or -1. */
  private find(hi: number, lo: number): number {
    const floor = this.floorSub;
    for (let i = (hi ^ lo) & this.mask; ; i = (i + 1) & this.mask) {
      const s = this.sub[i]!;
      if (s === EMPTY) return -1;
      if (s >= floor && this.hi[i] === hi && this.lo[i] === lo) return i;
    }
  }

  /** True when the key hash (hi, lo) was added, not removed, and is still remembered. */
  has(hi: number, lo: number): boolean {
    return this.find(hi, lo) >= 0;
  }

  /** Whether an event at `ts` would be remembered at all (its sub-window is not yet forgotten). */
  remembers(ts: number): boolean {
    return ts >= this.watermark - this.windowMs && this.subOf(ts) >= this.floorSub;
  }

  /** Remember the key hash (hi, lo) of an accepted event at `ts`; returns false when it is not remembered. */
  add(hi: number, lo: number, ts: number): boolean {
    if (!this.remembers(ts)) return false;
    if (this.find(hi, lo) >= 0) return true;
    if ((this.used + 1) > (this.mask + 1) * MAX_LOAD) this.rebuild();
    const s = this.subOf(ts);
    let i = (hi ^ lo) & this.mask;
    while (this.sub[i] !== EMPTY) i = (i + 1) & this.mask;
    this.hi[i] = hi;
    this.lo[i] = lo;
    this.sub[i] = s;
    this.used++;
    this.live++;
    this.perSub.set(s, (this.perSub.get(s) ?? 0) + 1);
    if (this.live > this.maxKeys) this.evictOldest();
    return true;
  }

  /** Forget a key added by a batch that was not committed. */
  remove(hi: number, lo: number): void {
    const i = this.find(hi, lo);
    if (i < 0) return;
    const s = this.sub[i]!;
    this.sub[i] = TOMB;
    this.live--;
    const n = this.perSub.get(s)! - 1;
    if (n === 0) this.perSub.delete(s);
    else this.perSub.set(s, n);
  }

  /** Move the watermark forward and forget sub-windows that lie wholly behind `watermark - window`. */
  advance(watermark: number): void {
    if (watermark <= this.watermark) return;
    this.watermark = watermark;
    const horizon = watermark - this.windowMs;
    if (Number.isNaN(this.base)) return;
    this.raiseFloor(Math.floor(horizon / this.subMs) - this.base);
  }

  private raiseFloor(floor: number): void {
    if (floor <= this.floorSub) return;
    for (const [s, n] of this.perSub) {
      if (s < floor) {
        this.perSub.delete(s);
        this.live -= n;
      }
    }
    this.floorSub = floor;
  }

  private evictOldest(): void {
    while (this.live > this.maxKeys && this.perSub.size > 1) {
      this.raiseFloor(Math.min(...this.perSub.keys()) + 1);
      this.evictedEarly++;
    }
  }

  /** Re-insert live slots into a table sized for them: drops dead slots and tombstones, grows when needed. */
  private rebuild(): void {
    const capacity = this.live * 2 > (this.mask + 1) * MAX_LOAD ? (this.mask + 1) * 2 : this.mask + 1;
    const { hi, lo, sub } = this;
    this.hi = new Uint32Array(capacity);
    this.lo = new Uint32Array(capacity);
    this.sub = new Int32Array(capacity).fill(EMPTY);
    this.mask = capacity - 1;
    this.used = 0;
    for (let j = 0; j < sub.length; j++) {
      const s = sub[j]!;
      if (s === EMPTY || s === TOMB || s < this.floorSub) continue;
      let i = (hi[j]! ^ lo[j]!) & this.mask;
      while (this.sub[i] !== EMPTY) i = (i + 1) & this.mask;
      this.hi[i] = hi[j]!;
      this.lo[i] = lo[j]!;
      this.sub[i] = s;
      this.used++;
    }
  }

  stats(): DedupStats {
    let oldest = Infinity;
    for (const s of this.perSub.keys()) oldest = Math.min(oldest, s);
    const effectiveWindowMs = oldest === Infinity || this.watermark === -Infinity
      ? this.windowMs
      : Math.min(this.windowMs, Math.max(0, this.watermark - (oldest + this.base) * this.subMs));
    return { keys: this.live, bytes: this.sub.length * 12, evictedEarly: this.evictedEarly, effectiveWindowMs };
  }
}
