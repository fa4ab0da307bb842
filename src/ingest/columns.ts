/**
 * ingest/columns.ts — phase A of ingest: a batch of events into validated columns, with no engine state.
 *
 * Invariant: `columnize` depends only on the datasource definition and the limits, never on what the engine holds,
 * so it gives the same result on any thread (the daemon runs it in worker threads). Each valid event becomes one
 * row; each invalid one a rejection with its index. Dimensions come out as a batch-local dictionary per dimension
 * (distinct values, and each row's index into them): the engine then looks each distinct value up once, and the
 * WAL logs the batch in this form as it is.
 */
import { TallyError } from '../errors.js';
import type { Limits } from '../limits.js';
import type { Datasource } from '../schema/datasource.js';
import { allocRowBatch, EventValidator } from '../schema/event.js';
import type { LoggedDimension } from '../wal/record.js';
import { FIRST_SURROGATE, hashKeyInto } from './dedup.js';
import { BatchDictionary } from './batch-dictionary.js';
import type { RejectedEvent } from './pipeline.js';

export interface EventColumns {
  /** Events in the batch, valid or not. */
  total: number;
  /** Valid events: rows 0..n-1. */
  n: number;
  /** Index in the batch of each row. */
  index: Uint32Array;
  ts: Float64Array;
  /** Per dimension, the batch-local dictionary: every value is used by some row, and ids are in order of first use. */
  dims: LoggedDimension[];
  metrics: Float64Array[];
  /** (hi, lo) 64-bit hash of each row's dedup key; null without a dedup key. */
  keyHashes: Uint32Array | null;
  /** Events that failed validation, by index. */
  rejected: RejectedEvent[];
}

export function checkBatch(events: unknown, limits: Limits): unknown[] {
  if (!Array.isArray(events)) {
    throw new TallyError('BATCH_NOT_ARRAY', `events: got ${events === null ? 'null' : typeof events}; want an array of events`);
  }
  if (events.length > limits.maxBatchEvents) {
    throw new TallyError('BATCH_TOO_LARGE', `events: got ${events.length}; want at most ${limits.maxBatchEvents} per batch`, { limit: limits.maxBatchEvents });
  }
  return events;
}

/** One batch-local dictionary per dimension, reused from batch to batch of a validator (columnize is synchronous). */
const batchDictionaries = new WeakMap<EventValidator, BatchDictionary[]>();

function dictionariesFor(validator: EventValidator, dimCount: number): BatchDictionary[] {
  let t = batchDictionaries.get(validator);
  if (t === undefined) {
    t = Array.from({ length: dimCount }, () => new BatchDictionary());
    batchDictionaries.set(validator, t);
  }
  return t;
}

/** How `columnsOf` validates each event: `validate` alone; `accept` first; `acceptShape` first (see there). */
const enum Checks { Validate, Accept, Shape }

/**
 * Validate `events` (an array, checked) into columns. The common case takes `acceptShape`, which leaves out the
 * well-formedness of strings, checked here instead once per distinct dimension value of the batch and, for a dedup
 * key, by its hash's pass over the characters; a batch with a malformed string (rare: a client's encoding bug) is
 * columnized again with every event checked in full, so it gets exactly what `validate` decides.
 */
export function columnize(ds: Datasource, limits: Limits, events: unknown, validator = new EventValidator(ds, limits)): EventColumns {
  const list = checkBatch(events, limits);
  if (!EventValidator.fastPathSound()) return columnsOf(ds, list, validator, Checks.Validate)!;
  return columnsOf(ds, list, validator, Checks.Shape) ?? columnsOf(ds, list, validator, Checks.Accept)!;
}

/** `columnize` of a checked batch; null (only with Checks.Shape) when an accepted row holds a malformed string. */
function columnsOf(ds: Datasource, list: unknown[], validator: EventValidator, checks: Checks): EventColumns | null {
  const total = list.length;
  const rows = allocRowBatch(ds, total);
  const index = new Uint32Array(total);
  const keyHashes = ds.dedupKey === null ? null : new Uint32Array(2 * total);
  const rejected: RejectedEvent[] = [];
  // Each dimension's batch-local dictionary is built as rows are accepted: distinct values in order of first use.
  const dimCount = ds.dimensions.length;
  const locals = dictionariesFor(validator, dimCount);
  for (const l of locals) l.reset();
  const ids = locals.map(() => new Uint32Array(total));
  const rowValues = validator.dims;
  const accept = checks === Checks.Shape ? validator.acceptShape : validator.accept;
  let k = 0;
  for (let i = 0; i < total; i++) {
    const bad = checks !== Checks.Validate && accept(list[i], rows, k) ? null : validator.validate(list[i], rows, k);
    if (bad !== null) {
      rejected.push({ index: i, code: bad.code, message: bad.message });
      continue;
    }
    if (keyHashes !== null && hashKeyInto(validator.key!, keyHashes, k) >= FIRST_SURROGATE && checks === Checks.Shape && !validator.key!.isWellFormed()) return null;
    for (let d = 0; d < dimCount; d++) ids[d]![k] = locals[d]!.idOf(rowValues[d]!);
    index[k++] = i;
  }
  const dims: LoggedDimension[] = locals.map((l, d) => ({ values: l.take(), ids: k < total ? ids[d]!.subarray(0, k) : ids[d]! }));
  if (checks === Checks.Shape) {
    for (const dim of dims) for (const v of dim.values) if (v !== null && !v.isWellFormed()) return null;
  }
  return {
    total, n: k, index: index.subarray(0, k), ts: rows.ts.subarray(0, k), dims,
    metrics: rows.metrics.map((m) => m.subarray(0, k)), keyHashes: keyHashes === null ? null : keyHashes.subarray(0, 2 * k), rejected,
  };
}
