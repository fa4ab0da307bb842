/**
 * Ingest invariants: every event ends accepted, duplicate or rejected with a stable code; a bad event never costs
 * the good ones; retries are idempotent within the dedup window; late data is accepted within the lateness and
 * rejected beyond it, never dropped silently; accepted events are queryable as soon as ingest resolves.
 */
import { describe, expect, it } from 'vitest';
import { open, TallyError, type Tally } from 'tallydb';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decidePaths, IngestPipeline, setColumnwiseMaxRowsForTests, setSliceMsForTests } from '../src/ingest/pipeline.js';
import { columnSetsMade } from '../src/ingest/columns.js';
import { resolveDatasource } from '../src/schema/datasource.js';
import { COLUMN_SETS, DEFAULT_LIMITS } from '../src/limits.js';

const T0 = Date.parse('2026-11-23T10:00:00Z');
const MIN = 60_000;

async function engine(opts: { dedup?: boolean; lateness?: string; limits?: Record<string, number>; now?: number } = {}): Promise<Tally> {
  const db = await open({ memory: true, clock: () => opts.now ?? T0 + 3_600_000, ...(opts.limits ? { limits: opts.limits } : {}) });
  await db.createDatasource({
    name: 'events', dimensions: ['event', 'image_id', 'location', 'gender'],
    metrics: [{ name: 'cost', type: 'float' }, { name: 'qty', type: 'int' }],
    ...(opts.dedup === false ? {} : { dedupKey: 'event_id', dedupWindow: '1h' }),
    lateness: opts.lateness ?? '10m',
  });
  return db;
}

const count = async (db: Tally): Promise<number> => (await db.query({ datasource: 'events', aggregations: [{ name: 'n', type: 'count' }] })).rows[0]![0] as number;

