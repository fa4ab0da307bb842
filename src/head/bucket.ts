/**
 * head/bucket.ts — one minute of just-ingested rows, columnar, with lazily caught-up bitmap indexes.
 *
 * Invariant: rows are only appended; row r's values never change after append, and every row of the bucket has a
 * timestamp in [minuteTs, minuteTs + 60s). The bitmap of (dimension, id) holds exactly the rows < rowCount with
 * that id once `catchUp(dim)` has run — which `bitmap()` does before answering.
 *
 * Why lazy: adding each row to a Roaring bitmap on the ingest path costs one N-API call per row and dimension.
 * Appending to typed arrays is cheap; the index is brought up to date on the first query that needs it, grouping
 * the new rows by id and adding each group with one `addMany` call. Ingest stays a memcpy; queries pay once.
 *
 * High-cardinality dimensions (more than 4096 values in the head dictionary, such as image ids) are not
 * indexed in full: a minute holds thousands of their values, each a bitmap and an N-API call to build, while a
 * query asks for one or a few. For them `bitmap(dim, id)` scans the id column for that one value and caches the
 * result, extending it with the rows appended since — one typed-array pass per value asked for.
 */
import { RoaringBitmap32, type Bitmap } from '../bitmap.js';
import type { DictionaryView, Selection, TimestampView } from '../query/reader.js';
import type { SegmentSource } from '../segment/format.js';
import type { Dictionary } from './dictionary.js';
import type { LoggedDimension } from '../wal/record.js';
import { MINUTE_MS } from '../time.js';
import { kernels } from '../native/index.js';
import { ColumnBlock, retire } from './column-memory.js';

const INITIAL_CAPACITY = 256;
/** The most rows a bucket is made room for up front (`capacityFor`); beyond, it grows by doubling as before. */
const MAX_INITIAL_CAPACITY = 1 << 16;

/**
 * Rows to make room for in a new bucket expected to take about `expectedRows` (the minute before's count): the
 * power of two at or above it, within [INITIAL_CAPACITY, MAX_INITIAL_CAPACITY]. Starting at 256 and doubling, a
 * minute of 7k rows allocated and copied every column five times over — about a 20th of ingest's time, mostly
 * faulting in fresh pages.
 */
export function capacityFor(expectedRows: number): number {
  let cap = INITIAL_CAPACITY;
  while (cap < expectedRows && cap < MAX_INITIAL_CAPACITY) cap *= 2;
  return cap;
}
/** Above this many values in the head dictionary, a dimension's bitmaps are built per value asked for. */
let highCardinality = 4096;

/** Tests lower the threshold to run the per-value path on small data; returns the previous value. */
export function setHighCardinalityForTests(n: number): number {
  const previous = highCardinality;
  highCardinality = n;
  return previous;
}

/** Per-id counters for `catchUp`, all zero between calls (each call zeroes what it used). */
let counters = new Uint32Array(INITIAL_CAPACITY);

function countScratch(size: number): Uint32Array {
  if (counters.length < size) counters = new Uint32Array(Math.max(size, 2 * counters.length));
  return counters;
}

/** Room for `cap` rows of every column of a bucket, in one block (head/column-memory.ts, ColumnBlock). */
function bucketColumns(cap: number, dimCount: number, metricCount: number, withKeys: boolean): { values: Float64Array[]; ids: Uint32Array[]; keys: Uint32Array | null; offsets: Uint16Array } {
  const block = new ColumnBlock(cap * (8 * metricCount + 4 * dimCount + (withKeys ? 8 : 0) + 2));
  return {
    values: Array.from({ length: metricCount }, () => block.f64(cap)),
    ids: Array.from({ length: dimCount }, () => block.u32(cap)),
    keys: withKeys ? block.u32(2 * cap) : null,
    offsets: block.u16(cap),
  };
}

export class MinuteBucket implements SegmentSource {
  readonly minTs: number;
  readonly maxTs: number;
  rowCount = 0;
  /** The bucket's number in its head, in order of creation (a query thread's copy names buckets by it). */
  serial = 0;
  private capacity: number;
  /** Millisecond offset of each row within the minute. */
  private offsets: Uint16Array;
  private ids: Uint32Array[];
  private values: Float64Array[];
  /** (hi, lo) dedup key hash per row, when the datasource deduplicates. */
  private keys: Uint32Array | null;
  private readonly bitmaps: (Bitmap | undefined)[][];
  private readonly indexedRows: number[];
  /** High-cardinality dimensions: per value asked for, its bitmap and how many rows it covers. */
  private readonly scanned: Map<number, { bm: Bitmap; rows: number }>[];
  private tsCache: Float64Array | null = null;

