/**
 * db.ts — the engine: open, datasources, ingest, query, close. The one module that knows every subsystem.
 *
 * Invariants:
 *  - After `ingest` resolves, every accepted event is visible to `query` and `sql` (read-your-writes).
 *  - After `close` resolves, every call fails with ENGINE_CLOSED and the engine holds no timers, threads or files.
 *  - Queries see each reader as of one instant: a reader is read synchronously from start to end.
 *
 * Modes: `{ memory: true }` keeps everything in the head — no files, no threads, opened in microseconds — for
 * tests and benchmarks. `{ dir }` (durable: WAL, segment files, recovery) is built by the durability work; the
 * ingest pipeline already separates deciding a batch (`prepare`) from publishing it (`commit`) so the WAL write
 * slots in between.
 */
import { TallyError } from './errors.js';
import { resolveLimits, type Limits } from './limits.js';
import { IngestPipeline, type IngestResult, type PreparedBatch } from './ingest/pipeline.js';
import type { EventColumns } from './ingest/columns.js';
import { resolveDatasource, sameDatasource, datasourceToSpec, type Datasource, type DatasourceSpec } from './schema/datasource.js';
import type { Query, QueryResult } from './query/shape.js';
import { runQuery, runSql, type QuerySource } from './query/run.js';
import type { HeadStats } from './head/head.js';
import type { DedupStats } from './ingest/dedup.js';
import { NODE_FS, type FileSystem } from './storage/fs.js';
import type { SegmentReader } from './query/reader.js';
import { GlobalIdSpace } from './query/global-ids.js';
import { Store, type StorageObserver, type StoreStats } from './storage/store.js';
import type { FsyncMode } from './wal/wal.js';
import type { MergePlan } from './compact/planner.js';
import * as path from 'node:path';

export interface OpenOptions {
  /** Keep all data in memory: no files, no threads. */
  memory?: boolean;
  /** Data directory for durable mode. */
  dir?: string;
  /** Durable mode: when an acknowledged batch is on disk (docs/durability.md). Default 'always'. */
  fsync?: FsyncMode;
  /** Durable mode, fsync 'interval': the fsync period in ms. Default 100. */
  fsyncIntervalMs?: number;
  /** Durable mode: start a new WAL file past this size. Default 64 MiB. */
  walSegmentBytes?: number;
  /** Durable mode: memory for decoded segment data (an LRU cache). Default 1 GiB. */
  cacheBytes?: number;
  /** Durable mode: head memory budget; past it the oldest minutes are sealed early. Default 512 MiB. */
  headBytes?: number;
  /** Durable mode: at open, move a damaged WAL tail aside and drop missing segments instead of stopping. */
  repair?: boolean;
  /** Durable mode, advanced: the file system to use (tests pass a fault-injecting one). Default: node:fs. */
  fileSystem?: FileSystem;
  /** Durable mode, tests only: called after each named step of sealing and checkpointing; may throw. */
  testHooks?: { step?: (name: string) => void | Promise<void>; mergeFault?: (plan: MergePlan) => 'throw' | 'exit' | undefined; sealWorkerMinRows?: number; sealFault?: (rows: number) => 'throw' | 'exit' | undefined };
  /** Durable mode: observer of each WAL fsync's duration in seconds (the daemon's metrics use it). */
  onWalSync?: (seconds: number) => void;
  /**
   * Durable mode: background compaction (docs/compaction.md). `workers`: merge threads, default 1, 0 turns merging
   * off (retention still runs); `intervalMs`: how often it looks for work besides after each seal, default 10000;
   * `auto: false` runs merges and retention only when `compact()` is called.
   */
  compaction?: { workers?: number; intervalMs?: number; auto?: boolean };
  /** Overrides of the defaults in limits.ts. */
  limits?: Partial<Limits>;
  /** The engine clock (epoch ms) used for `now()` in SQL and the future-timestamp check; default Date.now. */
  clock?: () => number;
  /**
   * Keep what each head bucket or segment contributed to a query without group-by and reuse it while the reader's
   * rows are unchanged (query/result-cache.ts; answers are the same either way). Default true; benchmarks that
   * repeat one query to time its computation turn it off.
   */
  resultCache?: boolean;
}

