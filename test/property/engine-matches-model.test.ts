/**
 * Property: for random schemas, random ingest histories (duplicates, late, future and malformed events included)
 * and random queries, the engine's ingest outcomes and query answers equal the plain reference model's.
 * Queries run after every batch, each twice, once more over all time and once in other time buckets, so
 * that kept per-reader results (query/result-cache.ts) are met while their readers are unchanged (reused), after
 * appends to them (recomputed), and under a range or buckets they were not computed for (not reused).
 * The canary runs the same property against a deliberately wrong model and must find the difference.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { open, type Aggregation, type DatasourceSpec, type Filter, type Having, type Query } from 'tallydb';
import { Model } from '../support/model.js';
import { setHighCardinalityForTests } from '../../src/head/bucket.js';
import { setKernelsForTests } from '../../src/native/index.js';
import { decidePaths, setColumnwiseMaxRowsForTests } from '../../src/ingest/pipeline.js';

const BASE = Date.parse('2026-11-23T00:00:00Z');
const NOW = BASE + 6 * 3_600_000;
const SPAN = 4 * 3_600_000;
const VALUES = ['a', 'b', 'c', 'd', 'e'];

interface Scenario {
  spec: DatasourceSpec;
  latenessMs: number;
  maxCardinality: number;
  cards: number[];
  batches: unknown[][];
  queries: Query[];
}

 /** Minutes after BASE that sit on hour edges, Asia/Kolkata's half-hour edges and 10/60-minute lateness edges. */
const ANCHOR_MINUTES = [0, 1, 9, 10, 11, 29, 30, 31, 59, 60, 61, 70, 119, 120, 121, 180, 239];
const EDGE_OFFSETS_MS = [0, 1, 29_999, 59_999];
const instantArb = fc.tuple(fc.constantFrom(...ANCHOR_MINUTES), fc.constantFrom(...EDGE_OFFSETS_MS)).map(([m, o]) => BASE + m * 60_000 + o);

const latenessArb = fc.constantFrom(10 * 60_000, 3_600_000, 1000 * 3_600_000);

const schemaArb = fc.record({
  cards: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 3 }),
  metrics: fc.subarray([{ name: 'm0', type: 'int' as const }, { name: 'm1', type: 'float' as const }]),
  dedup: fc.boolean(),
  latenessMs: latenessArb,
  maxCardinality: fc.constantFrom(3, 1000),
});

function eventArb(s: { cards: number[]; metrics: { name: string; type: 'int' | 'float' }[]; dedup: boolean }): fc.Arbitrary<unknown> {
  const dims = s.cards.map((card, i) => fc.option(fc.constantFrom(...VALUES.slice(0, card)), { nil: null, freq: 5 }).map((v) => [`d${i}`, v] as const));
  const metrics = s.metrics.map((m) => fc.option(m.type === 'int' ? fc.integer({ min: -50, max: 50 }) : fc.integer({ min: -200, max: 200 }).map((x) => x / 4), { nil: null, freq: 6 }).map((v) => [m.name, v] as const));
  // Timestamps crowd onto a few anchor minutes (hour edges, Asia/Kolkata half-hours, lateness edges) with edge
  // offsets, so buckets hold many rows and range, bucket and lateness boundaries are hit exactly.
  const ts = fc.oneof(
    { weight: 10, arbitrary: instantArb },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: SPAN }).map((o) => BASE + o) },
    { weight: 1, arbitrary: instantArb.map((t) => new Date(t).toISOString()) },
    { weight: 1, arbitrary: fc.constant(NOW + 2 * 3_600_000) }, // beyond the future tolerance
  );
  const valid = fc.tuple(ts, fc.tuple(...dims), fc.tuple(...metrics), fc.integer({ min: 0, max: 60 })).map(([t, d, m, id]) => {
    const e: Record<string, unknown> = { ts: t };
    for (const [k, v] of d) if (v !== null) e[k] = v;
    for (const [k, v] of m) if (v !== null) e[k] = v;
    if (s.dedup) e.id = `k${id}`;
    return e;
  });
  const defects: ((e: Record<string, unknown>) => unknown)[] = [
    () => 42,
    () => null,
    (e) => ({ ...e, zz: 1 }),
    (e) => ({ ...e, d0: 5 }),
    (e) => ({ ...e, ts: 'yesterday' }),
    (e) => ({ ...e, ts: -5 }),
    (e) => {
      const { ts: _ts, ...rest } = e;
      return rest;
    },
  ];
  if (s.metrics.some((m) => m.name === 'm0')) defects.push((e) => ({ ...e, m0: 'x' }), (e) => ({ ...e, m0: 1.5 }), (e) => ({ ...e, m0: Infinity }));
  if (s.metrics.some((m) => m.name === 'm1')) defects.push((e) => ({ ...e, m1: Number.NaN }));
  if (s.dedup) {
    defects.push((e) => ({ ...e, id: { nested: true } }), (e) => {
      const { id: _id, ...rest } = e;
      return rest;
    });
  }
  const badArb = fc.tuple(valid, fc.integer({ min: 0, max: defects.length - 1 })).map(([e, i]) => defects[i]!(e as Record<string, unknown>));
  return fc.oneof({ weight: 9, arbitrary: valid }, { weight: 1, arbitrary: badArb });
}

