/**
 * limits.ts — every bound tallydb enforces, in one place.
 *
 * Invariant: no input can make tallydb use unbounded memory or time; each such input meets one of these limits
 * and gets an error with a stable code (see errors.ts). A deployment may lower or raise them through
 * `open({ limits })`; the defaults below are sized for a 2-core, 24 GiB machine.
 */

export interface Limits {
  /** Events in one `ingest` call. */
  maxBatchEvents: number;
  /** UTF-8 bytes of one dimension value. */
  maxDimensionValueBytes: number;
  /** Distinct values of one dimension held by one datasource's head dictionary. */
  maxDimensionCardinality: number;
  /** Characters of a dedup key. */
  maxDedupKeyLength: number;
  /** Dedup keys remembered per datasource; past it the oldest sub-window is forgotten early (see docs/ingest.md). */
  maxDedupKeys: number;
  /** How far ahead of the engine clock an event's timestamp may be. */
  futureToleranceMs: number;
  /** Datasources per engine. */
  maxDatasources: number;
  /** Dimensions, and metrics, per datasource. */
  maxDimensions: number;
  maxMetrics: number;
  /** Nodes in one filter tree, and its nesting depth. */
  maxFilterNodes: number;
  maxFilterDepth: number;
  /** Values in one `in` filter. */
  maxInValues: number;
  /** Aggregations plus post-aggregations in one query. */
  maxAggregations: number;
  /** Group-by dimensions in one query. */
  maxGroupByDimensions: number;
  /** Result groups (rows before `limit`) one query may build. */
  maxGroups: number;
  /** Characters of one SQL statement. */
  maxSqlLength: number;
  /** Segments that may fail their checks at open before open stops instead of quarantining them. */
  maxBrokenSegments: number;
  /** Wall time one query may run before it is cancelled with QUERY_TIMEOUT. */
  queryTimeoutMs: number;
  /** Queries running at once in the daemon; more get TOO_MANY_QUERIES. */
  maxConcurrentQueries: number;
  /** Bytes of one HTTP request body. */
  maxBodyBytes: number;
  /** Bytes queued for the WAL before ingest is refused with INGEST_OVERLOADED. */
  maxWalBacklogBytes: number;
  /**
   * Rows of one day segment written by compaction. A day holding more stays as its hour segments (24 for a full
   * day), so no merge — and no segment's decoded column — grows with the daily volume (docs/compaction.md).
   */
  maxSegmentRows: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxBatchEvents: 100_000,
  maxDimensionValueBytes: 1024,
  maxDimensionCardinality: 10_000_000,
  maxDedupKeyLength: 256,
  maxDedupKeys: 50_000_000,
  futureToleranceMs: 60 * 60 * 1000,
  maxDatasources: 1024,
  maxDimensions: 64,
  maxMetrics: 64,
  maxFilterNodes: 10_000,
  maxFilterDepth: 32,
  maxInValues: 100_000,
  maxAggregations: 64,
  maxGroupByDimensions: 8,
  maxGroups: 1_000_000,
  maxSqlLength: 64 * 1024,
  maxBrokenSegments: 10,
  queryTimeoutMs: 30_000,
  maxConcurrentQueries: 16,
  maxBodyBytes: 64 * 1024 * 1024,
  maxWalBacklogBytes: 256 * 1024 * 1024,
  maxSegmentRows: 16_000_000,
});

/**
 * Parsed SQL statements kept per process (query/sql.ts), so a dashboard's repeated statement skips node-sql-parser
 * (about 0.5 ms for the seed query on this machine): at most `entries` statements of at most `maxChars` characters
 * each, least recently used dropped first. Not per-engine: a parse depends on the text alone.
 */
export const SQL_PARSE_CACHE = Object.freeze({ entries: 256, maxChars: 4096 });

/**
 * Per-reader partial results of queries without group-by (query/result-cache.ts): at most `keysPerReader` distinct
 * plans (filter, aggregations, bucketing) per head bucket or segment, the least recently used dropped first. An
 * entry is a few numbers, held weakly by its reader. `open({ resultCache: false })` turns the cache off.
 */
export const READER_RESULT_CACHE = Object.freeze({ keysPerReader: 32 });

