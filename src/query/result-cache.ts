/**
 * query/result-cache.ts — what one reader contributed to a query without group-by, kept for the next query that
 * asks the same of the same rows (Druid's per-segment result cache, extended to the head's minute buckets).
 *
 * Invariant: a kept contribution is used only for the same reader object, when the reader still has the row count
 * it had when the contribution was computed (or, for counts, extended by the rows appended since: below), for a
 * plan of the same key (filter, aggregations and bucketing — everything except the time range), and only when the
 * reader lies wholly inside the query's time range. Rows of a
 * reader never change once visible (head buckets only grow, and `rowCount` says by how much; segments are
 * immutable), so under those conditions the contribution is exactly what running the reader again would compute.
 * A contribution is the reader's own accumulators, computed into a group of its own and then merged; execute.ts
 * takes that path for such readers whether the cache is on or off, so turning it off changes no answer, not even
 * in the last bit of a floating-point sum.
 *
 * Extending (execute.ts `extendCounts`): when every aggregation counts rows, a kept contribution computed at fewer
 * rows than a head bucket has now is brought up to date by testing only the rows appended since, each row's ids
 * against the filters (filter.ts `testRange`) — no bitmap of the bucket is built or caught up. Counts are integers,
 * so the sum of the kept count and the new rows' count is exactly the count over all rows.
 *
 * What is eligible (`planKey` returns null otherwise): no group-by dimension, no distinct count, and one time bucket
 * per reader (granularity 'all', or a reader inside one bucket — a head minute under per-minute buckets). A
 * dashboard's tiles (the seed count, a CTR, clicks per minute) are of that kind; top-N and group-by are not.
 *
 * Memory: a few numbers per (reader, plan key), at most READER_RESULT_CACHE.keysPerReader keys per reader (oldest
 * dropped first), held weakly by the reader, so a released head bucket or a retired segment takes its entries with it.
 */
import { READER_RESULT_CACHE } from '../limits.js';
import type { Plan } from './shape.js';

/** One reader's part of a query's answer: its group (if the reader made one) and the group's accumulators. */
export interface Contribution {
  /** The start of the reader's time bucket, or null when the reader made no group (nothing matched). */
  bucket: number | null;
  /** Per aggregation: the accumulator (count, sum, min or max) and the non-null values folded into it. */
  acc: Float64Array;
  n: Float64Array;
}

interface Entry {
  rows: number;
  c: Contribution;
}

const kept = new WeakMap<object, Map<string, Entry>>();

/** The cache key of a plan whose readers' contributions may be kept, or null when it has none (see the header). */
export function planKey(plan: Plan): string | null {
  if (plan.groupDims.length > 0) return null;
  if (plan.aggregations.some((a) => a.type === 'distinctCount')) return null;
  return JSON.stringify([plan.filter, plan.aggregations.map((a) => [a.type, a.metric, a.filterKey]), plan.bucketing]);
}

/** The kept contribution of `reader` to plans of `key`, if it was computed at the reader's current row count. */
export function lookup(reader: object, rowCount: number, key: string): Contribution | undefined {
  const entry = lookupAny(reader, key);
  return entry === undefined || entry.rows !== rowCount ? undefined : entry.c;
}

/**
 * The kept contribution of `reader` to plans of `key` and the row count it was computed at, whatever that was: a
 * head bucket that grew since then has the same first `rows` rows (execute.ts extends a count from there).
 */
export function lookupAny(reader: object, key: string): { rows: number; c: Contribution } | undefined {
  const entries = kept.get(reader);
  const entry = entries?.get(key);
  if (entry === undefined) return undefined;
  entries!.delete(key); // re-inserted last: the Map's order is the order of use
  entries!.set(key, entry);
  return entry;
}

/** Keep `c` as `reader`'s contribution to plans of `key` at `rowCount` rows (replacing an older one). */
export function remember(reader: object, rowCount: number, key: string, c: Contribution): void {
  let entries = kept.get(reader);
  if (entries === undefined) kept.set(reader, (entries = new Map()));
  entries.delete(key); // re-inserted last: the Map's order is the order of use
  entries.set(key, { rows: rowCount, c });
  if (entries.size > READER_RESULT_CACHE.keysPerReader) entries.delete(entries.keys().next().value!);
}

/** Keys kept for `reader` (tests). */
export function keptKeys(reader: object): number {
  return kept.get(reader)?.size ?? 0;
}