function filterArb(cards: number[]): fc.Arbitrary<Filter> {
  const dim = fc.integer({ min: 0, max: cards.length - 1 });
  const value = fc.option(fc.constantFrom(...VALUES, 'zzz'), { nil: null, freq: 5 });
  const leaf: fc.Arbitrary<Filter> = fc.oneof(
    fc.tuple(dim, value).map(([d, v]) => ({ dimension: `d${d}`, eq: v })),
    fc.tuple(dim, fc.array(value, { minLength: 1, maxLength: 3 })).map(([d, vs]) => ({ dimension: `d${d}`, in: vs })),
  );
  const { tree } = fc.letrec<{ tree: Filter }>((tie) => ({
    tree: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leaf,
      fc.array(tie('tree'), { minLength: 1, maxLength: 3 }).map((and) => ({ and })),
      fc.array(tie('tree'), { minLength: 1, maxLength: 3 }).map((or) => ({ or })),
      tie('tree').map((not) => ({ not })),
    ),
  }));
  return tree;
}

function queryArb(s: { cards: number[]; metrics: { name: string }[] }): fc.Arbitrary<Query> {
  const dims = s.cards.map((_, i) => `d${i}`);
  const f = fc.option(filterArb(s.cards), { nil: undefined });
  const aggKinds: fc.Arbitrary<Omit<Aggregation, 'name'>>[] = [
    fc.constant({ type: 'count' as const }),
    f.map((filter) => (filter === undefined ? { type: 'count' as const } : { type: 'count' as const, filter })),
    fc.tuple(fc.constantFrom(...dims), f).map(([dimension, filter]) => (filter === undefined ? { type: 'distinctCount' as const, dimension } : { type: 'distinctCount' as const, dimension, filter })),
  ];
  if (s.metrics.length > 0) {
    aggKinds.push(
      fc.tuple(fc.constantFrom('count', 'sum', 'min', 'max', 'avg') as fc.Arbitrary<Aggregation['type']>, fc.constantFrom(...s.metrics.map((m) => m.name)), f)
        .map(([type, metric, filter]) => (filter === undefined ? { type, metric } : { type, metric, filter })),
    );
  }
  const aggs = fc.array(fc.oneof(...aggKinds), { minLength: 0, maxLength: 4 }).map((list) => list.map((a, i) => ({ ...a, name: `a${i}` }) as Aggregation));
  const edge = fc.oneof(instantArb, instantArb.map((t) => t + 1), fc.integer({ min: -600_000, max: SPAN + 600_000 }).map((o) => BASE + o));
  const range = fc.option(fc.tuple(edge, edge).map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const), { nil: undefined });
  return fc.record({
    range,
    granularity: fc.constantFrom(undefined, 'all', 'minute', 'hour', 'day', '5 minutes', '7 minutes'),
    timeZone: fc.constantFrom(undefined, 'UTC', 'Asia/Kolkata'),
    filter: f,
    groupBy: fc.shuffledSubarray(dims),
    aggs,
    post: fc.boolean(),
    order: fc.array(fc.tuple(fc.nat(20), fc.boolean()), { maxLength: 2 }),
    having: fc.option(fc.tuple(fc.constantFrom('=', '!=', '<', '<=', '>', '>=') as fc.Arbitrary<'='>, fc.integer({ min: -2, max: 6 })), { nil: undefined }),
    limit: fc.option(fc.integer({ min: 0, max: 8 }), { nil: undefined }),
    offset: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
  }).map((r) => {
    const q: Query = { datasource: 'ev', groupBy: r.groupBy, aggregations: r.aggs };
    if (r.range !== undefined) [q.from, q.to] = r.range;
    if (r.granularity !== undefined) q.granularity = r.granularity;
    if (r.timeZone !== undefined) q.timeZone = r.timeZone;
    if (r.filter !== undefined) q.filter = r.filter;
    if (r.post && r.aggs.length >= 1) {
      const a = r.aggs[0]!.name;
      const b = r.aggs[r.aggs.length - 1]!.name;
      q.postAggregations = [{ name: 'p0', expr: { op: '/', left: { ref: a }, right: { ref: b } } }, { name: 'p1', expr: { op: '-', left: { op: '*', left: { ref: a }, right: 2 }, right: { ref: 'p0' } } }];
    }
    const columns = [...(q.granularity === undefined || q.granularity === 'all' ? [] : ['ts']), ...r.groupBy, ...r.aggs.map((a) => a.name), ...(q.postAggregations ?? []).map((p) => p.name)];
    if (columns.length > 0) q.orderBy = r.order.map(([i, desc]) => ({ column: columns[i % columns.length]!, direction: desc ? 'desc' : 'asc' }));
    if (r.having !== undefined && r.aggs.length > 0) q.having = { column: r.aggs[0]!.name, op: r.having[0], value: r.having[1] } as Having;
    if (r.limit !== undefined) q.limit = r.limit;
    if (r.offset !== undefined) q.offset = r.offset;
    return q;
  });
}

