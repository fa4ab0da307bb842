/**
 * storage/store.ts — durable storage under one data directory: WAL, sealed segments, manifest, recovery.
 *
 * Invariants:
 *  - Acknowledged ⇒ durable: a batch is committed to the head only after its WAL record is durable per the fsync
 *    mode; a batch whose write failed is never committed (and never replayed).
 *  - Exactly once: every accepted row is, at every instant and after any crash, in exactly one of {a published
 *    segment, the WAL}, and it is counted once. Sealing freezes a head bucket at the committed LSN L; its segment
 *    records L; replay skips a row of (datasource, minute) whose record LSN is ≤ the highest L sealed for that minute.
 *  - A WAL file is deleted only after every row of every record in it is in a segment listed by a durable manifest.
 *  - A segment is visible to queries exactly when the in-memory manifest lists it; the swap from head bucket to
 *    segment, and from a merge's inputs to its output, is synchronous, so no query sees both or neither.
 *  - A segment file leaves the disk only after a durable manifest no longer lists it and no running query reads it
 *    (queries hold a snapshot: `acquire` … `release`).
 *  - Compaction and retention change which files hold the rows, never which rows exist (retention drops whole
 *    segments past the datasource's TTL, documented as dropped). Merges run in worker threads (compact/pool.ts).
 *
 * Layout of the directory (docs/durability.md): MANIFEST, LOCK, wal/NNNNNNNN.log, segments/<datasource>/NNNNNNNNNN.seg,
 * quarantine/ (damaged segments), wal/aside/ (what a WAL repair moved away).
 */
import * as path from 'node:path';
import { TallyError } from '../errors.js';
import type { IngestPipeline, PreparedBatch } from '../ingest/pipeline.js';
import type { SegmentReader } from '../query/reader.js';
import { resolveDatasource, datasourceToSpec, type Datasource } from '../schema/datasource.js';
import { SEAL_ENCODING, type Limits } from '../limits.js';
import { BlockCache } from '../segment/cache.js';
import { buildSegment, readFooter, sealedMinutes, type SegmentFooter } from '../segment/format.js';
import { MergePool, SealPool } from '../compact/pool.js';
import { sealInputOf } from '../segment/seal-input.js';
import { compactionBacklog, expiredSegments, planMerge, type MergePlan, type PlanContext } from '../compact/planner.js';
import { acquireRange, DiskSegment, packsTimestamps } from '../segment/reader.js';
import { MINUTE_MS } from '../time.js';
import { encodeBatchAsync } from '../wal/record.js';
import { replayWal } from '../wal/replay.js';
import { WalWriter, walFileName, walFileSeq, type FsyncMode } from '../wal/wal.js';
import { publishFile, writeSynced, type FileSystem } from './fs.js';
import { decodeManifest, emptyManifest, encodeManifest, MANIFEST_FILE, type Manifest, type SegmentEntry } from './manifest.js';

export interface StoreOptions {
  dir: string;
  fs: FileSystem;
  fsync: FsyncMode;
  fsyncIntervalMs: number;
  walSegmentBytes: number;
  /** Budget of decoded segment data held in memory. */
  cacheBytes: number;
  /** Budget of head memory; past it the oldest minutes are sealed even if still open. */
  headBytes: number;
  /** Move damaged WAL tails aside and drop missing segments instead of stopping. */
  repair: boolean;
  /** Test hook: called after each named step of sealing and checkpointing; may throw to simulate a crash. */
  step?: (name: string) => void | Promise<void>;
  /** Observer of each WAL fsync's duration in seconds (metrics). */
  onWalSync?: (seconds: number) => void;
  /** Engine clock (epoch ms): retention cutoffs. */
  clock: () => number;
  /** Worker threads for compaction merges; 0 turns compaction off (retention still runs). */
  compactionWorkers: number;
  /** How often compaction and retention look for work even when nothing is sealed (ms). */
  compactionIntervalMs: number;
  /** Merge in the background (after seals and on the interval); false: only when `compact()` is called. */
  compactionAuto: boolean;
  /** Test hook: make a merge fail in its worker ('throw') or end the worker thread ('exit'). */
  mergeFault?: (plan: MergePlan) => 'throw' | 'exit' | undefined;
  /** Test hook: the bucket size from which seals are encoded in the seal worker (limits.ts SEAL_ENCODING). */
  sealWorkerMinRows?: number;
  /** Test hook: make a seal's encoding fail in its worker ('throw') or end the worker thread ('exit'). */
  sealFault?: (rows: number) => 'throw' | 'exit' | undefined;
}

export interface CompactionStats {
  /** Merges the planner would run now, one after another, for this datasource. */
  backlog: number;
  merges: number;
  failures: number;
  lastMerge: { at: number; level: string; inputs: number; rowsIn: number; rowsOut: number; bytesIn: number; bytesOut: number; ms: number } | null;
  lastError: string | null;
  /** Bytes of segment files deleted after merges and retention, in total. */
  bytesReclaimed: number;
  /** Rows read and written by rollup merges (their ratio is the rollup ratio). */
  rollupRowsIn: number;
  rollupRowsOut: number;
  /** Segments and rows dropped by retention. */
  retentionDroppedSegments: number;
  retentionDroppedRows: number;
}

/** A minute bucket of the head, as sealing takes it. */
type Bucket = ReturnType<IngestPipeline['head']['liveBuckets']>[number];

/** A seal begun by `beginSeals`: the frozen bucket, the LSN its segment records, and its encoding under way. */
interface SealStart {
  st: DsStorage;
  bucket: Bucket;
  lsn: number;
  encoded: Promise<{ bytes: Buffer; footer: SegmentFooter }>;
}

interface DsStorage {
  pipeline: IngestPipeline;
  segments: DiskSegment[];
  /** Minute → highest LSN sealed into a segment for that minute. */
  sealedLsn: Map<number, number>;
  compaction: CompactionStats;
  /** `packTimestamps`'s last answer and the segment list it was for (see there). */
  packMemo?: { of: DiskSegment[]; length: number; pack: boolean };
}

