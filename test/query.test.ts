/**
 * Query invariants on a dataset small enough to check by hand: the seed questions answer exactly; count-only
 * queries are answered from bitmap cardinalities without visiting rows; hour and day buckets follow the IANA zone
 * (DST included); every malformed query fails with a stable code and a path into the query.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { open, type Filter, type Tally } from 'tallydb';
import { kthBest } from '../src/query/execute.js';

const T0 = Date.parse('2026-11-23T10:00:00Z');
const M = 60_000;
let db: Tally;

/** The hand-checked dataset, in an engine of its own (`resultCache` as given). */
async function seeded(resultCache = true): Promise<Tally> {
  const engine = await open({ memory: true, clock: () => T0 + 3 * 3_600_000, resultCache });
  await engine.createDatasource({
    name: 'events', dimensions: ['event', 'image_id', 'location', 'gender'], metrics: [{ name: 'cost', type: 'float' }], lateness: '1d',
  });
  const e = (min: number, event: string, image_id: string, location: string, gender: string, cost?: number) => ({
    ts: T0 + min * M + 17, event, image_id, location, gender, ...(cost === undefined ? {} : { cost }),
  });
  await engine.ingest('events', [
    e(0, 'click', 'img0', 'bangalore', 'male', 1),
    e(0, 'impression', 'img0', 'bangalore', 'male'),
    e(0, 'click', 'img0', 'bangalore', 'female', 2),
    e(0, 'impression', 'img1', 'delhi', 'male'),
    e(1, 'click', 'img0', 'bangalore', 'male', 3),
    e(1, 'click', 'img1', 'bangalore', 'male', 0.5),
    e(1, 'impression', 'img1', 'bangalore', 'male'),
    e(65, 'impression', 'img0', 'bangalore', 'male'),
    e(65, 'click', 'img2', 'delhi', 'female', 4),
  ]);
  return engine;
}

beforeAll(async () => {
  db = await seeded();
});

const seedFilter = { and: [{ dimension: 'event', eq: 'click' }, { dimension: 'image_id', eq: 'img0' }, { dimension: 'location', eq: 'bangalore' }, { dimension: 'gender', eq: 'male' }] };

