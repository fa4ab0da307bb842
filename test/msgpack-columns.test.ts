/**
 * Decoding a MessagePack batch straight into columns gives exactly what unpacking it to objects and validating them
 * gives (`columnize(unpack(body))`), whenever it gives anything; batches outside its common shape go to that
 * general path (it returns null), and typical batches do not.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pack, unpack } from 'msgpackr';
import { columnize } from '../src/ingest/columns.js';
import { MsgpackColumnizer } from '../src/ingest/msgpack-columns.js';
import { resolveDatasource } from '../src/schema/datasource.js';
import { DEFAULT_LIMITS, type Limits } from '../src/limits.js';
import { SMALL_SPECS } from './support/specs.js';

const LIMITS: Limits = { ...DEFAULT_LIMITS, maxDimensionValueBytes: 24, maxDedupKeyLength: 12, maxBatchEvents: 50 };
const SPECS = SMALL_SPECS.map((s) => resolveDatasource(s, LIMITS));

const str = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('bangalore', 'male', 'img12345', 'x'.repeat(11), 'y'.repeat(12), 'z'.repeat(25), '', 'é', 'ünïcödé', '日本', '\ud800') },
  { weight: 3, arbitrary: fc.string({ maxLength: 14 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
);
const num = fc.oneof(
  fc.integer({ min: -200, max: 200 }),
  fc.constantFrom(0, -1, 127, 128, 255, 256, 65_535, 65_536, 2 ** 31, 2 ** 32, 2 ** 40, 2 ** 53 + 2, -(2 ** 40), 1.5, NaN, Infinity),
  fc.double(),
);
const tsArb = fc.oneof({ weight: 30, arbitrary: fc.integer({ min: 0, max: 2 ** 45 }) }, { weight: 1, arbitrary: fc.constantFrom(-1, 2.5, 253_402_300_800_000, '2026-11-23T00:00:00Z', null) });
const any = fc.oneof({ weight: 5, arbitrary: str }, { weight: 4, arbitrary: num }, { weight: 1, arbitrary: fc.constantFrom(null, true, [1], { x: 1 }) });

/** A valid event of the datasource: the common shape the fast path is for. */
function validEventArb(ds: (typeof SPECS)[number]): fc.Arbitrary<Record<string, unknown>> {
  const value = fc.constantFrom('bangalore', 'male', 'img12345', 'x'.repeat(11), 'y'.repeat(12), 'é', 'ünïcödé', '日本', 'a-long-ascii-value-22ch');
  const keyValue = fc.oneof(fc.string({ minLength: 1, maxLength: 12 }), fc.constantFrom('ev-1', 'ev-2', 'ünï'));
  const parts: Record<string, fc.Arbitrary<unknown>> = { ts: fc.integer({ min: 0, max: 2 ** 45 }) };
  for (const d of ds.dimensions) parts[d] = d === ds.dedupKey ? keyValue : fc.option(value, { nil: null });
  for (const m of ds.metrics) parts[m.name] = fc.option(m.type === 'int' ? fc.integer({ min: -(2 ** 40), max: 2 ** 40 }) : fc.double({ noNaN: true, noDefaultInfinity: true }), { nil: null });
  if (ds.dedupKey !== null && !ds.dimensions.includes(ds.dedupKey)) parts[ds.dedupKey] = fc.oneof(keyValue, fc.integer({ min: 0, max: 10 ** 9 }));
  return fc.record(parts, { requiredKeys: ['ts', ...(ds.dedupKey === null ? [] : [ds.dedupKey])] });
}

/** Batches of mostly valid events, now and then one of anything (which sends the batch to the general path). */
function batchArb(ds: (typeof SPECS)[number], fields: string[]): fc.Arbitrary<unknown[]> {
  const anyEvent = fc.tuple(tsArb, fc.tuple(...fields.map(() => fc.option(any, { nil: undefined }))), fc.boolean()).map(([ts, vals, extra]) => {
    const e: Record<string, unknown> = { ts };
    fields.forEach((f, i) => {
      if (vals[i] !== undefined) e[f] = vals[i];
    });
    if (extra) e.extra = 1;
    return e;
  });
  return fc.array(fc.oneof({ weight: 40, arbitrary: validEventArb(ds) }, { weight: 1, arbitrary: anyEvent }), { maxLength: 12 });
}

describe('MessagePack straight into columns', () => {
  it('equals unpack + columnize whenever it answers, and answers for the common shape', () => {
    for (const ds of SPECS) {
      const fields = [...ds.dimensions, ...ds.metrics.map((m) => m.name), ...(ds.dedupKey !== null && !ds.dimensions.includes(ds.dedupKey) ? [ds.dedupKey] : [])];
      const fast = new MsgpackColumnizer(ds, LIMITS);
      let answered = 0;
      let declined = 0;
      fc.assert(fc.property(batchArb(ds, fields), (events) => {
        const body = pack(events);
        const got = fast.columnize(body);
        if (got === null) {
          declined++;
          return;
        }
        if (got.n >= 3) answered++;
        expect(got).toEqual(columnize(ds, LIMITS, unpack(body)));
      }), { numRuns: 800 });
      // Batches of several rows were decoded fast, and others declined: the property speaks for both.
      expect(answered).toBeGreaterThan(100);
      expect(declined).toBeGreaterThan(30);
    }
  });

  it('declines what is not an array of maps, trailing bytes, and oversize batches', () => {
    const ds = SPECS[2]!;
    const fast = new MsgpackColumnizer(ds, LIMITS);
    expect(fast.columnize(pack({ ts: 1 }))).toBeNull();
    expect(fast.columnize(Buffer.concat([pack([{ ts: 1, d0: 'a' }]), Buffer.from([0xc0])]))).toBeNull();
    expect(fast.columnize(pack(Array.from({ length: 51 }, (_, i) => ({ ts: i }))))).toBeNull();
    expect(fast.columnize(pack([{ ts: 1, d0: 'a' }]).subarray(0, 5))).toBeNull();
    expect(fast.columnize(pack([{ ts: 1, d0: 'a' }, { ts: 2 }]))).toMatchObject({ n: 2, dims: [{ values: ['a', null] }] });
  });

  it('canary: the comparison finds a decoder that takes a string one byte short', () => {
    const ds = SPECS[2]!;
    const fast = new MsgpackColumnizer(ds, LIMITS);
    const broken = { columnize: (b: Uint8Array) => {
      const cols = fast.columnize(b);
      if (cols !== null) for (const d of cols.dims) d.values = d.values.map((v) => (v === null ? v : v.slice(0, -1)));
      return cols;
    } };
    const valid = fc.array(fc.record({ ts: fc.integer({ min: 0, max: 2 ** 40 }), d0: fc.constantFrom('bangalore', 'img7', 'ünïcödé') }), { minLength: 1, maxLength: 20 });
    const outcome = fc.check(fc.property(valid, (events) => {
      const body = pack(events);
      const got = broken.columnize(body);
      expect(got).toEqual(columnize(ds, LIMITS, unpack(body)));
    }), { numRuns: 100 });
    expect(outcome.failed).toBe(true);
  });
});
