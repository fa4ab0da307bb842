/**
 * head/dictionary.ts — string ↔ id dictionary of one dimension in the head.
 *
 * Invariant: ids are dense and stable for the head's lifetime; id 0 is null and is never given to a string; two
 * different strings never share an id (a hash match is always confirmed, see below).
 * Growth is bounded by limits.maxDimensionCardinality, checked by the ingest pipeline before `intern`.
 *
 * Lookup is the hot step of ingest and WAL replay (once per distinct value of each batch) and, in a dictionary of
 * 100k values, a cache miss per memory access. So the table is one Int32Array of 4-word slots (id, k0, k1, k2):
 *  - a value of at most 11 characters, each below 256 (ids, cities, enum-like values), is stored in the slot itself
 *    — its length and characters packed into k0..k2 — so a lookup reads one cache line and no string;
 *  - a longer value's slot holds a marker (k0 = 0xff, never a short value's length byte) and its 64-bit hash
 *    (k1, k2); a hash match is confirmed by comparing with the stored string, and a mismatch keeps probing.
 * Open addressing with linear probing, load factor at most 1/2; tag (id) 0 marks an empty slot.
 */
import type { DictionaryView } from '../query/reader.js';
import { hashKeyInto } from '../ingest/dedup.js';
import { kernels } from '../native/index.js';

const SLOT = 4;
const LONG = 0xff;
const INITIAL_SLOTS = 64;

/** The key of the value last passed to `keyOf`, as three int32 words. */
let K0 = 0;
let K1 = 0;
let K2 = 0;
const hashOut = new Uint32Array(2);
let longHash: (value: string, out: Uint32Array, i: number) => void = hashKeyInto;

/** Tests swap the 64-bit hash of long values (e.g. for a constant, to make every pair collide); returns the previous. */
export function setLongHashForTests(fn: typeof longHash): typeof longHash {
  const previous = longHash;
  longHash = fn;
  return previous;
}

/** Set K0..K2 to the key of `value`: packed characters when short and one-byte, else a marker and a hash. */
function keyOf(value: string): void {
  const n = value.length;
  if (n <= 11) {
    let w0 = n;
    let w1 = 0;
    let w2 = 0;
    let i = 0;
    for (; i < n; i++) {
      const c = value.charCodeAt(i);
      if (c > 255) break;
      if (i < 3) w0 |= c << (8 * (i + 1));
      else if (i < 7) w1 |= c << (8 * (i - 3));
      else w2 |= c << (8 * (i - 7));
    }
    if (i === n) {
      K0 = w0;
      K1 = w1;
      K2 = w2;
      return;
    }
  }
  longHash(value, hashOut, 0);
  K0 = LONG;
  K1 = hashOut[0]! | 0;
  K2 = hashOut[1]! | 0;
}

/**
 * Per-process seed of slot positions (only positions: nothing of the table is persisted), so that values crafted to
 * share a probe sequence on one build do not on every process — as V8 seeds its own string hashes.
 */
const SEED = (Math.random() * 0x100000000) | 0;

/**
 * Set K0..K2 to the key of the ASCII string in `bytes[off, off + len)` (len ≤ 11, every byte < 0x80) without
 * making the string: the same key `keyOf` gives that string.
 */
export function keyOfAscii(bytes: Uint8Array, off: number, len: number): void {
  let w0 = len;
  let w1 = 0;
  let w2 = 0;
  for (let i = 0; i < len; i++) {
    const c = bytes[off + i]!;
    if (i < 3) w0 |= c << (8 * (i + 1));
    else if (i < 7) w1 |= c << (8 * (i - 3));
    else w2 |= c << (8 * (i - 7));
  }
  K0 = w0;
  K1 = w1;
  K2 = w2;
}

/** `StringTable.getMany`'s per-value keys and first slots (4 words a value), grown as needed. */
let manyScratch = new Int32Array(0);

/** The longest value `keyOfAscii` takes: short values are their own key. */
export const SHORT_KEY_CHARS = 11;

function slotHash(k0: number, k1: number, k2: number): number {
  let h = Math.imul(k0 ^ SEED ^ Math.imul(k1, 0x9e3779b1) ^ Math.imul(k2, 0x85ebca77), 0xc2b2ae3d);
  h ^= h >>> 15;
  return Math.imul(h, 0x27d4eb2f) ^ (h >>> 13);
}