describe('seed questions', () => {
  it('clicks of one image for one location and gender, over the day, per minute and per hour', async () => {
    const day = { datasource: 'events', from: T0 - 12 * 3_600_000, to: T0 + 12 * 3_600_000, filter: seedFilter, aggregations: [{ name: 'clicks', type: 'count' as const }] };
    expect((await db.query(day)).rows).toEqual([[2]]);
    expect((await db.query({ ...day, granularity: 'minute' })).rows).toEqual([[T0, 1], [T0 + M, 1]]);
    expect((await db.query({ ...day, granularity: 'hour' })).rows).toEqual([[T0, 2]]);
  });

  it('count-only queries are answered from bitmap cardinalities, visiting no rows', async () => {
    // With the result cache off, so that an earlier test's same question does not answer this one.
    const r = await (await seeded(false)).query({ datasource: 'events', filter: seedFilter, aggregations: [{ name: 'clicks', type: 'count' }] });
    expect(r.stats.rowsScanned).toBe(0);
    expect(r.stats.bitmapReaders).toBeGreaterThan(0);
    // Grouped counts too, once the rows outnumber the intersections (weighted by their cost): 20k rows, 6 groups.
    const x = await open({ memory: true, clock: () => T0 });
    await x.createDatasource({ name: 'd', dimensions: ['event', 'location', 'gender'], lateness: '1d' });
    await x.ingest('d', Array.from({ length: 20_000 }, (_, i) => ({ ts: T0, event: i % 7 ? 'impression' : 'click', location: ['a', 'b', 'c'][i % 3], gender: ['m', 'f'][i % 2] })));
    const g = await x.query({
      datasource: 'd', groupBy: ['location', 'gender'],
      aggregations: [{ name: 'clicks', type: 'count', filter: { dimension: 'event', eq: 'click' } }, { name: 'n', type: 'count' }],
    });
    expect(g.stats.rowsScanned).toBe(0);
    expect(g.stats.bitmapReaders).toBe(1);
    const want = new Map<string, [number, number]>();
    for (let i = 0; i < 20_000; i++) {
      const k = `${['a', 'b', 'c'][i % 3]}/${['m', 'f'][i % 2]}`;
      const [c, n] = want.get(k) ?? [0, 0];
      want.set(k, [c + (i % 7 ? 0 : 1), n + 1]);
    }
    expect(g.rows).toEqual([...want].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, [c, n]]) => [...k.split('/'), c, n]));
  });

  it('CTR per image with a filtered count, a post-aggregation and top-N order', async () => {
    const r = await db.query({
      datasource: 'events', filter: { dimension: 'location', eq: 'bangalore' }, groupBy: ['image_id'],
      aggregations: [
        { name: 'clicks', type: 'count', filter: { dimension: 'event', eq: 'click' } },
        { name: 'imps', type: 'count', filter: { dimension: 'event', eq: 'impression' } },
      ],
      postAggregations: [{ name: 'ctr', expr: { op: '/', left: { ref: 'clicks' }, right: { ref: 'imps' } } }],
      orderBy: [{ column: 'clicks', direction: 'desc' }], limit: 1,
    });
    expect(r.columns).toEqual(['image_id', 'clicks', 'imps', 'ctr']);
    expect(r.rows).toEqual([['img0', 3, 2, 1.5]]);
  });

  it('division by zero in a post-aggregation is null', async () => {
    const r = await db.query({
      datasource: 'events', groupBy: ['location', 'gender'],
      aggregations: [{ name: 'clicks', type: 'count', filter: { dimension: 'event', eq: 'click' } }, { name: 'imps', type: 'count', filter: { dimension: 'event', eq: 'impression' } }],
      postAggregations: [{ name: 'ctr', expr: { op: '/', left: { ref: 'clicks' }, right: { ref: 'imps' } } }],
    });
    expect(r.rows).toEqual([
      ['bangalore', 'female', 1, 0, null],
      ['bangalore', 'male', 3, 3, 1],
      ['delhi', 'female', 1, 0, null],
      ['delhi', 'male', 0, 1, 0],
    ]);
  });

  it('sum, min, max, avg skip nulls; an all-null sum is null; distinct counts are exact', async () => {
    const r = await db.query({
      datasource: 'events', groupBy: ['event'],
      aggregations: [
        { name: 'sum', type: 'sum', metric: 'cost' }, { name: 'min', type: 'min', metric: 'cost' }, { name: 'max', type: 'max', metric: 'cost' },
        { name: 'avg', type: 'avg', metric: 'cost' }, { name: 'n', type: 'count', metric: 'cost' }, { name: 'imgs', type: 'distinctCount', dimension: 'image_id' },
      ],
    });
    expect(r.rows).toEqual([
      ['click', 10.5, 0.5, 4, 2.1, 5, 3],
      ['impression', null, null, null, null, 0, 2],
    ]);
  });

  it('a query with no group-by and no buckets answers one row even when nothing matches', async () => {
    const r = await db.query({ datasource: 'events', filter: { dimension: 'location', eq: 'paris' }, aggregations: [{ name: 'n', type: 'count' }, { name: 's', type: 'sum', metric: 'cost' }] });
    expect(r.rows).toEqual([[0, null]]);
    const g = await db.query({ datasource: 'events', filter: { dimension: 'location', eq: 'paris' }, groupBy: ['gender'], aggregations: [{ name: 'n', type: 'count' }] });
    expect(g.rows).toEqual([]);
  });

  it('a time range that cuts through a minute counts rows by their exact timestamp', async () => {
    const r = await db.query({ datasource: 'events', from: T0 + 17, to: T0 + M + 17, aggregations: [{ name: 'n', type: 'count' }] });
    expect(r.rows).toEqual([[4]]);
    const r2 = await db.query({ datasource: 'events', from: T0 + 18, to: T0 + M + 18, aggregations: [{ name: 'n', type: 'count' }] });
    expect(r2.rows).toEqual([[3]]); // minute 0's rows sit at +17 ms, before the range
  });

  it('having filters groups after aggregation; offset and limit page the ordered result', async () => {
    const r = await db.query({
      datasource: 'events', groupBy: ['image_id'], aggregations: [{ name: 'n', type: 'count' }],
      having: { column: 'n', op: '>=', value: 2 }, orderBy: [{ column: 'n', direction: 'desc' }],
    });
    expect(r.rows).toEqual([['img0', 5], ['img1', 3]]);
    const page = await db.query({ datasource: 'events', groupBy: ['image_id'], aggregations: [{ name: 'n', type: 'count' }], orderBy: [{ column: 'image_id' }], limit: 1, offset: 1 });
    expect(page.rows).toEqual([['img1', 3]]);
  });

  it('filters on null select events without the dimension; in and not work with it', async () => {
    const x = await open({ memory: true });
    await x.createDatasource({ name: 'd', dimensions: ['a', 'b'], lateness: '1d' });
    await x.ingest('d', [{ ts: T0, a: 'x' }, { ts: T0, a: 'y', b: 'z' }, { ts: T0 }]);
    const n = async (filter: object) => (await x.query({ datasource: 'd', filter: filter as never, aggregations: [{ name: 'n', type: 'count' }] })).rows[0]![0];
    expect(await n({ dimension: 'b', eq: null })).toBe(2);
    expect(await n({ dimension: 'a', in: [null, 'y'] })).toBe(2);
    expect(await n({ not: { dimension: 'a', eq: null } })).toBe(2);
    expect(await n({ or: [{ dimension: 'b', eq: 'z' }, { dimension: 'a', eq: 'x' }] })).toBe(2);
  });
});

