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
import { COLUMN_SETS, type Limits } from '../limits.js';
import type { Datasource } from '../schema/datasource.js';
import { EventValidator, type RowBatch } from '../schema/event.js';
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
  /**
   * Per dimension, the key words of `dims[d].values` (3 a value, as head/dictionary.ts `StringTable.lastKeyInto`
   * writes them), so the head's lookups need not compute them again; absent when the batch did not come with them.
   * Trusted as the rest of the columns are (`columnize` and the MessagePack columnizer make them): a short value's
   * words are not checked against its string, so words of another value would give it that value's id.
   */
  dimKeys?: Int32Array[];
  metrics: Float64Array[];
  /** (hi, lo) 64-bit hash of each row's dedup key; null without a dedup key. */
  keyHashes: Uint32Array | null;
  /** Events that failed validation, by index. */
  rejected: RejectedEvent[];
  /**
   * Gives the memory of the typed arrays above back to `columnize` for a later batch (only on columns it made with
   * `pooled`): the caller calls it once nothing reads them any more — for ingest, when the batch is committed or
   * aborted (db.ts). A second call does nothing; never calling it leaves them to the collector.
   */
  release?: () => void;
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

/**
 * Rows of `columnize` by how each was validated: by the generated loop's fast path, or by `validate` (declined by
 * the fast path, rejected, or the whole batch again after a malformed string). Tests read it to see both exercised.
 */
export const columnizePaths = { fast: 0, validated: 0 };

/**
 * `validate` for row `i` of a batch, as the generated loop calls it for an event its fast path declines: writes the
 * row at `k` (or the rejection) and returns the next row index.
 */
type SlowRow = (i: number, k: number) => number;

/**
 * The generated per-row loop of one datasource (see `compileLoop`): rows from `list` into the columns, returning
 * the number of rows, or −1 when a dedup key holds a lone surrogate (only when compiled without well-formedness
 * checks: the caller then columnizes the batch again with them).
 */
type RowLoop = (list: unknown[], ts: Float64Array, metrics: Float64Array[], ids: Uint32Array[], locals: BatchDictionary[], keyHashes: Uint32Array | null, index: Uint32Array, slow: SlowRow) => number;

/**
 * The typed arrays of one batch's columns, with room for `capacity` events: made together in one buffer, and with
 * `pooled`, used again for a later batch once released (EventColumns.release). Fresh arrays per batch cost the
 * ingest thread their zeroing and page faults, ~560 KB a 10k-event batch of the suite's datasource (docs/
 * benchmarks.md, "Fifteenth session"). Nothing of a batch's columns depends on their memory starting zeroed: every
 * column is written for every row taken, and only rows taken are read.
 */
interface ColumnSet {
  capacity: number;
  ts: Float64Array;
  metrics: Float64Array[];
  index: Uint32Array;
  keyHashes: Uint32Array | null;
  ids: Uint32Array[];
}

/**
 * A new set: in one buffer when `oneBuffer` (one allocation, for the pool), else each column in a buffer of its own —
 * what a caller that transfers the columns to another thread needs (a transfer list names each buffer once).
 */
function newColumnSet(ds: Datasource, capacity: number, oneBuffer: boolean): ColumnSet {
  const keyed = ds.dedupKey !== null;
  const buf = oneBuffer ? new ArrayBuffer(capacity * (8 + 8 * ds.metrics.length + 4 + (keyed ? 8 : 0) + 4 * ds.dimensions.length)) : null;
  let at = 0;
  const f64 = (): Float64Array => {
    if (buf === null) return new Float64Array(capacity);
    const a = new Float64Array(buf, at, capacity);
    at += 8 * capacity;
    return a;
  };
  const u32 = (length: number): Uint32Array => {
    if (buf === null) return new Uint32Array(length);
    const a = new Uint32Array(buf, at, length);
    at += 4 * length;
    return a;
  };
  return { capacity, ts: f64(), metrics: ds.metrics.map(f64), index: u32(capacity), keyHashes: keyed ? u32(2 * capacity) : null, ids: ds.dimensions.map(() => u32(capacity)) };
}

