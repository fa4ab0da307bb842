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
import { TallyError, type ErrorCode } from '../errors.js';
import type { Limits } from '../limits.js';
import type { Datasource } from '../schema/datasource.js';
import { allocRowBatch, EventValidator, type RowBatch } from '../schema/event.js';
import { Head } from '../head/head.js';
import { DedupIndex, hashKeyInto } from './dedup.js';
import { MINUTE_MS } from '../time.js';
import type { BatchRecord } from '../wal/record.js';

/** How long `prepare` runs before it yields to the event loop. */
const PREPARE_SLICE_MS = 2;

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
  /** The accepted rows, compacted to 0..rows.length-1. */
  rows: RowBatch;
  /** Head dictionary ids of `rows.dims`. */
  ids: Uint32Array[];
  /** 64-bit hashes (hi, lo) of the accepted rows' dedup keys, one pair per row; null without a dedup key. */
  keyHashes: Uint32Array | null;
  maxTs: number;
}

export class IngestPipeline {
  readonly head: Head;
  readonly dedup: DedupIndex | null;
  private readonly validator: EventValidator;
  private watermarkMs = -Infinity;

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

  /**
   * Decide every event of a batch. A large batch yields to the event loop every PREPARE_SLICE_MS, so queries are
   * served while it is prepared; that changes no decision: the watermark and the clock are read once at the start,
   * and a key enters the dedup index the moment its event is accepted, so batches that interleave still see it.
   */
  async prepare(events: unknown): Promise<PreparedBatch> {
    if (!Array.isArray(events)) {
      throw new TallyError('BATCH_NOT_ARRAY', `events: got ${events === null ? 'null' : typeof events}; want an array of events`);
    }
    if (events.length > this.limits.maxBatchEvents) {
      throw new TallyError('BATCH_TOO_LARGE', `events: got ${events.length}; want at most ${this.limits.maxBatchEvents} per batch`, {
        limit: this.limits.maxBatchEvents,
      });
    }
    const ds = this.ds;
    const n = events.length;
    const rows = allocRowBatch(ds, n);
    const ids = ds.dimensions.map(() => new Uint32Array(n));
    const keyHashes = this.dedup === null ? null : new Uint32Array(2 * n);
    const dedup = this.dedup;
    /** Keys of this batch too old to be remembered by the index (only when lateness exceeds the dedup window). */
    let unremembered: Set<string> | null = null;
    const result: IngestResult = { accepted: 0, duplicates: 0, rejected: [] };
    const v = this.validator;
    const dicts = this.head.dictionaries;
    const dimCount = ds.dimensions.length;
    const maxCard = this.limits.maxDimensionCardinality;
    const futureLimit = this.clock() + this.limits.futureToleranceMs;
    const lateLimit = this.watermarkMs - ds.latenessMs;
    let maxTs = -Infinity;
    let k = 0; // next free row in `rows`

    let sliceStart = performance.now();
    for (let i = 0; i < n; i++) {
      if ((i & 1023) === 1023 && performance.now() - sliceStart > PREPARE_SLICE_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
      const bad = v.validate(events[i], rows, k);
      if (bad !== null) {
        result.rejected.push({ index: i, code: bad.code, message: bad.message });
        continue;
      }
      const ts = v.ts;
      if (ts > futureLimit) {
        result.rejected.push({
          index: i, code: 'TIMESTAMP_IN_FUTURE',
          message: `event field '${ds.timeField}': got ${new Date(ts).toISOString()}; want at most ${new Date(futureLimit).toISOString()} (engine clock + ${this.limits.futureToleranceMs} ms)`,
        });
        continue;
      }
      const key = v.key;
      if (key !== null) {
        hashKeyInto(key, keyHashes!, k);
        if (dedup!.has(keyHashes![2 * k]!, keyHashes![2 * k + 1]!) || unremembered?.has(key)) {
          result.duplicates++;
          continue;
        }
      }
      if (ts < lateLimit) {
        result.rejected.push({
          index: i, code: 'EVENT_TOO_LATE',
          message: `event field '${ds.timeField}': got ${new Date(ts).toISOString()}; want at or after ${new Date(lateLimit).toISOString()} (watermark ${new Date(this.watermarkMs).toISOString()} minus lateness ${ds.latenessMs} ms)`,
        });
        continue;
      }
      // One dictionary lookup per value; new values are interned only once the whole event is known to fit.
      let full = -1;
      let fresh = false;
      for (let d = 0; d < dimCount; d++) {
        const id = dicts[d]!.idOf(rows.dims[d]![k]!);
        if (id === undefined) {
          if (dicts[d]!.size - 1 >= maxCard) {
            full = d;
            break;
          }
          fresh = true;
          ids[d]![k] = 0xffffffff;
        } else {
          ids[d]![k] = id;
        }
      }
      if (full >= 0) {
        result.rejected.push({
          index: i, code: 'DIMENSION_CARDINALITY',
          message: `event field '${ds.dimensions[full]}': a new value would exceed ${maxCard} distinct values`,
        });
        continue;
      }
      if (fresh) for (let d = 0; d < dimCount; d++) if (ids[d]![k] === 0xffffffff) ids[d]![k] = dicts[d]!.intern(rows.dims[d]![k]!);
      if (key !== null && !dedup!.add(keyHashes![2 * k]!, keyHashes![2 * k + 1]!, ts)) (unremembered ??= new Set()).add(key);
      if (ts > maxTs) maxTs = ts;
      k++;
    }
    rows.length = k;
    result.accepted = k;
    return { result, rows, ids, keyHashes, maxTs };
  }

  /** Make a prepared batch visible: append its rows to the head and move the watermark. */
  commit(p: PreparedBatch): void {
    this.head.append(p.rows, p.ids, p.keyHashes);
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
   * validated when it was accepted.
   */
  replay(rec: BatchRecord, sealedMinute: (minute: number) => boolean): number {
    const n = rec.n;
    const ts = rec.ts;
    const hashes = rec.keyHashes;
    const dedup = hashes === null ? null : this.dedup;
    // Rows of a record cluster in few minutes: decide "sealed" once per minute, and build a keep-list only if
    // some row is skipped.
    let keep: Uint32Array | null = null;
    let kept = 0;
    let lastMinute = NaN;
    let lastSealed = false;
    let maxTs = this.watermarkMs;
    for (let r = 0; r < n; r++) {
      const t = ts[r]!;
      if (dedup !== null) dedup.add(hashes![2 * r]!, hashes![2 * r + 1]!, t);
      const minute = t - (t % MINUTE_MS);
      if (minute !== lastMinute) {
        lastMinute = minute;
        lastSealed = sealedMinute(minute);
      }
      if (lastSealed) {
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
    const ids = rec.dims.map((dim, d) => {
      const dict = this.head.dictionaries[d]!;
      const values = dim.values;
      const toHead = new Uint32Array(values.length);
      for (let i = 0; i < values.length; i++) toHead[i] = dict.intern(values[i]!);
      const out = new Uint32Array(kept);
      for (let i = 0; i < kept; i++) out[i] = toHead[dim.ids[all ? i : keep![i]!]!]!;
      return out;
    });
    const rows: RowBatch = {
      length: kept,
      ts: pick(rec.ts, (l) => new Float64Array(l)),
      dims: [], // not read by the head, which takes the interned ids
      metrics: rec.metrics.map((m) => pick(m, (l) => new Float64Array(l))),
    };
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
    this.head.append(rows, ids, keptHashes);
    return kept;
  }

  /** Remember the dedup keys of rows already durable in segments (at open; segments carry the key hashes). */
  restoreFromSegment(ts: Float64Array, keyHashes: Uint32Array | null, rows: number): void {
    for (let r = 0; r < rows; r++) {
      if (keyHashes !== null && this.dedup !== null) this.dedup.add(keyHashes[2 * r]!, keyHashes[2 * r + 1]!, ts[r]!);
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