export interface DatasourceStats {
  name: string;
  rows: number;
  /** Newest accepted event time, or null before the first. */
  watermark: number | null;
  head: HeadStats;
  dedup: DedupStats | null;
  /** Bytes of memory the datasource holds (head columns, bitmaps, dictionaries, dedup sets), estimated. */
  memoryBytes: number;
  /** Durable mode: segments of this datasource and the engine's WAL and cache; null in memory mode. */
  storage: StoreStats | null;
  /** Durable mode: minutes waiting to be sealed into segments. */
  sealBacklogMinutes: number;
}

export class Tally {
  private readonly pipelines = new Map<string, IngestPipeline>();
  /** Query-wide value ids per datasource (query/global-ids.ts), kept across queries; tied to the pipeline. */
  private readonly globalIdSpaces = new WeakMap<IngestPipeline, GlobalIdSpace>();
  private closed = false;
  /** What queries read through (query/run.ts). */
  private readonly source: QuerySource;

  /** @internal use `open()` */
  constructor(private readonly limits: Limits, private readonly clock: () => number, private readonly store: Store | null = null, resultCache = true) {
    if (store !== null) for (const p of store.pipelines()) this.pipelines.set(p.ds.name, p);
    this.source = {
      limits, clock, resultCache,
      datasource: (name) => this.pipeline(name).ds,
      globals: (name) => this.globalIds(this.pipeline(name)),
      withReaders: (name, from, to, run) => this.withReaders(name, from, to, run),
    };
  }

  private check(): void {
    if (this.closed) throw new TallyError('ENGINE_CLOSED', 'the engine is closed; open a new one');
  }

  private pipeline(name: string): IngestPipeline {
    const p = this.pipelines.get(name);
    if (p === undefined) {
      throw new TallyError('DATASOURCE_NOT_FOUND', `datasource '${String(name)}' does not exist; create it first (have: ${[...this.pipelines.keys()].join(', ') || 'none'})`, { datasource: name });
    }
    return p;
  }

  /** Create a datasource; creating one that exists with the same definition is a no-op. */
  async createDatasource(spec: DatasourceSpec): Promise<DatasourceSpec> {
    this.check();
    const ds = resolveDatasource(spec, this.limits);
    const existing = this.pipelines.get(ds.name);
    if (existing !== undefined) {
      if (!sameDatasource(existing.ds, ds)) {
        throw new TallyError('DATASOURCE_EXISTS', `datasource '${ds.name}' exists with a different definition`, { datasource: ds.name });
      }
      return datasourceToSpec(ds);
    }
    if (this.pipelines.size >= this.limits.maxDatasources) {
      throw new TallyError('TOO_MANY_DATASOURCES', `the engine holds ${this.pipelines.size} datasources; want at most ${this.limits.maxDatasources}`);
    }
    const pipeline = new IngestPipeline(ds, this.limits, this.clock);
    if (this.store !== null) {
      if (this.store.failed !== null) throw this.store.failed;
      await this.store.createDatasource(ds, pipeline);
      // A concurrent call may have created it while the manifest was written.
      const raced = this.pipelines.get(ds.name);
      if (raced !== undefined) return datasourceToSpec(raced.ds);
    }
    this.pipelines.set(ds.name, pipeline);
    return datasourceToSpec(ds);
  }

  getDatasource(name: string): DatasourceSpec {
    this.check();
    return datasourceToSpec(this.pipeline(name).ds);
  }

  /** The resolved definition of a datasource (durations in ms), as ingest uses it. */
  datasourceDefinition(name: string): Datasource {
    this.check();
    return this.pipeline(name).ds;
  }

  listDatasources(): DatasourceSpec[] {
    this.check();
    return [...this.pipelines.values()].map((p) => datasourceToSpec(p.ds));
  }

  /**
   * Ingest a batch. Resolves with how many events were accepted, how many were duplicates of already accepted
   * ones (by the dedup key), and each rejected event's index, code and message. Throws only when the batch as a
   * whole is unusable (not an array, too large) or the datasource does not exist.
   */
  async ingest(datasource: string, events: unknown): Promise<IngestResult> {
    return this.ingestWith(datasource, (p) => p.prepare(events));
  }

  /**
   * Ingest a batch already validated into columns (phase A of ingest, `columnize`, which the daemon runs in worker
   * threads). Same outcome as `ingest` of the events the columns came from.
   */
  async ingestColumns(datasource: string, cols: EventColumns): Promise<IngestResult> {
    return this.ingestWith(datasource, (p) => p.decide(cols));
  }