/**
 * string → tag (a positive int32) in one flat table, as described above; the string of tag t is
 * `values[t - base]`, used to confirm a long value's hash match. The head dictionary and the batch-local
 * dictionaries of ingest (ingest/batch-dictionary.ts, reused across batches) are built on it.
 */
export class StringTable {
  private table = new Int32Array(INITIAL_SLOTS * SLOT);
  private mask = INITIAL_SLOTS - 1;
  private entries = 0;

  constructor(private values: readonly (string | null)[], private readonly base: number) {}

  /** The tag stored for `value`, or 0. */
  get(value: string): number {
    keyOf(value);
    return this.table[this.probe(value)]!;
  }

  /** The tag stored for the short value whose key `keyOfAscii` just set, or 0. */
  getShortKey(): number {
    return this.table[this.probe('')]!;
  }

  /**
   * Store `tag` (> 0) for the absent value whose key was computed last — by the `get` that just missed it, or by
   * `keyOfAscii` — without computing the key again (nothing may compute a key in between).
   */
  setLastKey(tag: number): void {
    this.insertKey(tag);
  }

  /**
   * Write the key last computed (by `get`, `set`, `keyOfAscii`) as `getMany` takes it: its three key words, at
   * out[at..at+2]. Key words depend on the value alone (not on this process's SEED), so they may cross threads.
   */
  lastKeyInto(out: Int32Array, at: number): void {
    out[at] = K0;
    out[at + 1] = K1;
    out[at + 2] = K2;
  }

  /** Store `tag` (> 0) for `value`, which must be absent. */
  set(value: string, tag: number): void {
    keyOf(value);
    this.insertKey(tag);
  }

  /**
   * Store `tag` for the absent value whose key is in K0..K2. Its probe ends at the first empty slot: a slot with
   * the same key holds a different long value (a hash collision), which an absent value never equals.
   */
  private insertKey(tag: number): void {
    const k0 = K0;
    const k1 = K1;
    const k2 = K2;
    if (2 * (this.entries + 1) > this.mask + 1) this.grow();
    const t = this.table;
    const mask = this.mask;
    let i = slotHash(k0, k1, k2) & mask;
    while (t[i * SLOT] !== 0) i = (i + 1) & mask;
    const j = i * SLOT;
    t[j] = tag;
    t[j + 1] = k0;
    t[j + 2] = k1;
    t[j + 3] = k2;
    this.entries++;
  }

  /** Forget every entry (keeping the table's size); tags now name strings of `values`. */
  reset(values: readonly (string | null)[]): void {
    this.values = values;
    const slots = this.mask + 1;
    if (slots > 4096 && this.entries * 8 < slots) {
      // The last use filled an eighth or less of a large table: shrink it rather than clear it every time.
      const smaller = Math.max(INITIAL_SLOTS, 2 ** Math.ceil(Math.log2(Math.max(1, this.entries) * 4)));
      this.table = new Int32Array(smaller * SLOT);
      this.mask = smaller - 1;
    } else if (this.entries > 0) {
      this.table.fill(0);
    }
    this.entries = 0;
  }

  get byteLength(): number {
    return this.table.byteLength;
  }

