/**
 * ingest/pipeline.ts — the path of a batch from `ingest()` to the head: validate → dedup → late → (WAL) → head.
 *
 * Invariants:
 *  - Every event of a batch ends in exactly one of: accepted, duplicate, rejected (with a stable code). A bad event
 *    never affects the others.
 *  - An event is accepted at most once per dedup key while the key is remembered (see dedup.ts), also when
 *    retried inside one batch or by concurrent batches: a key enters the dedup index when `prepare` accepts its
 *    event, and leaves it again if the batch is aborted (its write failed).
 *  - Acceptance is decided against the watermark as it stood before the batch; the watermark (the newest accepted
 *    event time) moves only on `commit`.
 *  - After `commit` returns, every accepted row is visible to queries.
 *
 * The split into `prepare` (synchronous: decides each event and interns dictionary values) and `commit`
 * (synchronous: remembers keys, moves the watermark, appends to the head) leaves room for the durable write in
 * between: the storage layer writes the prepared rows to the WAL and commits only once they are durable, or aborts.
 */
import type { ErrorCode } from '../errors.js';
import type { Limits } from '../limits.js';
import type { Datasource } from '../schema/datasource.js';
import { EventValidator, type RowBatch } from '../schema/event.js';
import { columnize, type EventColumns } from './columns.js';
import { Head } from '../head/head.js';
import { DedupIndex } from './dedup.js';
import { MINUTE_MS } from '../time.js';
import type { BatchRecord, LoggedDimension } from '../wal/record.js';

/** How long `decide` runs before it yields to the event loop (tests set it: setSliceMsForTests). */
let PREPARE_SLICE_MS = 1;

/** Tests make `decide` yield at every chance (0) to interleave batches and queries; returns the previous value. */
export function setSliceMsForTests(ms: number): number {
  const previous = PREPARE_SLICE_MS;
  PREPARE_SLICE_MS = ms;
  return previous;
}
/** Rows whose dedup slots the column-wise decide brings into cache at once (a power of two). */
const PROBE_CHUNK = 1024;
/**
 * Batches up to this many rows are decided column by column when no new value can overflow a dimension's
 * cardinality limit; borderline batches take the row-by-row path. Every size: the column-wise path yields between
 * chunks as the row-by-row one does, and a load of 50k-event batches ran 30–40% slower when those went row by row
 * (docs/benchmarks.md, "Eleventh session"). Tests lower it to force the row-by-row path.
 */
let columnwiseMaxRows = Infinity;
/** How many batches each path of `decide` took (tests check that both are exercised). */
export const decidePaths = { columnwise: 0, rowwise: 0 };

/** Tests set the column-wise limit (-1: every batch row by row, empty ones too); returns the previous value. */
export function setColumnwiseMaxRowsForTests(n: number): number {
  const previous = columnwiseMaxRows;
  columnwiseMaxRows = n;
  return previous;
}

/**
 * The newest of `ts[0..n)`, or −Infinity when n = 0: one pass over a batch's accepted times, so that the deciding
 * loops keep no running maximum (a double that, in the row-by-row loop, lives across an `await`, where V8 may box it).
 */
function maxOf(ts: Float64Array, n: number): number {
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (ts[i]! > max) max = ts[i]!;
  return max;
}

interface DecideLimits {
  futureLimit: number;
  lateLimit: number;
  retentionLimit: number;
}

/** What `decideColumnwise` carries from chunk to chunk: rows kept so far (`kept`: by batch row, null while all are). */
interface ColumnwiseState {
  k: number;
  duplicates: number;
  kept: Uint32Array | null;
  unremembered: Set<string> | null;
}

export interface RejectedEvent {
  index: number;
  code: ErrorCode;
  message: string;
}

/** Outcome of one `ingest` call: counts, and the rejected events by their index in the batch. */
export interface IngestResult {
  accepted: number;
  duplicates: number;
  rejected: RejectedEvent[];
}

/** A batch decided by `prepare`, awaiting `commit` or `abort`. */
export interface PreparedBatch {
  result: IngestResult;
  /** The accepted rows' times and metrics, compacted to 0..rows.length-1 (dimensions: `logged` and `toHead`). */
  rows: RowBatch;
  /** The accepted rows' dimensions as the WAL logs them: the batch-local dictionary and each row's index into it. */
  logged: LoggedDimension[];
  /** Per dimension, batch-local id → head dictionary id; resolved (≥ 0) for every local id an accepted row uses. */
  toHead: Int32Array[];
  /** 64-bit hashes (hi, lo) of the accepted rows' dedup keys, one pair per row; null without a dedup key. */
  keyHashes: Uint32Array | null;
  maxTs: number;
  /**
   * Gives the batch's columns back to `columnize` (EventColumns.release; a no-op for columns from elsewhere): call it
   * once the batch is committed or aborted and nothing reads `rows`, `logged` or `keyHashes` any more.
   */
  release: () => void;
}

