/**
 * Kept per-reader results (query/result-cache.ts): a reader's contribution to a query without group-by is reused
 * only while its rows are unchanged and only by queries asking the same of it — or, when it holds row counts only,
 * extended by the rows appended since; answers are the same, to the last
 * bit, with the cache on and off; segments keep theirs across queries and merges replace them; the entries per
 * reader are bounded. (The reference-model property, test/property/engine-matches-model.test.ts, runs every
 * random query around appends and under other ranges and buckets with the cache on.)
 */
import { describe, expect, it } from 'vitest';
import { open, type Query } from 'tallydb';
import { MemFs } from './support/memfs.js';
import { keptKeys, lookup, remember } from '../src/query/result-cache.js';
import { READER_RESULT_CACHE } from '../src/limits.js';

const T0 = Date.parse('2026-11-23T10:00:00Z');
const M = 60_000;
const spec = { name: 'ev', dimensions: ['event', 'image_id'], metrics: [{ name: 'cost', type: 'float' as const }], lateness: '1d' };
const clicks = (minute: number, count: number, cost = 0.1) =>
  Array.from({ length: count }, (_, i) => ({ ts: T0 + minute * M + i, event: 'click', image_id: i % 2 ? 'img1' : 'img0', cost: cost * (i + 1) }));
const seed: Query = {
  datasource: 'ev', from: T0 - 3_600_000, to: T0 + 3_600_000, filter: { dimension: 'image_id', eq: 'img0' },
  aggregations: [{ name: 'n', type: 'count' }, { name: 's', type: 'sum', metric: 'cost' }],
};

describe('a reader\'s kept contribution', () => {
  it('is reused while the reader is unchanged and recomputed once rows are appended to it', async () => {
    const db = await open({ memory: true, clock: () => T0 });
    await db.createDatasource(spec);
    for (const m of [0, 1, 2]) await db.ingest('ev', clicks(m, 10));
    const first = await db.query(seed);
    expect(first.rows[0]![0]).toBe(15);
    expect(first.stats.cachedReaders).toBe(0);
    const again = await db.query(seed);
    expect(again.rows).toEqual(first.rows);
    expect(again.stats.cachedReaders).toBe(3);
    await db.ingest('ev', [{ ts: T0 + 2 * M + 500, event: 'click', image_id: 'img0', cost: 1 }]);
    const grown = await db.query(seed);
    expect(grown.rows[0]![0]).toBe(16);
    expect(grown.stats.cachedReaders).toBe(2); // minutes 0 and 1; minute 2 grew
    await db.close();
  });

  it('of row counts, in a minute that grew, is extended by testing the appended rows alone — the count a full computation gives', async () => {
    const dbs = [await open({ memory: true, clock: () => T0 }), await open({ memory: true, clock: () => T0, resultCache: false })];
    for (const db of dbs) await db.createDatasource(spec);
    const counts: Query = {
      ...seed, granularity: 'minute', filter: { or: [{ dimension: 'image_id', eq: 'img0' }, { not: { dimension: 'event', eq: 'click' } }] },
      aggregations: [{ name: 'n', type: 'count' }, { name: 'views', type: 'count', filter: { dimension: 'event', eq: 'view' } }],
    };
    const ingest = async (events: object[]) => { for (const db of dbs) await db.ingest('ev', events); };
    await ingest(clicks(0, 10));
    await ingest([{ ts: T0 + M, event: 'click', image_id: 'img1', cost: 1 }]); // minute 1: nothing matches yet
    expect((await dbs[0]!.query(counts)).stats.extendedReaders).toBe(0);
    for (let round = 0; round < 3; round++) {
      await ingest([
        { ts: T0 + 5, event: 'view', image_id: 'img2', cost: 1 }, { ts: T0 + 6, event: 'click', image_id: 'img0', cost: 1 },
        { ts: T0 + M + round, event: round === 0 ? 'click' : 'view', image_id: 'img1', cost: 1 },
      ]);
      const [on, off] = [await dbs[0]!.query(counts), await dbs[1]!.query(counts)];
      expect(on.rows).toEqual(off.rows);
      expect(on.stats.extendedReaders).toBe(2); // both minutes grew; their kept counts are extended
    }
    // Minute 0: 5 clicks of img0, then per round a view (not a click) and a click of img0; minute 1: two views.
    expect((await dbs[0]!.query(counts)).rows).toEqual([[T0, 5 + 2 * 3, 3], [T0 + M, 2, 2]]);
    // A sum is recomputed in full when its reader grows (a float sum in two parts could differ in its last bit).
    await ingest(clicks(0, 4));
    expect((await dbs[0]!.query(seed)).stats.extendedReaders).toBe(0);
    for (const db of dbs) await db.close();
  });

  it('is not used by a query whose range cuts the reader, nor kept from one', async () => {
    const db = await open({ memory: true, clock: () => T0 });
    await db.createDatasource(spec);
    await db.ingest('ev', clicks(0, 10));
    const cut = { ...seed, from: T0 + 4 }; // rows at T0+0, +2 of img0 fall outside
    expect((await db.query(seed)).rows[0]![0]).toBe(5);
    const r = await db.query(cut);
    expect(r.rows[0]![0]).toBe(3);
    expect(r.stats.cachedReaders).toBe(0);
    expect((await db.query(seed)).rows[0]![0]).toBe(5);
    await db.close();
  });

  it('is per plan: other filters, aggregations or buckets compute their own; group-by queries keep none', async () => {
    const db = await open({ memory: true, clock: () => T0 });
    await db.createDatasource(spec);
    for (const m of [0, 1]) await db.ingest('ev', clicks(m, 10));
    await db.query(seed);
    const other = await db.query({ ...seed, filter: { dimension: 'image_id', eq: 'img1' } });
    expect(other.rows[0]![0]).toBe(10);
    expect(other.stats.cachedReaders).toBe(0);
    const perMinute = await db.query({ ...seed, granularity: 'minute' });
    expect(perMinute.rows.map((r) => r.slice(0, 2))).toEqual([[T0, 5], [T0 + M, 5]]);
    expect(perMinute.stats.cachedReaders).toBe(0);
    expect((await db.query({ ...seed, granularity: 'minute' })).stats.cachedReaders).toBe(2);
    const grouped = { ...seed, filter: undefined, groupBy: ['image_id'] } as Query;
    await db.query(grouped);
    const g = await db.query(grouped);
    expect(g.rows.map((r) => r.slice(0, 2))).toEqual([['img0', 10], ['img1', 10]]);
    expect(g.stats.cachedReaders).toBe(0);
    await db.close();
  });
});