describe('time buckets and zones', () => {
  it('day buckets follow America/New_York across the end of DST (a 25-hour day)', async () => {
    const x = await open({ memory: true });
    await x.createDatasource({ name: 'd', dimensions: ['a'], lateness: '1000d' });
    const ts = ['2026-11-01T03:59:59Z', '2026-11-01T04:00:00Z', '2026-11-02T04:59:59Z', '2026-11-02T05:00:00Z'];
    await x.ingest('d', ts.map((t) => ({ ts: t })));
    const r = await x.query({ datasource: 'd', granularity: 'day', timeZone: 'America/New_York', aggregations: [{ name: 'n', type: 'count' }] });
    expect(r.rows).toEqual([[Date.parse('2026-10-31T04:00:00Z'), 1], [Date.parse('2026-11-01T04:00:00Z'), 2], [Date.parse('2026-11-02T05:00:00Z'), 1]]);
  });

  it('hour buckets in Asia/Kolkata start at half past the UTC hour', async () => {
    const r = await db.query({ datasource: 'events', granularity: 'hour', timeZone: 'Asia/Kolkata', aggregations: [{ name: 'n', type: 'count' }] });
    expect(r.rows).toEqual([[T0 - 30 * M, 7], [T0 + 30 * M, 2]]);
  });

  it('fixed-duration buckets are aligned to the epoch', async () => {
    const r = await db.query({ datasource: 'events', granularity: '2 hours', aggregations: [{ name: 'n', type: 'count' }] });
    expect(r.rows).toEqual([[T0, 9]]);
    const m = await db.query({ datasource: 'events', granularity: '7 minutes', aggregations: [{ name: 'n', type: 'count' }] });
    const b = (t: number) => t - (t % (7 * M));
    expect(m.rows).toEqual([[b(T0), 7], [b(T0 + 65 * M), 2]]);
  });
});