function newCompactionStats(): CompactionStats {
  return {
    backlog: 0, merges: 0, failures: 0, lastMerge: null, lastError: null, bytesReclaimed: 0, rollupRowsIn: 0, rollupRowsOut: 0,
    retentionDroppedSegments: 0, retentionDroppedRows: 0,
  };
}

/**
 * Told every change of a datasource's segment list at the instant it happens (replica/feed.ts): a new datasource
 * with its pipeline and segments, then segments added and removed. Called synchronously, in the order of the swaps.
 */
export interface StorageObserver {
  datasource(pipeline: IngestPipeline, segments: readonly DiskSegment[]): void;
  segments(ds: string, added: readonly DiskSegment[], removed: readonly DiskSegment[]): void;
}

/** A consistent set of readers for one query; `release` when done so retired segment files can go. */
export interface Snapshot {
  readers: SegmentReader[];
  release(): void;
}

export interface StoreStats {
  segments: number;
  segmentBytes: number;
  segmentRows: number;
  walFiles: number;
  walBacklogBytes: number;
  cacheBytes: number;
  quarantined: { file: string; reason: string }[];
  lastSealError: string | null;
  /** Seals whose segment was encoded in the seal worker, and on the engine's thread (small buckets, a head over budget, or no workers). */
  sealEncodings: { worker: number; inline: number };
  compaction: CompactionStats;
}

const openDirs = new WeakMap<FileSystem, Set<string>>();

/** SEAL_ENCODING.batchRows, which tests lower to batch small buckets by rows (setSealBatchRowsForTests). */
let sealBatchRows: number = SEAL_ENCODING.batchRows;

/**
 * Head bytes a row of `ds` is counted at against the head's budget (`headBytes`): a 2-byte time offset, a 4-byte id
 * a dimension, 8 bytes a metric and 8 for the dedup key's hash — the columns a head bucket holds per row.
 */
export function headBytesPerRow(ds: Datasource): number {
  return 2 + 4 * ds.dimensions.length + 8 * ds.metrics.length + (ds.dedupKey === null ? 0 : 8);
}

/** Tests set the rows at which a seal batch ends; returns the previous value. */
export function setSealBatchRowsForTests(n: number): number {
  const previous = sealBatchRows;
  sealBatchRows = n;
  return previous;
}

export class Store {
  private readonly cache: BlockCache;
  private readonly state = new Map<string, DsStorage>();
  private manifest: Manifest = emptyManifest();
  private manifestChain: Promise<void> = Promise.resolve();
  private wal!: WalWriter;
  private lastLsn = 0;
  private committedLsn = 0;
  /** WAL file → ("datasource\0minute" → highest LSN of a record in the file touching that minute). */
  private readonly walFiles = new Map<number, Map<string, number>>();
  private sealing: Promise<void> | null = null;
  /** Flushes under way: while any is, no merge starts (see flush). */
  private flushing = 0;
  /** Buckets frozen by the running seal loop, not yet published or given up (nextSealJob skips them). */
  private readonly sealsInFlight = new Set<Bucket>();
  private sealRetryAt = 0;
  private lastSealError: string | null = null;
  private readonly quarantined: { file: string; reason: string }[] = [];
  private closed = false;
  private nextId = 1;
  private pool: MergePool | null = null;
  private sealPool: SealPool | null = null;
  /** Seals encoded in the seal worker and on this thread (stats; tests check both paths run). */
  private readonly sealEncodings = { worker: 0, inline: 0 };
  private observer: StorageObserver | null = null;
  private compacting: Promise<void> | null = null;
  /** Segment id → time before which a failed merge of it is not retried. */
  private readonly mergeBackoff = new Map<number, { until: number; failures: number }>();
  private compactTimer: NodeJS.Timeout | null = null;
  private readonly deletions = new Set<Promise<void>>();
  readonly recovery = { walRecords: 0, walRowsReplayed: 0, tornBytes: 0, movedAside: [] as string[], leftoversRemoved: 0, missingDropped: 0 };

  private constructor(private readonly opts: StoreOptions, private readonly limits: Limits) {
    this.cache = new BlockCache(opts.cacheBytes);
  }

  private p(...parts: string[]): string {
    return path.join(this.opts.dir, ...parts);
  }

  private async step(name: string): Promise<void> {
    await this.opts.step?.(name);
  }

  /** Open or create the directory and recover: manifest, segments, WAL replay. */
  static async open(opts: StoreOptions, limits: Limits, makePipeline: (ds: Datasource) => IngestPipeline): Promise<Store> {
    const s = new Store(opts, limits);
    await s.lock();
    try {
      await s.recover(makePipeline);
    } catch (e) {
      await s.unlock();
      throw e;
    }
    return s;
  }

