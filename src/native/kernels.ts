/**
 * native/kernels.ts — the TypeScript versions of tallydb's hot loops, and the signatures both versions share.
 *
 * Invariant: each function here gives exactly the result of its C++ twin in native/src/kernels.cc for every input
 * — the same output arrays, and an error of the same class with the same message for the same bad input (a
 * RangeError for a selection or index out of bounds, an Error for a damaged column). Tests
 * run both on random and damaged inputs and compare (test/native-kernels.test.ts). Nothing outside
 * src/native/index.ts imports this module: callers use whichever version the loader picked.
 *
 * A *selection* is `rows, start, end`: the row ids rows[start..end), or the ids start..end−1 themselves when rows
 * is null (a contiguous run, which is what a filter on a sorted segment's leading dimension mostly is).
 */
import { BLOCK, packedBlocks, unpack as unpackBits, unzigzag } from '../segment/bitpack.js';

export interface Kernels {
  /** Decode a bit-packed u32 column (docs/format/segment.md#bit-packed-columns). */
  unpack(buf: Uint8Array): Uint32Array;
  /** Decode a bit-packed zigzag-delta timestamp column of `rows` values starting from `minTs`. */
  decodeTimestamps(buf: Uint8Array, minTs: number, rows: number): Float64Array;
  /** Per block of 128 rows of a bit-packed timestamp column, the timestamp before the block's first row. */
  timestampAnchors(buf: Uint8Array, minTs: number): Float64Array;
  /** The timestamps of the selected rows, in selection order, decoding only the blocks that hold them. */
  timestampsAt(buf: Uint8Array, anchors: Float64Array, rows: Uint32Array | null, start: number, end: number): Float64Array;
  /** counts[floor(ts[r] / size) − first] += 1 for every selected row r. */
  bucketCounts(ts: Float64Array, rows: Uint32Array | null, start: number, end: number, size: number, first: number, counts: Float64Array): void;
  /**
   * `bucketCounts` of the selected rows' timestamps read from a bit-packed column as `timestampsAt` reads them,
   * without materializing them.
   */
  bucketCountsAt(buf: Uint8Array, anchors: Float64Array, rows: Uint32Array | null, start: number, end: number, size: number, first: number, counts: Float64Array): void;
  /** The selected rows r with from ≤ ts[r] < to, in selection order. */
  selectTimeRange(ts: Float64Array, rows: Uint32Array | null, start: number, end: number, from: number, to: number): Uint32Array;
  /**
   * counts[table[codes[r]]] += 1 for every selected row r: rows counted by a small code (a minute within a segment)
   * mapped to a counter by `table`.
   */
  countByCode(codes: Uint8Array | Uint16Array, rows: Uint32Array | null, start: number, end: number, table: Uint32Array, counts: Float64Array): void;
  /** The selected rows r with lo ≤ codes[r] < hi, in selection order (rows in a range of minutes). */
  selectCodeRange(codes: Uint8Array | Uint16Array, rows: Uint32Array | null, start: number, end: number, lo: number, hi: number): Uint32Array;
  /** counts[keys[r]] += (weights ? weights[r] : 1) for every selected row r. */
  countByKey(keys: Uint32Array, rows: Uint32Array | null, start: number, end: number, weights: Float64Array | null, counts: Float64Array): void;
  /**
   * `countByKey`, and each key whose counter was 0 when its row came written to `out` in the order met (with
   * weights > 0: the distinct keys of the rows, each once, as a scan first meets them); returns how many were
   * written. `out` must hold `end − start` keys.
   */
  countFirstMet(keys: Uint32Array, rows: Uint32Array | null, start: number, end: number, weights: Float64Array | null, counts: Float64Array, out: Uint32Array): number;
  /**
   * The dedup index's steady-state chunk (src/ingest/dedup.ts, `addChunk`): for rows r = from, from+1, … in order,
   * look key (hashes[2r], hashes[2r+1]) up in the open-addressing table `slots` (3 int32 words a slot: hi, lo,
   * stored sub-window; a power of two of slots; linear probing from slot (hi ^ lo) & mask; 0 = empty; a slot is live
   * when its sub-window ≥ `floor`). A live match is a duplicate: r is listed in `duplicates`. Otherwise the key is
   * stored in the empty slot that ended its probe, with sub-window clamp(floor(ts[r] / subMs) − base + 2^30 + 2,
   * 2, 2^31 − 2) truncated to an integer (a NaN one is a RangeError). Stops before the first row to be stored whose
   * sub-window differs from that of the first row stored, so that every stored row shares one. Returns the number of
   * rows decided; out[0] = duplicates listed, out[1] = rows stored, out[2] = their sub-window. The caller guarantees
   * room (the table never fills: a full one is a RangeError).
   */
  dedupChunk(slots: Int32Array, floor: number, hashes: Uint32Array, ts: Float64Array, from: number, to: number, subMs: number, base: number, duplicates: Uint32Array, out: Float64Array): number;
  /**
   * The dedup index's rebuild step (src/ingest/dedup.ts, `moveLive`): each slot j of `old` in from..to−1 (3 words a
   * slot, as `dedupChunk`'s) whose sub-window word is ≥ `floor` (live) is copied into the first empty slot of its probe
   * sequence in `slots` and left a tombstone (sub-window word 1) in `old`; returns how many moved. Each destination
   * is prefetched a few slots ahead. A full `slots` is a RangeError.
   */
  dedupMove(old: Int32Array, from: number, to: number, floor: number, slots: Int32Array): number;
  /**
   * Batched probes of a string dictionary's table (src/head/dictionary.ts: 4 int32 words a slot — tag, k0, k1, k2;
   * tag 0 = empty; a power of two of slots; linear probing): for each value v < n, keys[4v] is its home slot (−1 for
   * no value) and keys[4v+1..4v+3] its key words; out[v] = the word offset of the first slot from home on that is
   * empty or holds the same key words (−1 for no value). Each home slot is prefetched a few values ahead, so the
   * cache misses of a large table overlap. A full table is a RangeError.
   */
  probeSlots(table: Int32Array, keys: Int32Array, n: number, out: Int32Array): void;
}

