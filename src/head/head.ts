/**
 * head/head.ts — the in-memory head of one datasource: the newest rows, queryable the moment they are appended.
 *
 * Invariant: after `append` returns, every appended row is visible to `readers()` for a range that covers it.
 * Rows are kept in one `MinuteBucket` per minute of event time; all buckets share the head's dictionaries, so a
 * value has one id across the head. Sealing buckets into segment files (and forgetting them here) belongs to the
 * storage layer; the head never drops a row on its own.
 *
 * An observer (replica/feed.ts, the daemon's query thread) is told every append, freeze and release as it happens,
 * naming buckets by their serial, so that a copy applying them in order holds the same rows in the same buckets.
 */
import type { RowBatch } from '../schema/event.js';
import type { LoggedDimension } from '../wal/record.js';
import type { Datasource } from '../schema/datasource.js';
import { MINUTE_MS } from '../time.js';
import { capacityFor, MinuteBucket } from './bucket.js';
import { Dictionary } from './dictionary.js';
import { retire } from './column-memory.js';

export interface HeadStats {
  rows: number;
  buckets: number;
  bytes: number;
  minTs: number | null;
  maxTs: number | null;
}

/** What a copy of the head needs to follow it (replica/feed.ts). */
export interface HeadObserver {
  /** Rows from..to−1 of the batch went to the bucket `serial` of minute `minute`, for each run. */
  appended(batch: RowBatch, dims: readonly LoggedDimension[], toHead: readonly Int32Array[], runs: readonly { serial: number; minute: number; from: number; to: number }[]): void;
  frozen(serial: number): void;
  released(serial: number): void;
}

export class Head {
  observer: HeadObserver | null = null;
  private nextSerial = 1;
  readonly dictionaries: Dictionary[];
  private readonly buckets = new Map<number, MinuteBucket>();
  /** Buckets being written to segments: no longer appended to, still read until their segment is published. */
  private readonly frozen = new Set<MinuteBucket>();
  private readonly hasKeys: boolean;
  private readonly metricCount: number;
  /** The newest minute a bucket was made for (see `append`). */
  private newestMinute = -Infinity;

  constructor(ds: Datasource) {
    this.dictionaries = ds.dimensions.map(() => new Dictionary());
    this.metricCount = ds.metrics.length;
    this.hasKeys = ds.dedupKey !== null;
  }

  /**
   * Append rows 0..batch.length-1 of `batch` (its times and metrics); row r's value of dimension d is
   * `dims[d].values[dims[d].ids[r]]`, whose head dictionary id is `toHead[d][dims[d].ids[r]]` (interned by the
   * caller). `keyHashes` are the (hi, lo) dedup key hashes of the rows, kept so that segments can persist them.
   */
  append(batch: RowBatch, dims: readonly LoggedDimension[], toHead: readonly Int32Array[], keyHashes: Uint32Array | null): void {
    // Rows of a batch come in runs of one minute (producers send in time order): each run is copied column by
    // column into its bucket.
    const ts = batch.ts;
    const n = batch.length;
    const runs = this.observer === null ? null : [] as { serial: number; minute: number; from: number; to: number }[];
    let r = 0;
    while (r < n) {
      const t = ts[r]!;
      const minute = t - (t % MINUTE_MS);
      const end = minute + MINUTE_MS;
      let to = r + 1;
      while (to < n && ts[to]! >= minute && ts[to]! < end) to++;
      let bucket = this.buckets.get(minute);
      if (bucket === undefined) {
        // A new newest minute will most likely take about as many rows as the one before it: room for them up
        // front. Any other minute (late rows, or rows after a freeze) starts small.
        const before = minute > this.newestMinute ? this.buckets.get(this.newestMinute) : undefined;
        const capacity = capacityFor(before === undefined ? 0 : before.rowCount);
        if (minute > this.newestMinute) this.newestMinute = minute;
        bucket = new MinuteBucket(minute, this.dictionaries, this.metricCount, this.hasKeys, capacity);
        bucket.serial = this.nextSerial++;
        this.buckets.set(minute, bucket);
      }
      bucket.appendRows(ts, dims, toHead, batch.metrics, keyHashes, r, to);
      runs?.push({ serial: bucket.serial, minute, from: r, to });
      r = to;
    }
    if (runs !== null && runs.length > 0) this.observer!.appended(batch, dims, toHead, runs);
  }

  /** Buckets (live and frozen) that may hold rows in [from, to), in time order. */
  readers(from: number, to: number): MinuteBucket[] {
    const out: MinuteBucket[] = [];
    for (const set of [this.buckets.values(), this.frozen.values()]) {
      for (const bucket of set) if (bucket.maxTs >= from && bucket.minTs < to && bucket.rowCount > 0) out.push(bucket);
    }
    return out.sort((a, b) => a.minTs - b.minTs);
  }

  /** Live buckets, oldest first (the sealing candidates). */
  liveBuckets(): MinuteBucket[] {
    return [...this.buckets.values()].sort((a, b) => a.minTs - b.minTs);
  }

  /** Stop appending to `bucket` (later rows of its minute start a new bucket); it stays readable until `release`. */
  freeze(bucket: MinuteBucket): void {
    if (this.buckets.get(bucket.minTs) === bucket) this.buckets.delete(bucket.minTs);
    this.frozen.add(bucket);
    this.observer?.frozen(bucket.serial);
  }

  /** Frozen buckets, oldest first. */
  frozenBuckets(): MinuteBucket[] {
    return [...this.frozen].sort((a, b) => a.minTs - b.minTs);
  }

  /** Forget a frozen bucket whose rows are now served by a published segment. */
  release(bucket: MinuteBucket): void {
    this.frozen.delete(bucket);
    bucket.retire();
    this.observer?.released(bucket.serial);
  }

  /** The engine closed: every bucket's columns become garbage with it (see MinuteBucket.retire). */
  retireAll(): void {
    retire([...this.buckets.values(), ...this.frozen].flatMap((b) => b.columns()));
  }

  /** Rows held, live and frozen. */
  get rows(): number {
    let n = 0;
    for (const b of this.buckets.values()) n += b.rowCount;
    for (const b of this.frozen) n += b.rowCount;
    return n;
  }

  stats(): HeadStats {
    let rows = 0;
    let bytes = 0;
    let minTs: number | null = null;
    let maxTs: number | null = null;
    for (const b of [...this.buckets.values(), ...this.frozen]) {
      rows += b.rowCount;
      bytes += b.estimateBytes();
      minTs = minTs === null ? b.minTs : Math.min(minTs, b.minTs);
      maxTs = maxTs === null ? b.maxTs : Math.max(maxTs, b.maxTs);
    }
    for (const d of this.dictionaries) bytes += d.estimateBytes();
    return { rows, buckets: this.buckets.size + this.frozen.size, bytes, minTs, maxTs };
  }
}
