/**
 * The validator's generated fast path (`fastPathSource`, compiled into `columnize`'s per-row loop) never decides
 * differently from `validate`: whenever it takes an event, `validate` accepts it too, with the same time, dimensions,
 * metrics and dedup key. Everything it declines goes to `validate`, so declining is always safe; the property checks
 * it takes the common shapes. And `columnize`, whose loop leaves out the well-formedness check of strings and checks
 * them once per distinct value instead, decides every event of a batch as `validate` does, lone surrogates included.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventValidator, allocRowBatch } from '../src/schema/event.js';
import { columnize, columnizePaths, type EventColumns } from '../src/ingest/columns.js';
import { hashKeyInto } from '../src/ingest/dedup.js';
import { resolveDatasource } from '../src/schema/datasource.js';
import { DEFAULT_LIMITS, type Limits } from '../src/limits.js';
import { SMALL_SPECS } from './support/specs.js';

const LIMITS: Limits = { ...DEFAULT_LIMITS, maxDimensionValueBytes: 30, maxDedupKeyLength: 12 };
const SPECS = SMALL_SPECS.map((s) => resolveDatasource(s, LIMITS));

const stringArb = fc.oneof(
  fc.constantFrom('bangalore', 'male', '', 'x'.repeat(10), 'x'.repeat(11), 'é'.repeat(10), '\ud800', 'a\udc00b'),
  fc.string({ maxLength: 40 }),
);
const valueArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: stringArb },
  { weight: 4, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -1, 2 ** 53, NaN, Infinity, 1.5)) },
  { weight: 1, arbitrary: fc.constantFrom(null, undefined, true, [], {}) },
);
const tsArb = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 2 ** 45 }) },
  { weight: 2, arbitrary: fc.constantFrom(-1, 1.5, 253_402_300_799_999, 253_402_300_800_000, '2026-11-23T00:00:00Z', null, undefined, NaN) },
);
/** Mostly values a producer sends (so the fast path is exercised), sometimes anything. */
const goodOrAny = (good: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> => fc.oneof({ weight: 8, arbitrary: good }, { weight: 2, arbitrary: valueArb });
const dimArb = goodOrAny(fc.oneof(fc.constantFrom('bangalore', 'male', 'x'.repeat(10), 'y'.repeat(31), 'é'.repeat(16), null), fc.string({ maxLength: 12 })));
const metricArb = goodOrAny(fc.oneof(fc.integer({ min: -99, max: 99 }), fc.constant(null)));
const keyArb = goodOrAny(fc.oneof(fc.string({ minLength: 1, maxLength: 14 }), fc.integer({ min: 0, max: 10 ** 13 })));

/** Events of a datasource's fields, with some fields missing, extra or of the wrong kind, in several object forms. */
function eventArb(fields: string[]): fc.Arbitrary<unknown> {
  const entries = fc.tuple(
    tsArb,
    fc.tuple(...fields.map((f) => fc.option(f.startsWith('m') ? metricArb : f === 'id' ? keyArb : dimArb, { nil: undefined, freq: 8 }).map((v) => [f, v] as const))),
    fc.option(fc.constantFrom('extra', '__proto__', 'toString'), { nil: undefined, freq: 6 }),
    fc.oneof({ weight: 8, arbitrary: fc.constant('plain') }, { weight: 1, arbitrary: fc.constantFrom('null-proto', 'class', 'explicit-undefined', 'getter') }),
  );
  return entries.map(([ts, vals, extra, form]) => {
    const e: Record<string, unknown> = form === 'null-proto' ? Object.create(null) : form === 'class' ? new (class Ev {})() : {};
    if (ts !== undefined || form === 'explicit-undefined') e.ts = ts;
    for (const [k, v] of vals) if (v !== undefined || form === 'explicit-undefined') e[k] = v;
    if (extra !== undefined) Object.defineProperty(e, extra, { value: 1, enumerable: true, configurable: true, writable: true });
    if (form === 'getter') Object.defineProperty(e, 'd0', { get: () => 'from-getter', enumerable: true, configurable: true });
    return e;
  });
}

/** What `columnize` must give, built event by event with `validate` (a plain model: arrays and indexOf). */
function referenceColumns(ds: (typeof SPECS)[number], list: unknown[]): unknown {
  const v = new EventValidator(ds, LIMITS);
  const out = allocRowBatch(ds, 1);
  const rows: { index: number; ts: number; dims: (string | null)[]; key: string | null; metrics: number[] }[] = [];
  const rejected: unknown[] = [];
  list.forEach((e, index) => {
    const bad = v.validate(e, out, 0);
    if (bad !== null) rejected.push({ index, ...bad });
    else rows.push({ index, ts: out.ts[0]!, dims: [...v.dims], key: v.key, metrics: out.metrics.map((m) => m[0]!) });
  });
  const dims = ds.dimensions.map((_d, d) => {
    const values: (string | null)[] = [];
    const ids = rows.map((r) => {
      const at = values.indexOf(r.dims[d]!);
      return at >= 0 ? at : values.push(r.dims[d]!) - 1;
    });
    return { values, ids };
  });
  const keyHashes = ds.dedupKey === null ? null : new Uint32Array(2 * rows.length);
  rows.forEach((r, i) => keyHashes !== null && hashKeyInto(r.key!, keyHashes, i));
  return {
    total: list.length, n: rows.length, index: rows.map((r) => r.index), ts: rows.map((r) => r.ts), dims,
    metrics: ds.metrics.map((_m, m) => rows.map((r) => r.metrics[m])), keyHashes: keyHashes === null ? null : [...keyHashes], rejected,
  };
}

const plainColumns = (c: EventColumns): unknown => ({
  total: c.total, n: c.n, index: [...c.index], ts: [...c.ts], dims: c.dims.map((d) => ({ values: d.values, ids: [...d.ids] })),
  metrics: c.metrics.map((m) => [...m]), keyHashes: c.keyHashes === null ? null : [...c.keyHashes], rejected: c.rejected,
});

/** `e` with a lone surrogate in its field `f`, unless `f` is an accessor there. */
function withMalformed(e: unknown, f: string): unknown {
  if (typeof e !== 'object' || e === null) return e;
  const d = Object.getOwnPropertyDescriptor(e, f);
  if (d === undefined || 'value' in d) Object.defineProperty(e, f, { value: 'x\ud800', enumerable: true, configurable: true, writable: true });
  return e;
}

/** Batches of mostly fast-path events; values repeat (a malformed one too), so most rows reuse a distinct value. */
const batchArb = (fields: string[]): fc.Arbitrary<unknown[]> => fc.array(fc.oneof(
  { weight: 15, arbitrary: eventArb(fields) },
  { weight: 1, arbitrary: fc.tuple(eventArb(fields), fc.constantFrom(...fields)).map(([e, f]) => withMalformed(e, f)) },
), { maxLength: 30 });
const fieldsOf = (ds: (typeof SPECS)[number]): string[] =>
  [...ds.dimensions, ...ds.metrics.map((m) => m.name), ...(ds.dedupKey !== null && !ds.dimensions.includes(ds.dedupKey) ? [ds.dedupKey] : [])];

/** Rows `columnize` took by each path while `run` ran. */
function pathsDuring(run: () => void): { fast: number; validated: number } {
  const before = { ...columnizePaths };
  run();
  return { fast: columnizePaths.fast - before.fast, validated: columnizePaths.validated - before.validated };
}

describe('validator fast path', () => {
  it('takes only what validate accepts, with identical outputs; declines the rest to validate', () => {
    for (const ds of SPECS) {
      const validator = new EventValidator(ds, LIMITS);
      const paths = pathsDuring(() => {
        fc.assert(fc.property(eventArb(fieldsOf(ds)), (e) => {
          expect(plainColumns(columnize(ds, LIMITS, [e], validator))).toEqual(referenceColumns(ds, [e]));
        }), { numRuns: 1500 });
      });
      // Both paths were taken, so the property speaks for the fast path, not only for declining.
      expect(paths.fast).toBeGreaterThan(20);
      expect(paths.validated).toBeGreaterThan(20);
    }
  });

  it('a typical event takes the fast path', () => {
    const ds = SPECS[0]!;
    let cols: EventColumns | null = null;
    const paths = pathsDuring(() => (cols = columnize(ds, LIMITS, [{ ts: 1_700_000_000_000, id: 'ev-1', d0: 'bangalore', d1: 'male', m0: 3, m1: 0.25 }])));
    expect(paths).toEqual({ fast: 1, validated: 0 });
    expect(plainColumns(cols!)).toMatchObject({ n: 1, ts: [1_700_000_000_000], dims: [{ values: ['bangalore'], ids: [0] }, { values: ['male'], ids: [0] }], metrics: [[3], [0.25]] });
  });

  it('an event the fast path declines is validated, and only that one', () => {
    const ds = SPECS[0]!;
    const typical = { ts: 1_700_000_000_000, id: 'ev-1', d0: 'bangalore', d1: 'male', m0: 3, m1: 0.25 };
    // An ISO-8601 time is valid, but only `validate` parses it; an unknown field is rejected by `validate`.
    const list = [typical, { ...typical, id: 'ev-2', ts: '2026-11-23T00:00:00Z' }, { ...typical, id: 'ev-3', extra: 1 }, { ...typical, id: 'ev-4' }];
    let cols: EventColumns | null = null;
    expect(pathsDuring(() => (cols = columnize(ds, LIMITS, list)))).toEqual({ fast: 2, validated: 2 });
    expect([cols!.n, [...cols!.index], cols!.rejected.map((r) => r.code)]).toEqual([3, [0, 1, 3], ['FIELD_UNKNOWN']]);
  });

  it('canary: the property finds a fast path compiled with a looser string limit than validate uses', () => {
    const ds = SPECS[0]!;
    const loose = new EventValidator(ds, { ...LIMITS, maxDimensionValueBytes: 10_000 });
    const outcome = fc.check(fc.property(eventArb(fieldsOf(ds)), (e) => {
      expect(plainColumns(columnize(ds, LIMITS, [e], loose))).toEqual(referenceColumns(ds, [e]));
    }), { numRuns: 1500 });
    expect(outcome.failed).toBe(true);
  });
});

describe('columnize', () => {
  it('decides every event of a batch as validate does, strings checked once per distinct value', () => {
    for (const ds of SPECS) {
      const validator = new EventValidator(ds, LIMITS);
      let malformedBatches = 0;
      fc.assert(fc.property(batchArb(fieldsOf(ds)), (list) => {
        const want = referenceColumns(ds, list) as { rejected: { code: string }[] };
        if (want.rejected.some((r) => r.code === 'DIMENSION_MALFORMED' || r.code === 'DEDUP_KEY_INVALID')) malformedBatches++;
        expect(plainColumns(columnize(ds, LIMITS, list, validator))).toEqual(want);
      }), { numRuns: 400 });
      // The property met batches where a string's well-formedness decided, not only clean ones.
      expect(malformedBatches).toBeGreaterThan(20);
    }
  });

  it('a lone surrogate in a repeated value or a key rejects exactly the events holding it', () => {
    const ds = SPECS[0]!;
    const good = (i: number): Record<string, unknown> => ({ ts: 1_700_000_000_000 + i, id: `ev-${i}`, d0: `img${i % 20}`, d1: 'male', m0: i, m1: 0.5 });
    const list: unknown[] = Array.from({ length: 100 }, (_, i) => good(i));
    list[40] = { ...good(40), d0: 'ban\ud800galore' };
    list[70] = { ...good(70), d0: 'ban\ud800galore' };
    list[55] = { ...good(55), id: 'k\udc00' };
    const cols = columnize(ds, LIMITS, list);
    expect(cols.rejected.map((r) => [r.index, r.code])).toEqual([[40, 'DIMENSION_MALFORMED'], [55, 'DEDUP_KEY_INVALID'], [70, 'DIMENSION_MALFORMED']]);
    expect(cols.n).toBe(97);
    expect(cols.dims[0]!.values).toHaveLength(20);
  });

  it('canary: the property finds a columnize whose validator allows longer strings than validate does', () => {
    const ds = SPECS[0]!;
    const loose = new EventValidator(ds, { ...LIMITS, maxDimensionValueBytes: 10_000 });
    const outcome = fc.check(fc.property(batchArb(fieldsOf(ds)), (list) => {
      expect(plainColumns(columnize(ds, LIMITS, list, loose))).toEqual(referenceColumns(ds, list));
    }), { numRuns: 400 });
    expect(outcome.failed).toBe(true);
  });
});