const NOTHING_TO_RELEASE = (): void => {};

export class IngestPipeline {
  readonly head: Head;
  readonly dedup: DedupIndex | null;
  private readonly validator: EventValidator;
  private watermarkMs = -Infinity;
  /** The rows `addChunk` lists as duplicates, for one chunk of `decideChunk` at a time. */
  private readonly duplicateRows = new Uint32Array(PROBE_CHUNK);
  /** Settles when the batch deciding now (if any) is done; see `decide`. */
  private deciding: Promise<void> = Promise.resolve();

  constructor(
    readonly ds: Datasource,
    private readonly limits: Limits,
    private readonly clock: () => number,
  ) {
    this.head = new Head(ds);
    this.validator = new EventValidator(ds, limits);
    this.dedup = ds.dedupKey === null ? null : new DedupIndex(ds.dedupWindowMs, limits.maxDedupKeys);
  }

  /** The newest accepted event time, or null before the first. */
  get watermark(): number | null {
    return this.watermarkMs === -Infinity ? null : this.watermarkMs;
  }

  /** Phase A (validation into columns, here on this thread) and phase B (`decide`). */
  async prepare(events: unknown): Promise<PreparedBatch> {
    return this.decide(columnize(this.ds, this.limits, events, this.validator, true));
  }

  /**
   * Phase B: decide every validated row against the engine's state — future, duplicate, late, cardinality — and
   * intern each distinct new value once. A batch yields to the event loop every PREPARE_SLICE_MS, so queries are
   * served meanwhile; that changes no decision: batches of this pipeline decide one at a time, the watermark and
   * the clock are read once when a batch starts deciding, and a key enters the dedup index the moment its event is
   * accepted, so the batches after it (deciding while it waits for its WAL write) see it.
   * `cols` belongs to the call from then on: its columns may be compacted in place and become the batch's.
   */
  async decide(cols: EventColumns): Promise<PreparedBatch> {
    // One batch decides at a time: a batch that yields part-way (below) leaves the dictionaries and the dedup index
    // to no other batch until it is done, so its cardinality check still holds when it interns.
    const before = this.deciding;
    let done!: () => void;
    this.deciding = new Promise<void>((resolve) => (done = resolve));
    try {
      await before;
      // Start on an event-loop turn of its own, not straight after the batch before's last slice.
      await new Promise((resolve) => setImmediate(resolve));
      return await this.decideAlone(cols);
    } finally {
      done();
    }
  }