  /**
   * `get` of many values at once, into `out` (0 for an absent value and for null): every value's key and first slot
   * are computed first (the key words taken from `keys` when given: 3 a value, as `lastKeyInto` writes them), then
   * the kernel `probeSlots` (C++; src/native/kernels.ts for its contract) runs the probes with each first slot
   * prefetched a few values ahead — in a table of 100k values each is a cache miss, and this way many are in flight
   * at once — and a long value's hash match is confirmed here against its string.
   */
  getMany(values: readonly (string | null)[], out: Int32Array, keys: Int32Array | null = null): void {
    const n = values.length;
    if (manyScratch.length < 4 * n) manyScratch = new Int32Array(4 * Math.max(n, 2 * manyScratch.length / 4, 1024));
    const s = manyScratch;
    const mask = this.mask;
    for (let v = 0; v < n; v++) {
      const value = values[v];
      if (value === null || value === undefined) {
        s[4 * v] = -1;
        continue;
      }
      if (keys !== null) {
        // Key words computed when the values were met (a batch dictionary's): no pass over the characters again.
        const k0 = keys[3 * v]!;
        const k1 = keys[3 * v + 1]!;
        const k2 = keys[3 * v + 2]!;
        s[4 * v] = slotHash(k0, k1, k2) & mask;
        s[4 * v + 1] = k0;
        s[4 * v + 2] = k1;
        s[4 * v + 3] = k2;
        continue;
      }
      keyOf(value);
      s[4 * v] = slotHash(K0, K1, K2) & mask;
      s[4 * v + 1] = K0;
      s[4 * v + 2] = K1;
      s[4 * v + 3] = K2;
    }
    const t = this.table;
    // The slot each probe ends at (empty, or holding the same key words), found by the kernel.
    kernels.probeSlots(t, s, n, out);
    for (let v = 0; v < n; v++) {
      const j = out[v]!;
      if (j < 0) {
        out[v] = 0;
        continue;
      }
      const tag = t[j]!;
      if (tag !== 0 && s[4 * v + 1] === LONG && this.values[tag - this.base] !== values[v]) {
        // Another long value with the same 64-bit hash: the full probe compares the strings on past it.
        K0 = LONG;
        K1 = s[4 * v + 2]!;
        K2 = s[4 * v + 3]!;
        out[v] = t[this.probe(values[v]!)]!;
      } else {
        out[v] = tag;
      }
    }
  }

  /** The word offset of the slot holding the value whose key is in K0..K2, or of the empty slot ending its probe. */
  private probe(value: string): number {
    const t = this.table;
    const mask = this.mask;
    const k0 = K0;
    const k1 = K1;
    const k2 = K2;
    for (let i = slotHash(k0, k1, k2) & mask; ; i = (i + 1) & mask) {
      const j = i * SLOT;
      const tag = t[j]!;
      if (tag === 0) return j;
      if (t[j + 1] === k0 && t[j + 2] === k1 && t[j + 3] === k2 && (k0 !== LONG || this.values[tag - this.base] === value)) return j;
    }
  }

  /** Double the table and move every entry over (slots carry their keys, so no string is read). */
  private grow(): void {
    const old = this.table;
    const slots = (this.mask + 1) * 2;
    this.table = new Int32Array(slots * SLOT);
    this.mask = slots - 1;
    this.entries = 0;
    const k0 = K0;
    const k1 = K1;
    const k2 = K2;
    for (let j = 0; j < old.length; j += SLOT) {
      if (old[j] === 0) continue;
      K0 = old[j + 1]!;
      K1 = old[j + 2]!;
      K2 = old[j + 3]!;
      this.insertKey(old[j]!);
    }
    K0 = k0;
    K1 = k1;
    K2 = k2;
  }
}

export class Dictionary implements DictionaryView {
  private readonly values: (string | null)[] = [null];
  /** Tags are ids: id 0 (null) is never stored. */
  private readonly table = new StringTable(this.values, 0);

  get size(): number {
    return this.values.length;
  }

  value(id: number): string | null {
    return this.values[id] ?? null;
  }

  idOf(value: string | null): number | undefined {
    if (value === null) return 0;
    const id = this.table.get(value);
    return id === 0 ? undefined : id;
  }

  /**
   * `idOf` of each of `values` into `out`, −1 where absent; faster than one by one for many values (see `getMany`).
   * `keys`, when given, holds each value's key words as `StringTable.lastKeyInto` wrote them (3 a value).
   */
  idsOf(values: readonly (string | null)[], out: Int32Array, keys: Int32Array | null = null): void {
    this.table.getMany(values, out, keys);
    for (let v = 0; v < values.length; v++) if (out[v] === 0 && values[v] !== null) out[v] = -1;
  }

  /** The id of `value`, adding it when new. */
  intern(value: string | null): number {
    if (value === null) return 0;
    const found = this.table.get(value);
    if (found !== 0) return found;
    const id = this.values.length;
    this.values.push(value);
    this.table.setLastKey(id);
    return id;
  }

  /** Approximate heap bytes: the strings, the value array and the table. */
  estimateBytes(): number {
    let chars = 0;
    for (let i = 1; i < this.values.length; i++) chars += this.values[i]!.length;
    return chars * 2 + this.values.length * 8 + this.table.byteLength;
  }
}
