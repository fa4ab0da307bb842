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
 */
import { RoaringBitmap32, type Bitmap } from '../bitmap.js';
import type { DictionaryView } from '../query/reader.js';
import type { SegmentSource } from '../segment/format.js';
import type { Dictionary } from './dictionary.js';
import { MINUTE_MS } from '../time.js';

const INITIAL_CAPACITY = 256;

export class MinuteBucket implements SegmentSource {
  readonly minTs: number;
  readonly maxTs: number;
  rowCount = 0;
  private capacity = INITIAL_CAPACITY;
  /** Millisecond offset of each row within the minute. */
  private offsets = new Uint16Array(INITIAL_CAPACITY);
  private ids: Uint32Array[];
  private values: Float64Array[];
  /** (hi, lo) dedup key hash per row, when the datasource deduplicates. */
  private keys: Uint32Array | null;
  private readonly bitmaps: (Bitmap | undefined)[][];
  private readonly indexedRows: number[];
  private tsCache: Float64Array | null = null;

  constructor(minuteTs: number, private readonly dicts: readonly Dictionary[], metricCount: number, withKeys: boolean) {
    this.minTs = minuteTs;
    this.maxTs = minuteTs + MINUTE_MS - 1;
    this.ids = dicts.map(() => new Uint32Array(INITIAL_CAPACITY));
    this.values = Array.from({ length: metricCount }, () => new Float64Array(INITIAL_CAPACITY));
    this.keys = withKeys ? new Uint32Array(2 * INITIAL_CAPACITY) : null;
    this.bitmaps = dicts.map(() => []);
    this.indexedRows = dicts.map(() => 0);
  }

  /** Append one row; `dimIds[d]` are ids in the head dictionaries, `metricValues[m]` NaN for null. */
  append(ts: number, dimIds: ArrayLike<number>, metricValues: ArrayLike<number>, keyHi: number, keyLo: number): void {
    if (this.rowCount === this.capacity) this.grow();
    const r = this.rowCount;
    this.offsets[r] = ts - this.minTs;
    for (let d = 0; d < this.ids.length; d++) this.ids[d]![r] = dimIds[d]!;
    for (let m = 0; m < this.values.length; m++) this.values[m]![r] = metricValues[m]!;
    if (this.keys !== null) {
      this.keys[2 * r] = keyHi;
      this.keys[2 * r + 1] = keyLo;
    }
    this.rowCount = r + 1;
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

  keyHashes(): Uint32Array | null {
    return this.keys;
  }

  bitmap(dim: number, id: number): Bitmap | null {
    if (this.indexedRows[dim] !== this.rowCount) this.catchUp(dim);
    const bm = this.bitmaps[dim]![id];
    return bm === undefined || bm.size === 0 ? null : bm;
  }

  /** Bytes held by the columns and bitmaps (dictionaries are shared and counted by the head). */
  estimateBytes(): number {
    let bytes = this.offsets.byteLength;
    for (const a of this.ids) bytes += a.byteLength;
    for (const a of this.values) bytes += a.byteLength;
    for (const perDim of this.bitmaps) for (const bm of perDim) if (bm !== undefined) bytes += bm.getSerializationSizeInBytes(false);
    return bytes;
  }

  private catchUp(dim: number): void {
    const from = this.indexedRows[dim]!;
    const to = this.rowCount;
    const ids = this.ids[dim]!;
    const groups = new Map<number, number[]>();
    for (let r = from; r < to; r++) {
      const id = ids[r]!;
      let rows = groups.get(id);
      if (rows === undefined) {
        rows = [];
        groups.set(id, rows);
      }
      rows.push(r);
    }
    const perDim = this.bitmaps[dim]!;
    for (const [id, rows] of groups) {
      let bm = perDim[id];
      if (bm === undefined) {
        bm = new RoaringBitmap32();
        perDim[id] = bm;
      }
      bm.addMany(rows);
    }
    this.indexedRows[dim] = to;
  }

  private grow(): void {
    const cap = this.capacity * 2;
    const offsets = new Uint16Array(cap);
    offsets.set(this.offsets);
    this.offsets = offsets;
    this.ids = this.ids.map((a) => {
      const b = new Uint32Array(cap);
      b.set(a);
      return b;
    });
    this.values = this.values.map((a) => {
      const b = new Float64Array(cap);
      b.set(a);
      return b;
    });
    if (this.keys !== null) {
      const k = new Uint32Array(2 * cap);
      k.set(this.keys);
      this.keys = k;
    }
    this.capacity = cap;
  }
}
