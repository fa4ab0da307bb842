/**
 * ingest/dedup.ts — bounded memory of recently accepted event ids, for idempotent retries.
 *
 * Invariant: while a key's event time is within `windowMs` of the watermark (the newest accepted event time) and
 * the key count stays under the capacity limit, `has(key)` is true exactly for keys that were `add`ed (up to 64-bit
 * hash collisions, see below). Outside that, keys are forgotten and a retry is accepted again; docs/ingest.md says so.
 *
 * Algorithm: keys are hashed to 64 bits and kept in open-addressing hash sets, one per sub-window of
 * `windowMs / SUBWINDOWS` of event time. Forgetting is dropping a whole set once its sub-window lies entirely
 * behind `watermark - windowMs`, so eviction costs nothing per key. Buckets follow *event* time, not wall time, so
 * replaying the same events (WAL recovery) rebuilds the same state. Memory: 8 bytes per slot at a load factor of
 * 1/4..1/2, i.e. 16–32 bytes per remembered key. With 64-bit hashes the chance that any two of n keys in the window
 * collide (and a distinct event is wrongly taken for a retry) is about n²/2^65: 1 in 28,000 for 36M keys (10k/s
 * for an hour).
 */

const SUBWINDOWS = 8;

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
  out[2 * i + 1] = h1 === 0 && h2 === 0 ? 1 : h2 >>> 0; // (0,0) marks an empty slot
}

/** Open-addressing set of 64-bit values stored as (hi, lo) pairs; linear probing; grows at load 1/2. */
class HashSet64 {
  private slots: Uint32Array;
  private mask: number;
  size = 0;

  constructor(capacity = 1024) {
    this.slots = new Uint32Array(capacity * 2);
    this.mask = capacity - 1;
  }

  has(hi: number, lo: number): boolean {
    const s = this.slots;
    for (let i = (hi ^ lo) & this.mask; ; i = (i + 1) & this.mask) {
      const h = s[i * 2]!;
      const l = s[i * 2 + 1]!;
      if (h === 0 && l === 0) return false;
      if (h === hi && l === lo) return true;
    }
  }

  /** Adds the value; returns false when it was present. */
  add(hi: number, lo: number): boolean {
    if ((this.size + 1) * 2 > this.mask + 1) this.grow();
    const s = this.slots;
    for (let i = (hi ^ lo) & this.mask; ; i = (i + 1) & this.mask) {
      const h = s[i * 2]!;
      const l = s[i * 2 + 1]!;
      if (h === 0 && l === 0) {
        s[i * 2] = hi;
        s[i * 2 + 1] = lo;
        this.size++;
        return true;
      }
      if (h === hi && l === lo) return false;
    }
  }

  get bytes(): number {
    return this.slots.byteLength;
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Uint32Array(old.length * 2);
    this.mask = old.length - 1; // new capacity = old.length (pairs), minus one
    this.size = 0;
    for (let i = 0; i < old.length; i += 2) {
      if (old[i] !== 0 || old[i + 1] !== 0) this.add(old[i]!, old[i + 1]!);
    }
  }
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
  /** Sub-window index → keys of events whose time falls in it. */
  private readonly sets = new Map<number, HashSet64>();
  private watermark = -Infinity;
  private evictedEarly = 0;
  private floorSub = -Infinity;
  private total = 0;

  constructor(private readonly windowMs: number, private readonly maxKeys: number) {
    this.subMs = Math.max(1, Math.ceil(windowMs / SUBWINDOWS));
  }

  /** True when the key hash (hi, lo) was added and is still remembered. */
  has(hi: number, lo: number): boolean {
    for (const set of this.sets.values()) if (set.has(hi, lo)) return true;
    return false;
  }

  /** Whether an event at `ts` would be remembered at all (its sub-window is not yet forgotten). */
  remembers(ts: number): boolean {
    return ts >= this.watermark - this.windowMs && Math.floor(ts / this.subMs) >= this.floorSub;
  }

  /** Remember the key hash (hi, lo) of an accepted event at `ts`. */
  add(hi: number, lo: number, ts: number): void {
    if (!this.remembers(ts)) return;
    const sub = Math.floor(ts / this.subMs);
    let set = this.sets.get(sub);
    if (set === undefined) {
      set = new HashSet64();
      this.sets.set(sub, set);
    }
    if (set.add(hi, lo)) this.total++;
    if (this.total > this.maxKeys) this.evictOldest();
  }

  /** Move the watermark forward and forget sub-windows that lie wholly behind `watermark - window`. */
  advance(watermark: number): void {
    if (watermark <= this.watermark) return;
    this.watermark = watermark;
    const horizon = watermark - this.windowMs;
    for (const [sub, set] of this.sets) {
      if ((sub + 1) * this.subMs <= horizon) {
        this.sets.delete(sub);
        this.total -= set.size;
      }
    }
  }

  stats(): DedupStats {
    let keys = 0;
    let bytes = 0;
    let oldest = Infinity;
    for (const [sub, set] of this.sets) {
      keys += set.size;
      bytes += set.bytes;
      oldest = Math.min(oldest, sub);
    }
    const effectiveWindowMs = oldest === Infinity || this.watermark === -Infinity
      ? this.windowMs
      : Math.min(this.windowMs, Math.max(0, this.watermark - oldest * this.subMs));
    return { keys, bytes, evictedEarly: this.evictedEarly, effectiveWindowMs };
  }

  private evictOldest(): void {
    while (this.sets.size > 1 && this.total > this.maxKeys) {
      const oldest = Math.min(...this.sets.keys());
      this.total -= this.sets.get(oldest)!.size;
      this.sets.delete(oldest);
      this.floorSub = oldest + 1;
      this.evictedEarly++;
    }
  }
}
