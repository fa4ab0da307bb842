/**
 * schema/event.ts — validation of one event into a columnar row batch.
 *
 * Invariant: a row that reaches a `RowBatch` satisfies its datasource — a timestamp in range, every dimension a
 * well-formed string or null within the length limit, every metric a finite number of its type (or null, stored as
 * NaN) — and an event that does not is reported with a stable code and a message naming the field, without
 * affecting any other event. Validation never mutates engine state; the ingest pipeline decides acceptance.
 */
import { describeValue, type ErrorCode } from '../errors.js';
import type { Limits } from '../limits.js';
import { MAX_TIMESTAMP_MS, parseTimestamp } from '../time.js';
import type { Datasource } from './datasource.js';

/**
 * Validated rows' times and metrics, column by column (their dimensions travel as batch-local dictionaries:
 * LoggedDimension). Metric nulls are NaN (NaN is never accepted as a value, so it is free to mean "absent").
 */
export interface RowBatch {
  length: number;
  ts: Float64Array;
  /** metrics[m][row]: the value of metric m, NaN for null. */
  metrics: Float64Array[];
}

/** A batch for `EventValidator.validate` to fill: times and metrics (dimension values go to `validator.dims`). */
export function allocRowBatch(ds: Datasource, capacity: number): RowBatch {
  return {
    length: 0,
    ts: new Float64Array(capacity),
    metrics: ds.metrics.map(() => new Float64Array(capacity)),
  };
}

export interface Rejection {
  code: ErrorCode;
  message: string;
}

const enum FieldKind { Time, Dimension, Metric, DedupKey, DimensionAndKey }

/** A validator compiled once per datasource: field name → role lookups without per-event allocation. */
export class EventValidator {
  private readonly fields = new Map<string, { kind: FieldKind; index: number }>();
  private readonly intMetric: boolean[];
  private readonly dimCount: number;
  private readonly metricCount: number;
  /** Filled by `validate` for the event just validated: its time, dimension values (null when absent) and key. */
  ts = 0;
  readonly dims: (string | null)[];
  key: string | null = null;

  constructor(private readonly ds: Datasource, private readonly limits: Limits) {
    this.fields.set(ds.timeField, { kind: FieldKind.Time, index: 0 });
    ds.dimensions.forEach((d, i) => this.fields.set(d, { kind: d === ds.dedupKey ? FieldKind.DimensionAndKey : FieldKind.Dimension, index: i }));
    ds.metrics.forEach((m, i) => this.fields.set(m.name, { kind: FieldKind.Metric, index: i }));
    if (ds.dedupKey !== null && !this.fields.has(ds.dedupKey)) this.fields.set(ds.dedupKey, { kind: FieldKind.DedupKey, index: 0 });
    this.intMetric = ds.metrics.map((m) => m.type === 'int');
    this.dimCount = ds.dimensions.length;
    this.dims = ds.dimensions.map(() => null);
    this.metricCount = ds.metrics.length;
  }

  /**
   * True while Object.prototype has no enumerable properties (it never has, unless a library added some): then a
   * for-in over an event counts exactly its own keys, which the fast path relies on. Checked per batch by the caller.
   */
  static fastPathSound(): boolean {
    for (const _ in Object.prototype) return false;
    return true;
  }

