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
 * Layout: one Int32Array, three words a slot (hi, lo, sub-window), so a probe touches one cache line, not three
 * arrays' (a lookup in a table of millions of keys is a cache miss; ingest does one per event).
 *
 * Ingest decides a chunk of rows at a time (`addChunk`): in the steady state a C++ kernel (`dedupChunk`) probes and
 * stores the chunk's keys with each row's home slot prefetched ahead of its probe, under the same invariants.
 *
 * Rebuilding is incremental: when the table fills, a fresh one takes every insert, and the old one drains into it,
 * MIGRATE_PER_INSERT slots for each key added, so no insert pauses ingest (and the queries behind it) for a pass
 * over millions of slots. While it drains, a key lives in exactly one of the two tables: lookups probe the new one,
 * then the old; an insert goes to the new one only after both probes missed; migration moves a live slot over and
 * leaves a tombstone behind (the old table's probe sequences must still run through it).
 *
 * The next table is written before it is used: from PREPARE_LOAD on, each insert writes one word in each of a few
 * pages of the table the coming rebuild will need, so every page is faulted in by the switch at MAX_LOAD. A fresh
 * table is zeroed memory that the kernel maps on first touch — twice for a page read before it is written (the
 * prefetch, then the insert), ~2.7 µs a page on this machine — and a drain's first inserts land on fresh pages
 * nearly every time: 1,024-row chunks of ingest took 10–20 ms there (2,000 faults each) before this preparation.
 *
 * A drained table of the current size is kept and becomes the next one if that size is still the one needed:
 * preparing it then clears its pages (mapped already) instead of faulting in fresh ones, and no rebuild allocates.
 *
 * Memory: 12 bytes a slot at a load factor of 3/8..3/4 (live and dead slots), i.e. 16–32 bytes per remembered
 * key, and a second table besides: the next one from PREPARE_LOAD until the drain into it ends, and (when the table
 * did not grow) the drained one from then until PREPARE_LOAD. With 64-bit hashes the chance that any two of n keys
 * in the window collide (and a distinct event is wrongly taken for a retry) is about n²/2^65: 1 in 28,000 for 36M
 * keys (10k/s for an hour).
 */

import { kernels, typescriptKernels } from '../native/index.js';

/** `addChunk`'s out-parameter of `kernels.dedupChunk`. */
const chunkOut = new Float64Array(3);

/** Slots from which `moveLive` calls the addon's `dedupMove` rather than its TypeScript twin (see there). */
const KERNEL_MOVE_MIN = 256;

/** Chunks `addChunk` decided by the kernel and row by row (tests check that both are exercised). */
export const addChunkPaths = { kernel: 0, rows: 0 };

const SUBWINDOWS = 8;
/**
 * The sub-window word of a slot: EMPTY (0, so a new table needs no fill: zeroed memory is empty), TOMB, or a live
 * key's sub-window relative to `base`, stored plus SUB_BIAS (relative sub-windows are clamped to ±2^30: ~250 years
 * at a one-minute window), so that every stored sub-window is ≥ 2 and comparisons keep their order.
 */
const EMPTY = 0;
const TOMB = 1;
const SUB_BIAS = 0x40000002;
const SUB_MIN = 2;
const SUB_MAX = 0x7ffffffe;
const MAX_LOAD = 0.75;
/** Load at which the table of the coming rebuild is allocated and its pages written, ahead of the switch at MAX_LOAD. */
const PREPARE_LOAD = 0.7;
/** Int32 words in a 4 KiB page: preparing a table writes one word in each of its pages. */
const PAGE_WORDS = 1024;
/**
 * Old-table slots moved into the new table per insert while a rebuild drains. A drain then lasts capacity/32
 * inserts, while the new table fills from at most 3/8 (live keys) to at most 3/8 + 1/32 of it: it does not fill up
 * before the old one is empty (if it did — a test's slower drain — the next rebuild moves both tables' live slots
 * into a new one at once).
 */
const MIGRATE_PER_INSERT = 32;

/** The final mix of both lanes of `hashKeyInto` / `hashAsciiInto`, written as (hi, lo) at out[2i], out[2i+1]. */
function finishHash(h1: number, h2: number, out: Uint32Array, i: number): void {
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  out[2 * i] = h1 >>> 0;
  out[2 * i + 1] = h2 >>> 0;
}

/**
 * A 64-bit string hash (two mixed 32-bit lanes, after cyrb53), written as (hi, lo) at out[2i], out[2i+1]. Returns
 * the bitwise OR of the string's UTF-16 code units: below 0xd800 it proves that no unit is a surrogate, so the
 * string is well-formed without a pass of its own (ingest/columns.ts).
 */
export function hashKeyInto(key: string, out: Uint32Array, i: number): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  let units = 0;
  for (let i = 0; i < key.length; i++) {
    const ch = key.charCodeAt(i);
    units |= ch;
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  finishHash(h1, h2, out, i);
  return units;
}

/** Code units at or above this may be surrogates (see `hashKeyInto`'s result). */
export const FIRST_SURROGATE = 0xd800;

/** A table of empty slots (zeroed memory: see EMPTY). */
function newSlots(capacity: number): Int32Array {
  return new Int32Array(3 * capacity);
}

/** `hashKeyInto` of the ASCII string in `bytes[off, off + len)` (every byte < 0x80), without making the string. */
export function hashAsciiInto(bytes: Uint8Array, off: number, len: number, out: Uint32Array, i: number): void {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let j = 0; j < len; j++) {
    const ch = bytes[off + j]!;
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  finishHash(h1, h2, out, i);
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
  /** Sub-windows are stored relative to this (see SUB_BIAS). */
  private base = NaN;
  /** Slot i is slots[3i] = hi, slots[3i+1] = lo (both as int32), slots[3i+2] = sub-window, EMPTY or TOMB. */
  private slots: Int32Array;
  private mask: number;
  /** Slots not EMPTY in `slots`: live, dead (expired) and tombstones. */
  private used = 0;
  /** The table being drained into `slots` by an incremental rebuild, or null; its slots below `drainAt` are moved. */
  private old: Int32Array | null = null;
  private oldMask = 0;
  private drainAt = 0;
  /**
   * The table the coming rebuild will switch to, allocated at PREPARE_LOAD, or null; pages below `nextPages` (of
   * `nextPageCount`) are written. Used at the switch if its capacity is still the one the switch needs.
   */
  private next: Int32Array | null = null;
  private nextPages = 0;
  private nextPageCount = 0;
  private nextPagesPerInsert = 0;
  private nextPageCredit = 0;
  /** Whether `next` is a used table taken back (`spare`), whose pages must be cleared, not only touched. */
  private nextReused = false;
  /** The table the last drain emptied, kept to become the next `next` if the capacity needed is still its own. */
  private spare: Int32Array | null = null;
  /** Rebuilds so far, and how many of them switched to a prepared table (tests and diagnostics read them). */
  private rebuilds = 0;
  private preparedRebuilds = 0;
  private reusedRebuilds = 0;
  /** Live keys per relative sub-window, but for the pending run (`runCount` keys in `runSub`; see `insert`). */
  private readonly perSub = new Map<number, number>();
  private runSub = NaN;
  private runCount = 0;
  private live = 0;
  private floorSub = SUB_MIN;
  private watermark = -Infinity;
  private evictedEarly = 0;
  /** Rows `addChunk` found present in its last call (listed in its `duplicates`). */
  chunkDuplicates = 0;
  /** The sum of the slot words `prefetch` read last (kept so its loads have an observable effect). */
  private prefetched = 0;

  /** `migratePerInsert`: tests slow the drain of a rebuild down (to 1) so that every path meets a half-drained table. */
  constructor(private readonly windowMs: number, private readonly maxKeys: number, capacity = 1024, private readonly migratePerInsert = MIGRATE_PER_INSERT) {
    this.subMs = Math.max(1, Math.ceil(windowMs / SUBWINDOWS));
    this.slots = newSlots(capacity);
    this.mask = capacity - 1;
  }

  private subOf(ts: number): number {
    const s = Math.floor(ts / this.subMs);
    if (Number.isNaN(this.base)) this.base = s;
    return this.stored(s - this.base);
  }

  /** A sub-window relative to `base` as slots store it. */
  private stored(relative: number): number {
    return Math.max(SUB_MIN, Math.min(SUB_MAX, relative + SUB_BIAS));
  }

  /**
   * The slot holding live key (hi, lo) — i for slot i of `slots`, capacity + j for slot j of the table being
   * drained — or −1 − (the empty slot of `slots` that ends the key's probe sequence there).
   */
  private find(hi: number, lo: number): number {
    const floor = this.floorSub;
    const slots = this.slots;
    const h = hi | 0;
    const l = lo | 0;
    for (let i = (hi ^ lo) & this.mask; ; i = (i + 1) & this.mask) {
      const s = slots[3 * i + 2]!;
      if (s === EMPTY) {
        if (this.old === null) return -1 - i;
        const j = this.findOld(h, l);
        return j < 0 ? -1 - i : this.mask + 1 + j;
      }
      // The key words first: they almost never match, so this branch predicts well, where "live?" (s >= floor)
      // would not; one misprediction a lookup (the loop's exit) is left.
      if (slots[3 * i] === h && slots[3 * i + 1] === l && s >= floor) return i;
    }
  }

  /** The slot of the draining table holding live key (hi, lo), or −1. */
  private findOld(h: number, l: number): number {
    const old = this.old!;
    const floor = this.floorSub;
    for (let j = (h ^ l) & this.oldMask; ; j = (j + 1) & this.oldMask) {
      const s = old[3 * j + 2]!;
      if (s === EMPTY) return -1;
      if (old[3 * j] === h && old[3 * j + 1] === l && s >= floor) return j;
    }
  }

  /** True when the key hash (hi, lo) was added, not removed, and is still remembered. */
  has(hi: number, lo: number): boolean {
    return this.find(hi, lo) >= 0;
  }

  /**
   * `has` for a key that the caller may then `addAt`: ≥ 0 when present; otherwise a negative token naming where
   * the key would go, valid for `addAt` of the same key until the index next changes.
   */
  lookup(hi: number, lo: number): number {
    return this.find(hi, lo);
  }

  /**
   * Bring the home slots of the keys `hashes[2i], hashes[2i+1]` (from <= i < to) into cache, in both tables while
   * a rebuild drains. Callers run it over a chunk of a batch before deciding its rows one by one. The loads are
   * independent and nothing branches on what they read, so the CPU keeps many cache misses in flight at once; a
   * probe loop that branches on each slot it reads (EMPTY? the key?) waits for each miss in turn, since a branch
   * mispredicted on a missed load throws away the loads issued after it (measured: 60 vs 30 ns a key in a 100 MB
   * table, 40 vs 8 in a 3 MB one).
   */
  prefetch(hashes: Uint32Array, from: number, to: number): void {
    const slots = this.slots;
    const mask = this.mask;
    let sum = 0;
    for (let i = from; i < to; i++) sum = (sum + slots[3 * ((hashes[2 * i]! ^ hashes[2 * i + 1]!) & mask) + 2]!) | 0;
    const old = this.old;
    if (old !== null) {
      const oldMask = this.oldMask;
      for (let i = from; i < to; i++) sum = (sum + old[3 * ((hashes[2 * i]! ^ hashes[2 * i + 1]!) & oldMask) + 2]!) | 0;
    }
    // Kept, so that the loads have an observable effect and are not optimized away.
    this.prefetched = sum;
  }

  /**
   * `lookup` and, for a key absent, `addAt` of rows from, from+1, … of `hashes` and `ts`, in order (so a key repeated
   * in the chunk is added once), listing the rows whose key was present (duplicates) in `duplicates`, in order, and
   * their number in `chunkDuplicates`. Stops before the first row whose time would not be remembered (`remembers`),
   * which the caller decides by itself; returns the number of rows decided. The effect is exactly that of those
   * calls. While no table drains and no rebuild, early eviction or forgotten row is reachable within the chunk
   * (nearly always), the rows go to the kernel `dedupChunk` (C++, src/native/kernels.ts for its contract), which
   * prefetches each row's home slot a few rows ahead — ingest's one cache miss an event into a table of megabytes,
   * which the JavaScript probe loop waited for in turn (docs/benchmarks.md, "Fourteenth session") — and the pages of
   * the next table are written for the chunk's inserts at its end rather than at each insert.
   */
  addChunk(hashes: Uint32Array, ts: Float64Array, from: number, to: number, duplicates: Uint32Array): number {
    const n = to - from;
    let d = 0;
    this.chunkDuplicates = 0;
    if (n <= 0) return 0;
    // The chunk's inserts' share of a drain under way, moved ahead of them in one call (at most one per insert
    // would be, as `insert` does); the chunk takes the kernel's path if that ends the drain.
    if (this.old !== null) this.drain(n * this.migratePerInsert);
    // The table the chunk paid its drain ahead for (or null). A rebuild within the chunk starts a drain of another
    // table, which the inserts after it pay for one by one again: left undrained, its live keys could fill the new
    // table past its last empty slot once they moved (test/dedup.test.ts, "a rebuild in the middle of a chunk").
    const drainedAhead = this.old;
    let minTs = Infinity;
    for (let r = from; r < to; r++) if (ts[r]! < minTs) minTs = ts[r]!;
    // The kernel's path: no table draining, no rebuild (MAX_LOAD) or early eviction (maxKeys) reachable within the
    // chunk, and every row remembered — so is every row when the oldest is: sub-windows rise with time, and nothing
    // in the kernel's loop moves the floor.
    const steady = this.old === null && this.used + n <= (this.mask + 1) * MAX_LOAD && this.live + n <= this.maxKeys;
    if (!steady || this.rememberedSub(minTs) === EMPTY) {
      addChunkPaths.rows++;
      this.prefetch(hashes, from, to);
      for (let r = from; r < to; r++) {
        const hi = hashes[2 * r]!;
        const lo = hashes[2 * r + 1]!;
        const at = this.find(hi, lo);
        if (at >= 0) {
          duplicates[d++] = r;
          continue;
        }
        const s = this.rememberedSub(ts[r]!);
        if (s === EMPTY) {
          this.chunkDuplicates = d;
          return r - from;
        }
        this.insert(at, hi, lo, s, this.old !== drainedAhead);
      }
      this.chunkDuplicates = d;
      return n;
    }
    addChunkPaths.kernel++;
    let added = 0;
    for (let r = from; r < to; ) {
      // Each call stores rows of one sub-window (the rows of a chunk mostly share one).
      const decided = kernels.dedupChunk(this.slots, this.floorSub, hashes, ts, r, to, this.subMs, this.base, duplicates.subarray(d), chunkOut);
      d += chunkOut[0]!;
      const stored = chunkOut[1]!;
      if (stored > 0) {
        const sub = chunkOut[2]!;
        if (sub === this.runSub) {
          this.runCount += stored;
        } else {
          this.settle();
          this.runSub = sub;
          this.runCount = stored;
        }
        added += stored;
      }
      r += decided;
    }
    this.chunkDuplicates = d;
    this.used += added;
    this.live += added;
    if (this.next !== null) {
      if (this.nextPages < this.nextPageCount) this.prepareNext(added);
    } else if (this.used > (this.mask + 1) * PREPARE_LOAD) this.startNext();
    return n;
  }

  /** Whether an event at `ts` would be remembered at all (its sub-window is not yet forgotten). */
  remembers(ts: number): boolean {
    return this.rememberedSub(ts) !== 0;
  }

  /** The stored sub-window of an event at `ts`, or 0 (EMPTY) when it would not be remembered. */
  private rememberedSub(ts: number): number {
    if (ts < this.watermark - this.windowMs) return EMPTY;
    const s = this.subOf(ts);
    return s >= this.floorSub ? s : EMPTY;
  }

  /** Remember the key hash (hi, lo) of an accepted event at `ts`; returns false when it is not remembered. */
  add(hi: number, lo: number, ts: number): boolean {
    const s = this.rememberedSub(ts);
    if (s === EMPTY) return false;
    const at = this.find(hi, lo);
    if (at >= 0) return true;
    this.insert(at, hi, lo, s);
    return true;
  }

  /**
   * `add` of a key just found absent by `lookup` (which returned `token`), with no change to the index since: the
   * probe sequence is not walked again.
   */
  addAt(token: number, hi: number, lo: number, ts: number): boolean {
    const s = this.rememberedSub(ts);
    if (s === EMPTY) return false;
    this.insert(token, hi, lo, s);
    return true;
  }

  /** Place absent key (hi, lo) with stored sub-window `s` at the slot `token` names (see `lookup`). */
  private insert(token: number, hi: number, lo: number, s: number, drain = true): void {
    let i = -1 - token;
    if ((this.used + 1) > (this.mask + 1) * MAX_LOAD) {
      this.rebuild();
      i = this.emptySlotFor(hi, lo);
    }
    const slots = this.slots;
    slots[3 * i] = hi;
    slots[3 * i + 1] = lo;
    slots[3 * i + 2] = s;
    this.used++;
    this.live++;
    // After the key is placed (its token named a slot of the table as it was): move the next old slots over (unless
    // the caller drained this table ahead for this insert: `addChunk`), or write a few more pages of the table the
    // coming rebuild will switch to.
    if (this.old !== null) {
      if (drain) this.drain(this.migratePerInsert);
    } else if (this.next !== null) {
      if (this.nextPages < this.nextPageCount) this.prepareNext();
    } else if (this.used > (this.mask + 1) * PREPARE_LOAD) this.startNext();
    // Keys of a batch fall in one or two sub-windows: count a run of them, and fold it into the map when the
    // sub-window changes or the map is read (`settle`).
    if (s === this.runSub) {
      this.runCount++;
    } else {
      this.settle();
      this.runSub = s;
      this.runCount = 1;
    }
    if (this.live > this.maxKeys) this.evictOldest();
  }

  /** Fold the pending run of added keys into `perSub`; every reader of `perSub` calls it first. */
  private settle(): void {
    if (this.runCount === 0) return;
    this.perSub.set(this.runSub, (this.perSub.get(this.runSub) ?? 0) + this.runCount);
    this.runCount = 0;
  }

  /** Forget a key added by a batch that was not committed. */
  remove(hi: number, lo: number): void {
    const at = this.find(hi, lo);
    if (at < 0) return;
    this.settle();
    const table = at > this.mask ? this.old! : this.slots;
    const i = at > this.mask ? at - this.mask - 1 : at;
    const s = table[3 * i + 2]!;
    table[3 * i + 2] = TOMB;
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
    this.raiseFloor(this.stored(Math.floor(horizon / this.subMs) - this.base));
  }

  private raiseFloor(floor: number): void {
    if (floor <= this.floorSub) return;
    this.settle();
    for (const [s, n] of this.perSub) {
      if (s < floor) {
        this.perSub.delete(s);
        this.live -= n;
      }
    }
    this.floorSub = floor;
  }

  private evictOldest(): void {
    this.settle();
    while (this.live > this.maxKeys && this.perSub.size > 1) {
      this.raiseFloor(Math.min(...this.perSub.keys()) + 1);
      this.evictedEarly++;
    }
  }

  /** The first empty slot of `slots` on the probe sequence of (hi, lo). */
  private emptySlotFor(hi: number, lo: number): number {
    let i = (hi ^ lo) & this.mask;
    while (this.slots[3 * i + 2] !== EMPTY) i = (i + 1) & this.mask;
    return i;
  }

  /**
   * Start moving the live slots into a table sized for them (drops dead slots and tombstones, grows when needed).
   * If the table fills while the previous drain is still under way (never at MIGRATE_PER_INSERT; a test's slower
   * drain can), both tables' live slots go into a new one at once instead.
   */
  private rebuild(): void {
    const capacity = this.capacityFor(this.live);
    // The prepared table if it has the capacity needed now (keys forgotten since it was sized may have made it too
    // big: a table never shrinks, so a bigger one is not taken), else a fresh one.
    const next = this.next !== null && this.next.length === 3 * capacity ? this.next : null;
    // A table taken back must be all EMPTY before use. Its preparation clears every page by 3/4 of the inserts left
    // before this switch (`startNext`), so nothing is left here while that pace holds; this is the guard should it
    // not (stale slots would count as used and could fill the table). No test reaches it.
    if (next !== null && this.nextReused && this.nextPages < this.nextPageCount) next.fill(0, this.nextPages * PAGE_WORDS);
    this.next = null;
    this.spare = null;
    this.rebuilds++;
    if (next !== null) this.preparedRebuilds++;
    if (next !== null && this.nextReused) this.reusedRebuilds++;
    const fresh = next ?? newSlots(capacity);
    if (this.old !== null) {
      const tables = [this.slots, this.old];
      this.old = null;
      this.slots = fresh;
      this.mask = capacity - 1;
      this.used = 0;
      for (const t of tables) this.moveLive(t, 0, t.length / 3);
      return;
    }
    this.old = this.slots;
    this.oldMask = this.mask;
    this.drainAt = 0;
    this.slots = fresh;
    this.mask = capacity - 1;
    this.used = 0;
  }

  /** The capacity a table for `live` keys gets: the current one, doubled until they fill at most half MAX_LOAD. */
  private capacityFor(live: number): number {
    let capacity = this.mask + 1;
    while (live * 2 > capacity * MAX_LOAD) capacity *= 2;
    return capacity;
  }

  /**
   * Allocate the table the coming rebuild will need (sized for the keys live now) and plan to write its pages
   * over the inserts left before the switch — exactly `MAX_LOAD * capacity - used`, as only inserts raise `used`.
   */
  private startNext(): void {
    const capacity = this.capacityFor(this.live);
    // The table the last drain emptied, if it has the size: its pages are already mapped, so clearing them costs
    // a fraction of faulting in a fresh table's (and nothing new is allocated).
    const spare = this.spare !== null && this.spare.length === 3 * capacity ? this.spare : null;
    const next = spare ?? newSlots(capacity);
    this.nextReused = spare !== null;
    this.next = next;
    this.spare = null;
    this.nextPages = 0;
    this.nextPageCount = Math.ceil(next.length / PAGE_WORDS);
    // Done by three quarters of the way, at an even pace: a fraction of a page per insert, carried over.
    const inserts = Math.max(1, Math.floor((this.mask + 1) * MAX_LOAD) - this.used);
    this.nextPagesPerInsert = this.nextPageCount / (0.75 * inserts);
    this.nextPageCredit = 0;
  }

  /**
   * Write one word (a zero: the table stays empty) in each of the next unwritten pages of `next` that `inserts`
   * inserts pay for — or, for a table taken back, clear those pages whole.
   */
  private prepareNext(inserts = 1): void {
    const next = this.next!;
    this.nextPageCredit += inserts * this.nextPagesPerInsert;
    if (this.nextPageCredit < 1) return;
    const end = Math.min(this.nextPageCount, this.nextPages + Math.floor(this.nextPageCredit));
    this.nextPageCredit -= end - this.nextPages;
    if (this.nextReused) next.fill(0, this.nextPages * PAGE_WORDS, end * PAGE_WORDS);
    else for (let p = this.nextPages; p < end; p++) next[p * PAGE_WORDS] = 0;
    this.nextPages = end;
  }

  /** Rebuilds so far, how many switched to a prepared table, and how many of those were drained ones taken back. */
  rebuildCounts(): { rebuilds: number; prepared: number; reused: number } {
    return { rebuilds: this.rebuilds, prepared: this.preparedRebuilds, reused: this.reusedRebuilds };
  }

  /** Tests: `used` against the non-EMPTY slots actually in `slots` (equal unless a table was taken back unclean). */
  usedForTests(): { counted: number; actual: number } {
    let actual = 0;
    for (let i = 2; i < this.slots.length; i += 3) if (this.slots[i] !== EMPTY) actual++;
    return { counted: this.used, actual };
  }

  /**
   * Move the live slots from..to-1 of `table` (not `slots`) into `slots`, leaving tombstones behind — a tombstone,
   * not EMPTY, since the old table's probe sequences must still run through the slot. EMPTY and TOMB are below
   * every floor (SUB_MIN), so the kernel's one comparison skips them and the dead slots.
   */
  private moveLive(table: Int32Array, from: number, to: number): void {
    // A call into the addon costs about what moving a few dozen slots does: the kernel for a chunk's share of a
    // drain or a whole table, its TypeScript twin (same results) for one insert's share.
    const k = to - from >= KERNEL_MOVE_MIN ? kernels : typescriptKernels;
    this.used += k.dedupMove(table, from, to, this.floorSub, this.slots);
  }

  /** Move up to `count` slots of the draining table, in slot order, into `slots`; drop that table once empty. */
  private drain(count: number): void {
    const old = this.old!;
    const end = Math.min(old.length / 3, this.drainAt + count);
    this.moveLive(old, this.drainAt, end);
    this.drainAt = end;
    if (end === old.length / 3) {
      this.old = null;
      // Kept only if the table drained into is its size (a table that grew will not need the smaller one again).
      if (old.length === this.slots.length) this.spare = old;
    }
  }

  stats(): DedupStats {
    this.settle();
    let oldest = Infinity;
    for (const s of this.perSub.keys()) oldest = Math.min(oldest, s);
    const effectiveWindowMs = oldest === Infinity || this.watermark === -Infinity
      ? this.windowMs
      : Math.min(this.windowMs, Math.max(0, this.watermark - (oldest - SUB_BIAS + this.base) * this.subMs));
    return { keys: this.live, bytes: this.slots.byteLength + (this.old?.byteLength ?? 0) + (this.next?.byteLength ?? 0) + (this.spare?.byteLength ?? 0), evictedEarly: this.evictedEarly, effectiveWindowMs };
  }
}