  /** `capacity`: rows to make room for at first (see `capacityFor`); the bucket grows past it as needed. */
  constructor(minuteTs: number, private readonly dicts: readonly Dictionary[], metricCount: number, withKeys: boolean, capacity = INITIAL_CAPACITY) {
    this.minTs = minuteTs;
    this.maxTs = minuteTs + MINUTE_MS - 1;
    this.capacity = capacity;
    const c = bucketColumns(capacity, dicts.length, metricCount, withKeys);
    this.values = c.values;
    this.ids = c.ids;
    this.keys = c.keys;
    this.offsets = c.offsets;
    this.bitmaps = dicts.map(() => []);
    this.indexedRows = dicts.map(() => 0);
    this.scanned = dicts.map(() => new Map());
  }

  /**
   * Append rows from..to-1 of a batch's columns, all in this bucket's minute: `dims[d].ids` are batch-local ids
   * and `toHead[d]` maps them to head dictionary ids, `metrics[m]` NaN for null, `keyHashes` the (hi, lo) dedup
   * key hashes. One pass per column.
   */
  appendRows(ts: Float64Array, dims: readonly LoggedDimension[], toHead: readonly Int32Array[], metrics: readonly Float64Array[], keyHashes: Uint32Array | null, from: number, to: number): void {
    const count = to - from;
    while (this.rowCount + count > this.capacity) this.grow();
    const r0 = this.rowCount;
    const offsets = this.offsets;
    const minTs = this.minTs;
    for (let i = 0; i < count; i++) offsets[r0 + i] = ts[from + i]! - minTs;
    for (let d = 0; d < this.ids.length; d++) {
      const out = this.ids[d]!;
      const local = dims[d]!.ids;
      const th = toHead[d]!;
      for (let i = 0; i < count; i++) out[r0 + i] = th[local[from + i]!]!;
    }
    for (let m = 0; m < this.values.length; m++) this.values[m]!.set(metrics[m]!.subarray(from, to), r0);
    if (this.keys !== null) {
      if (keyHashes === null) this.keys.fill(0, 2 * r0, 2 * (r0 + count));
      else this.keys.set(keyHashes.subarray(2 * from, 2 * to), 2 * r0);
    }
    this.rowCount = r0 + count;
    this.tsCache = null;
  }

  dictionary(dim: number): DictionaryView {
    return this.dicts[dim]!;
  }

  dimensionIds(dim: number): Uint32Array {
    return this.ids[dim]!;
  }

  metricValues(metric: number): Float64Array {
    return this.values[metric]!;
  }

  timestamps(): Float64Array {
    if (this.tsCache === null || this.tsCache.length !== this.rowCount) {
      const ts = new Float64Array(this.rowCount);
      for (let r = 0; r < this.rowCount; r++) ts[r] = this.minTs + this.offsets[r]!;
      this.tsCache = ts;
    }
    return this.tsCache;
  }

  timestampsFor(sel: Selection): TimestampView {
    return { ts: this.timestamps(), sel };
  }

  bucketCounts(sel: Selection, size: number, first: number, counts: Float64Array): void {
    kernels.bucketCounts(this.timestamps(), sel.rows, sel.start, sel.end, size, first, counts);
  }

  selectTimeRange(sel: Selection, from: number, to: number): Uint32Array {
    return kernels.selectTimeRange(this.timestamps(), sel.rows, sel.start, sel.end, from, to);
  }

  indexed(dim: number): boolean {
    return this.indexedRows[dim] !== 0 || this.dicts[dim]!.size <= highCardinality;
  }

  keyHashes(): Uint32Array | null {
    return this.keys;
  }

  /** A head row is always one event. */
  rollup(): null {
    return null;
  }

  bitmap(dim: number, id: number): Bitmap | null {
    // A dimension indexed in full stays so; one whose dictionary grew past the threshold is scanned per value.
    if (this.indexedRows[dim] === 0 && this.dicts[dim]!.size > highCardinality) return this.scan(dim, id);
    if (this.indexedRows[dim] !== this.rowCount) this.catchUp(dim);
    const bm = this.bitmaps[dim]![id];
    return bm === undefined || bm.size === 0 ? null : bm;
  }