describe('validation', () => {
  const good = { ts: T0, event_id: 'ok', event: 'click', image_id: 'img0', location: 'bangalore', gender: 'male', cost: 0.5, qty: 2 };
  const cases: [string, unknown, string, string][] = [
    ['not an object', 'hello', 'EVENT_NOT_OBJECT', 'event'],
    ['array as event', [1, 2], 'EVENT_NOT_OBJECT', 'event'],
    ['missing timestamp', { ...good, ts: undefined }, 'TIMESTAMP_MISSING', "'ts'"],
    ['unparseable timestamp', { ...good, ts: 'yesterday' }, 'TIMESTAMP_INVALID', "'ts'"],
    ['fractional epoch ms', { ...good, ts: T0 + 0.5 }, 'TIMESTAMP_INVALID', "'ts'"],
    ['zone-less ISO time', { ...good, ts: '2026-11-23T10:00:00' }, 'TIMESTAMP_INVALID', 'zone'],
    ['impossible date', { ...good, ts: '2026-02-31T10:00:00Z' }, 'TIMESTAMP_INVALID', "'ts'"],
    ['negative timestamp', { ...good, ts: -1 }, 'TIMESTAMP_OUT_OF_RANGE', "'ts'"],
    ['timestamp past year 9999', { ...good, ts: 253_402_300_800_000 }, 'TIMESTAMP_OUT_OF_RANGE', "'ts'"],
    ['timestamp far in the future', { ...good, ts: T0 + 3 * 3_600_000 }, 'TIMESTAMP_IN_FUTURE', "'ts'"],
    ['unknown field', { ...good, colour: 'red' }, 'FIELD_UNKNOWN', "'colour'"],
    ['number as dimension', { ...good, location: 5 }, 'DIMENSION_NOT_STRING', "'location'"],
    ['object as dimension', { ...good, gender: { a: 1 } }, 'DIMENSION_NOT_STRING', "'gender'"],
    ['lone surrogate in dimension', { ...good, location: 'ban\uD800galore' }, 'DIMENSION_MALFORMED', "'location'"],
    ['over-long dimension', { ...good, image_id: 'x'.repeat(1025) }, 'DIMENSION_TOO_LONG', "'image_id'"],
    ['string as metric', { ...good, cost: '0.5' }, 'METRIC_NOT_NUMBER', "'cost'"],
    ['NaN metric', { ...good, cost: Number.NaN }, 'METRIC_NOT_FINITE', "'cost'"],
    ['Infinity metric', { ...good, cost: Infinity }, 'METRIC_NOT_FINITE', "'cost'"],
    ['fraction in an int metric', { ...good, qty: 1.5 }, 'METRIC_NOT_INTEGER', "'qty'"],
    ['unsafe integer in an int metric', { ...good, qty: 2 ** 60 }, 'METRIC_NOT_INTEGER', "'qty'"],
    ['missing dedup key', { ...good, event_id: undefined }, 'DEDUP_KEY_MISSING', "'event_id'"],
    ['empty dedup key', { ...good, event_id: '' }, 'DEDUP_KEY_INVALID', "'event_id'"],
    ['object as dedup key', { ...good, event_id: {} }, 'DEDUP_KEY_INVALID', "'event_id'"],
  ];
  it.each(cases)('rejects %s with its code and names the field', async (_what, bad, code, field) => {
    const db = await engine();
    const res = await db.ingest('events', [{ ...good, event_id: 'before' }, bad, { ...good, event_id: 'after' }]);
    expect(res.rejected).toHaveLength(1);
    expect(res.rejected[0]).toMatchObject({ index: 1, code });
    expect(res.rejected[0]!.message).toContain(field);
    expect(res.accepted).toBe(2);
    expect(await count(db)).toBe(2);
  });

  it('a bad event never costs the good ones in its batch', async () => {
    const db = await engine();
    const batch = Array.from({ length: 100 }, (_, i) => (i % 10 === 3 ? { ...good, event_id: `e${i}`, cost: 'bad' } : { ...good, event_id: `e${i}` }));
    const res = await db.ingest('events', batch);
    expect(res.accepted).toBe(90);
    expect(res.rejected.map((r) => r.index)).toEqual([3, 13, 23, 33, 43, 53, 63, 73, 83, 93]);
    expect(await count(db)).toBe(90);
  });

  it('accepts ISO-8601 timestamps with offsets and fractions, and date-only as UTC midnight', async () => {
    const db = await engine({ dedup: false, lateness: '1000d' });
    const res = await db.ingest('events', [
      { ts: '2026-11-23T15:30:00+05:30' }, { ts: '2026-11-23T10:00:00.123456Z' }, { ts: '2026-11-23' }, { ts: '2026-11-23T15:30+0530' },
    ]);
    expect(res).toEqual({ accepted: 4, duplicates: 0, rejected: [] });
    const r = await db.query({ datasource: 'events', granularity: 'minute', aggregations: [{ name: 'n', type: 'count' }] });
    expect(r.rows).toEqual([[Date.parse('2026-11-23T00:00:00Z'), 1], [T0, 3]]);
  });

  it('whole-batch errors throw with a code: not an array, too many events, unknown datasource', async () => {
    const db = await engine({ limits: { maxBatchEvents: 3 } });
    await expect(db.ingest('events', { ts: T0 })).rejects.toMatchObject({ code: 'BATCH_NOT_ARRAY' });
    await expect(db.ingest('events', [1, 2, 3, 4])).rejects.toMatchObject({ code: 'BATCH_TOO_LARGE', status: 413 });
    await expect(db.ingest('nope', [])).rejects.toMatchObject({ code: 'DATASOURCE_NOT_FOUND', status: 404 });
    await expect(db.ingest('nope', [])).rejects.toBeInstanceOf(TallyError);
  });

  it('a dimension at its cardinality limit rejects new values and keeps accepting known ones', async () => {
    const db = await engine({ dedup: false, limits: { maxDimensionCardinality: 2 } });
    const res = await db.ingest('events', [
      { ts: T0, location: 'a' }, { ts: T0, location: 'b' }, { ts: T0, location: 'c' }, { ts: T0, location: 'a' }, { ts: T0 },
    ]);
    expect(res.accepted).toBe(4);
    expect(res.rejected).toEqual([expect.objectContaining({ index: 2, code: 'DIMENSION_CARDINALITY' })]);
  });
});