  private async lock(): Promise<void> {
    const fsys = this.opts.fs;
    await fsys.mkdirp(this.opts.dir);
    let dirs = openDirs.get(fsys);
    if (dirs === undefined) openDirs.set(fsys, (dirs = new Set()));
    if (dirs.has(this.opts.dir)) throw new TallyError('DIR_LOCKED', `${this.opts.dir} is already open in this process; close it first`);
    const lockFile = this.p('LOCK');
    if (await fsys.exists(lockFile)) {
      const pid = Number((await fsys.readFile(lockFile)).toString('utf8').trim());
      if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new TallyError('DIR_LOCKED', `${this.opts.dir} is open in process ${pid}; stop it first (or remove ${lockFile} if that process is not tallydb)`, { pid });
      }
    }
    await publishFile(fsys, lockFile, Buffer.from(`${process.pid}\n`));
    dirs.add(this.opts.dir);
  }

  private async unlock(): Promise<void> {
    openDirs.get(this.opts.fs)?.delete(this.opts.dir);
    try {
      await this.opts.fs.unlink(this.p('LOCK'));
    } catch {
      // already gone
    }
  }

  private async recover(makePipeline: (ds: Datasource) => IngestPipeline): Promise<void> {
    const fsys = this.opts.fs;
    if (await fsys.exists(this.p(MANIFEST_FILE))) this.manifest = decodeManifest(await fsys.readFile(this.p(MANIFEST_FILE)));
    if (await fsys.exists(this.p(`${MANIFEST_FILE}.tmp`))) await fsys.unlink(this.p(`${MANIFEST_FILE}.tmp`));
    for (const spec of this.manifest.datasources) {
      const ds = resolveDatasource(spec, this.limits);
      this.state.set(ds.name, { pipeline: makePipeline(ds), segments: [], sealedLsn: new Map(), compaction: newCompactionStats() });
    }
    this.nextId = this.manifest.nextSegmentId;
    let manifestChanged = false;

    // Segment files: every listed one must exist; unlisted ones are leftovers of an interrupted publish.
    const listed = new Map(this.manifest.segments.map((e) => [e.file, e]));
    const onDisk = new Set<string>();
    for (const dsDir of await fsys.list(this.p('segments'))) {
      for (const name of await fsys.list(this.p('segments', dsDir))) {
        const rel = path.join('segments', dsDir, name);
        if (listed.has(rel)) {
          onDisk.add(rel);
        } else {
          await fsys.unlink(this.p(rel));
          this.recovery.leftoversRemoved++;
        }
      }
      if (this.recovery.leftoversRemoved > 0) await fsys.syncDir(this.p('segments', dsDir));
    }
    const missing = this.manifest.segments.filter((e) => !onDisk.has(e.file));
    if (missing.length > 0) {
      if (!this.opts.repair) {
        throw new TallyError('SEGMENT_MISSING',
          `the manifest lists ${missing.length} segment file(s) that do not exist, first ${missing[0]!.file} (${missing[0]!.rows} rows of '${missing[0]!.datasource}'). Restore the file(s) from a backup, or reopen with { repair: true } to drop them from the manifest and lose their rows`,
          { files: missing.map((e) => e.file) });
      }
      this.manifest = { ...this.manifest, segments: this.manifest.segments.filter((e) => onDisk.has(e.file)) };
      this.recovery.missingDropped = missing.length;
      manifestChanged = true;
    }

    // Open segments: footers are checked now, sections when first read.
    const broken: { entry: SegmentEntry; reason: string }[] = [];
    for (const entry of this.manifest.segments) {
      const st = this.state.get(entry.datasource);
      if (st === undefined) throw new TallyError('MANIFEST_CORRUPT', `MANIFEST lists segment ${entry.file} of unknown datasource '${entry.datasource}'`);
      try {
        const f = fsys.openRead(this.p(entry.file));
        let footer;
        try {
          footer = readFooter(f.size, (pos, len) => f.read(pos, len));
        } finally {
          f.close();
        }
        st.segments.push(this.segment(entry, footer));
      } catch (e) {
        broken.push({ entry, reason: (e as Error).message });
      }
    }
    if (broken.length > this.limits.maxBrokenSegments) {
      throw new TallyError('TOO_MANY_BROKEN_SEGMENTS', `${broken.length} segments failed their checks at open (limit ${this.limits.maxBrokenSegments}), first ${broken[0]!.entry.file}: ${broken[0]!.reason}. Check the disk; nothing was changed`, { files: broken.map((b) => b.entry.file) });
    }
    for (const b of broken) {
      await this.moveToQuarantine(b.entry);
      this.quarantined.push({ file: b.entry.file, reason: b.reason });
      manifestChanged = true;
    }
    if (broken.length > 0) this.manifest = { ...this.manifest, segments: this.manifest.segments.filter((e) => !broken.some((b) => b.entry === e)) };
    for (const st of this.state.values()) {
      st.segments.sort((a, b) => a.minTs - b.minTs || a.id - b.id);
      for (const seg of st.segments) st.pipeline.restoreWatermark(seg.footer.eventMaxTs ?? seg.maxTs);
    }

    // Dedup keys of rows already in segments (the WAL that carried them may be gone). The watermark from segments
    // alone is at most the final one, so this reads every segment the final window needs (and perhaps a few more,
    // whose keys the window then drops). It runs before replay so that a segment found damaged here is
    // quarantined before its minutes count as sealed, and replay can still recover its rows from the WAL.
    for (const st of this.state.values()) {
      const wm = st.pipeline.watermark;
      const ds = st.pipeline.ds;
      if (ds.dedupKey === null || wm === null) continue;
      for (const seg of [...st.segments]) {
        if (seg.maxTs < wm - ds.dedupWindowMs) continue;
        try {
          st.pipeline.restoreFromSegment(seg.timestamps(), seg.keyHashes(), seg.rowCount);
        } catch (e) {
          // A damaged section: the segment has been quarantined (and reported); open carries on without it.
          if (!(e instanceof TallyError && e.code === 'SEGMENT_CORRUPT')) throw e;
        }
      }
    }
    for (const st of this.state.values()) for (const seg of st.segments) this.noteSealed(st, sealedMinutes(seg.footer));

    // Replay the WAL: rows not yet in a segment go back to the head.
    const walDir = this.p('wal');
    const replay = await replayWal(fsys, walDir, { repair: this.opts.repair }, (rec, seq) => {
      const st = this.state.get(rec.ds);
      if (st === undefined) {
        throw new TallyError('WAL_CORRUPT', `WAL file ${walFileName(seq)} holds a record (lsn ${rec.lsn}) for datasource '${rec.ds}', which the manifest does not list`, { file: walFileName(seq), lsn: rec.lsn });
      }
      this.recovery.walRecords++;
      // Rows past retention are not brought back: their segments may have been dropped already.
      this.recovery.walRowsReplayed += st.pipeline.replay(rec, (minute) => rec.lsn <= (st.sealedLsn.get(minute) ?? -1), this.retentionCutoff(st));
      this.track(seq, rec.ds, rec.ts, rec.n, rec.lsn);
      if (rec.lsn > this.lastLsn) this.lastLsn = rec.lsn;
    });
    this.recovery.tornBytes = replay.tornBytes;
    this.recovery.movedAside = replay.movedAside;
    for (const seq of replay.files) if (!this.walFiles.has(seq)) this.walFiles.set(seq, new Map());
    // LSNs are never reused, also when the WAL that carried the highest ones was checkpointed away.
    this.lastLsn = Math.max(this.lastLsn, this.manifest.lsnFloor, ...this.manifest.segments.map((e) => e.lsn));
    this.committedLsn = this.lastLsn;

    if (manifestChanged) await this.updateManifest((m) => m);
    const names = [...(await fsys.list(walDir)), ...(await fsys.list(path.join(walDir, 'aside'))).map((n) => n.replace(/\..*$/, '.log'))];
    const maxSeq = Math.max(0, ...names.map((n) => walFileSeq(n) ?? 0));
    this.wal = await WalWriter.open(fsys, walDir, {
      fsync: this.opts.fsync, intervalMs: this.opts.fsyncIntervalMs, segmentBytes: this.opts.walSegmentBytes,
      onSync: (seconds) => this.opts.onWalSync?.(seconds),
    }, maxSeq + 1, this.lastLsn + 1);
    this.walFiles.set(this.wal.seq, new Map());
    await this.checkpoint();
    this.scheduleSeal();
    if (this.opts.compactionAuto) {
      this.scheduleCompaction();
      this.compactTimer = setInterval(() => this.scheduleCompaction(), this.opts.compactionIntervalMs);
      this.compactTimer.unref();
    }
  }

  private segment(entry: SegmentEntry, footer: ReturnType<typeof readFooter>): DiskSegment {
    return new DiskSegment(entry.id, this.p(entry.file), footer, entry.bytes, this.opts.fs, this.cache, (seg, reason) => this.quarantineLive(entry, seg, reason), () => this.packTimestamps(entry.datasource));
  }

  /**
   * Whether queries read a datasource's timestamps packed (segment/reader.ts `packsTimestamps`), memoized per
   * segment list.
   */
  private packTimestamps(datasource: string): boolean {
    const st = this.state.get(datasource);
    if (st === undefined) return false;
    // Every reader asks once or twice per query: the row total is summed again only when the segment list changed
    // (segments are immutable; the list is replaced or pushed to, so its identity and length tell).
    const memo = st.packMemo;
    if (memo !== undefined && memo.of === st.segments && memo.length === st.segments.length) return memo.pack;
    let rows = 0;
    for (const s of st.segments) rows += s.rowCount;
    const pack = packsTimestamps(rows, this.cache.budgetBytes);
    st.packMemo = { of: st.segments, length: st.segments.length, pack };
    return pack;
  }

  /** Record (minute, LSN) pairs a segment seals (format.ts `sealedMinutes`). */
  private noteSealed(st: DsStorage, pairs: number[]): void {
    for (let i = 0; i < pairs.length; i += 2) {
      const m = pairs[i]!;
      if ((st.sealedLsn.get(m) ?? -1) < pairs[i + 1]!) st.sealedLsn.set(m, pairs[i + 1]!);
    }
  }

  /** Event time before which the datasource keeps nothing (−Infinity without retention). */
  private retentionCutoff(st: DsStorage): number {
    const r = st.pipeline.ds.retentionMs;
    return r === null ? -Infinity : this.opts.clock() - r;
  }

  private allocateSegmentId(): number {
    const id = Math.max(this.nextId, this.manifest.nextSegmentId);
    this.nextId = id + 1;
    return id;
  }

  private segmentPath(ds: string, id: number): string {
    return path.join('segments', ds, `${String(id).padStart(10, '0')}.seg`);
  }

  private track(seq: number, ds: string, ts: Float64Array, n: number, lsn: number): void {
    let t = this.walFiles.get(seq);
    if (t === undefined) this.walFiles.set(seq, (t = new Map()));
    // Rows come in runs of one minute: a range check per row, the minute's key once per run.
    let lo = Infinity;
    let hi = -Infinity;
    for (let r = 0; r < n; r++) {
      const x = ts[r]!;
      if (x >= lo && x < hi) continue;
      lo = x - (x % MINUTE_MS);
      hi = lo + MINUTE_MS;
      const key = `${ds}\0${lo}`;
      if ((t.get(key) ?? -1) < lsn) t.set(key, lsn);
    }
  }

  // ---- datasources ----------------------------------------------------------------------------------------

  /** Record a datasource in the manifest; a second call for the same name (a concurrent create) changes nothing. */
  async createDatasource(ds: Datasource, pipeline: IngestPipeline): Promise<void> {
    await this.updateManifest((m) => (m.datasources.some((d) => d.name === ds.name) ? m : { ...m, datasources: [...m.datasources, datasourceToSpec(ds)] }));
    if (!this.state.has(ds.name)) {
      this.state.set(ds.name, { pipeline, segments: [], sealedLsn: new Map(), compaction: newCompactionStats() });
      this.observer?.datasource(pipeline, []);
    }
  }

  /** Follow every datasource and segment list change from now on; told the current ones at once. */
  observe(observer: StorageObserver): void {
    this.observer = observer;
    for (const st of this.state.values()) observer.datasource(st.pipeline, st.segments);
  }

  /** The datasources recovered at open, with their pipelines. */
  pipelines(): IngestPipeline[] {
    return [...this.state.values()].map((s) => s.pipeline);
  }

  // ---- ingest ---------------------------------------------------------------------------------------------

  /** Log a prepared batch; resolves once durable per the fsync mode. Call `committed` right after committing it. */
  write(ds: Datasource, p: PreparedBatch): { lsn: number; done: Promise<number> } {
    if (this.closed) throw new TallyError('ENGINE_CLOSED', 'the engine is closed');
    const lsn = ++this.lastLsn;
    const rows = p.rows;
    const raw = rows.length * (8 + 4 * p.logged.length + 8 * rows.metrics.length + (p.keyHashes === null ? 0 : 8));
    const payload = encodeBatchAsync({
      lsn, ds: ds.name, n: rows.length, ts: rows.ts, dims: p.logged, metrics: rows.metrics, keyHashes: p.keyHashes,
    });
    return { lsn, done: this.wal.append(payload, lsn, raw) };
  }

  committed(pipeline: IngestPipeline, p: PreparedBatch, lsn: number, seq: number): void {
    if (lsn > this.committedLsn) this.committedLsn = lsn;
    this.track(seq, pipeline.ds.name, p.rows.ts, p.rows.length, lsn);
    this.scheduleSeal();
  }

  /**
   * Why ingest must wait, or null: the WAL queue is over its budget, or sealing is behind so far that the head
   * holds twice its memory budget. Checked before a batch is accepted, so refusing never loses anything.
   */
  overload(): string | null {
    if (this.wal.backlogBytes > this.limits.maxWalBacklogBytes) {
      return `the WAL queue holds ${this.wal.backlogBytes} bytes (limit ${this.limits.maxWalBacklogBytes})`;
    }
    const head = this.headBytesEstimate();
    if (head > 2 * this.opts.headBytes) return `unsealed data holds about ${head} bytes of memory (budget ${this.opts.headBytes}; sealing is behind)`;
    return null;
  }

  /** Minutes waiting to be sealed (live buckets past their lateness, and frozen ones). */
  sealBacklog(name: string): number {
    const st = this.state.get(name)!;
    const wm = st.pipeline.watermark;
    let n = st.pipeline.head.frozenBuckets().length;
    if (wm !== null) for (const b of st.pipeline.head.liveBuckets()) if (b.maxTs < wm - st.pipeline.ds.latenessMs) n++;
    return n;
  }

  // ---- reading --------------------------------------------------------------------------------------------

  /** The readers of [from, to) as of now. Their segment files stay on disk until `release`. */
  acquire(name: string, from: number, to: number): Snapshot {
    const st = this.state.get(name)!;
    const { held, release } = acquireRange(st.segments, from, to);
    const readers: SegmentReader[] = [...held, ...st.pipeline.head.readers(from, to)];
    return { readers, release };
  }

  // ---- sealing --------------------------------------------------------------------------------------------

  private headBytesEstimate(): number {
    let bytes = 0;
    for (const st of this.state.values()) bytes += st.pipeline.head.rows * headBytesPerRow(st.pipeline.ds);
    return bytes;
  }

  /** The next bucket to seal: a minute no accepted event can reach any more, or the oldest when over budget. */
  private nextSealJob(force: boolean): { st: DsStorage; bucket: Bucket } | null {
    let oldest: { st: DsStorage; bucket: Bucket } | null = null;
    for (const st of this.state.values()) {
      // A frozen bucket not being sealed is one whose seal failed: retry it first.
      for (const bucket of st.pipeline.head.frozenBuckets()) if (!this.sealsInFlight.has(bucket)) return { st, bucket };
    }
    for (const st of this.state.values()) {
      const buckets = st.pipeline.head.liveBuckets();
      if (buckets.length === 0) continue;
      const wm = st.pipeline.watermark;
      const first = buckets[0]!;
      if (wm !== null && first.maxTs < wm - st.pipeline.ds.latenessMs) return { st, bucket: first };
      if (oldest === null || first.minTs < oldest.bucket.minTs) oldest = { st, bucket: first };
    }
    if (oldest !== null && (force || this.headBytesEstimate() > this.opts.headBytes)) return oldest;
    return null;
  }

  private scheduleSeal(): void {
    if (this.sealing !== null || this.closed || Date.now() < this.sealRetryAt) return;
    if (this.nextSealJob(false) === null) return;
    // A failure is recorded (lastSealError) and retried after a pause; the rows stay readable and in the WAL.
    this.sealing = this.sealLoop(false).catch(() => {}).finally(() => {
      this.sealing = null;
    });
  }

  /**
   * Seal buckets in batches (see beginSeals): each batch's files are written and synced side by side and recorded
   * in one manifest change (one directory sync and one manifest write for the batch, not one per bucket), and the
   * next batch's encodings begin while this one's files are written (the seal workers encode while this thread
   * waits for the disk). Batches publish strictly one at a time, in the order their buckets were taken.
   */
  private async sealLoop(force: boolean): Promise<void> {
    let ahead: SealStart[] = [];
    try {
      for (;;) {
        if (this.closed) return;
        const batch = ahead.length > 0 ? ahead : this.beginSeals(force);
        ahead = [];
        if (batch.length === 0) return;
        try {
          const encoded = await Promise.all(batch.map((b) => b.encoded));
          if (!this.closed) ahead = this.beginSeals(force);
          await this.publishSealed(batch, encoded);
          this.lastSealError = null;
        } catch (e) {
          // The buckets stay frozen and readable; their rows are still in the WAL. Retry later, not in a hot loop.
          this.lastSealError = (e as Error).message;
          this.sealRetryAt = Date.now() + 1000;
          throw e;
        } finally {
          for (const b of batch) this.sealsInFlight.delete(b.bucket);
        }
      }
    } finally {
      // Seals begun ahead and not published: their buckets stay frozen, and the next loop seals them first.
      for (const b of ahead) {
        await b.encoded.catch(() => {});
        this.sealsInFlight.delete(b.bucket);
      }
    }
  }

  /**
   * Take the buckets to seal next, freeze them and begin their encodings: one, or while the head holds over
   * SEAL_ENCODING.batchFromHeadFraction of its budget or a flush is under way, up to SEAL_ENCODING.batchBuckets
   * buckets or until they hold batchRows rows (each bucket's columns are copied for the workers: the cap bounds
   * that memory). A large bucket this thread encodes (the head over its budget) ends the batch: each blocks
   * queries while it encodes.
   */
  private beginSeals(force: boolean): SealStart[] {
    const out: SealStart[] = [];
    // A flush waiting for this loop (not forced itself) is pressure too: it waits for every ready bucket.
    const urgent = force || this.flushing > 0 || this.headBytesEstimate() > SEAL_ENCODING.batchFromHeadFraction * this.opts.headBytes;
    const max = urgent ? SEAL_ENCODING.batchBuckets : 1;
    let rows = 0;
    while (out.length < max && rows < sealBatchRows) {
      const job = this.nextSealJob(force);
      if (job === null) break;
      const { st, bucket } = job;
      st.pipeline.head.freeze(bucket);
      this.sealsInFlight.add(bucket);
      const lsn = this.committedLsn;
      const inline = this.encodesInline(bucket);
      const encoded = this.encodeSealed(bucket, st.pipeline.ds, lsn, inline);
      // Settled by sealLoop; never left unobserved.
      encoded.catch(() => {});
      out.push({ st, bucket, lsn, encoded });
      rows += bucket.rowCount;
      if (inline && bucket.rowCount >= this.sealWorkerMinRows()) break;
    }
    return out;
  }

  /**
   * Publish a batch of encoded buckets: their files (written and synced side by side, then their directories
   * synced), then one manifest change naming them all, then the swap from buckets to segments.
   */
  private async publishSealed(batch: readonly SealStart[], encoded: readonly { bytes: Buffer; footer: SegmentFooter }[]): Promise<void> {
    const entries = batch.map((b, i): SegmentEntry => {
      const ds = b.st.pipeline.ds;
      const { bytes, footer } = encoded[i]!;
      const id = this.allocateSegmentId();
      return { id, datasource: ds.name, file: this.segmentPath(ds.name, id), minTs: footer.minTs, maxTs: footer.maxTs, rows: footer.rows, bytes: bytes.length, lsn: b.lsn, level: 'minute' };
    });
    const dirs = [...new Set(entries.map((e) => e.datasource))].map((name) => this.p('segments', name));
    for (const dir of dirs) await this.opts.fs.mkdirp(dir);
    // Every write settles before a failure is thrown: none is left running behind a retry or a close.
    const written = await Promise.allSettled(entries.map((e, i) => writeSynced(this.opts.fs, this.p(e.file), encoded[i]!.bytes, (s) => this.step(`segment:${s}`))));
    for (const w of written) if (w.status === 'rejected') throw w.reason;
    for (const dir of dirs) await this.opts.fs.syncDir(dir);
    await this.step('segment:dir-synced');
    const maxId = Math.max(...entries.map((e) => e.id));
    await this.updateManifest((m) => ({ ...m, nextSegmentId: Math.max(m.nextSegmentId, maxId + 1), segments: [...m.segments, ...entries] }));
    // The swap: from here queries read the segments instead of the buckets.
    batch.forEach((b, i) => {
      const st = b.st;
      const footer = encoded[i]!.footer;
      const seg = this.segment(entries[i]!, footer);
      st.segments.push(seg);
      st.segments.sort((x, y) => x.minTs - y.minTs || x.id - y.id);
      this.noteSealed(st, sealedMinutes(footer));
      this.observer?.segments(st.pipeline.ds.name, [seg], []);
      st.pipeline.head.release(b.bucket);
    });
    await this.step('seal:published');
    await this.checkpoint();
    if (this.opts.compactionAuto) this.scheduleCompaction();
  }

  private sealWorkerMinRows(): number {
    return this.opts.sealWorkerMinRows ?? SEAL_ENCODING.workerMinRows;
  }

  /** Whether a bucket's segment is encoded on this thread (see encodeSealed). */
  private encodesInline(bucket: Bucket): boolean {
    // Over the head's budget, this thread encodes: a seal then takes the least time it can (the worker runs at a
    // background priority, beside merges), and it takes that time from ingest, which slows down as sealing needs.
    return this.opts.compactionWorkers <= 0 || bucket.rowCount < this.sealWorkerMinRows() || this.headBytesEstimate() > this.opts.headBytes;
  }

  /**
   * The segment of a frozen bucket: from a seal worker when `inline` is false (encodesInline), else built here; the
   * same bytes either way (segment/seal-input.ts). A worker failure throws, as a failed write does: the bucket stays
   * frozen and readable, and the seal is retried.
   */
  private async encodeSealed(bucket: Bucket, ds: Datasource, lsn: number, inline: boolean): Promise<{ bytes: Buffer; footer: SegmentFooter }> {
    if (inline) {
      this.sealEncodings.inline++;
      return buildSegment(bucket, ds, lsn);
    }
    this.sealPool ??= new SealPool();
    const fault = this.opts.sealFault?.(bucket.rowCount);
    const reply = await this.sealPool.run({ input: sealInputOf(bucket, ds.dimensions.length, ds.metrics.length), ds, lsn, ...(fault ? { fault } : {}) });
    if (!reply.ok) throw new Error(`seal worker: ${reply.message}`);
    this.sealEncodings.worker++;
    return { bytes: Buffer.from(reply.bytes.buffer, reply.bytes.byteOffset, reply.bytes.byteLength), footer: reply.footer };
  }

  /**
   * Seal every head bucket now, open minutes included (later events for them make additional segments). No merge
   * starts until the flush is done: merges run beside seals at the same background priority, and merging the first
   * sealed minutes of an hour while the rest are still being sealed only delays both (10M-event suite, 1,330
   * buckets left at flush: a merge worker took 8.1 s of CPU beside the seal worker's 5.1 s, the flush 12.8 s).
   */
  async flush(): Promise<void> {
    this.flushing++;
    try {
      while (this.sealing !== null) await this.sealing.catch(() => {});
      this.sealing = this.sealLoop(true).finally(() => {
        this.sealing = null;
      });
      await this.sealing;
    } finally {
      this.flushing--;
      if (this.opts.compactionAuto) this.scheduleCompaction();
    }
  }

  // ---- compaction and retention ---------------------------------------------------------------------------

  private planContext(st: DsStorage): PlanContext {
    const pendingMinutes = new Set<number>();
    for (const b of st.pipeline.head.frozenBuckets()) pendingMinutes.add(b.minTs);
    for (const b of st.pipeline.head.liveBuckets()) pendingMinutes.add(b.minTs);
    const now = Date.now();
    const skip = new Set<number>();
    for (const [id, b] of this.mergeBackoff) if (b.until > now) skip.add(id);
    return { watermark: st.pipeline.watermark, latenessMs: st.pipeline.ds.latenessMs, pendingMinutes, skip, maxSegmentRows: this.limits.maxSegmentRows };
  }

  private entries(st: DsStorage): SegmentEntry[] {
    const byId = new Map(this.manifest.segments.map((e) => [e.id, e]));
    return st.segments.map((s) => byId.get(s.id)!).filter((e) => e !== undefined);
  }

  private nextCompactionJob(): { st: DsStorage; plan: MergePlan } | null {
    if (this.opts.compactionWorkers <= 0) return null;
    for (const st of this.state.values()) {
      const plan = planMerge(this.entries(st), this.planContext(st));
      if (plan !== null) return { st, plan };
    }
    return null;
  }

  private scheduleCompaction(): void {
    if (this.compacting !== null || this.closed || this.flushing > 0) return;
    const expired = [...this.state.values()].some((st) => expiredSegments(st.segments, this.opts.clock(), st.pipeline.ds.retentionMs).length > 0);
    if (!expired && this.nextCompactionJob() === null) return;
    this.compacting = this.compactLoop().catch(() => {}).finally(() => {
      this.compacting = null;
    });
  }

  /** Run retention and merges now, until the planner has nothing left (failed ranges wait out their back-off). */
  async compact(): Promise<void> {
    while (this.compacting !== null) await this.compacting;
    this.compacting = this.compactLoop().finally(() => {
      this.compacting = null;
    });
    await this.compacting;
  }

  /** Retention first (it may make merges unnecessary), then merges one at a time until the planner has none. */
  private async compactLoop(): Promise<void> {
    for (const st of this.state.values()) {
      if (this.closed) return;
      const expired = expiredSegments(st.segments, this.opts.clock(), st.pipeline.ds.retentionMs);
      if (expired.length > 0) await this.dropExpired(st, expired);
    }
    for (;;) {
      if (this.closed) return;
      const job = this.nextCompactionJob();
      if (job === null) return;
      try {
        await this.merge(job.st, job.plan);
        job.st.compaction.lastError = null;
      } catch (e) {
        // The inputs are intact and still served. Back off this range (doubling, up to 5 minutes), not a hot loop.
        job.st.compaction.failures++;
        job.st.compaction.lastError = (e as Error).message;
        for (const s of job.plan.inputs) {
          const failures = (this.mergeBackoff.get(s.id)?.failures ?? 0) + 1;
          this.mergeBackoff.set(s.id, { failures, until: Date.now() + Math.min(300_000, 1000 * 2 ** (failures - 1)) });
        }
      }
    }
  }

  /** Run one merge in a worker and publish its output in place of its inputs (docs/compaction.md#crash-safety). */
  private async merge(st: DsStorage, plan: MergePlan): Promise<void> {
    const started = performance.now();
    const ds = st.pipeline.ds;
    const inputs = plan.inputs.map((p) => st.segments.find((s) => s.id === p.id)!);
    const bufs: Uint8Array[] = [];
    for (const seg of inputs) {
      const b = await this.opts.fs.readFile(seg.file);
      // Own ArrayBuffer per input, so transferring it to the worker detaches nothing else.
      bufs.push(b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : new Uint8Array(b));
    }
    const wm = st.pipeline.watermark ?? -Infinity;
    const maxTs = Math.max(...inputs.map((s) => s.maxTs));
    // Key hashes are needed only for rows still inside the dedup window; rollup (which drops them) waits for that.
    const keysNeeded = ds.dedupKey !== null && maxTs >= wm - ds.dedupWindowMs;
    const rollupMs = ds.rollupMs !== null && !keysNeeded ? ds.rollupMs : null;
    const fault = this.opts.mergeFault?.(plan);
    this.pool ??= new MergePool(this.opts.compactionWorkers);
    let reply;
    try {
      reply = await this.pool.run({ inputs: bufs, ds, options: { rollupMs, keepKeys: keysNeeded }, ...(fault ? { fault } : {}) });
    } catch (e) {
      throw new TallyError('COMPACTION_FAILED', `merge of ${inputs.length} segments of '${ds.name}' failed in its worker: ${(e as Error).message}`);
    }
    if (!(reply instanceof Uint8Array)) {
      const bad = inputs[reply.input];
      if (bad !== undefined) bad.reportCorrupt(reply.message);
      throw new TallyError('COMPACTION_FAILED', `merge of ${inputs.length} segments of '${ds.name}' failed: ${reply.message}`);
    }
    const bytes = Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength);
    const footer = readFooter(bytes.length, (pos, len) => bytes.subarray(pos, pos + len));
    if (this.closed) return;
    const id = this.allocateSegmentId();
    const rel = this.segmentPath(ds.name, id);
    await this.opts.fs.mkdirp(this.p('segments', ds.name));
    await publishFile(this.opts.fs, this.p(rel), bytes, (s) => this.step(`compact:segment:${s}`));
    // An input may have been quarantined or dropped meanwhile: then this output is a leftover, not published.
    if (this.closed || !inputs.every((seg) => st.segments.includes(seg))) {
      await this.opts.fs.unlink(this.p(rel));
      await this.opts.fs.syncDir(this.p('segments', ds.name));
      throw new TallyError('COMPACTION_FAILED', `an input of the merge into ${rel} left the segment set while it ran; the output was discarded`);
    }
    const entry: SegmentEntry = {
      id, datasource: ds.name, file: rel, minTs: footer.minTs, maxTs: footer.maxTs, rows: footer.rows, bytes: bytes.length, lsn: footer.lsn, level: plan.level,
    };
    const inputIds = new Set(inputs.map((s) => s.id));
    await this.updateManifest((m) => ({
      ...m, nextSegmentId: Math.max(m.nextSegmentId, id + 1), segments: [...m.segments.filter((e) => !inputIds.has(e.id)), entry],
    }));
    // The swap: from here new queries read the output; running ones keep their inputs until they release them.
    const output = this.segment(entry, footer);
    st.segments = [...st.segments.filter((s) => !inputIds.has(s.id)), output];
    st.segments.sort((a, b) => a.minTs - b.minTs || a.id - b.id);
    this.observer?.segments(ds.name, [output], inputs);
    this.noteSealed(st, sealedMinutes(footer));
    await this.step('compact:published');
    const rowsIn = inputs.reduce((n, s) => n + s.rowCount, 0);
    const bytesIn = inputs.reduce((n, s) => n + s.bytesOnDisk, 0);
    for (const seg of inputs) this.retire(st, seg);
    const c = st.compaction;
    c.merges++;
    c.lastMerge = { at: Date.now(), level: plan.level, inputs: inputs.length, rowsIn, rowsOut: footer.rows, bytesIn, bytesOut: bytes.length, ms: performance.now() - started };
    if (rollupMs !== null) {
      c.rollupRowsIn += rowsIn;
      c.rollupRowsOut += footer.rows;
    }
    for (const seg of inputs) this.mergeBackoff.delete(seg.id);
  }

  /** Drop whole segments past retention: one manifest swap, then their files once no query reads them. */
  private async dropExpired(st: DsStorage, expired: DiskSegment[]): Promise<void> {
    const ids = new Set(expired.map((s) => s.id));
    await this.updateManifest((m) => ({ ...m, segments: m.segments.filter((e) => !ids.has(e.id)) }));
    st.segments = st.segments.filter((s) => !ids.has(s.id));
    this.observer?.segments(st.pipeline.ds.name, [], expired);
    await this.step('retention:published');
    for (const seg of expired) {
      st.compaction.retentionDroppedSegments++;
      st.compaction.retentionDroppedRows += seg.rowCount;
      this.retire(st, seg);
    }
  }

  /** Delete a segment no manifest lists any more, once the last query reading it is done. */
  private retire(st: DsStorage, seg: DiskSegment): void {
    seg.retire(() => {
      const done = (async () => {
        await this.step('compact:before-delete');
        await this.opts.fs.unlink(seg.file);
        await this.opts.fs.syncDir(path.dirname(seg.file));
        this.cache.drop(seg.cachePrefix);
        st.compaction.bytesReclaimed += seg.bytesOnDisk;
      })().catch(() => {
        // Left on disk, unlisted: removed as a leftover at the next open.
      });
      this.deletions.add(done);
      void done.finally(() => this.deletions.delete(done));
    });
  }

  /** Delete WAL files all of whose rows are in published segments. */
  private async checkpoint(): Promise<void> {
    let deleted = 0;
    for (const [seq, touched] of this.walFiles) {
      if (seq === this.wal.seq) continue;
      let covered = true;
      for (const [key, lsn] of touched) {
        const [ds, minute] = key.split('\0') as [string, string];
        const st = this.state.get(ds);
        // A minute wholly past retention needs no WAL: replay would skip its rows.
        if (st !== undefined && Number(minute) + MINUTE_MS <= this.retentionCutoff(st)) continue;
        if ((st?.sealedLsn.get(Number(minute)) ?? -1) < lsn) {
          covered = false;
          break;
        }
      }
      if (!covered) continue;
      await this.step('wal:before-truncate');
      await this.opts.fs.unlink(this.p('wal', walFileName(seq)));
      this.walFiles.delete(seq);
      deleted++;
    }
    if (deleted > 0) {
      await this.opts.fs.syncDir(this.p('wal'));
      await this.step('wal:truncated');
    }
  }

  // ---- manifest and quarantine ----------------------------------------------------------------------------

  /** Serialise manifest changes: each is applied to the latest version and published before the next starts. */
  private updateManifest(change: (m: Manifest) => Manifest): Promise<void> {
    const run = this.manifestChain.then(async () => {
      const next = { ...change(this.manifest) };
      next.lsnFloor = Math.max(next.lsnFloor, this.committedLsn);
      await publishFile(this.opts.fs, this.p(MANIFEST_FILE), encodeManifest(next), (s) => this.step(`manifest:${s}`));
      this.manifest = next;
    });
    this.manifestChain = run.catch(() => {});
    return run;
  }

  /** Move a damaged segment file to quarantine/ (callers record it in `quarantined`). */
  private async moveToQuarantine(entry: SegmentEntry): Promise<void> {
    await this.opts.fs.mkdirp(this.p('quarantine'));
    try {
      await this.opts.fs.rename(this.p(entry.file), this.p('quarantine', `${entry.datasource}-${path.basename(entry.file)}`));
      await this.opts.fs.syncDir(this.p('quarantine'));
    } catch {
      // the file may be unreadable or gone; dropping it from the manifest is what matters
    }
  }

  private quarantineLive(entry: SegmentEntry, seg: DiskSegment, reason: string): void {
    const st = this.state.get(entry.datasource);
    if (st === undefined || !st.segments.includes(seg)) return;
    st.segments = st.segments.filter((s) => s !== seg);
    this.observer?.segments(entry.datasource, [], [seg]);
    this.cache.drop(seg.cachePrefix);
    void this.updateManifest((m) => ({ ...m, segments: m.segments.filter((e) => e.id !== entry.id) }))
      .then(() => this.moveToQuarantine(entry))
      .catch(() => {});
    if (!this.quarantined.some((q) => q.file === entry.file)) this.quarantined.push({ file: entry.file, reason });
  }

  // ---- status and lifecycle -------------------------------------------------------------------------------

  stats(name?: string): StoreStats {
    let segments = 0;
    let segmentBytes = 0;
    let segmentRows = 0;
    const compaction = newCompactionStats();
    for (const [ds, st] of this.state) {
      if (name !== undefined && ds !== name) continue;
      for (const s of st.segments) {
        segments++;
        segmentBytes += s.bytesOnDisk;
        segmentRows += s.rowCount;
      }
      const c = st.compaction;
      c.backlog = this.opts.compactionWorkers <= 0 ? 0 : compactionBacklog(this.entries(st), this.planContext(st));
      compaction.backlog += c.backlog;
      compaction.merges += c.merges;
      compaction.failures += c.failures;
      if (c.lastMerge !== null && (compaction.lastMerge === null || c.lastMerge.at > compaction.lastMerge.at)) compaction.lastMerge = c.lastMerge;
      compaction.lastError ??= c.lastError;
      compaction.bytesReclaimed += c.bytesReclaimed;
      compaction.rollupRowsIn += c.rollupRowsIn;
      compaction.rollupRowsOut += c.rollupRowsOut;
      compaction.retentionDroppedSegments += c.retentionDroppedSegments;
      compaction.retentionDroppedRows += c.retentionDroppedRows;
    }
    return {
      segments, segmentBytes, segmentRows, walFiles: this.walFiles.size, walBacklogBytes: this.wal.backlogBytes,
      cacheBytes: this.cache.bytes, quarantined: [...this.quarantined], lastSealError: this.lastSealError, sealEncodings: { ...this.sealEncodings }, compaction,
    };
  }

  get failed(): TallyError | null {
    return this.wal.failed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.compactTimer !== null) clearInterval(this.compactTimer);
    await this.sealing?.catch(() => {});
    await this.compacting?.catch(() => {});
    await this.pool?.close();
    await this.sealPool?.close();
    await Promise.all([...this.deletions]);
    await this.manifestChain;
    await this.wal.close();
    await this.unlock();
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