describe('query errors', () => {
  const q = { datasource: 'events', aggregations: [{ name: 'n', type: 'count' as const }] };
  const cases: [string, object, string, RegExp][] = [
    ['an unknown datasource', { ...q, datasource: 'nope' }, 'DATASOURCE_NOT_FOUND', /nope/],
    ['an unknown property', { ...q, colour: 1 }, 'QUERY_INVALID', /colour/],
    ['an unknown group-by dimension', { ...q, groupBy: ['city'] }, 'QUERY_UNKNOWN_COLUMN', /groupBy\[0\].*city/],
    ['an unknown filter dimension', { ...q, filter: { dimension: 'city', eq: 'x' } }, 'QUERY_UNKNOWN_COLUMN', /filter\.dimension/],
    ['a number compared with a dimension', { ...q, filter: { dimension: 'location', eq: 5 } }, 'QUERY_INVALID', /filter\.eq/],
    ['an unknown metric', { ...q, aggregations: [{ name: 's', type: 'sum', metric: 'price' }] }, 'QUERY_UNKNOWN_COLUMN', /aggregations\[0\]\.metric/],
    ['sum without a metric', { ...q, aggregations: [{ name: 's', type: 'sum' }] }, 'QUERY_INVALID', /needs a metric/],
    ['an unknown aggregation type', { ...q, aggregations: [{ name: 's', type: 'median', metric: 'cost' }] }, 'QUERY_INVALID', /aggregations\[0\]\.type/],
    ['two columns of one name', { ...q, aggregations: [{ name: 'n', type: 'count' }, { name: 'n', type: 'count' }] }, 'QUERY_INVALID', /twice/],
    ['a bad granularity', { ...q, granularity: 'fortnightly' }, 'QUERY_INVALID', /granularity/],
    ['a bad time zone', { ...q, granularity: 'day', timeZone: 'Mars/Olympus' }, 'QUERY_INVALID', /timeZone/],
    ['to before from', { ...q, from: T0, to: T0 - 1 }, 'QUERY_INVALID', /to/],
    ['an unparseable from', { ...q, from: 'yesterday' }, 'QUERY_INVALID', /from/],
    ['order by an unknown column', { ...q, orderBy: [{ column: 'x' }] }, 'QUERY_UNKNOWN_COLUMN', /orderBy\[0\]\.column/],
    ['a post-aggregation over a dimension', { ...q, groupBy: ['location'], postAggregations: [{ name: 'p', expr: { ref: 'location' } }] }, 'QUERY_UNKNOWN_COLUMN', /ref/],
    ['a negative limit', { ...q, limit: -1 }, 'QUERY_INVALID', /limit/],
    ['an empty and', { ...q, filter: { and: [] } }, 'QUERY_INVALID', /filter\.and/],
  ];
  it.each(cases)('refuses %s with its code and path', async (_what, query, code, msg) => {
    await expect(db.query(query as never)).rejects.toMatchObject({ code, message: expect.stringMatching(msg) });
  });

  it('refuses filters deeper or larger than the limits with QUERY_TOO_COMPLEX', async () => {
    let deep: object = { dimension: 'location', eq: 'x' };
    for (let i = 0; i < 40; i++) deep = { not: deep };
    await expect(db.query({ ...q, filter: deep as never })).rejects.toMatchObject({ code: 'QUERY_TOO_COMPLEX' });
    const wide = { or: Array.from({ length: 20_000 }, () => ({ dimension: 'location', eq: 'x' })) };
    await expect(db.query({ ...q, filter: wide })).rejects.toMatchObject({ code: 'QUERY_TOO_COMPLEX' });
  });

  it('stops with QUERY_TOO_MANY_GROUPS past limits.maxGroups', async () => {
    const x = await open({ memory: true, limits: { maxGroups: 10 } });
    await x.createDatasource({ name: 'd', dimensions: ['a'], lateness: '1d' });
    await x.ingest('d', Array.from({ length: 20 }, (_, i) => ({ ts: T0, a: `v${i}` })));
    await expect(x.query({ datasource: 'd', groupBy: ['a'], aggregations: [{ name: 'n', type: 'count', metric: undefined }] } as never)).rejects.toMatchObject({ code: 'QUERY_TOO_MANY_GROUPS' });
  });
});

describe('top-N over many groups (candidates preselected by the order column before rows are built)', () => {
  it('equals the full sort for every limit and offset, ties at the cut included, ascending and descending', async () => {
    const t = await open({ memory: true, clock: () => T0 + 3_600_000 });
    await t.createDatasource({ name: 'ev', dimensions: ['img'], metrics: [{ name: 'v', type: 'int' }] });
    // 300 images whose counts repeat (many ties), and a sum that is null for some groups.
    const events = [];
    for (let i = 0; i < 300; i++) for (let c = 0; c < 1 + (i * 7) % 5; c++) events.push({ ts: T0 + c, img: `i${i}`, ...(i % 3 === 0 ? {} : { v: (i * 13) % 11 }) });
    await t.ingest('ev', events);
    for (const agg of ['n', 's']) {
      for (const direction of ['desc', 'asc'] as const) {
        const base = { datasource: 'ev', groupBy: ['img'], aggregations: [{ name: 'n', type: 'count' as const }, { name: 's', type: 'sum' as const, metric: 'v' }], orderBy: [{ column: agg, direction }] };
        const all = (await t.query(base)).rows;
        expect(all).toHaveLength(300);
        for (const [limit, offset] of [[1, 0], [5, 0], [10, 3], [7, 30], [0, 0], [36, 1]]) {
          expect((await t.query({ ...base, limit, offset })).rows).toEqual(all.slice(offset, offset + limit));
        }
      }
    }
    await t.close();
  });

  it('the cut of the preselection is the k-th best value, as a full sort finds it', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: -5, max: 20 }), { minLength: 1, maxLength: 200 }), fc.nat(), fc.boolean(), (xs, kk, desc) => {
      const k = 1 + (kk % xs.length);
      const sorted = [...xs].sort((a, b) => a - b);
      expect(kthBest(Float64Array.from(xs), k, desc)).toBe(desc ? sorted[xs.length - k] : sorted[k - 1]);
    }), { numRuns: 500 });
  });
});