describe('idempotency by dedup key', () => {
  it('a retried batch is counted as duplicates and stored once', async () => {
    const db = await engine();
    const batch = [0, 1, 2].map((i) => ({ ts: T0 + i, event_id: `imp-${i}`, event: 'impression' }));
    expect(await db.ingest('events', batch)).toEqual({ accepted: 3, duplicates: 0, rejected: [] });
    expect(await db.ingest('events', batch)).toEqual({ accepted: 0, duplicates: 3, rejected: [] });
    expect(await count(db)).toBe(3);
  });

  it('a key repeated inside one batch is accepted once', async () => {
    const db = await engine();
    const res = await db.ingest('events', [{ ts: T0, event_id: 'x' }, { ts: T0 + 5, event_id: 'x' }, { ts: T0, event_id: 'y' }]);
    expect(res).toEqual({ accepted: 2, duplicates: 1, rejected: [] });
  });

  it('integer and string keys with the same digits are the same key', async () => {
    const db = await engine({ dedup: true });
    await db.createDatasource({ name: 'n', dimensions: ['a'], dedupKey: 'id' });
    expect(await db.ingest('n', [{ ts: T0, id: 42 }, { ts: T0, id: '42' }])).toEqual({ accepted: 1, duplicates: 1, rejected: [] });
  });

  it('a retry is a duplicate even when the event itself is now too late', async () => {
    const db = await engine({ lateness: '10m' });
    await db.ingest('events', [{ ts: T0, event_id: 'old' }]);
    await db.ingest('events', [{ ts: T0 + 30 * MIN, event_id: 'new' }]);
    expect(await db.ingest('events', [{ ts: T0, event_id: 'old' }])).toEqual({ accepted: 0, duplicates: 1, rejected: [] });
  });

  it('keys are forgotten once their event time falls a dedup window (+1/8) behind the watermark', async () => {
    const db = await engine({ lateness: '1000d' });
    await db.ingest('events', [{ ts: T0, event_id: 'k' }]);
    await db.ingest('events', [{ ts: T0 + 59 * MIN, event_id: 'mark1' }]);
    expect((await db.ingest('events', [{ ts: T0, event_id: 'k' }])).duplicates).toBe(1); // within the hour
    await db.ingest('events', [{ ts: T0 + 2 * 60 * MIN, event_id: 'mark2' }]);
    expect((await db.ingest('events', [{ ts: T0, event_id: 'k' }])).accepted).toBe(1); // beyond: documented
  });

  it('datasources without a dedup key store every event', async () => {
    const db = await engine({ dedup: false });
    expect((await db.ingest('events', [{ ts: T0 }, { ts: T0 }])).accepted).toBe(2);
  });
});

describe('late data', () => {
  it('events within the lateness are accepted and queryable at once; beyond it rejected with EVENT_TOO_LATE', async () => {
    const db = await engine({ dedup: false, lateness: '10m' });
    await db.ingest('events', [{ ts: T0 + 30 * MIN, event: 'click' }]);
    const res = await db.ingest('events', [
      { ts: T0 + 20 * MIN, event: 'click' }, // exactly at the edge: watermark − lateness
      { ts: T0 + 20 * MIN - 1, event: 'click' },
      { ts: T0 + 25 * MIN, event: 'click' },
    ]);
    expect(res.accepted).toBe(2);
    expect(res.rejected).toEqual([expect.objectContaining({ index: 1, code: 'EVENT_TOO_LATE' })]);
    expect(res.rejected[0]!.message).toMatch(/watermark/);
    const r = await db.sql(`SELECT count(*) FROM events WHERE ts < ${T0 + 30 * MIN}`);
    expect(r.rows).toEqual([[2]]);
  });

  it('the watermark moves only with accepted events: a rejected future event does not make others late', async () => {
    const db = await engine({ dedup: false, lateness: '10m' });
    await db.ingest('events', [{ ts: T0 + 10 * 3_600_000 }]); // in the future: rejected
    expect(db.stats('events').watermark).toBeNull();
    expect((await db.ingest('events', [{ ts: T0 }])).accepted).toBe(1);
    expect(db.stats('events').watermark).toBe(T0);
  });
});