const scenarioArb: fc.Arbitrary<Scenario> = schemaArb.chain((s) => {
  const spec: DatasourceSpec = {
    name: 'ev', dimensions: s.cards.map((_, i) => `d${i}`), metrics: s.metrics, lateness: s.latenessMs,
    ...(s.dedup ? { dedupKey: 'id', dedupWindow: '10000h' } : {}),
  };
  return fc.record({
    batches: fc.array(fc.array(eventArb(s), { maxLength: 80, size: 'max' }), { minLength: 1, maxLength: 5 }),
    queries: fc.array(queryArb(s), { minLength: 1, maxLength: 4 }),
  }).map(({ batches, queries }) => ({ spec, latenessMs: s.latenessMs, maxCardinality: s.maxCardinality, cards: s.cards, batches, queries }));
});

const coverage = { bitmapReaders: 0, rowsScanned: 0, cachedReaders: 0, extendedReaders: 0 };

async function agrees(sc: Scenario, broken: boolean): Promise<void> {
  const db = await open({ memory: true, clock: () => NOW, limits: { maxDimensionCardinality: sc.maxCardinality } });
  try {
    await db.createDatasource(sc.spec);
    const model = new Model({ ...sc.spec, latenessMs: sc.latenessMs }, { now: NOW, futureToleranceMs: 3_600_000, maxCardinality: sc.maxCardinality, broken });
    for (const batch of sc.batches) {
      const got = await db.ingest('ev', batch);
      const want = model.ingest(batch);
      expect({ ...got, rejected: got.rejected.map((r) => [r.index, r.code]) }).toEqual({ ...want, rejected: want.rejected.map((r) => [r.index, r.code]) });
      for (const q0 of sc.queries) {
        // The query, the same question over all time (kept results of readers its range cut must not be reused
        // there) and in other time buckets (nor those of other buckets), then the query again.
        const { from: _from, to: _to, ...unbounded } = q0;
        const rebucketed: Query = { ...q0, granularity: q0.granularity === 'minute' ? 'hour' : 'minute' };
        for (const q of [q0, unbounded, rebucketed, q0]) {
          const answer = model.query(q);
          const r = await db.query(q);
          coverage.bitmapReaders += r.stats.bitmapReaders;
          coverage.rowsScanned += r.stats.rowsScanned;
          coverage.cachedReaders += r.stats.cachedReaders;
          coverage.extendedReaders += r.stats.extendedReaders;
          expect({ columns: r.columns, rows: r.rows }).toEqual(answer);
        }
      }
    }
  } finally {
    await db.close();
  }
}

describe('engine matches the reference model', () => {
  it('ingest outcomes and every query answer equal the model, for random histories and queries', async () => {
    await fc.assert(fc.asyncProperty(scenarioArb, (sc) => agrees(sc, false)), { numRuns: Number(process.env.PROPERTY_RUNS ?? 400) });
    // Both execution strategies were exercised, so the property speaks for both; so were both ways of deciding a
    // batch (column-wise, and row by row when a dimension's cardinality limit may be reached).
    expect(coverage.bitmapReaders).toBeGreaterThan(0);
    expect(coverage.rowsScanned).toBeGreaterThan(0);
    expect(coverage.cachedReaders).toBeGreaterThan(0);
    expect(coverage.extendedReaders).toBeGreaterThan(0);
    expect(decidePaths.columnwise).toBeGreaterThan(0);
    expect(decidePaths.rowwise).toBeGreaterThan(0);
  });

  it('the same holds when every batch is decided row by row (the path of batches near a cardinality limit)', async () => {
    const previous = setColumnwiseMaxRowsForTests(-1);
    const columnwise = decidePaths.columnwise;
    try {
      await fc.assert(fc.asyncProperty(scenarioArb, (sc) => agrees(sc, false)), { numRuns: Number(process.env.PROPERTY_RUNS ?? 150) });
      expect(decidePaths.columnwise).toBe(columnwise);
    } finally {
      setColumnwiseMaxRowsForTests(previous);
    }
  });

  it('the same holds when dimensions are answered by per-value scans instead of a full index (high cardinality)', async () => {
    const previous = setHighCardinalityForTests(2);
    try {
      await fc.assert(fc.asyncProperty(scenarioArb, (sc) => agrees(sc, false)), { numRuns: Number(process.env.PROPERTY_RUNS ?? 300) });
    } finally {
      setHighCardinalityForTests(previous);
    }
  });

  it('the same holds on the TypeScript kernels (the fallback of the native addon)', async () => {
    const previous = setKernelsForTests('typescript');
    try {
      await fc.assert(fc.asyncProperty(scenarioArb, (sc) => agrees(sc, false)), { numRuns: Number(process.env.PROPERTY_RUNS ?? 150) });
    } finally {
      setKernelsForTests(previous);
    }
  });

  it('canary: the same property finds a model that counts one event twice', async () => {
    const outcome = await fc.check(fc.asyncProperty(scenarioArb, (sc) => agrees(sc, true)), { numRuns: 400 });
    expect(outcome.failed).toBe(true);
  });
});