describe('row sets built for one reader are not reused while that reader still needs them (filter.ts scratch arena)', () => {
  it('composite aggregation filters under the bitmap and scan strategies equal a plain count, query after query', async () => {
    const t = await open({ memory: true, clock: () => T0 + 3_600_000 });
    await t.createDatasource({ name: 'ev', dimensions: ['event', 'location', 'gender', 'img'], lateness: '1d' });
    const EVENTS = ['click', 'impression', 'view'];
    const LOC = ['bangalore', 'delhi', 'mumbai'];
    const GEN = ['male', 'female', 'other'];
    // 4 minutes (4 head readers of 3,000 rows: enough rows for the bitmap strategy of 9 combinations × 5 counts);
    // values rotate at different strides so the combinations have different counts.
    const events = Array.from({ length: 12_000 }, (_, i) => ({
      ts: T0 + (i % 4) * M + (i % 1000), event: EVENTS[(i * 7) % 3]!, location: LOC[(i * 5) % 3 === 0 ? 0 : (i >> 2) % 3]!,
      gender: GEN[(i >> 3) % 3]!, img: `i${(i * 11) % 40}`,
    }));
    await t.ingest('ev', events);
    type Ev = (typeof events)[number];
    // Every composite shape evalFilter builds into scratch sets: in, or, not, and of indexed terms.
    const filters: [Filter, (e: Ev) => boolean][] = [
      [{ dimension: 'event', in: ['click', 'view'] }, (e) => e.event !== 'impression'],
      [{ or: [{ dimension: 'event', eq: 'click' }, { dimension: 'gender', eq: 'other' }] }, (e) => e.event === 'click' || e.gender === 'other'],
      [{ not: { dimension: 'event', eq: 'impression' } }, (e) => e.event !== 'impression'],
      [{ and: [{ dimension: 'event', eq: 'click' }, { not: { dimension: 'gender', eq: 'male' } }] }, (e) => e.event === 'click' && e.gender !== 'male'],
    ];
    const aggregations = filters.map(([filter], i) => ({ name: `c${i}`, type: 'count' as const, filter }));
    for (const groupBy of [['location', 'gender'], ['img']]) {
      const want = new Map<string, number[]>();
      for (const e of events) {
        const key = groupBy.map((d) => e[d as keyof Ev]).join('|');
        const counts = want.get(key) ?? filters.map(() => 0);
        filters.forEach(([, pred], i) => { if (pred(e)) counts[i]!++; });
        want.set(key, counts);
      }
      const expected = [...want].map(([k, c]) => [...k.split('|'), ...c]).sort((a, b) => String(a).localeCompare(String(b)));
      for (let round = 0; round < 2; round++) {
        const r = await t.query({ datasource: 'ev', groupBy, aggregations });
        expect([...r.rows].sort((a, b) => String(a).localeCompare(String(b)))).toEqual(expected);
        if (groupBy.length === 2) expect(r.stats.bitmapReaders).toBe(4);
        else expect(r.stats.rowsScanned).toBeGreaterThan(0);
      }
    }
    await t.close();
  });
});

describe('counts by one dimension reuse zeroed counters per id (execute.ts idCounters)', () => {
  it('a query that fails part-way with QUERY_TOO_MANY_GROUPS leaves no count behind for the next', async () => {
    const t = await open({ memory: true, clock: () => T0 + 3_600_000, limits: { maxGroups: 5 } });
    await t.createDatasource({ name: 'ev', dimensions: ['img', 'event'], lateness: '1d' });
    // One minute, 20 images with 10 rows each (7 impressions, 3 clicks): counters for 21 ids, 200 rows.
    await t.ingest('ev', Array.from({ length: 200 }, (_, i) => ({ ts: T0 + i, img: `i${i % 20}`, event: Math.floor(i / 20) < 3 ? 'click' : 'impression' })));
    const byImg = { datasource: 'ev', groupBy: ['img'], aggregations: [{ name: 'n', type: 'count' as const }, { name: 'c', type: 'count' as const, filter: { dimension: 'event', eq: 'click' } }] };
    await expect(t.query(byImg)).rejects.toMatchObject({ code: 'QUERY_TOO_MANY_GROUPS' });
    const last5 = ['i15', 'i16', 'i17', 'i18', 'i19'];
    const r = await t.query({ ...byImg, filter: { dimension: 'img', in: last5 }, orderBy: [{ column: 'img', direction: 'asc' }] });
    expect(r.rows).toEqual(last5.map((img) => [img, 10, 3]));
    expect(r.stats.rowsScanned).toBeGreaterThan(0);
    await t.close();
  });
});