describe('datasources', () => {
  it('invalid definitions are refused with DATASOURCE_INVALID naming the property', async () => {
    const db = await open({ memory: true });
    const bad: [unknown, RegExp][] = [
      [{ name: '1x', dimensions: [] }, /name/],
      [{ name: 'x', dimensions: 'a' }, /dimensions/],
      [{ name: 'x', dimensions: ['a', 'a'] }, /twice/],
      [{ name: 'x', dimensions: ['ts'] }, /twice/],
      [{ name: 'x', dimensions: ['a'], metrics: [{ name: 'm', type: 'decimal' }] }, /metrics\[0\]\.type/],
      [{ name: 'x', dimensions: ['a'], lateness: 'soon' }, /lateness/],
      [{ name: 'x', dimensions: ['a'], colour: 1 }, /colour/],
      [{ name: 'x', dimensions: ['a'], metrics: [{ name: 'm', type: 'int' }], dedupKey: 'm' }, /dedupKey/],
    ];
    for (const [spec, msg] of bad) {
      await expect(db.createDatasource(spec as never)).rejects.toMatchObject({ code: 'DATASOURCE_INVALID', message: expect.stringMatching(msg) });
    }
  });

  it('re-creating a datasource with the same definition is a no-op; a different one is DATASOURCE_EXISTS', async () => {
    const db = await open({ memory: true });
    const spec = { name: 'x', dimensions: ['a'], lateness: '1h' };
    await db.createDatasource(spec);
    await db.ingest('x', [{ ts: T0, a: 'v' }]);
    await db.createDatasource({ name: 'x', dimensions: ['a'], lateness: '60m' });
    expect(db.stats('x').rows).toBe(1);
    await expect(db.createDatasource({ name: 'x', dimensions: ['b'] })).rejects.toMatchObject({ code: 'DATASOURCE_EXISTS', status: 409 });
    expect(db.listDatasources().map((d) => d.name)).toEqual(['x']);
    expect(db.getDatasource('x')).toMatchObject({ name: 'x', dimensions: ['a'], lateness: 3_600_000, timeField: 'ts' });
  });

  it('stats report rows, memory and the dedup state', async () => {
    const db = await engine();
    await db.ingest('events', Array.from({ length: 1000 }, (_, i) => ({ ts: T0 + i, event_id: `k${i}`, location: `l${i % 10}` })));
    const s = db.stats('events');
    expect(s.rows).toBe(1000);
    expect(s.head.buckets).toBe(1);
    expect(s.dedup?.keys).toBe(1000);
    expect(s.memoryBytes).toBeGreaterThan(1000 * 8);
  });
});

describe('large batches', () => {
  it('a large batch yields while it is prepared: a query issued meanwhile answers before the batch is acknowledged', async () => {
    const db = await engine({ dedup: false, limits: { maxBatchEvents: 200_000 } });
    await db.ingest('events', [{ ts: T0, event: 'click' }]);
    const big = Array.from({ length: 200_000 }, (_, i) => ({ ts: T0 + (i % 60_000), event: 'impression', location: `l${i % 100}` }));
    const order: string[] = [];
    const ingest = db.ingest('events', big).then((r) => order.push(`ingest:${r.accepted}`));
    await new Promise((r) => setImmediate(r));
    const query = db.query({ datasource: 'events', aggregations: [{ name: 'n', type: 'count' }] }).then((r) => order.push(`query:${r.rows[0]![0]}`));
    await Promise.all([ingest, query]);
    expect(order).toEqual(['query:1', 'ingest:200000']); // the query saw the state before the batch
    expect((await db.query({ datasource: 'events', aggregations: [{ name: 'n', type: 'count' }] })).rows).toEqual([[200_001]]);
  });

  it('closing the engine while a large batch is prepared accepts nothing of it', async () => {
    const db = await engine({ dedup: false, limits: { maxBatchEvents: 200_000 } });
    const big = Array.from({ length: 200_000 }, (_, i) => ({ ts: T0 + (i % 60_000), event: 'impression' }));
    const ingest = db.ingest('events', big);
    await new Promise((r) => setImmediate(r));
    await db.close();
    await expect(ingest).rejects.toMatchObject({ code: 'ENGINE_CLOSED' });
  });
});

