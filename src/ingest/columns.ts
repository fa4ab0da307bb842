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
import { hashKeyInto } from './dedup.js';
import { StringTable } from '../head/dictionary.js';
import type { RejectedEvent } from './pipeline.js';

export interface EventColumns {
  /** Events in the batch, valid or not. */
  total: number;
  /** Valid events: rows 0..n-1. */
  n: number;
  /** Index in the batch of each row. */
  index: Uint32Array;
  ts: Float64Array;
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

/** Up to this many distinct values, a batch-local dictionary is searched by comparison instead of its table. */
const SCAN_VALUES = 8;

/**
 * One string table per dimension for the batch-local dictionaries, reused from batch to batch of a validator
 * (columnize is synchronous, and each call resets them): tags are local id + 1.
 */
const tables = new WeakMap<EventValidator, StringTable[]>();

function localTables(validator: EventValidator, dimCount: number): StringTable[] {
  let t = tables.get(validator);
  if (t === undefined) {
    t = Array.from({ length: dimCount }, () => new StringTable([], 1));
    tables.set(validator, t);
  }
  return t;
}

/** Validate `events` (an array, checked) into columns. */
export function columnize(ds: Datasource, limits: Limits, events: unknown, validator = new EventValidator(ds, limits)): EventColumns {
  const list = checkBatch(events, limits);
  const total = list.length;
  const rows = allocRowBatch(ds, total);
  const index = new Uint32Array(total);
  const keyHashes = ds.dedupKey === null ? null : new Uint32Array(2 * total);
  const rejected: RejectedEvent[] = [];
  // Each dimension's batch-local dictionary is built as rows are accepted: distinct values in order of first use.
  const dimCount = ds.dimensions.length;
  const dims: LoggedDimension[] = Array.from({ length: dimCount }, () => ({ values: [], ids: new Uint32Array(total) }));
  const locals = localTables(validator, dimCount);
  /** Local id of null per dimension, or -1 before a row has it. */
  const nullIds = new Int32Array(dimCount).fill(-1);
  for (let d = 0; d < dimCount; d++) locals[d]!.reset(dims[d]!.values);
  const rowValues = validator.dims;
  let k = 0;
  const fast = EventValidator.fastPathSound();
  for (let i = 0; i < total; i++) {
    const bad = fast && validator.accept(list[i], rows, k) ? null : validator.validate(list[i], rows, k);
    if (bad !== null) {
      rejected.push({ index: i, code: bad.code, message: bad.message });
      continue;
    }
    if (keyHashes !== null) hashKeyInto(validator.key!, keyHashes, k);
    for (let d = 0; d < dimCount; d++) {
      const v = rowValues[d]!;
      const values = dims[d]!.values;
      let id = -1;
      if (v === null) {
        id = nullIds[d]!;
        if (id < 0) {
          id = nullIds[d] = values.length;
          values.push(null);
        }
      } else {
        if (values.length <= SCAN_VALUES) {
          // A handful of values so far (gender, device, event type): comparing is cheaper than hashing.
          for (let j = 0; j < values.length; j++) {
            if (values[j] === v) {
              id = j;
              break;
            }
          }
        } else {
          id = locals[d]!.get(v) - 1;
        }
        if (id < 0) {
          id = values.length;
          values.push(v);
          locals[d]!.set(v, id + 1);
        }
      }
      dims[d]!.ids[k] = id;
    }
    index[k++] = i;
  }
  if (k < total) for (const dim of dims) dim.ids = dim.ids.subarray(0, k);
  return {
    total, n: k, index: index.subarray(0, k), ts: rows.ts.subarray(0, k), dims,
    metrics: rows.metrics.map((m) => m.subarray(0, k)), keyHashes: keyHashes === null ? null : keyHashes.subarray(0, 2 * k), rejected,
  };
}