it('answers are bit-for-bit the same with the cache on and off (floating-point sums included)', async () => {
  const on = await open({ memory: true, clock: () => T0 });
  const off = await open({ memory: true, clock: () => T0, resultCache: false });
  for (const db of [on, off]) {
    await db.createDatasource(spec);
    // Sums of 0.1-multiples over several readers: a different order of additions would change the last bits.
    for (let m = 0; m < 7; m++) await db.ingest('ev', clicks(m, 9, 0.1 + m / 30));
  }
  const queries: Query[] = [seed, { ...seed, granularity: '5 minutes' }, { ...seed, aggregations: [{ name: 'lo', type: 'min', metric: 'cost' }, { name: 'hi', type: 'max', metric: 'cost' }, { name: 'a', type: 'avg', metric: 'cost' }] }];
  for (const q of queries) {
    for (let repeat = 0; repeat < 2; repeat++) {
      const a = await on.query(q);
      const b = await off.query(q);
      expect(a.rows).toEqual(b.rows);
      expect(b.stats.cachedReaders).toBe(0);
      if (repeat === 1) expect(a.stats.cachedReaders).toBeGreaterThan(0);
    }
  }
  await on.close();
  await off.close();
});

it('segments keep theirs across queries; a merge replaces its inputs and the answer stays', async () => {
  const fs = new MemFs();
  const db = await open({ dir: '/db', fileSystem: fs, clock: () => T0 + 3 * 3_600_000, compaction: { auto: false } });
  await db.createDatasource({ ...spec, lateness: '10m' });
  for (const m of [0, 1, 2, 3]) await db.ingest('ev', clicks(m, 10));
  // An event two hours on settles the first hour (its end is before watermark − lateness): a merge may take it.
  await db.ingest('ev', [{ ts: T0 + 2 * 3_600_000, event: 'impression', image_id: 'img9' }]);
  await db.flush();
  expect(db.stats('ev').head.rows).toBe(0);
  const first = await db.query(seed);
  expect(first.rows[0]![0]).toBe(20);
  const again = await db.query(seed);
  expect(again.stats.cachedReaders).toBe(again.stats.readers);
  expect(again.rows).toEqual(first.rows);
  await db.compact();
  const merged = await db.query(seed);
  expect(merged.stats.readers).toBeLessThan(first.stats.readers);
  expect(merged.stats.cachedReaders).toBe(0);
  expect(merged.rows).toEqual(first.rows);
  await db.close();
});

it(`a reader keeps at most READER_RESULT_CACHE.keysPerReader plans, the least recently used dropped first`, () => {
  const reader = {};
  const c = { bucket: 0, acc: new Float64Array(1), n: new Float64Array(1) };
  const max = READER_RESULT_CACHE.keysPerReader;
  for (let k = 0; k < max; k++) remember(reader, 10, `k${k}`, c);
  expect(lookup(reader, 10, 'k0')).toBe(c); // used again: now the most recent
  remember(reader, 10, 'extra', c);
  expect(keptKeys(reader)).toBe(max);
  expect(lookup(reader, 10, 'k1')).toBeUndefined();
  expect(lookup(reader, 10, 'k0')).toBe(c);
  expect(lookup(reader, 11, 'k0')).toBeUndefined(); // another row count
});

it('open rejects a resultCache that is not a boolean', async () => {
  await expect(open({ memory: true, resultCache: 'no' as never })).rejects.toMatchObject({ code: 'OPTIONS_INVALID' });
});