describe('batches deciding at once', () => {
  // Every column-wise decide yields at each 1,024-row chunk here, so batches and queries interleave inside batches.
  const yieldingAlways = async <T>(run: () => Promise<T>): Promise<T> => {
    const previous = setSliceMsForTests(0);
    try {
      return await run();
    } finally {
      setSliceMsForTests(previous);
    }
  };
  const batch = (from: number, n: number, extra: Record<string, unknown> = {}) =>
    Array.from({ length: n }, (_, i) => ({ ts: T0 + ((from + i) % 60_000), event_id: `e${from + i}`, event: 'click', ...extra }));

  it('a key in two batches that decide at the same time is accepted once', async () => {
    const db = await engine();
    const [a, b] = await yieldingAlways(() => Promise.all([db.ingest('events', batch(0, 5000)), db.ingest('events', batch(2500, 5000))]));
    expect(a.accepted + b.accepted).toBe(7500);
    expect(a.duplicates + b.duplicates).toBe(2500);
    expect(await count(db)).toBe(7500);
  });

  it('the columns a batch gives back are taken by later batches, and no committed row changes when they are (durable, 4 writers)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-column-sets-'));
    const db = await open({ dir, fsync: 'always', clock: () => T0 + 3_600_000 });
    try {
      await db.createDatasource({ name: 'events', dimensions: ['image_id', 'location'], metrics: [{ name: 'cost', type: 'float' }], dedupKey: 'event_id', lateness: '2h' });
      const made = columnSetsMade.pooled;
      const model = new Map<string, { n: number; cost: number }>();
      const BATCHES = 40;
      const SIZE = 700;
      let next = 0;
      // Four writers: a batch columnizes while the ones before it wait for their WAL writes.
      await Promise.all(Array.from({ length: 4 }, async () => {
        while (next < BATCHES) {
          const b = next++;
          const events = Array.from({ length: SIZE }, (_, i) => {
            const j = b * SIZE + i;
            return { ts: T0 + (j % 3_000_000), event_id: `e${j}`, image_id: `img${(j * 7 + b) % 97}`, location: `loc${b % 5}`, cost: j % 13 };
          });
          for (const e of events) {
            const key = `${e.image_id}|${e.location}`;
            const m = model.get(key) ?? { n: 0, cost: 0 };
            model.set(key, { n: m.n + 1, cost: m.cost + e.cost });
          }
          expect((await db.ingest('events', events)).accepted).toBe(SIZE);
        }
      }));
      // Sets were taken again: as many were made as batches were in flight at once, not one a batch.
      expect(columnSetsMade.pooled - made).toBeGreaterThan(0);
      expect(columnSetsMade.pooled - made).toBeLessThanOrEqual(COLUMN_SETS.idle);
      const got = (await db.sql('SELECT image_id, location, count(*) AS n, sum(cost) AS c FROM events GROUP BY image_id, location')).rows;
      const want = [...model].map(([k, v]) => [...k.split('|'), v.n, v.cost]);
      const byKey = (a: unknown[], b: unknown[]): number => (String(a[0]) + a[1] < String(b[0]) + b[1] ? -1 : 1);
      expect(got.sort(byKey)).toEqual(want.sort(byKey));
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a query issued while a column-wise batch decides answers from the state before it', async () => {
    const db = await engine();
    await db.ingest('events', batch(0, 1));
    const order: string[] = [];
    await yieldingAlways(async () => {
      const ingest = db.ingest('events', batch(1, 8000)).then((r) => order.push(`ingest:${r.accepted}`));
      await new Promise((r) => setImmediate(r));
      const query = count(db).then((n) => order.push(`query:${n}`));
      await Promise.all([ingest, query]);
    });
    expect(order).toEqual(['query:1', 'ingest:8000']);
    expect(await count(db)).toBe(8001);
  });

  it('a column-wise batch yields while it interns its new values: a turn of the event loop in between sees some of them in the head dictionary, not all', async () => {
    const ds = resolveDatasource({ name: 'events', dimensions: ['image_id'], dedupKey: 'event_id' }, DEFAULT_LIMITS);
    const p = new IngestPipeline(ds, DEFAULT_LIMITS, () => T0 + 3_600_000);
    const events = Array.from({ length: 3000 }, (_, i) => ({ ts: T0 + i, event_id: `e${i}`, image_id: `new-${i}` }));
    const sizes: number[] = [];
    let done = false;
    const tick = (): void => {
      sizes.push(p.head.dictionaries[0]!.size);
      if (!done) setImmediate(tick);
    };
    const columnwise = decidePaths.columnwise;
    await yieldingAlways(async () => {
      setImmediate(tick);
      const prepared = await p.prepare(events);
      done = true;
      p.commit(prepared);
    });
    expect(decidePaths.columnwise).toBe(columnwise + 1);
    // Null and the batch's 3,000 values; the column-wise path interns only after deciding every row.
    expect(p.head.dictionaries[0]!.size).toBe(3001);
    expect(sizes.some((n) => n > 1 && n < 3001)).toBe(true);
  });

  it('the cardinality limit holds for batches whose new values arrive at the same time', async () => {
    const db = await engine({ limits: { maxDimensionCardinality: 3000 } });
    // Each batch alone fits (2,000 new image ids); together they would not: the second decides after the first.
    const [a, b] = await yieldingAlways(() => Promise.all([
      db.ingest('events', batch(0, 2000).map((e, i) => ({ ...e, image_id: `a${i}` }))),
      db.ingest('events', batch(2000, 2000).map((e, i) => ({ ...e, image_id: `b${i}` }))),
    ]));
    expect(a.accepted).toBe(2000);
    expect(b.accepted).toBe(1000);
    expect(new Set(b.rejected.map((r) => r.code))).toEqual(new Set(['DIMENSION_CARDINALITY']));
    expect(db.stats('events').rows).toBe(3000);
  });
});