  /**
   * The fast path of `validate` for this datasource, as JavaScript source for a generated function to inline
   * (ingest/columns.ts compiles it into its per-row loop): statements over the event in `e` that read each known field
   * by name — monomorphic property loads, where `validate` walks the keys and looks each up — and run `fail` for
   * anything unusual: a missing or unknown field, a field explicitly undefined, an ISO-8601 time, a wrong type, a long
   * string, a prototype other than Object.prototype or null (the function's scope must bind `ObjectProto` to
   * Object.prototype). Past them, the event is one `validate` accepts, with its time in `ts`, the dimension values in
   * `dims` (null when absent), the metric values in `metrics` (NaN when absent) and the dedup key in `key` — names of
   * the variables the statements declared, by the validator's dimension and metric order.
   *
   * With `checkWellFormed` false, strings are not checked for a lone UTF-16 surrogate: the statements may then pass an
   * event that `validate` rejects as DIMENSION_MALFORMED or DEDUP_KEY_INVALID, and only for that reason. That is for
   * callers that check well-formedness once per distinct value instead of once per event (a batch of 10k events holds
   * ~4k distinct image ids, 50 locations and 10k keys, whose hashing sees every character anyway).
   */
  fastPathSource(checkWellFormed: boolean, fail: string): { source: string; ts: string; dims: string[]; metrics: string[]; key: string | null } {
    const names = [...this.fields.keys()];
    const L = this.limits;
    const src: string[] = [`if (typeof e !== "object" || e === null) ${fail}`];
    names.forEach((name, i) => src.push(`const v${i} = e[${JSON.stringify(name)}];`));
    // The prototype is read after the loads: their map checks tell V8 the event's possible maps, so it folds
    // `Object.getPrototypeOf` to a constant. Read first, it was a runtime call per event (the suite's events have two
    // maps, with and without `cost`, one a transition of the other: ~1.2% of columnize). For an event the check then
    // declines (a class instance), the loads may run a getter of its prototype that `validate` does not read: a wasted
    // call that decides nothing.
    src.push(
      'const proto = Object.getPrototypeOf(e);',
      `if (proto !== ObjectProto && proto !== null) ${fail}`,
      'let keys = 0;',
      'for (const _ in e) keys++;',
    );
    src.push('let present = 0;');
    names.forEach((_n, i) => src.push(`if (v${i} !== undefined) present++;`));
    src.push(`if (keys !== present) ${fail}`);
    let ts = '';
    const dims = new Array<string>(this.dimCount);
    const metrics = new Array<string>(this.metricCount);
    let key: string | null = null;
    names.forEach((name, i) => {
      const f = this.fields.get(name)!;
      const v = `v${i}`;
      switch (f.kind) {
        case FieldKind.Time:
          src.push(`if (typeof ${v} !== "number" || !(${v} >= 0 && ${v} <= ${MAX_TIMESTAMP_MS}) || !Number.isInteger(${v})) ${fail}`);
          ts = v;
          break;
        case FieldKind.Dimension:
        case FieldKind.DimensionAndKey:
          src.push(
            `let x${i} = null;`,
            `if (${v} !== undefined && ${v} !== null) {`,
            `  if (typeof ${v} !== "string" || ${v}.length * 3 > ${L.maxDimensionValueBytes}${checkWellFormed ? ` || !${v}.isWellFormed()` : ''}) ${fail}`,
            `  x${i} = ${v};`,
            '}',
          );
          dims[f.index] = `x${i}`;
          if (f.kind === FieldKind.DimensionAndKey) key = `x${i}`;
          break;
        case FieldKind.Metric:
          src.push(
            `let x${i} = NaN;`,
            `if (${v} !== undefined && ${v} !== null) {`,
            `  if (typeof ${v} !== "number" || !Number.isFinite(${v})${this.intMetric[f.index] ? ` || !Number.isSafeInteger(${v})` : ''}) ${fail}`,
            `  x${i} = ${v};`,
            '}',
          );
          metrics[f.index] = `x${i}`;
          break;
        case FieldKind.DedupKey:
          src.push(
            `let x${i} = null;`,
            `if (${v} !== undefined && ${v} !== null) {`,
            `  if (typeof ${v} === "string") {`,
            `    if (${v}.length === 0 || ${v}.length > ${L.maxDedupKeyLength}${checkWellFormed ? ` || !${v}.isWellFormed()` : ''}) ${fail}`,
            `    x${i} = ${v};`,
            `  } else if (typeof ${v} === "number" && Number.isSafeInteger(${v})) x${i} = String(${v});`,
            `  else ${fail}`,
            '}',
          );
          key = `x${i}`;
          break;
      }
    });
    if (ts === '') throw new Error('a datasource always has a time field');
    if (this.ds.dedupKey !== null) src.push(`if (${key} === null || ${key}.length === 0 || ${key}.length > ${L.maxDedupKeyLength}) ${fail}`);
    return { source: src.join('\n'), ts, dims, metrics, key };
  }