/** What `columnize` keeps per validator (columnize is synchronous, so one batch uses them at a time). */
interface Columnizer {
  /** One batch-local dictionary per dimension, reused from batch to batch. */
  locals: BatchDictionary[];
  /** The loop without well-formedness checks of strings (the common case), and the one with them. */
  shape: RowLoop;
  full: RowLoop;
  /** Column sets released and not yet taken again (at most limits.ts COLUMN_SETS.idle). */
  free: ColumnSet[];
}

/** How many pooled column sets `columnize` made (tests check that released ones are taken again). */
export const columnSetsMade = { pooled: 0 };

/** A released set with room for `total` events, or a new one (room rounded up to a multiple of 1,024). */
function takeColumnSet(ds: Datasource, c: Columnizer, total: number): ColumnSet {
  const free = c.free;
  for (let i = free.length - 1; i >= 0; i--) {
    const set = free[i]!;
    if (set.capacity >= total) {
      free[i] = free[free.length - 1]!;
      free.pop();
      return set;
    }
  }
  columnSetsMade.pooled++;
  return newColumnSet(ds, Math.max(1024, (total + 1023) & ~1023), true);
}

function giveColumnSet(c: Columnizer, set: ColumnSet): void {
  if (c.free.length < COLUMN_SETS.idle) c.free.push(set);
}

const columnizers = new WeakMap<EventValidator, Columnizer>();

function columnizerFor(ds: Datasource, validator: EventValidator): Columnizer {
  let c = columnizers.get(validator);
  if (c === undefined) {
    c = { locals: ds.dimensions.map(() => new BatchDictionary()), shape: compileLoop(ds, validator, false), full: compileLoop(ds, validator, true), free: [] };
    columnizers.set(validator, c);
  }
  return c;
}

/**
 * Generate the per-row loop for `validator`'s datasource: the validator's fast-path checks (`fastPathSource`)
 * inline, then the row's time, metrics, key hash and batch-dictionary ids written straight from them, with every
 * column and dictionary in a local of its own. One function per datasource, so the property loads, the checks and
 * the dictionaries' `idOf` are compiled together: where the loop called a generated `accept` per event, which left
 * the values in the validator for the loop to read back, this takes 10–20% less time an event (docs/benchmarks.md,
 * "Thirteenth session"). An event the checks decline goes to `slow` (`validate`), which decides exactly.
 */
function compileLoop(ds: Datasource, validator: EventValidator, checkWellFormed: boolean): RowLoop {
  const fp = validator.fastPathSource(checkWellFormed, 'break fast;');
  const body: string[] = [];
  ds.dimensions.forEach((_d, d) => body.push(`const ids${d} = ids[${d}], local${d} = locals[${d}];`));
  ds.metrics.forEach((_m, m) => body.push(`const metric${m} = metrics[${m}];`));
  body.push('const total = list.length;', 'let k = 0;', 'for (let i = 0; i < total; i++) {', 'const e = list[i];', 'fast: {', fp.source, `ts[k] = ${fp.ts};`);
  fp.metrics.forEach((x, m) => body.push(`metric${m}[k] = ${x};`));
  if (fp.key !== null) {
    // The hash's pass returns the OR of the key's code units: below FIRST_SURROGATE, no unit is a surrogate.
    body.push(checkWellFormed ? `hashKeyInto(${fp.key}, keyHashes, k);` : `if (hashKeyInto(${fp.key}, keyHashes, k) >= FIRST_SURROGATE && !${fp.key}.isWellFormed()) return -1;`);
  }
  fp.dims.forEach((x, d) => body.push(`ids${d}[k] = local${d}.idOf(${x});`));
  body.push('index[k++] = i;', 'continue;', '}', 'k = slow(i, k);', '}', 'return k;');
  const make = new Function('ObjectProto', 'hashKeyInto', 'FIRST_SURROGATE',
    `return function rowLoop(list, ts, metrics, ids, locals, keyHashes, index, slow) {\n${body.join('\n')}\n};`) as (proto: object, hash: typeof hashKeyInto, first: number) => RowLoop;
  return make(Object.prototype, hashKeyInto, FIRST_SURROGATE);
}