describe('the two decide paths', () => {
  const ds = resolveDatasource({ name: 'events', dimensions: ['image_id', 'location'], dedupKey: 'event_id', dedupWindow: '1h', lateness: '10m' }, DEFAULT_LIMITS);
  /** Every head dictionary's values in id order after deciding and committing `batches`, and the outcomes. */
  async function run(batches: unknown[][], columnwise: boolean): Promise<{ dicts: (string | null)[][]; results: unknown[] }> {
    const previous = setColumnwiseMaxRowsForTests(columnwise ? 1 << 20 : -1);
    const before = { ...decidePaths };
    try {
      const p = new IngestPipeline(ds, DEFAULT_LIMITS, () => T0 + 3_600_000);
      const results: unknown[] = [];
      for (const b of batches) {
        const prepared = await p.prepare(b);
        p.commit(prepared);
        results.push(prepared.result);
      }
      expect(decidePaths[columnwise ? 'columnwise' : 'rowwise'] - before[columnwise ? 'columnwise' : 'rowwise']).toBe(batches.length);
      return { dicts: p.head.dictionaries.map((d) => Array.from({ length: d.size }, (_, id) => d.value(id))), results };
    } finally {
      setColumnwiseMaxRowsForTests(previous);
    }
  }

  it('give new values the same head ids, in order of first accepted row, with duplicates and late rows among them', async () => {
    const event = fc.record({
      id: fc.integer({ min: 0, max: 40 }),
      image: fc.option(fc.integer({ min: 0, max: 30 }), { nil: null }),
      location: fc.constantFrom('bangalore', 'delhi', 'pune'),
      late: fc.boolean(),
    });
    await fc.assert(fc.asyncProperty(fc.array(fc.array(event, { maxLength: 30 }), { maxLength: 5 }), async (spec) => {
      const batches = spec.map((b) => b.map((e) => ({
        ts: e.late ? T0 - 3_600_000 : T0 + e.id, event_id: `e${e.id}`, image_id: e.image === null ? null : `img${e.image}`, location: e.location,
      })));
      const rowwise = await run(batches, false);
      const columnwise = await run(batches, true);
      expect(columnwise).toEqual(rowwise);
    }), { numRuns: 200 });
  });

  it('decide the same for batches of many chunks, yielding between them: repeats of keys from earlier chunks, late and future rows only from the third chunk', async () => {
    // Deterministic rows: 5,000 a batch (five chunks of the column-wise path). Keys repeat across chunks and batches;
    // duplicates start in the first chunk (the rows kept are listed from then on, across the chunks), late and future
    // rows only from row 2,500, in the third.
    let seed = 7;
    const rnd = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const batch = (b: number): unknown[] => Array.from({ length: 5000 }, (_, r) => {
      const odd = r >= 2500 && rnd() < 0.02;
      const ts = odd ? (rnd() < 0.5 ? T0 - 3_600_000 : T0 + 86_400_000) : T0 + b * 1000 + r;
      return { ts, event_id: `k${Math.floor(rnd() * 12_000)}`, image_id: `img${Math.floor(rnd() * 3000)}`, location: rnd() < 0.5 ? 'pune' : 'delhi' };
    });
    const batches = [batch(0), batch(1), batch(2)];
    const previous = setSliceMsForTests(0);
    try {
      const rowwise = await run(batches, false);
      const columnwise = await run(batches, true);
      expect(columnwise).toEqual(rowwise);
      const results = columnwise.results as { accepted: number; duplicates: number; rejected: { code: string }[] }[];
      // Not a vacuous comparison: every outcome occurs, and every row has exactly one.
      for (const r of results) expect(r.accepted + r.duplicates + r.rejected.length).toBe(5000);
      expect(results.every((r) => r.duplicates > 0)).toBe(true);
      expect(new Set(results.flatMap((r) => r.rejected.map((x) => x.code)))).toEqual(new Set(['EVENT_TOO_LATE', 'TIMESTAMP_IN_FUTURE']));
    } finally {
      setSliceMsForTests(previous);
    }
  });

  it('canary: the same comparison tells apart ids given in another order (each batch reversed on one side)', async () => {
    const batches = [[0, 1, 2, 3].map((i) => ({ ts: T0 + i, event_id: `c${i}`, image_id: `img${i}`, location: 'pune' }))];
    const rowwise = await run(batches, false);
    const reversed = await run(batches.map((b) => [...b].reverse()), true);
    expect(reversed.dicts).not.toEqual(rowwise.dicts);
  });
});