  /** The rows of one value of a high-cardinality dimension, by a pass over the rows not yet looked at. */
  private scan(dim: number, id: number): Bitmap | null {
    const cache = this.scanned[dim]!;
    let entry = cache.get(id);
    const n = this.rowCount;
    if (entry === undefined || entry.rows !== n) {
      const from = entry?.rows ?? 0;
      const ids = this.ids[dim]!;
      const rows: number[] = [];
      for (let r = from; r < n; r++) if (ids[r] === id) rows.push(r);
      if (entry === undefined) {
        entry = { bm: new RoaringBitmap32(rows), rows: n };
        cache.set(id, entry);
      } else {
        if (rows.length > 0) entry.bm.addMany(rows);
        entry.rows = n;
      }
    }
    return entry.bm.size === 0 ? null : entry.bm;
  }

  /**
   * The bucket left the head (released after sealing, or its engine closed): its columns are garbage once the
   * readers still holding it are done (head/column-memory.ts). It stays readable.
   */
  retire(): void {
    retire(this.columns());
  }

  /** The bucket's columns (the arrays `retire` gives up). */
  columns(): ArrayBufferView[] {
    const out: ArrayBufferView[] = [this.offsets, ...this.ids, ...this.values];
    if (this.keys !== null) out.push(this.keys);
    return out;
  }

  /** Bytes held by the columns and bitmaps (dictionaries are shared and counted by the head). */
  estimateBytes(): number {
    let bytes = this.offsets.byteLength;
    for (const a of this.ids) bytes += a.byteLength;
    for (const a of this.values) bytes += a.byteLength;
    for (const perDim of this.bitmaps) for (const bm of perDim) if (bm !== undefined) bytes += bm.getSerializationSizeInBytes(false);
    for (const perDim of this.scanned) for (const e of perDim.values()) bytes += e.bm.getSerializationSizeInBytes(false);
    return bytes;
  }

  /**
   * Index rows indexedRows[dim]..rowCount-1 of a fully indexed dimension: a counting sort of the new rows by id into
   * one typed array (rows ascending within each id), then one `addMany` of each id's slice. No array or map per id,
   * so a query under ingest pays a few typed-array passes, not garbage per row. (Not segment/radix.ts's `rowOrder`:
   * its counting pass costs the dictionary's size on every call, and this runs on queries; this one costs the
   * distinct ids of the new rows.)
   */
  private catchUp(dim: number): void {
    const from = this.indexedRows[dim]!;
    const to = this.rowCount;
    const ids = this.ids[dim]!;
    const counts = countScratch(this.dicts[dim]!.size + 1);
    const distinct: number[] = [];
    for (let r = from; r < to; r++) if (counts[ids[r]!]!++ === 0) distinct.push(ids[r]!);
    // counts[id] becomes the start of id's slice, then (after the placement pass) its end.
    let offset = 0;
    for (const id of distinct) {
      const c = counts[id]!;
      counts[id] = offset;
      offset += c;
    }
    const rows = new Uint32Array(to - from);
    for (let r = from; r < to; r++) rows[counts[ids[r]!]!++] = r;
    const perDim = this.bitmaps[dim]!;
    try {
      let start = 0;
      for (const id of distinct) {
        const end = counts[id]!;
        let bm = perDim[id];
        if (bm === undefined) {
          bm = new RoaringBitmap32();
          perDim[id] = bm;
        }
        bm.addMany(rows.subarray(start, end));
        start = end;
      }
    } finally {
      // The counters are shared by every bucket: all zero again, whatever happened above.
      for (const id of distinct) counts[id] = 0;
    }
    this.indexedRows[dim] = to;
  }

  private grow(): void {
    const cap = this.capacity * 2;
    const outgrown = this.columns();
    const c = bucketColumns(cap, this.ids.length, this.values.length, this.keys !== null);
    c.values.forEach((b, m) => b.set(this.values[m]!));
    c.ids.forEach((b, d) => b.set(this.ids[d]!));
    if (c.keys !== null) c.keys.set(this.keys!);
    c.offsets.set(this.offsets);
    this.values = c.values;
    this.ids = c.ids;
    this.keys = c.keys;
    this.offsets = c.offsets;
    this.capacity = cap;
    retire(outgrown);
  }
}