function checkSelection(rows: Uint32Array | null, start: number, end: number, limit: number): void {
  if (!(start >= 0) || !(end >= start) || !Number.isInteger(start) || !Number.isInteger(end)) {
    throw new RangeError('selection bounds must be integers with 0 <= start <= end');
  }
  if (rows === null) {
    if (end > limit) throw new RangeError('row range ends past the column');
    return;
  }
  if (end > rows.length) throw new RangeError('selection ends past the row list');
  for (let j = start; j < end; j++) if (rows[j]! >= limit) throw new RangeError('row id past the column');
}

/** The selected rows (checked) whose value lies in [lo, hi): selectTimeRange over timestamps, selectCodeRange over codes. */
function keepInRange(values: ArrayLike<number>, rows: Uint32Array | null, start: number, end: number, lo: number, hi: number): Uint32Array {
  const keep = new Uint32Array(end - start);
  let n = 0;
  for (let j = start; j < end; j++) {
    const r = rows === null ? j : rows[j]!;
    const v = values[r]!;
    if (v >= lo && v < hi) keep[n++] = r;
  }
  return keep.slice(0, n);
}

/** floor(t / size) exactly: a multiply and one correction step, as the C++ version does. */
function floorDiv(t: number, size: number, inv: number): number {
  let q = Math.floor(t * inv);
  if (q * size > t) q -= 1;
  else if ((q + 1) * size <= t) q += 1;
  return q;
}

/**
 * The number of slots of an open-addressing table of `words` int32 words a slot (`dedupChunk`, `dedupMove`,
 * `probeSlots`), checked: a power of two, at most `max`.
 */
function slotCount(table: Int32Array, words: number, max: number, name: string): number {
  const capacity = table.length / words;
  if (!Number.isInteger(capacity) || capacity === 0 || capacity > max || (capacity & (capacity - 1)) !== 0) {
    throw new RangeError(`${name} must hold ${words} words a slot, a power of two of slots`);
  }
  return capacity;
}

function checkInt32(x: number, name: string): void {
  if (!(x >= -0x80000000 && x <= 0x7fffffff) || !Number.isInteger(x)) throw new RangeError(`${name} must be an int32`);
}