  private async ingestWith(datasource: string, decide: (p: IngestPipeline) => Promise<PreparedBatch>): Promise<IngestResult> {
    this.check();
    const p = this.pipeline(datasource);
    const refuse = (overload: string): TallyError =>
      new TallyError('INGEST_OVERLOADED', `ingest refused, nothing was accepted: ${overload}; retry shortly`, { retryAfterSeconds: 1 });
    const before = this.store?.overload() ?? null;
    if (before !== null) throw refuse(before);
    const prepared = await decide(p);
    if (this.closed) {
      // close() ran while a large batch was being prepared: nothing of it is committed.
      p.abort(prepared);
      prepared.release();
      throw new TallyError('ENGINE_CLOSED', 'the engine was closed while the batch was being prepared; nothing of it was accepted');
    }
    // Asked again: batches decide one at a time, so a batch may have waited its turn while the ones before it filled
    // the WAL queue. Refused now, it is aborted (its keys forgotten) before anything of it is written.
    const after = this.store?.overload() ?? null;
    if (after !== null) {
      p.abort(prepared);
      prepared.release();
      throw refuse(after);
    }
    if (this.store === null || prepared.rows.length === 0) {
      p.commit(prepared);
      prepared.release();
      return prepared.result;
    }
    // Acknowledged ⇒ durable: commit (make visible) only once the WAL record is durable; abort on failure.
    let ticket: { lsn: number; done: Promise<number> };
    let seq: number;
    try {
      ticket = this.store.write(p.ds, prepared);
      seq = await ticket.done;
    } catch (e) {
      p.abort(prepared);
      prepared.release();
      throw e;
    }
    // One event-loop turn first: a group commit resolves several batches at once, and their head appends (about a
    // millisecond each at 10k rows) should not run back to back ahead of a query that arrived meanwhile.
    await new Promise((resolve) => setImmediate(resolve));
    p.commit(prepared);
    this.store.committed(p, prepared, ticket.lsn, seq);
    // The head copied the rows and the WAL record was packed from them when written: the columns are free again.
    prepared.release();
    return prepared.result;
  }

  /** The readers of a query's range, held (their files kept) until the query is done with them. */
  private async withReaders<T>(name: string, from: number, to: number, run: (readers: SegmentReader[]) => Promise<T>): Promise<T> {
    if (this.store === null) return run(this.pipeline(name).head.readers(from, to));
    const snap = this.store.acquire(name, from, to);
    try {
      return await run(snap.readers);
    } finally {
      snap.release();
    }
  }

  /** Durable mode: seal every head minute into segment files now (memory mode: nothing to do). */
  async flush(): Promise<void> {
    this.check();
    await this.store?.flush();
  }

  /**
   * Durable mode: run retention and compaction merges now, until none is left to do (docs/compaction.md); the
   * daemon does this in the background. Memory mode: nothing to do.
   */
  async compact(): Promise<void> {
    this.check();
    await this.store?.compact();
  }

  private globalIds(p: IngestPipeline): GlobalIdSpace {
    let g = this.globalIdSpaces.get(p);
    if (g === undefined) this.globalIdSpaces.set(p, (g = new GlobalIdSpace()));
    return g;
  }

  /** Run a JSON query (docs/query.md). */
  async query(q: Query): Promise<QueryResult> {
    this.check();
    return runQuery(this.source, q);
  }

  /** Run a SQL query (docs/query.md#sql); columns come in SELECT order under their SQL names. */
  async sql(text: string): Promise<QueryResult> {
    this.check();
    return runSql(this.source, text);
  }

  /**
   * @internal Durable mode: tell `observer` the datasources, heads and segment lists now and every change from now
   * on (the daemon's query thread, replica/feed.ts). Memory mode: nothing to follow.
   */
  follow(observer: StorageObserver): void {
    this.check();
    this.store?.observe(observer);
  }

  stats(datasource: string): DatasourceStats {
    this.check();
    const p = this.pipeline(datasource);
    const head = p.head.stats();
    const dedup = p.dedup?.stats() ?? null;
    const storage = this.store?.stats(datasource) ?? null;
    return {
      name: datasource, rows: head.rows + (storage?.segmentRows ?? 0), watermark: p.watermark, head, dedup,
      memoryBytes: head.bytes + (dedup?.bytes ?? 0), storage, sealBacklogMinutes: this.store?.sealBacklog(datasource) ?? 0,
    };
  }

  /** How recovery went at open (durable mode): WAL records replayed, torn bytes cut, leftovers removed. */
  get recovery(): Store['recovery'] | null {
    return this.store?.recovery ?? null;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.store?.close();
    for (const p of this.pipelines.values()) p.head.retireAll();
    this.pipelines.clear();
  }
}

