/**
 * Counts grouped by one dimension (the top-images shape: count aggregations only, one time bucket) are counted per
 * dictionary id and folded into groups — over the whole dictionary when the rows are many, over the ids the rows
 * hold when they are few (query/execute.ts). Either way each rolled-up row counts as the events it stands for, a
 * filtered count of 0 still makes its group, and the answer equals a plain count over the events.
 */
import { expect, it } from 'vitest';
import { open } from 'tallydb';
import { MemFs } from '../support/memfs.js';
import { setKernelsForTests } from '../../src/native/index.js';

const T0 = Date.parse('2026-11-23T00:00:00Z');
const NOW = T0 + 10 * 86_400_000;
const IMAGES = 400;

it('counts by one dimension over rolled-up rows equal plain counts, for many rows and for few', async () => {
  const db = await open({ dir: '/db', fileSystem: new MemFs(), clock: () => NOW, compaction: { auto: false } });
  await db.createDatasource({ name: 'ev', dimensions: ['image', 'location', 'event'], rollup: { granularity: 'minute' }, lateness: '10m' });
  // Image i gets (i % 7) + 1 events in each of 3 minutes, alike within a minute but for their type: they roll up
  // into a row per type. Images with one event a minute get no click (a group whose filtered count is 0). Location
  // 'rare' holds a handful of images only, so a query filtered to it has far fewer rows than the dictionary.
  const events: object[] = [];
  for (let m = 0; m < 3; m++) {
    for (let i = 0; i < IMAGES; i++) {
      for (let k = 0; k < (i % 7) + 1; k++) {
        events.push({ ts: T0 + m * 60_000 + 1000 * k, image: `img${i}`, location: i % 50 === 0 ? 'rare' : 'common', event: k % 3 === 1 ? 'click' : 'impression' });
      }
    }
  }
  expect((await db.ingest('ev', events)).accepted).toBe(events.length);
  // An event two hours on settles hour 0 (the watermark moves past it and its lateness), so compaction rolls it up.
  expect((await db.ingest('ev', [{ ts: T0 + 2 * 3_600_000, image: 'later', location: 'common', event: 'click' }])).accepted).toBe(1);
  await db.flush();
  await db.compact();
  expect(db.stats('ev').storage!.compaction.rollupRowsIn).toBeGreaterThan(0);

  const want = (keep: (e: { image: string; location: string; event: string }) => boolean): Map<string, [number, number]> => {
    const out = new Map<string, [number, number]>();
    for (const e of events as { image: string; location: string; event: string }[]) {
      if (!keep(e)) continue;
      const c = out.get(e.image) ?? [0, 0];
      c[0]++;
      if (e.event === 'click') c[1]++;
      out.set(e.image, c);
    }
    return out;
  };
  expect([...want((e) => e.location === 'rare').values()].some(([, c]) => c === 0)).toBe(true);
  const clicks = { name: 'clicks', type: 'count' as const, filter: { dimension: 'event', eq: 'click' } };
  // With a filtered count, the base rows are counted on their own to say which groups exist; without one, the
  // count over the base rows does. The filtered count first, too, as the CTR question has it.
  const n = { name: 'n', type: 'count' as const };
  for (const aggregations of [[n, clicks], [clicks, n], [n]]) {
    for (const location of [null, 'rare']) {
      const r = await db.query({
        datasource: 'ev', from: T0, to: T0 + 3_600_000, groupBy: ['image'],
        ...(location === null ? {} : { filter: { dimension: 'location', eq: location } }),
        aggregations,
      });
      const got = new Map(r.rows.map((row) => [row[0] as string, row.slice(1) as number[]]));
      const expected = [...want((e) => location === null || e.location === location)]
        .map(([k, [all, c]]) => [k, aggregations.map((a) => (a === clicks ? c : all))] as const);
      expect(got).toEqual(new Map(expected));
    }
  }
  await db.close();
});

it('counts by a dimension of more values than the bitmap strategy takes keep the time range as a row list, with the answer of plain counts', async () => {
  const { countPaths } = await import('../../src/query/execute.js');
  const db = await open({ dir: '/db', fileSystem: new MemFs(), clock: () => NOW, compaction: { auto: false } });
  await db.createDatasource({ name: 'ev', dimensions: ['image', 'location'], lateness: '10m' });
  // 5,000 images (more than the 4,096 value combinations of the bitmap strategy) in each of 3 minutes, at
  // seconds that differ by image, so that a range cutting through a minute keeps some of its rows.
  const events: { ts: number; image: string; location: string }[] = [];
  for (let m = 0; m < 3; m++) {
    for (let i = 0; i < 5000; i++) {
      for (let k = 0; k <= i % 3; k++) events.push({ ts: T0 + m * 60_000 + ((i * 7 + k * 13) % 60) * 1000, image: `img${i}`, location: i % 4 === 0 ? 'north' : 'south' });
    }
  }
  expect((await db.ingest('ev', events)).accepted).toBe(events.length);
  const check = async (where: string): Promise<void> => {
    for (const [from, to] of [[T0 + 20_000, T0 + 140_000], [T0 + 65_000, T0 + 66_000], [T0, T0 + 180_000]]) {
      for (const location of [null, 'north']) {
        for (const aggregations of [[{ name: 'n', type: 'count' as const }], [{ name: 'n', type: 'count' as const }, { name: 'm', type: 'count' as const }]]) {
          const before = countPaths.baseList;
          const r = await db.query({
            datasource: 'ev', from: from!, to: to!, groupBy: ['image'],
            ...(location === null ? {} : { filter: { dimension: 'location', eq: location } }), aggregations,
          });
          if (to! - from! < 180_000) expect(countPaths.baseList, where).toBeGreaterThan(before);
          const want = new Map<string, number[]>();
          for (const e of events) {
            if (e.ts < from! || e.ts >= to! || (location !== null && e.location !== location)) continue;
            const c = want.get(e.image) ?? aggregations.map(() => 0);
            want.set(e.image, c.map((x) => x + 1));
          }
          expect(r.rows.length, where).toBe(want.size);
          expect(new Map(r.rows.map((row) => [row[0] as string, row.slice(1) as number[]])), where).toEqual(want);
        }
      }
    }
  };
  // Each stage on the kernels the loader picked and on their TypeScript twins.
  const both = async (where: string): Promise<void> => {
    await check(where);
    const previous = setKernelsForTests('typescript');
    try {
      await check(`${where}, TypeScript kernels`);
    } finally {
      setKernelsForTests(previous);
    }
  };
  await both('head');
  await db.flush();
  await both('minute segments');
  await db.compact();
  await both('compacted segments');
  await db.close();
});