export const typescriptKernels: Kernels = {
  unpack(buf) {
    return unpackBits(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength));
  },

  decodeTimestamps(buf, minTs, rows) {
    const z = unpackBits(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength));
    if (z.length !== rows) throw new Error(`column holds ${z.length} values; the footer says ${rows} rows`);
    const out = new Float64Array(rows);
    let t = minTs;
    for (let i = 0; i < rows; i++) {
      t += unzigzag(z[i]!);
      out[i] = t;
    }
    return out;
  },

  timestampAnchors(buf, minTs) {
    const z = unpackBits(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength));
    const out = new Float64Array(Math.ceil(z.length / BLOCK));
    let t = minTs;
    for (let i = 0; i < z.length; i++) {
      if (i % BLOCK === 0) out[i / BLOCK] = t;
      t += unzigzag(z[i]!);
    }
    return out;
  },

  timestampsAt(buf, anchors, rows, start, end) {
    if (!(anchors instanceof Float64Array)) throw new TypeError('anchors must be a Float64Array');
    // The column is checked whole, but only the blocks holding selected rows are decoded.
    const col = packedBlocks(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength));
    if (anchors.length !== col.blocks) throw new RangeError("anchors do not match the column's blocks");
    checkSelection(rows, start, end, col.n);
    const out = new Float64Array(end - start);
    const z = new Uint32Array(BLOCK);
    const ts = new Float64Array(BLOCK);
    let current = -1;
    for (let j = start; j < end; j++) {
      const r = rows === null ? j : rows[j]!;
      const b = Math.floor(r / BLOCK);
      if (b !== current) {
        current = b;
        const count = col.block(b, z);
        let t = anchors[b]!;
        for (let i = 0; i < count; i++) ts[i] = t += unzigzag(z[i]!);
      }
      out[j - start] = ts[r - b * BLOCK]!;
    }
    return out;
  },

  bucketCounts(ts, rows, start, end, size, first, counts) {
    checkSelection(rows, start, end, ts.length);
    if (!(size > 0)) throw new RangeError('bucket size must be positive');
    const inv = 1 / size;
    const limit = counts.length;
    for (let j = start; j < end; j++) {
      const k = floorDiv(ts[rows === null ? j : rows[j]!]!, size, inv) - first;
      if (!(k >= 0 && k < limit)) throw new RangeError('a timestamp falls outside the bucket counters');
      counts[k]! += 1;
    }
  },

  bucketCountsAt(buf, anchors, rows, start, end, size, first, counts) {
    const ts = typescriptKernels.timestampsAt(buf, anchors, rows, start, end);
    typescriptKernels.bucketCounts(ts, null, 0, ts.length, size, first, counts);
  },

  selectTimeRange(ts, rows, start, end, from, to) {
    checkSelection(rows, start, end, ts.length);
    return keepInRange(ts, rows, start, end, from, to);
  },

  countByCode(codes, rows, start, end, table, counts) {
    if (!(codes instanceof Uint8Array || codes instanceof Uint16Array)) throw new TypeError('codes must be a Uint8Array or a Uint16Array');
    if (!(table instanceof Uint32Array)) throw new TypeError('table must be a Uint32Array');
    checkSelection(rows, start, end, codes.length);
    const limit = counts.length;
    for (let j = start; j < end; j++) {
      const c = codes[rows === null ? j : rows[j]!]!;
      if (c >= table.length) throw new RangeError('a code falls outside the table');
      const k = table[c]!;
      if (k >= limit) throw new RangeError('a key falls outside the counters');
      counts[k]! += 1;
    }
  },

  selectCodeRange(codes, rows, start, end, lo, hi) {
    if (!(codes instanceof Uint8Array || codes instanceof Uint16Array)) throw new TypeError('codes must be a Uint8Array or a Uint16Array');
    checkSelection(rows, start, end, codes.length);
    return keepInRange(codes, rows, start, end, lo, hi);
  },

  countByKey(keys, rows, start, end, weights, counts) {
    checkSelection(rows, start, end, keys.length);
    if (weights !== null && weights.length < keys.length) throw new RangeError('weights are shorter than keys');
    const limit = counts.length;
    for (let j = start; j < end; j++) {
      const r = rows === null ? j : rows[j]!;
      const k = keys[r]!;
      if (k >= limit) throw new RangeError('a key falls outside the counters');
      counts[k]! += weights === null ? 1 : weights[r]!;
    }
  },

  countFirstMet(keys, rows, start, end, weights, counts, out) {
    checkSelection(rows, start, end, keys.length);
    if (weights !== null && weights.length < keys.length) throw new RangeError('weights are shorter than keys');
    if (!(out instanceof Uint32Array)) throw new TypeError('out must be a Uint32Array');
    if (out.length < end - start) throw new RangeError('out is shorter than the selection');
    const limit = counts.length;
    let met = 0;
    for (let j = start; j < end; j++) {
      const r = rows === null ? j : rows[j]!;
      const k = keys[r]!;
      if (k >= limit) throw new RangeError('a key falls outside the counters');
      const c = counts[k]!;
      if (c === 0) out[met++] = k;
      counts[k] = c + (weights === null ? 1 : weights[r]!);
    }
    return met;
  },

  dedupMove(old, from, to, floor, slots) {
    if (!(old instanceof Int32Array)) throw new TypeError('old must be an Int32Array');
    if (!(slots instanceof Int32Array)) throw new TypeError('slots must be an Int32Array');
    const capacity = slotCount(slots, 3, 0x80000000, 'slots');
    checkInt32(floor, 'floor');
    if (!(from >= 0) || !(to >= from) || !Number.isInteger(from) || !Number.isInteger(to) || 3 * to > old.length) throw new RangeError('slots from..to must lie within old');
    const mask = capacity - 1;
    let moved = 0;
    for (let j = from; j < to; j++) {
      const s = old[3 * j + 2]!;
      if (s < floor) continue;
      const hi = old[3 * j]!;
      const lo = old[3 * j + 1]!;
      let i = (hi ^ lo) & mask;
      for (let steps = 0; ; steps++) {
        if (steps > mask) throw new RangeError('slots holds no empty slot');
        if (slots[3 * i + 2] === 0) break;
        i = (i + 1) & mask;
      }
      slots[3 * i] = hi;
      slots[3 * i + 1] = lo;
      slots[3 * i + 2] = s;
      old[3 * j + 2] = 1;
      moved++;
    }
    return moved;
  },

  probeSlots(table, keys, n, out) {
    if (!(table instanceof Int32Array)) throw new TypeError('table must be an Int32Array');
    if (!(keys instanceof Int32Array)) throw new TypeError('keys must be an Int32Array');
    if (!(out instanceof Int32Array)) throw new TypeError('out must be an Int32Array');
    const capacity = slotCount(table, 4, 0x20000000, 'table');
    if (!(n >= 0) || !Number.isInteger(n) || 4 * n > keys.length || n > out.length) throw new RangeError('n must be a count of keys within keys and out');
    for (let v = 0; v < n; v++) if (keys[4 * v]! >= capacity) throw new RangeError('a home slot lies outside the table');
    const mask = capacity - 1;
    for (let v = 0; v < n; v++) {
      const home = keys[4 * v]!;
      if (home < 0) {
        out[v] = -1;
        continue;
      }
      const k0 = keys[4 * v + 1]!;
      const k1 = keys[4 * v + 2]!;
      const k2 = keys[4 * v + 3]!;
      for (let i = home, steps = 0; ; i = (i + 1) & mask, steps++) {
        if (steps > mask) throw new RangeError('table holds no empty slot');
        const j = 4 * i;
        if (table[j] === 0 || (table[j + 1] === k0 && table[j + 2] === k1 && table[j + 3] === k2)) {
          out[v] = j;
          break;
        }
      }
    }
  },

  dedupChunk(slots, floor, hashes, ts, from, to, subMs, base, duplicates, out) {
    if (!(slots instanceof Int32Array)) throw new TypeError('slots must be an Int32Array');
    const capacity = slotCount(slots, 3, 0x80000000, 'slots');
    if (!(hashes instanceof Uint32Array)) throw new TypeError('hashes must be a Uint32Array');
    if (!(ts instanceof Float64Array)) throw new TypeError('ts must be a Float64Array');
    if (!(duplicates instanceof Uint32Array)) throw new TypeError('duplicates must be a Uint32Array');
    if (!(out instanceof Float64Array)) throw new TypeError('out must be a Float64Array');
    checkInt32(floor, 'floor');
    if (!(from >= 0) || !(to >= from) || !Number.isInteger(from) || !Number.isInteger(to) || to > ts.length || 2 * to > hashes.length) {
      throw new RangeError('rows from..to must lie within ts and hashes');
    }
    if (duplicates.length < to - from || out.length < 3) throw new RangeError('duplicates must hold to - from rows and out 3 numbers');
    const mask = capacity - 1;
    let d = 0;
    let stored = 0;
    let runSub = 0;
    let r = from;
    for (; r < to; r++) {
      const hi = hashes[2 * r]!;
      const lo = hashes[2 * r + 1]!;
      const h = hi | 0;
      const l = lo | 0;
      let i = (hi ^ lo) & mask;
      let found = false;
      for (let steps = 0; ; steps++) {
        if (steps > mask) throw new RangeError('slots holds no empty slot');
        const s = slots[3 * i + 2]!;
        if (s === 0) break;
        if (slots[3 * i] === h && slots[3 * i + 1] === l && s >= floor) {
          found = true;
          break;
        }
        i = (i + 1) & mask;
      }
      if (found) {
        duplicates[d++] = r;
        continue;
      }
      const v = Math.floor(ts[r]! / subMs) - base + 0x40000002;
      if (Number.isNaN(v)) throw new RangeError("a row's sub-window is not a number");
      // Clamped, then truncated as the int32 slot word stores it.
      const sub = (v < 2 ? 2 : v > 0x7ffffffe ? 0x7ffffffe : v) | 0;
      if (stored === 0) runSub = sub;
      else if (sub !== runSub) break;
      slots[3 * i] = h;
      slots[3 * i + 1] = l;
      slots[3 * i + 2] = sub;
      stored++;
    }
    out[0] = d;
    out[1] = stored;
    out[2] = runSub;
    return r - from;
  },
};