  /**
   * Validate `event` and write its time and metrics at row `row` of `out` (without changing `out.length`), its
   * dimension values to `this.dims`. Returns null when valid, with `this.ts`, `this.dims` and `this.key` set;
   * otherwise the rejection. A rejected event may leave partial values at `row`, which the caller overwrites.
   */
  validate(event: unknown, out: RowBatch, row: number): Rejection | null {
    if (typeof event !== 'object' || event === null || Array.isArray(event)) {
      return { code: 'EVENT_NOT_OBJECT', message: `event: got ${describeValue(event)}; want an object` };
    }
    for (let d = 0; d < this.dimCount; d++) this.dims[d] = null;
    for (let m = 0; m < this.metricCount; m++) out.metrics[m]![row] = NaN;
    let sawTime = false;
    this.key = null;
    const e = event as Record<string, unknown>;
    for (const name in e) {
      if (!Object.prototype.hasOwnProperty.call(e, name)) continue;
      const field = this.fields.get(name);
      const value = e[name];
      if (field === undefined) {
        return { code: 'FIELD_UNKNOWN', message: `event field '${name}': not in datasource '${this.ds.name}'; want one of ${[...this.fields.keys()].join(', ')}` };
      }
      switch (field.kind) {
        case FieldKind.Time: {
          if (value === null || value === undefined) break;
          const t = parseTimestamp(value);
          if (!t.ok) {
            return { code: t.reason === 'range' ? 'TIMESTAMP_OUT_OF_RANGE' : 'TIMESTAMP_INVALID', message: `event field '${name}': ${t.message}` };
          }
          this.ts = t.ms;
          sawTime = true;
          break;
        }
        case FieldKind.Dimension:
        case FieldKind.DimensionAndKey: {
          if (value === null || value === undefined) break;
          if (typeof value !== 'string') {
            return { code: 'DIMENSION_NOT_STRING', message: `event field '${name}': got ${describeValue(value)}; want a string or null` };
          }
          const bad = this.checkString(name, value);
          if (bad !== null) return bad;
          this.dims[field.index] = value;
          if (field.kind === FieldKind.DimensionAndKey) this.key = value;
          break;
        }
        case FieldKind.Metric: {
          if (value === null || value === undefined) break;
          if (typeof value !== 'number') {
            return { code: 'METRIC_NOT_NUMBER', message: `event field '${name}': got ${describeValue(value)}; want a number or null` };
          }
          if (!Number.isFinite(value)) {
            return { code: 'METRIC_NOT_FINITE', message: `event field '${name}': got ${String(value)}; want a finite number` };
          }
          if (this.intMetric[field.index] && !Number.isSafeInteger(value)) {
            return { code: 'METRIC_NOT_INTEGER', message: `event field '${name}': got ${String(value)}; want an integer in ±(2^53-1) for an 'int' metric` };
          }
          out.metrics[field.index]![row] = value;
          break;
        }
        case FieldKind.DedupKey: {
          if (value === null || value === undefined) break;
          if (typeof value === 'string') {
            const bad = this.checkKey(name, value);
            if (bad !== null) return bad;
            this.key = value;
          } else if (typeof value === 'number' && Number.isSafeInteger(value)) {
            this.key = String(value);
          } else {
            return { code: 'DEDUP_KEY_INVALID', message: `event field '${name}': got ${describeValue(value)}; want a non-empty string or an integer` };
          }
          break;
        }
      }
    }
    if (!sawTime) return { code: 'TIMESTAMP_MISSING', message: `event field '${this.ds.timeField}': missing; want epoch ms or an ISO-8601 string` };
    if (this.ds.dedupKey !== null) {
      if (this.key === null) return { code: 'DEDUP_KEY_MISSING', message: `event field '${this.ds.dedupKey}': missing; datasource '${this.ds.name}' deduplicates by it` };
      if (this.key.length === 0 || this.key.length > this.limits.maxDedupKeyLength) {
        return { code: 'DEDUP_KEY_INVALID', message: `event field '${this.ds.dedupKey}': got length ${this.key.length}; want 1..${this.limits.maxDedupKeyLength} characters` };
      }
    }
    out.ts[row] = this.ts;
    return null;
  }

  private checkString(name: string, value: string): Rejection | null {
    const max = this.limits.maxDimensionValueBytes;
    if (value.length * 3 > max && Buffer.byteLength(value, 'utf8') > max) {
      return { code: 'DIMENSION_TOO_LONG', message: `event field '${name}': got ${Buffer.byteLength(value, 'utf8')} UTF-8 bytes; want at most ${max}` };
    }
    if (!value.isWellFormed()) {
      return { code: 'DIMENSION_MALFORMED', message: `event field '${name}': the string holds a lone UTF-16 surrogate; want well-formed Unicode` };
    }
    return null;
  }

  private checkKey(name: string, value: string): Rejection | null {
    if (value.length === 0 || value.length > this.limits.maxDedupKeyLength) {
      return { code: 'DEDUP_KEY_INVALID', message: `event field '${name}': got length ${value.length}; want 1..${this.limits.maxDedupKeyLength} characters` };
    }
    if (!value.isWellFormed()) {
      return { code: 'DEDUP_KEY_INVALID', message: `event field '${name}': the string holds a lone UTF-16 surrogate; want well-formed Unicode` };
    }
    return null;
  }
}