  private async decideAlone(cols: EventColumns): Promise<PreparedBatch> {
    const ds = this.ds;
    const n = cols.n;
    const dimCount = ds.dimensions.length;
    const metricCount = ds.metrics.length;
    const dedup = this.dedup;
    const dicts = this.head.dictionaries;
    const maxCard = this.limits.maxDimensionCardinality;
    const futureLimit = this.clock() + this.limits.futureToleranceMs;
    const lateLimit = this.watermarkMs - ds.latenessMs;
    const retentionLimit = ds.retentionMs === null ? -Infinity : this.clock() - ds.retentionMs;
    const rejected = [...cols.rejected];
    let duplicates = 0;
    /**
     * Batch-local id → head id, once known (−1 for a value new to the head until this batch interns it). All
     * distinct values are looked up first, together (`idsOf`): each lookup in a large dictionary is a cache miss,
     * and independent lookups side by side let the CPU overlap them.
     */
    const toHead = cols.dims.map((d, i) => {
      const out = new Int32Array(d.values.length);
      dicts[i]!.idsOf(d.values, out, cols.dimKeys?.[i] ?? null);
      return out;
    });
    const fresh = new Int32Array(dimCount);
    /** Keys of this batch too old to be remembered by the index (only when lateness exceeds the dedup window). */
    let unremembered: Set<string> | null = null;
    if (n <= columnwiseMaxRows && this.cannotOverflow(toHead)) {
      decidePaths.columnwise++;
      return this.decideColumnwise(cols, toHead, { futureLimit, lateLimit, retentionLimit }, rejected);
    }
    decidePaths.rowwise++;
    if (cols.keyHashes !== null && dedup !== null) dedup.prefetch(cols.keyHashes, 0, n);
    const ts = new Float64Array(n);
    const metrics = Array.from({ length: metricCount }, () => new Float64Array(n));
    const loggedIds = Array.from({ length: dimCount }, () => new Uint32Array(n));
    const keyHashes = cols.keyHashes === null || dedup === null ? null : new Uint32Array(2 * n);
    let k = 0;
    let sliceStart = performance.now();
    for (let r = 0; r < n; r++) {
      if ((r & 1023) === 1023 && performance.now() - sliceStart > PREPARE_SLICE_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
      const index = cols.index[r]!;
      const t = cols.ts[r]!;
      if (t > futureLimit) {
        rejected.push(this.inFuture(index, t, futureLimit));
        continue;
      }
      let hi = 0;
      let lo = 0;
      if (keyHashes !== null) {
        hi = cols.keyHashes![2 * r]!;
        lo = cols.keyHashes![2 * r + 1]!;
        if (dedup!.has(hi, lo) || unremembered?.has(`${hi}:${lo}`)) {
          duplicates++;
          continue;
        }
      }
      if (t < lateLimit) {
        rejected.push(this.tooLate(index, t, lateLimit));
        continue;
      }
      if (t < retentionLimit) {
        rejected.push(this.beyondRetention(index, t, retentionLimit));
        continue;
      }
      // Each distinct value was looked up in the head once, above; one still absent is new (this batch interns it
      // on its first accepted row, below, and nothing else interns while the batch decides: see `decide`).
      let full = -1;
      let anyFresh = false;
      for (let d = 0; d < dimCount; d++) {
        const h = toHead[d]![cols.dims[d]!.ids[r]!]!;
        if (h < 0) {
          if (dicts[d]!.size - 1 >= maxCard) {
            full = d;
            break;
          }
          anyFresh = true;
        }
        fresh[d] = h;
      }
      if (full >= 0) {
        rejected.push({ index, code: 'DIMENSION_CARDINALITY', message: `event field '${ds.dimensions[full]}': a new value would exceed ${maxCard} distinct values` });
        continue;
      }
      for (let d = 0; d < dimCount; d++) {
        const local = cols.dims[d]!.ids[r]!;
        if (anyFresh && fresh[d]! < 0) {
          fresh[d] = dicts[d]!.intern(cols.dims[d]!.values[local]!);
          toHead[d]![local] = fresh[d]!;
        }
        loggedIds[d]![k] = local;
      }
      if (keyHashes !== null) {
        keyHashes[2 * k] = hi;
        keyHashes[2 * k + 1] = lo;
        if (!dedup!.add(hi, lo, t)) (unremembered ??= new Set()).add(`${hi}:${lo}`);
      }
      ts[k] = t;
      for (let m = 0; m < metricCount; m++) metrics[m]![k] = cols.metrics[m]![r]!;
      k++;
    }
    rejected.sort((a, b) => a.index - b.index);
    return {
      result: { accepted: k, duplicates, rejected },
      rows: { length: k, ts: ts.subarray(0, k), metrics: metrics.map((m) => m.subarray(0, k)) },
      logged: cols.dims.map((d, i) => ({ values: d.values, ids: loggedIds[i]!.subarray(0, k) })),
      toHead,
      keyHashes: keyHashes === null ? null : keyHashes.subarray(0, 2 * k),
      maxTs: maxOf(ts, k),
      release: cols.release ?? NOTHING_TO_RELEASE,
    };
  }

  /** True when interning every value of the batch not yet in the head would keep each dimension within its limit. */
  private cannotOverflow(toHead: Int32Array[]): boolean {
    const dicts = this.head.dictionaries;
    for (let d = 0; d < toHead.length; d++) {
      const th = toHead[d]!;
      let unresolved = 0;
      for (let v = 0; v < th.length; v++) if (th[v]! < 0) unresolved++;
      if (dicts[d]!.size - 1 + unresolved > this.limits.maxDimensionCardinality) return false;
    }
    return true;
  }

  /**
   * `decide` for a batch in which no row can be rejected for cardinality: one pass over the rows for time and dedup
   * (in row order, so a key repeated within the batch is accepted once), then each column copied for the accepted
   * rows in a tight loop of its own. It yields every PREPARE_SLICE_MS, so a query waits for one slice, not a batch;
   * nothing can intern a value between the check and the interning all the same, since batches decide one at a
   * time (`decide`). Same decisions, ids and order of new ids (per dimension, by first accepted row) as the
   * row-by-row path.
   */
  private async decideColumnwise(cols: EventColumns, toHead: Int32Array[], lim: DecideLimits, rejected: RejectedEvent[]): Promise<PreparedBatch> {
    const n = cols.n;
    const st: ColumnwiseState = { k: 0, duplicates: 0, kept: null, unremembered: null };
    let sliceStart = performance.now();
    // Accepted rows are compacted in place (row r moves to k <= r): `cols` belongs to this call. The rows are decided
    // a chunk at a time by a synchronous method: written inline in this async loop, the same code allocated 16 bytes
    // a row (a heap number: values live across an `await` may be boxed); the method ~0.6 (heap-sampled over a
    // 2M-event load; docs/benchmarks.md, "Eleventh session").
    for (let r = 0; r < n; r += PROBE_CHUNK) {
      if (r > 0 && performance.now() - sliceStart >= PREPARE_SLICE_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
      this.decideChunk(cols, r, Math.min(n, r + PROBE_CHUNK), lim, rejected, st);
    }
    const { k, kept, duplicates } = st;
    const ts = cols.ts;
    const keyHashes = this.dedup === null ? null : cols.keyHashes;
    const compact = <T extends Float64Array | Uint32Array>(col: T): T => {
      if (kept !== null) for (let i = 0; i < k; i++) col[i] = col[kept[i]!]!;
      return col.subarray(0, k) as T;
    };
    const logged = cols.dims.map((d) => ({ values: d.values, ids: compact(d.ids) }));
    const dicts = this.head.dictionaries;
    // Interning yields too (a batch of 100k new values takes ~50 ms): no other batch interns meanwhile (`decide`),
    // and a query that runs then finds values no committed row uses yet, as during the row-by-row path.
    let steps = 0;
    for (let d = 0; d < logged.length; d++) {
      const local = logged[d]!.ids;
      const values = logged[d]!.values;
      const th = toHead[d]!;
      const dict = dicts[d]!;
      // Every row accepted: local ids are in order of first use by an accepted row (EventColumns.dims), so interning
      // them in id order gives the new values the same ids as a pass over the rows, in one pass over the batch's
      // distinct values instead. Otherwise the accepted rows in order.
      const count = kept === null ? th.length : k;
      for (let j = 0; j < count; j++) {
        if ((++steps & (PROBE_CHUNK - 1)) === 0 && performance.now() - sliceStart >= PREPARE_SLICE_MS) {
          await new Promise((resolve) => setImmediate(resolve));
          sliceStart = performance.now();
        }
        const l = kept === null ? j : local[j]!;
        if (th[l]! < 0) th[l] = dict.intern(values[l]!);
      }
    }
    rejected.sort((a, b) => a.index - b.index);
    return {
      result: { accepted: k, duplicates, rejected },
      rows: { length: k, ts: ts.subarray(0, k), metrics: cols.metrics.map(compact) },
      logged,
      toHead,
      keyHashes: keyHashes === null ? null : keyHashes.subarray(0, 2 * k),
      maxTs: maxOf(ts, k),
      release: cols.release ?? NOTHING_TO_RELEASE,
    };
  }

  /** Rows from..to-1 of `decideColumnwise`, deciding into `st` (see there). */
  private decideChunk(cols: EventColumns, from: number, to: number, lim: DecideLimits, rejected: RejectedEvent[], st: ColumnwiseState): void {
    const dedup = this.dedup;
    const keyHashes = dedup === null ? null : cols.keyHashes;
    const ts = cols.ts;
    const { futureLimit, lateLimit, retentionLimit } = lim;
    let { k, duplicates, kept, unremembered } = st;
    let r = from;
    if (keyHashes !== null && unremembered === null) {
      // The common chunk: every row within the time limits, so each is a duplicate or accepted, as the index decides
      // them in one call (`addChunk`); the rows after one it would not remember are decided below.
      let minTs = Infinity;
      let maxTs = -Infinity;
      for (let i = from; i < to; i++) {
        const t = ts[i]!;
        if (t < minTs) minTs = t;
        if (t > maxTs) maxTs = t;
      }
      if (maxTs <= futureLimit && minTs >= lateLimit && minTs >= retentionLimit) {
        const listed = this.duplicateRows;
        const decided = dedup!.addChunk(keyHashes, ts, from, to, listed);
        const d = dedup!.chunkDuplicates;
        const end = from + decided;
        if (d === 0 && kept === null) {
          k = end;
        } else {
          if (kept === null) {
            kept = new Uint32Array(cols.n);
            for (let i = 0; i < k; i++) kept[i] = i;
          }
          duplicates += d;
          // Rows from..end-1 but the listed ones move down to k.
          let next = 0;
          for (let i = from; i < end; i++) {
            if (next < d && listed[next] === i) {
              next++;
              continue;
            }
            ts[k] = ts[i]!;
            keyHashes[2 * k] = keyHashes[2 * i]!;
            keyHashes[2 * k + 1] = keyHashes[2 * i + 1]!;
            kept[k] = i;
            k++;
          }
        }
        r = end;
      }
    }
    // Bring the chunk's slots into cache in a tight loop (independent misses overlap), then decide them.
    if (keyHashes !== null && r < to) dedup!.prefetch(keyHashes, r, to);
    for (; r < to; r++) {
      const t = ts[r]!;
      let ok = false;
      if (t > futureLimit) {
        rejected.push(this.inFuture(cols.index[r]!, t, futureLimit));
      } else if (keyHashes !== null) {
        const hi = keyHashes[2 * r]!;
        const lo = keyHashes[2 * r + 1]!;
        // One probe decides "duplicate" and, for a new key, where it goes: nothing changes the index in between.
        const at = dedup!.lookup(hi, lo);
        if (at >= 0 || unremembered?.has(`${hi}:${lo}`)) {
          duplicates++;
        } else if (t < lateLimit) {
          rejected.push(this.tooLate(cols.index[r]!, t, lateLimit));
        } else if (t < retentionLimit) {
          rejected.push(this.beyondRetention(cols.index[r]!, t, retentionLimit));
        } else {
          keyHashes[2 * k] = hi;
          keyHashes[2 * k + 1] = lo;
          if (!dedup!.addAt(at, hi, lo, t)) (unremembered ??= new Set()).add(`${hi}:${lo}`);
          ok = true;
        }
      } else if (t < lateLimit) {
        rejected.push(this.tooLate(cols.index[r]!, t, lateLimit));
      } else if (t < retentionLimit) {
        rejected.push(this.beyondRetention(cols.index[r]!, t, retentionLimit));
      } else {
        ok = true;
      }
      if (!ok) {
        if (kept === null) {
          kept = new Uint32Array(cols.n);
          for (let i = 0; i < k; i++) kept[i] = i;
        }
        continue;
      }
      ts[k] = t;
      if (kept !== null) kept[k] = r;
      k++;
    }
    st.k = k;
    st.duplicates = duplicates;
    st.kept = kept;
    st.unremembered = unremembered;
  }

  private inFuture(index: number, t: number, futureLimit: number): RejectedEvent {
    return {
      index, code: 'TIMESTAMP_IN_FUTURE',
      message: `event field '${this.ds.timeField}': got ${new Date(t).toISOString()}; want at most ${new Date(futureLimit).toISOString()} (engine clock + ${this.limits.futureToleranceMs} ms)`,
    };
  }

  private tooLate(index: number, t: number, lateLimit: number): RejectedEvent {
    return {
      index, code: 'EVENT_TOO_LATE',
      message: `event field '${this.ds.timeField}': got ${new Date(t).toISOString()}; want at or after ${new Date(lateLimit).toISOString()} (watermark ${new Date(this.watermarkMs).toISOString()} minus lateness ${this.ds.latenessMs} ms)`,
    };
  }

  private beyondRetention(index: number, t: number, retentionLimit: number): RejectedEvent {
    return {
      index, code: 'EVENT_BEYOND_RETENTION',
      message: `event field '${this.ds.timeField}': got ${new Date(t).toISOString()}; want at or after ${new Date(retentionLimit).toISOString()} (engine clock minus retention ${this.ds.retentionMs} ms)`,
    };
  }

  /** Make a prepared batch visible: append its rows to the head and move the watermark. */
  commit(p: PreparedBatch): void {
    this.head.append(p.rows, p.logged, p.toHead, p.keyHashes);
    this.advanceWatermark(p.maxTs);
  }

  private advanceWatermark(ts: number): void {
    if (ts > this.watermarkMs) {
      this.watermarkMs = ts;
      this.dedup?.advance(ts);
    }
  }

  /**
   * Re-apply a logged batch at open. Rows in a minute for which `sealedMinute` is true are already in a segment and are not
   * appended again; their keys and times still count for dedup and the watermark. No validation: the batch was
   * validated when it was accepted. Rows older than `dropBefore` (past retention) are not appended either.
   */
  replay(rec: BatchRecord, sealedMinute: (minute: number) => boolean, dropBefore = -Infinity): number {
    const n = rec.n;
    const ts = rec.ts;
    const hashes = rec.keyHashes;
    const dedup = hashes === null ? null : this.dedup;
    // Rows of a record cluster in few minutes: decide "sealed" once per minute, and build a keep-list only if
    // some row is skipped.
    let keep: Uint32Array | null = null;
    let kept = 0;
    let minuteLo = Infinity;
    let minuteHi = -Infinity;
    let lastSealed = false;
    let maxTs = this.watermarkMs;
    for (let r = 0; r < n; r++) {
      const t = ts[r]!;
      if (dedup !== null) dedup.add(hashes![2 * r]!, hashes![2 * r + 1]!, t);
      if (!(t >= minuteLo && t < minuteHi)) {
        minuteLo = t - (t % MINUTE_MS);
        minuteHi = minuteLo + MINUTE_MS;
        lastSealed = sealedMinute(minuteLo);
      }
      if (lastSealed || t < dropBefore) {
        if (keep === null) {
          keep = new Uint32Array(n);
          for (let i = 0; i < r; i++) keep[i] = i;
        }
      } else {
        if (keep !== null) keep[kept] = r;
        kept++;
      }
      if (t > maxTs) maxTs = t;
    }
    this.advanceWatermark(maxTs);
    if (kept === 0) return 0;
    const all = keep === null;
    const pick = <T extends Float64Array | Uint32Array>(col: T, make: (len: number) => T): T => {
      if (all) return col;
      const out = make(kept);
      for (let i = 0; i < kept; i++) out[i] = col[keep![i]!]!;
      return out;
    };
    // Each distinct value of the record is interned once; rows map through the record's local ids.
    const toHead = rec.dims.map((dim, d) => {
      const dict = this.head.dictionaries[d]!;
      const values = dim.values;
      const out = new Int32Array(values.length);
      for (let i = 0; i < values.length; i++) out[i] = dict.intern(values[i]!);
      return out;
    });
    const rows: RowBatch = {
      length: kept,
      ts: pick(rec.ts, (l) => new Float64Array(l)),
      metrics: rec.metrics.map((m) => pick(m, (l) => new Float64Array(l))),
    };
    const local = rec.dims.map((dim) => ({ values: dim.values, ids: pick(dim.ids, (l) => new Uint32Array(l)) }));
    let keptHashes: Uint32Array | null = null;
    if (hashes !== null) {
      keptHashes = all ? hashes : new Uint32Array(2 * kept);
      if (!all) {
        for (let i = 0; i < kept; i++) {
          keptHashes[2 * i] = hashes[2 * keep![i]!]!;
          keptHashes[2 * i + 1] = hashes[2 * keep![i]! + 1]!;
        }
      }
    }
    this.head.append(rows, local, toHead, keptHashes);
    return kept;
  }

  /**
   * Remember the dedup keys of rows already durable in segments (at open; segments carry the key hashes). A (0, 0)
   * pair marks a compacted row whose key was no longer needed (docs/compaction.md).
   */
  restoreFromSegment(ts: Float64Array, keyHashes: Uint32Array | null, rows: number): void {
    if (keyHashes === null || this.dedup === null) return;
    for (let r = 0; r < rows; r++) {
      const hi = keyHashes[2 * r]!;
      const lo = keyHashes[2 * r + 1]!;
      if (hi !== 0 || lo !== 0) this.dedup.add(hi, lo, ts[r]!);
    }
  }

  /** Move the watermark to at least `ts` (at open, from segment footers) and forget dedup keys behind the window. */
  restoreWatermark(ts: number): void {
    this.advanceWatermark(ts);
  }

  /** Forget a prepared batch that will not be committed (its write failed): its keys are free again. */
  abort(p: PreparedBatch): void {
    const h = p.keyHashes;
    if (h === null || this.dedup === null) return;
    for (let r = 0; r < p.rows.length; r++) this.dedup.remove(h[2 * r]!, h[2 * r + 1]!);
  }
}
