/**
 * query/reader.ts — the one read interface of tallydb's storage.
 *
 * Invariant: the query engine reads data only through `SegmentReader`. The head's minute buckets implement it
 * today; immutable segment files implement it too, so queries over just-ingested and sealed data take one code
 * path and must give identical answers (a property the tests check).
 *
 * Row ids are dense, 0..rowCount-1, local to one reader. Dimension values are dictionary ids local to the
 * reader's dictionary; id 0 always means null (the event had no value). Metric nulls are NaN.
 */
import type { Bitmap as RoaringBitmap32 } from '../bitmap.js';

export interface DictionaryView {
  /** Number of ids in use, including id 0 (null). */
  readonly size: number;
  /** The value of an id; id 0 is null. */
  value(id: number): string | null;
  /** The id of a value, or undefined when no row of the reader has it. `idOf(null)` is 0. */
  idOf(value: string | null): number | undefined;
}

/**
 * The extra columns of a rolled-up reader (docs/compaction.md#rollup): row r stands for `counts[r]` events with the
 * same dimension values in one rollup bucket; `metricValues(m)[r]` is their sum (NaN when none had a value).
 */
export interface RollupColumns {
  counts: Float64Array;
  /** Per metric: how many of the row's events had a value, and their min and max (NaN when none). */
  metrics: { count: Float64Array; min: Float64Array; max: Float64Array }[];
}

/**
 * A set of rows as the kernels take it (src/native/kernels.ts): row ids rows[start..end), or the rows start..end−1
 * themselves when rows is null (a contiguous run).
 */
export interface Selection {
  rows: Uint32Array | null;
  start: number;
  end: number;
}

/** Timestamps of selected rows: `ts` indexed by the rows `sel` selects (no copy when the column is decoded). */
export interface TimestampView {
  ts: Float64Array;
  sel: Selection;
}

export interface SegmentReader {
  /** Earliest and latest row timestamp that may occur (inclusive bounds, epoch ms). */
  readonly minTs: number;
  readonly maxTs: number;
  /** Rows visible to a query that starts now. */
  readonly rowCount: number;
  dictionary(dim: number): DictionaryView;
  /** Dictionary ids of dimension `dim`, one per row (the array may be longer than rowCount). */
  dimensionIds(dim: number): Uint32Array;
  /** Values of metric `metric`, one per row, NaN for null (the array may be longer than rowCount). */
  metricValues(metric: number): Float64Array;
  /** Timestamps, one per row (epoch ms). */
  timestamps(): Float64Array;
  /**
   * The timestamps of the rows `sel` selects. A large segment may answer without decoding its whole column (only
   * the blocks holding the rows), so queries ask through this rather than `timestamps()`.
   */
  timestampsFor(sel: Selection): TimestampView;
  /**
   * counts[floor(t / size) − first] += 1 for the timestamp t of each row `sel` selects (rows per minute). A large
   * segment counts from its packed column without materializing the timestamps.
   */
  bucketCounts(sel: Selection, size: number, first: number, counts: Float64Array): void;
  /**
   * The rows `sel` selects whose timestamp lies in [from, to), as row ids in selection order. A large segment
   * narrows them by its minute column first and reads the timestamps of only the rows in the range's end minutes.
   */
  selectTimeRange(sel: Selection, from: number, to: number): Uint32Array;
  /**
   * Whether `bitmap(dim, ·)` reads a stored index. False when it is derived from the id column (a high-cardinality
   * dimension such as an image id): a filter that has already narrowed the rows then tests those rows' ids instead.
   */
  indexed(dim: number): boolean;
  /** Rows whose dimension `dim` has dictionary id `id`; null when there are none. Callers must not mutate it. */
  bitmap(dim: number, id: number): RoaringBitmap32 | null;
  /** The rollup columns when each row stands for several events; null when every row is one event. */
  rollup(): RollupColumns | null;
}