/** Open an engine. `{ memory: true }` for an in-memory engine (tests, benchmarks). */
export async function open(options: OpenOptions = {}): Promise<Tally> {
  const fail = (message: string): never => {
    throw new TallyError('OPTIONS_INVALID', `open: ${message}`);
  };
  if (typeof options !== 'object' || options === null) fail('want an options object such as { memory: true }');
  const known = ['memory', 'dir', 'limits', 'clock', 'fsync', 'fsyncIntervalMs', 'walSegmentBytes', 'cacheBytes', 'headBytes', 'repair', 'fileSystem', 'testHooks', 'onWalSync', 'compaction', 'resultCache'];
  for (const k of Object.keys(options)) if (!known.includes(k)) fail(`unknown option '${k}'; want one of ${known.join(', ')}`);
  if (options.memory === true && options.dir !== undefined) fail('choose { memory: true } or { dir }, not both');
  if (options.memory !== true && (typeof options.dir !== 'string' || options.dir.length === 0)) fail('want { memory: true } or { dir: "path" }');
  if (options.clock !== undefined && typeof options.clock !== 'function') fail('clock: want a function returning epoch ms');
  if (options.fsync !== undefined && !['always', 'interval', 'none'].includes(options.fsync)) fail(`fsync: got ${JSON.stringify(options.fsync)}; want 'always', 'interval' or 'none'`);
  const positive = (name: keyof OpenOptions, fallback: number): number => {
    const v = options[name];
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) fail(`${name}: got ${JSON.stringify(v)}; want a positive integer`);
    return v as number;
  };
  const limits = resolveLimits(options.limits, fail);
  const compaction = options.compaction ?? {};
  if (typeof compaction !== 'object' || compaction === null) fail('compaction: want an object { workers, intervalMs }');
  for (const k of Object.keys(compaction)) if (!['workers', 'intervalMs', 'auto'].includes(k)) fail(`compaction.${k}: unknown option; want workers, intervalMs or auto`);
  if (compaction.auto !== undefined && typeof compaction.auto !== 'boolean') fail(`compaction.auto: got ${JSON.stringify(compaction.auto)}; want true or false`);
  const workers = compaction.workers ?? 1;
  if (!Number.isSafeInteger(workers) || workers < 0 || workers > 64) fail(`compaction.workers: got ${JSON.stringify(workers)}; want an integer 0..64`);
  const intervalMs = compaction.intervalMs ?? 10_000;
  if (!Number.isSafeInteger(intervalMs) || intervalMs <= 0) fail(`compaction.intervalMs: got ${JSON.stringify(intervalMs)}; want a positive integer`);
  if (options.resultCache !== undefined && typeof options.resultCache !== 'boolean') fail(`resultCache: got ${JSON.stringify(options.resultCache)}; want true or false`);
  const resultCache = options.resultCache !== false;
  const clock = options.clock ?? Date.now;
  if (options.memory === true) return new Tally(limits, clock, null, resultCache);
  const store = await Store.open({
    dir: path.resolve(options.dir!),
    fs: options.fileSystem ?? NODE_FS,
    fsync: options.fsync ?? 'always',
    fsyncIntervalMs: positive('fsyncIntervalMs', 100),
    walSegmentBytes: positive('walSegmentBytes', 64 * 1024 * 1024),
    cacheBytes: positive('cacheBytes', 1024 * 1024 * 1024),
    headBytes: positive('headBytes', 512 * 1024 * 1024),
    repair: options.repair === true,
    clock,
    compactionWorkers: workers,
    compactionIntervalMs: intervalMs,
    compactionAuto: compaction.auto !== false,
    ...(options.testHooks?.mergeFault ? { mergeFault: options.testHooks.mergeFault } : {}),
    ...(options.testHooks?.sealWorkerMinRows !== undefined ? { sealWorkerMinRows: options.testHooks.sealWorkerMinRows } : {}),
    ...(options.testHooks?.sealFault ? { sealFault: options.testHooks.sealFault } : {}),
    ...(options.testHooks?.step ? { step: options.testHooks.step } : {}),
    ...(options.onWalSync ? { onWalSync: options.onWalSync } : {}),
  }, limits, (ds) => new IngestPipeline(ds, limits, clock));
  return new Tally(limits, clock, store, resultCache);
}