/**
 * Sealing a head bucket (storage/store.ts): a bucket of at least `workerMinRows` rows is encoded into its segment
 * in the seal pool (compact/pool.ts, `workerThreads` threads), off the engine's thread, which then only copies the
 * bucket's columns (0.07 ms for 2,048 rows, 0.2 ms for 7,000, against ~0.5 ms and more to encode them; scratch
 * measurements, 2026-12-01); a smaller one on the engine's thread, where its encoding is short and a small engine
 * (tests, a quiet datasource) starts no worker thread for it. With compaction workers set to 0 every bucket is
 * encoded on the engine's thread. So is every bucket while the head is over its budget (`headBytes`): the workers
 * run at a background priority beside the merges (priority.ts), and at 100M events, with every large bucket sent to
 * a worker, sealing fell behind, the engine refused 9,551 batches with INGEST_OVERLOADED and peaked at 4.9 GiB RSS.
 * Over budget the engine's thread encodes: its seals are the quickest, and ingest slows down as sealing needs.
 *
 * Once the head holds over `batchFromHeadFraction` of its budget, or a flush waits, buckets ready together are
 * sealed up to `batchBuckets` at a time: their files are synced side by side and named by one manifest change.
 * Under the suite's load at 100M events a seal's file and manifest took ~83 ms of fsyncs (median) against ~30 ms to
 * encode it, so one bucket at a time sealed ~7 minutes a second while ingest filled ~15. Below that fraction one
 * bucket is sealed at a time: sealing is not urgent, and every bucket sealed during a bulk load takes CPU from
 * ingest (the 10M-event suite load, whose head stays under the budget: with batches from the start, 703 seals
 * during the load and 1.04–1.09 M events/s; from half the budget 237 and 1.13–1.17; from three quarters 103–107 and
 * 1.17–1.25, as with one bucket at a time throughout — the rest are sealed at flush). At 100M events (first 30M)
 * the last two both load at 1.08–1.09 M events/s with no seal on the engine's thread. Two seal threads encode a
 * batch on both cores when the engine's thread waits (the 10M suite's flush of 1,330 buckets: 6.6–7.4 s with one,
 * worker-bound; 5.2 s with two); one bucket at a time occupies one. A batch also ends at `batchRows` rows: each
 * bucket's columns are copied for the workers, and at 100M events 32 buckets are 2.2M rows (~100 MB in flight).
 */
export const SEAL_ENCODING = Object.freeze({ workerMinRows: 2048, batchBuckets: 32, batchRows: 500_000, batchFromHeadFraction: 0.75, workerThreads: 2 });

/**
 * The WAL writer frames each group of records into one buffer it keeps from group to group (wal/wal.ts) — up to
 * `keptBytes`; a larger group gets a buffer of its own, dropped after its write. A fresh buffer per record and per
 * group cost the engine's thread a page fault for every 4 KiB of them: glibc maps allocations of 128 KiB and more
 * afresh (cli/node-flags.ts), and a 10k-event record is ~190 KiB (docs/benchmarks.md, "Thirteenth session").
 */
export const WAL_GROUP_BUFFER = Object.freeze({ keptBytes: 8 * 1024 * 1024 });

/**
 * WAL records are packed into buffers the codec keeps (wal/record.ts), each held by one record until it is
 * compressed: `initialBytes` each at first (a 10k-event record packs to ~190 KiB), twice a record that did not fit
 * after one did not, and up to `idle` of them kept between records. Packed where msgpackr packs by itself, a record
 * filled its shared buffer every few batches and the new one's pages were faulted in on the engine's thread.
 */
export const WAL_PACK_BUFFERS = Object.freeze({ initialBytes: 512 * 1024, idle: 8 });

/**
 * The head's column blocks of `minBytes` up to `maxBytes` (a minute bucket of ~3,500 to ~27,000 rows of the suite's
 * shape) are made ahead for each of the `sizes` sizes asked for last, `batchBytes` of them at a time, and their pages
 * faulted in on libuv's thread pool while the blocks before fill (head/column-memory.ts): the engine's thread then
 * appends into memory that is already there. Below `minBytes` a block comes from glibc's heap (its mmap threshold is
 * 128 KiB, cli/node-flags.ts), whose calloc zeroes it — faulting its pages in — where it is made. Above `maxBytes`
 * faulting a block in whole costs memory: at the 100M suite's density a minute outgrows its 2.5 MiB block into one of
 * 5 MiB that it half fills, and 30M events loaded at that density peaked at 2.35–2.39 GiB RSS with blocks up to 8 MiB
 * made ahead, 1.93–1.96 GiB without (docs/benchmarks.md, "Fifteenth session"). At most `sizes × batchBytes` waits.
 */
export const HEAD_BLOCKS_AHEAD = Object.freeze({ minBytes: 128 * 1024, maxBytes: 1024 * 1024, sizes: 2, batchBytes: 2 * 1024 * 1024 });

/**
 * The column sets of batches ingest columnizes on the engine's thread (ingest/columns.ts), given back when a batch is
 * committed or aborted: up to `idle` of them wait for the next batches (each as big as the largest batch it held:
 * ~560 KB at 10k events of the suite's datasource, ~5.6 MB at the 100k-event limit).
 */
export const COLUMN_SETS = Object.freeze({ idle: 8 });

/** Merge user overrides over the defaults; every override must be a positive integer. */
export function resolveLimits(overrides: Partial<Limits> | undefined, fail: (message: string) => never): Limits {
  const limits: Limits = { ...DEFAULT_LIMITS };
  if (overrides === undefined) return limits;
  for (const [key, value] of Object.entries(overrides)) {
    if (!(key in DEFAULT_LIMITS)) fail(`limits.${key}: unknown limit; want one of ${Object.keys(DEFAULT_LIMITS).join(', ')}`);
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
      fail(`limits.${key}: got ${String(value)}; want a positive integer`);
    }
    (limits as unknown as Record<string, number>)[key] = value;
  }
  return limits;
}
