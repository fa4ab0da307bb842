/**
 * ingest/pipeline.ts — the path of a batch from `ingest()` to the head: validate → dedup → late → (WAL) → head.
 *
 * Invariants:
 *  - Every event of a batch ends in exactly one of: accepted, duplicate, rejected (with a stable code). A bad event
 *    never affects the others.
 *  - An event is accepted at most once per dedup key while the key is remembered (see dedup.ts), also when
 *    retried inside one batch or by concurrent batches: a key is *pending* from `prepare` until `commit`/`abort`.
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
import type { BatchRecord } from '../wal/record.js';

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
  /** Dedup keys of the accepted rows (empty when the datasource has no dedup key), released on commit/abort. */
  keys: string[];
  /** 64-bit hashes (hi, lo) of `keys`, one pair per row; null without a dedup key. Logged and stored. */
  keyHashes: Uint32Array | null;
  maxTs: number;
}

export class IngestPipeline {
  readonly head: Head;
  readonly dedup: DedupIndex | null;
  private readonly validator: EventValidator;
  private readonly pending = new Set<string>();
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

  prepare(events: unknown): PreparedBatch {
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
    const keys: string[] = [];
    const keyHashes = this.dedup === null ? null : new Uint32Array(2 * n);
    const result: IngestResult = { accepted: 0, duplicates: 0, rejected: [] };
    const v = this.validator;
    const head = this.head;
    const dimCount = ds.dimensions.length;
    const maxCard = this.limits.maxDimensionCardinality;
    const futureLimit = this.clock() + this.limits.futureToleranceMs;
    const lateLimit = this.watermarkMs - ds.latenessMs;
    let maxTs = -Infinity;
    let k = 0; // next free row in `rows`

    for (let i = 0; i < n; i++) {
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
        if (this.pending.has(key) || this.dedup!.has(keyHashes![2 * k]!, keyHashes![2 * k + 1]!)) {
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
      let full = -1;
      for (let d = 0; d < dimCount; d++) {
        const value = rows.dims[d]![k]!;
        const dict = head.dictionaries[d]!;
        if (dict.idOf(value) === undefined && dict.size - 1 >= maxCard) {
          full = d;
          break;
        }
      }
      if (full >= 0) {
        result.rejected.push({
          index: i, code: 'DIMENSION_CARDINALITY',
          message: `event field '${ds.dimensions[full]}': a new value would exceed ${maxCard} distinct values`,
        });
        continue;
      }
      for (let d = 0; d < dimCount; d++) ids[d]![k] = head.intern(d, rows.dims[d]![k]!, maxCard);
      if (key !== null) {
        this.pending.add(key);
        keys.push(key);
      }
      if (ts > maxTs) maxTs = ts;
      k++;
    }
    rows.length = k;
    result.accepted = k;
    return { result, rows, ids, keys, keyHashes, maxTs };
  }

  /** Make a prepared batch visible: remember its keys, move the watermark, append its rows to the head. */
  commit(p: PreparedBatch): void {
    if (this.dedup !== null) {
      const h = p.keyHashes!;
      for (let r = 0; r < p.keys.length; r++) {
        this.dedup.add(h[2 * r]!, h[2 * r + 1]!, p.rows.ts[r]!);
        this.pending.delete(p.keys[r]!);
      }
    }
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
   * Re-apply a logged batch at open. Rows for which `sealed(row)` is true are already in a segment and are not
   * appended again; their keys and times still count for dedup and the watermark. No validation: the batch was
   * validated when it was accepted.
   */
  replay(rec: BatchRecord, sealed: (ts: number) => boolean): number {
    const rows = rec.rows;
    const keep: number[] = [];
    for (let r = 0; r < rows.length; r++) {
      const ts = rows.ts[r]!;
      if (rec.keyHashes !== null && this.dedup !== null) this.dedup.add(rec.keyHashes[2 * r]!, rec.keyHashes[2 * r + 1]!, ts);
      if (!sealed(ts)) keep.push(r);
      if (ts > this.watermarkMs) this.watermarkMs = ts;
    }
    if (keep.length > 0) {
      const sub = keep.length === rows.length ? rows : {
        length: keep.length,
        ts: Float64Array.from(keep, (r) => rows.ts[r]!),
        dims: rows.dims.map((col) => keep.map((r) => col[r]!)),
        metrics: rows.metrics.map((col) => Float64Array.from(keep, (r) => col[r]!)),
      };
      const hashes = rec.keyHashes === null ? null : keep.length === rows.length ? rec.keyHashes
        : Uint32Array.from(keep.flatMap((r) => [rec.keyHashes![2 * r]!, rec.keyHashes![2 * r + 1]!]));
      const ids = this.ds.dimensions.map((_, d) => Uint32Array.from(sub.dims[d]!, (v) => this.head.dictionaries[d]!.intern(v)));
      this.head.append(sub, ids, hashes);
    }
    return keep.length;
  }

  /** Account for rows already durable in segments at open: their times move the watermark, their keys are remembered. */
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
    for (const key of p.keys) this.pending.delete(key);
  }
}