describe('engine lifecycle', () => {
  it('after close every call fails with ENGINE_CLOSED', async () => {
    const db = await engine();
    await db.close();
    await expect(db.ingest('events', [])).rejects.toMatchObject({ code: 'ENGINE_CLOSED' });
    await expect(db.query({ datasource: 'events' })).rejects.toMatchObject({ code: 'ENGINE_CLOSED' });
    await expect(db.sql('SELECT count(*) FROM events')).rejects.toMatchObject({ code: 'ENGINE_CLOSED' });
  });

  it('open() refuses unknown or contradictory options with OPTIONS_INVALID', async () => {
    await expect(open({ memory: true, bogus: 1 } as never)).rejects.toMatchObject({ code: 'OPTIONS_INVALID' });
    await expect(open({ memory: true, dir: '/tmp/x' })).rejects.toMatchObject({ code: 'OPTIONS_INVALID' });
    await expect(open({})).rejects.toMatchObject({ code: 'OPTIONS_INVALID' });
    await expect(open({ memory: true, limits: { maxGroups: -1 } })).rejects.toMatchObject({ code: 'OPTIONS_INVALID' });
    await expect(open({ memory: true, limits: { noSuchLimit: 1 } as never })).rejects.toMatchObject({ code: 'OPTIONS_INVALID' });
  });
});