/**
 * Validate `events` (an array, checked) into columns. The common case runs the generated loop without the
 * well-formedness check of strings, which is made here instead once per distinct dimension value of the batch and,
 * for a dedup key, by its hash's pass over the characters; a batch with a malformed string (rare: a client's
 * encoding bug) is columnized again with every event checked in full, so it gets exactly what `validate` decides.
 */
export function columnize(ds: Datasource, limits: Limits, events: unknown, validator = new EventValidator(ds, limits), pooled = false): EventColumns {
  const list = checkBatch(events, limits);
  const c = columnizerFor(ds, validator);
  if (!EventValidator.fastPathSound()) return columnsOf(ds, list, validator, c, null, pooled)!;
  return columnsOf(ds, list, validator, c, c.shape, pooled) ?? columnsOf(ds, list, validator, c, c.full, pooled)!;
}

/**
 * `columnize` of a checked batch by `loop` (or by `validate` alone when null); null when `loop` is `c.shape` and an
 * accepted row holds a malformed string.
 */
function columnsOf(ds: Datasource, list: unknown[], validator: EventValidator, c: Columnizer, loop: RowLoop | null, pooled: boolean): EventColumns | null {
  const total = list.length;
  // Columns of their own (the caller may transfer them to another thread), or a set to give back once released.
  const set = pooled ? takeColumnSet(ds, c, total) : newColumnSet(ds, total, false);
  const rows: RowBatch = { length: 0, ts: set.ts, metrics: set.metrics };
  const index = set.index;
  const keyHashes = set.keyHashes;
  const rejected: RejectedEvent[] = [];
  // Each dimension's batch-local dictionary is built as rows are accepted: distinct values in order of first use.
  const dimCount = ds.dimensions.length;
  const locals = c.locals;
  for (const l of locals) l.reset();
  const ids = set.ids;
  const rowValues = validator.dims;
  let validated = 0;
  const slow: SlowRow = (i, k) => {
    validated++;
    const bad = validator.validate(list[i], rows, k);
    if (bad !== null) {
      rejected.push({ index: i, code: bad.code, message: bad.message });
      return k;
    }
    // `validate` checked the key's and the values' well-formedness itself.
    if (keyHashes !== null) hashKeyInto(validator.key!, keyHashes, k);
    for (let d = 0; d < dimCount; d++) ids[d]![k] = locals[d]!.idOf(rowValues[d]!);
    index[k] = i;
    return k + 1;
  };
  let k = 0;
  if (loop === null) for (let i = 0; i < total; i++) k = slow(i, k);
  else k = loop(list, rows.ts, rows.metrics, ids, locals, keyHashes, index, slow);
  const malformed = (): null => {
    if (pooled) giveColumnSet(c, set);
    return null;
  };
  if (k < 0) return malformed();
  const dims: LoggedDimension[] = locals.map((l, d) => ({ values: l.take(), ids: ids[d]!.subarray(0, k) }));
  if (loop === c.shape) {
    for (const dim of dims) for (const v of dim.values) if (v !== null && !v.isWellFormed()) return malformed();
  }
  columnizePaths.fast += k - (validated - rejected.length);
  columnizePaths.validated += validated;
  let released = false;
  return {
    total, n: k, index: index.subarray(0, k), ts: rows.ts.subarray(0, k), dims, dimKeys: locals.map((l) => l.takeKeys()),
    metrics: rows.metrics.map((m) => m.subarray(0, k)), keyHashes: keyHashes === null ? null : keyHashes.subarray(0, 2 * k), rejected,
    ...(pooled ? {
      release: () => {
        if (released) return;
        released = true;
        giveColumnSet(c, set);
      },
    } : {}),
  };
}
