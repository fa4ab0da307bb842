/**
 * SQL invariants: every statement either means exactly its JSON-query equivalent, or fails with a stable code that
 * says what is unsupported and where. Never a silently different answer.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { open, type Filter, type Query, type Tally } from 'tallydb';
import { SQL_PARSE_CACHE } from '../src/limits.js';
import { sqlParseStats } from '../src/query/sql.js';

const DAY0 = Date.parse('2026-11-22T00:00:00Z');
const NOW = Date.parse('2026-11-23T00:00:00Z');
const M = 60_000;
const IMAGES = ['img0', 'img1', 'img2', 'img3'];
const LOCATIONS = ['bangalore', 'delhi', 'mumbai'];
const GENDERS = ['male', 'female', 'other'];
let db: Tally;

beforeAll(async () => {
  db = await open({ memory: true, clock: () => NOW });
  await db.createDatasource({
    name: 'events', dimensions: ['event', 'image_id', 'location', 'gender'], metrics: [{ name: 'cost', type: 'float' }],
    dedupKey: 'event_id', lateness: '2d',
  });
  // A deterministic day: event i lands at minute (i * 7) % 1440, with rotating dimension values.
  const events = Array.from({ length: 3000 }, (_, i) => ({
    ts: DAY0 + ((i * 7) % 1440) * M + (i % 60) * 1000,
    event_id: `e${i}`,
    event: i % 5 === 0 ? 'click' : 'impression',
    image_id: IMAGES[(i * 3) % 4]!,
    location: LOCATIONS[i % 3]!,
    gender: GENDERS[(i >> 1) % 3]!,
    ...(i % 5 === 0 ? { cost: (i % 8) / 4 } : {}),
  }));
  const res = await db.ingest('events', events);
  expect(res.accepted).toBe(3000);
});

const json = async (q: Omit<Query, 'datasource'>) => (await db.query({ datasource: 'events', ...q })).rows;
const sql = async (text: string) => db.sql(text);

describe('the issue statements', () => {
  it('seed count: clicks for one image, location and gender over a day', async () => {
    const r = await sql(`SELECT count(*) AS clicks FROM events
      WHERE event = 'click' AND image_id = 'img0' AND location = 'bangalore' AND gender = 'male'
        AND ts >= ${DAY0} AND ts < ${NOW}`);
    expect(r.columns).toEqual(['clicks']);
    const want = await json({
      from: DAY0, to: NOW, aggregations: [{ name: 'clicks', type: 'count' }],
      filter: { and: [{ dimension: 'event', eq: 'click' }, { dimension: 'image_id', eq: 'img0' }, { dimension: 'location', eq: 'bangalore' }, { dimension: 'gender', eq: 'male' }] },
    });
    expect(r.rows).toEqual(want);
    expect(r.rows[0]![0]).toBeGreaterThan(0);
    expect(r.stats.rowsScanned).toBe(0);
  });

  it('per-minute counts with date_trunc, grouped and ordered by the alias', async () => {
    const r = await sql(`SELECT date_trunc('minute', ts) AS m, count(*) FROM events WHERE location = 'delhi' GROUP BY m ORDER BY m`);
    expect(r.columns).toEqual(['m', 'count(*)']);
    expect(r.rows).toEqual(await json({ granularity: 'minute', filter: { dimension: 'location', eq: 'delhi' }, aggregations: [{ name: 'n', type: 'count' }] }));
    expect(r.rows.length).toBeGreaterThan(100);
  });

  it('CTR per image with countIf over the last hour, top 10', async () => {
    const r = await sql(`SELECT image_id, countIf(event = 'click') AS clicks, countIf(event = 'impression') AS imps,
           countIf(event = 'click') / countIf(event = 'impression') AS ctr
      FROM events WHERE location = 'bangalore' AND ts >= '2026-11-22T23:00:00Z' AND ts < '2026-11-23T00:00:00Z'
     GROUP BY image_id ORDER BY clicks DESC, image_id LIMIT 10`);
    expect(r.columns).toEqual(['image_id', 'clicks', 'imps', 'ctr']);
    const want = await json({
      from: NOW - 60 * M, to: NOW, filter: { dimension: 'location', eq: 'bangalore' }, groupBy: ['image_id'],
      aggregations: [{ name: 'clicks', type: 'count', filter: { dimension: 'event', eq: 'click' } }, { name: 'imps', type: 'count', filter: { dimension: 'event', eq: 'impression' } }],
      postAggregations: [{ name: 'ctr', expr: { op: '/', left: { ref: 'clicks' }, right: { ref: 'imps' } } }],
      orderBy: [{ column: 'clicks', direction: 'desc' }, { column: 'image_id' }], limit: 10,
    });
    expect(r.rows).toEqual(want);
    expect(r.rows.length).toBeGreaterThan(0);
  });

  it('location × gender with countIf, sum, uniqExact over now() - INTERVAL 1 DAY', async () => {
    const r = await sql(`SELECT location, gender, countIf(event='click') AS clicks, sum(cost), uniqExact(image_id) FROM events
     WHERE ts >= now() - INTERVAL 1 DAY GROUP BY location, gender ORDER BY clicks DESC LIMIT 20`);
    expect(r.columns).toEqual(['location', 'gender', 'clicks', 'sum(cost)', 'uniqExact(image_id)']);
    const want = await json({
      from: NOW - 1440 * M, groupBy: ['location', 'gender'],
      aggregations: [{ name: 'clicks', type: 'count', filter: { dimension: 'event', eq: 'click' } }, { name: 's', type: 'sum', metric: 'cost' }, { name: 'u', type: 'distinctCount', dimension: 'image_id' }],
      orderBy: [{ column: 'clicks', direction: 'desc' }], limit: 20,
    });
    expect(r.rows).toEqual(want);
    expect(r.rows).toHaveLength(6); // the data holds 6 of the 9 location × gender pairs
  });
});

describe('the rest of the subset', () => {
  const same = async (text: string, q: Omit<Query, 'datasource'>) => {
    const r = await sql(text);
    expect(r.rows).toEqual(await json(q));
    expect(r.rows.length).toBeGreaterThan(0); // never a vacuous agreement
    return r;
  };

  it('IN, NOT IN, NOT, OR, <> and != map to the same filters', async () => {
    const f: Filter = { and: [{ dimension: 'image_id', in: ['img0', 'img1'] }, { not: { dimension: 'location', eq: 'delhi' } }, { or: [{ dimension: 'gender', eq: 'male' }, { not: { dimension: 'event', in: ['click'] } }] }] };
    const q = { filter: f, aggregations: [{ name: 'n', type: 'count' as const }] };
    await same(`SELECT count(*) FROM events WHERE image_id IN ('img0','img1') AND location <> 'delhi' AND (gender = 'male' OR event NOT IN ('click'))`, q);
    await same(`SELECT count(*) FROM events WHERE image_id IN ('img0','img1') AND NOT location = 'delhi' AND (gender = 'male' OR NOT event = 'click')`, q);
    await same(`SELECT count(*) FROM events WHERE image_id IN ('img0','img1') AND location != 'delhi' AND ('male' = gender OR event <> 'click')`, q);
  });

  it('sumIf, minIf, avg, min, max, count(DISTINCT), FILTER (WHERE) and count(metric)', async () => {
    await same(`SELECT image_id, sumIf(cost, location = 'delhi'), min(cost), max(cost), avg(cost), count(DISTINCT location), count(*) FILTER (WHERE gender = 'male'), count(cost), minIf(cost, event = 'click') FROM events GROUP BY image_id`, {
      groupBy: ['image_id'], aggregations: [
        { name: 'a', type: 'sum', metric: 'cost', filter: { dimension: 'location', eq: 'delhi' } }, { name: 'b', type: 'min', metric: 'cost' },
        { name: 'c', type: 'max', metric: 'cost' }, { name: 'd', type: 'avg', metric: 'cost' }, { name: 'e', type: 'distinctCount', dimension: 'location' },
        { name: 'f', type: 'count', filter: { dimension: 'gender', eq: 'male' } }, { name: 'g', type: 'count', metric: 'cost' },
        { name: 'h', type: 'min', metric: 'cost', filter: { dimension: 'event', eq: 'click' } },
      ],
    });
  });

  it('time_bucket, toStartOfInterval, date_trunc hour and day, and BETWEEN', async () => {
    const q = (granularity: string) => ({ granularity, from: DAY0 + 60 * M, to: DAY0 + 600 * M + 1, aggregations: [{ name: 'n', type: 'count' as const }] });
    const where = `WHERE ts BETWEEN ${DAY0 + 60 * M} AND ${DAY0 + 600 * M}`;
    await same(`SELECT time_bucket('5 minutes', ts) AS b, count(*) FROM events ${where} GROUP BY b ORDER BY b`, q('5 minutes'));
    await same(`SELECT toStartOfInterval(ts, INTERVAL 15 minute) AS b, count(*) FROM events ${where} GROUP BY 1`, q('15 minutes'));
    await same(`SELECT date_trunc('hour', ts), count(*) FROM events ${where} GROUP BY date_trunc('hour', ts)`, q('hour'));
    await same(`SELECT date_trunc('day', ts) AS d, count(*) FROM events GROUP BY d`, { granularity: 'day', aggregations: [{ name: 'n', type: 'count' }] });
  });

  it('HAVING, ORDER BY an aggregate not selected, positions, LIMIT with OFFSET', async () => {
    // sum(cost) is computed for ORDER BY but not selected: the JSON side has it as a column, SQL does not.
    const s = await sql(`SELECT image_id, count(*) AS n FROM events GROUP BY 1 HAVING count(*) > 700 AND n < 800 ORDER BY sum(cost) DESC LIMIT 2 OFFSET 1`);
    const j = await json({
      groupBy: ['image_id'], aggregations: [{ name: 'n', type: 'count' }, { name: 's', type: 'sum', metric: 'cost' }],
      having: { and: [{ column: 'n', op: '>', value: 700 }, { column: 'n', op: '<', value: 800 }] }, orderBy: [{ column: 's', direction: 'desc' }], limit: 2, offset: 1,
    });
    expect(s.columns).toEqual(['image_id', 'n']);
    expect(s.rows).toEqual(j.map((row) => [row[0], row[1]]));
    expect(s.rows.length).toBeGreaterThan(0);
    const lim = await sql(`SELECT image_id, count(*) FROM events GROUP BY image_id ORDER BY image_id LIMIT 2 OFFSET 1`);
    expect(lim.rows.map((x) => x[0])).toEqual(['img1', 'img2']);
  });

  it('arithmetic over aggregates, unary minus and constants', async () => {
    const r = await sql(`SELECT gender, -sum(cost) AS neg, 100 * countIf(event = 'click') / count(*) AS pct FROM events GROUP BY gender ORDER BY gender`);
    const j = await json({
      groupBy: ['gender'], aggregations: [{ name: 's', type: 'sum', metric: 'cost' }, { name: 'c', type: 'count', filter: { dimension: 'event', eq: 'click' } }, { name: 'n', type: 'count' }],
      orderBy: [{ column: 'gender' }],
    });
    expect(r.rows).toEqual(j.map(([g, s, c, n]) => [g, 0 - (s as number), (100 * (c as number)) / (n as number)]));
  });

  it('count(), count(dimension), the remaining -If forms, toStartOf* buckets and interval spellings', async () => {
    await same(`SELECT toStartOfHour(ts) AS h, count(), count(location), uniqExactIf(image_id, event = 'click'), avgIf(cost, gender = 'male'), maxIf(cost, gender = 'female') FROM events WHERE ts >= current_timestamp - INTERVAL '2 hours' AND ts < TIMESTAMP '2026-11-22 23:30:00' GROUP BY h`, {
      granularity: 'hour', from: NOW - 120 * M, to: NOW - 30 * M, aggregations: [
        { name: 'n', type: 'count' }, { name: 'l', type: 'count', filter: { not: { dimension: 'location', eq: null } } },
        { name: 'u', type: 'distinctCount', dimension: 'image_id', filter: { dimension: 'event', eq: 'click' } },
        { name: 'a', type: 'avg', metric: 'cost', filter: { dimension: 'gender', eq: 'male' } },
        { name: 'x', type: 'max', metric: 'cost', filter: { dimension: 'gender', eq: 'female' } },
      ],
    });
    await same(`SELECT toStartOfFiveMinutes(ts) AS b, count(*) FROM events WHERE ts >= ${NOW - 30 * M} GROUP BY b`, { granularity: '5 minutes', from: NOW - 30 * M, aggregations: [{ name: 'n', type: 'count' }] });
  });

  it('string literals that look like SQL are only values', async () => {
    const r = await sql(`SELECT count(*) FROM events WHERE location = 'x''; DROP TABLE events; --'`);
    expect(r.rows).toEqual([[0]]);
    expect((await sql('SELECT count(*) FROM events')).rows).toEqual([[3000]]);
  });

  it('IS NULL and IS NOT NULL', async () => {
    await same(`SELECT count(*) FROM events WHERE image_id IS NOT NULL AND NOT gender IS NULL`, {
      filter: { and: [{ not: { dimension: 'image_id', eq: null } }, { not: { dimension: 'gender', eq: null } }] }, aggregations: [{ name: 'n', type: 'count' }],
    });
  });
});

describe('outside the subset: a stable code that says what and where', () => {
  const cases: [string, string, string, RegExp][] = [
    ['SELECT *', 'SELECT * FROM events', 'SQL_UNSUPPORTED', /SELECT \*/],
    ['a join', 'SELECT count(*) FROM events a JOIN events b ON a.event = b.event', 'SQL_UNSUPPORTED', /one datasource/],
    ['a subquery', 'SELECT count(*) FROM (SELECT 1) AS t', 'SQL_UNSUPPORTED', /FROM/],
    ['DELETE', 'DELETE FROM events', 'SQL_UNSUPPORTED', /DELETE/],
    ['two statements', 'SELECT count(*) FROM events; SELECT count(*) FROM events', 'SQL_UNSUPPORTED', /statements/],
    ['LIKE', "SELECT count(*) FROM events WHERE location LIKE 'b%'", 'SQL_UNSUPPORTED', /LIKE/],
    ['a metric in WHERE', 'SELECT count(*) FROM events WHERE cost = 1', 'SQL_UNSUPPORTED', /metric 'cost'/],
    ['time inside OR', `SELECT count(*) FROM events WHERE location = 'x' OR ts > 5`, 'SQL_UNSUPPORTED', /top-level AND/],
    ['an unknown function', 'SELECT median(cost) FROM events', 'SQL_UNSUPPORTED', /median/],
    ['an aggregate of the time field', 'SELECT max(ts) FROM events', 'SQL_UNSUPPORTED', /time field is not a metric/],
    ['a dimension not grouped', 'SELECT location, count(*) FROM events', 'SQL_UNSUPPORTED', /GROUP BY/],
    ['NULLS FIRST', 'SELECT location, count(*) FROM events GROUP BY location ORDER BY location NULLS FIRST', 'SQL_UNSUPPORTED', /NULLS FIRST/],
    ['a month interval', 'SELECT count(*) FROM events WHERE ts > now() - INTERVAL 1 MONTH', 'SQL_UNSUPPORTED', /INTERVAL/],
    ['SELECT DISTINCT', 'SELECT DISTINCT location FROM events', 'SQL_UNSUPPORTED', /DISTINCT/],
    ['a number compared with a dimension', 'SELECT count(*) FROM events WHERE location = 5', 'SQL_UNSUPPORTED', /quoted string/],
    ['an unknown column', 'SELECT count(*) FROM events WHERE city = \'x\'', 'QUERY_UNKNOWN_COLUMN', /city/],
    ['an unknown datasource', 'SELECT count(*) FROM clicks', 'DATASOURCE_NOT_FOUND', /clicks/],
    ['a syntax error', 'SELECT count(* FROM events', 'SQL_PARSE_ERROR', /line 1, column/],
    ['an empty statement', '   ', 'SQL_PARSE_ERROR', /non-empty/],
  ];
  it.each(cases)('refuses %s', async (_what, text, code, msg) => {
    await expect(sql(text)).rejects.toMatchObject({ code, message: expect.stringMatching(msg) });
  });

  it('names the line and column of the unsupported construct', async () => {
    const err = await sql('SELECT count(*)\nFROM events\nWHERE location = \'x\' AND median(cost) > 1').catch((e) => e);
    expect(err.code).toBe('SQL_UNSUPPORTED');
    expect(err.details).toMatchObject({ line: 3 });
  });

  it('refuses SQL longer than limits.maxSqlLength with SQL_TOO_LONG', async () => {
    const small = await open({ memory: true, limits: { maxSqlLength: 50 } });
    await expect(small.sql(`SELECT count(*) FROM events WHERE location = '${'x'.repeat(100)}'`)).rejects.toMatchObject({ code: 'SQL_TOO_LONG', status: 413 });
  });
});

describe('a statement is parsed once per text; what it means is decided on every run', () => {
  it('a repeated statement skips the parser and answers as the first run did', async () => {
    const text = `SELECT location, countIf(event = 'click') AS c FROM events WHERE ts >= ${DAY0} GROUP BY location ORDER BY c DESC`;
    const before = sqlParseStats.parses;
    const first = await sql(text);
    const second = await sql(text);
    expect(sqlParseStats.parses - before).toBe(1);
    expect(second.rows).toEqual(first.rows);
    expect(second.columns).toEqual(first.columns);
    expect(first.rows.length).toBe(3);
  });

  it('now() is read from the engine clock on each run, not from the cached parse', async () => {
    let now = NOW;
    const moving = await open({ memory: true, clock: () => now });
    await moving.createDatasource({ name: 'events', dimensions: ['location'] });
    await moving.ingest('events', Array.from({ length: 120 }, (_, i) => ({ ts: NOW - (i + 1) * M, location: 'x' })));
    const text = 'SELECT count(*) FROM events WHERE ts >= now() - INTERVAL 30 MINUTE AND ts < now()';
    expect((await moving.sql(text)).rows).toEqual([[30]]);
    now = NOW - 60 * M;
    expect((await moving.sql(text)).rows).toEqual([[30]]);
    now = NOW - 100 * M;
    expect((await moving.sql(text)).rows).toEqual([[20]]);
  });

  it('a statement refused after parsing is refused the same way when run again', async () => {
    const text = 'SELECT median(cost) FROM events';
    const a = await sql(text).catch((e) => e);
    const b = await sql(text).catch((e) => e);
    expect(a.code).toBe('SQL_UNSUPPORTED');
    expect({ code: b.code, message: b.message }).toEqual({ code: a.code, message: a.message });
  });

  it(`keeps at most ${SQL_PARSE_CACHE.entries} statements, dropping the least recently used`, async () => {
    const text = (i: number): string => `SELECT count(*) FROM events WHERE location = 'evict${i}'`;
    await sql(text(0));
    for (let i = 1; i <= SQL_PARSE_CACHE.entries; i++) {
      await sql(text(i));
      if (i === SQL_PARSE_CACHE.entries - 1) await sql(text(0)); // used again: now the newest, not the oldest
    }
    let before = sqlParseStats.parses;
    await sql(text(0));
    expect(sqlParseStats.parses - before).toBe(0);
    before = sqlParseStats.parses;
    await sql(text(1)); // the least recently used when the cache overflowed
    expect(sqlParseStats.parses - before).toBe(1);
  });
});

describe('SQL and JSON agree on random questions', () => {
  const dims = ['event', 'image_id', 'location', 'gender'];
  const values: Record<string, string[]> = { event: ['click', 'impression'], image_id: IMAGES, location: LOCATIONS, gender: GENDERS };
  const leaf = fc.constantFrom(...dims).chain((d) => fc.oneof(
    fc.constantFrom(...values[d]!, 'nope').map((v) => ({ sql: `${d} = '${v}'`, json: { dimension: d, eq: v } as Filter })),
    fc.subarray(values[d]!, { minLength: 1 }).map((vs) => ({ sql: `${d} IN (${vs.map((v) => `'${v}'`).join(', ')})`, json: { dimension: d, in: vs } as Filter })),
  ));
  const { cond } = fc.letrec<{ cond: { sql: string; json: Filter } }>((tie) => ({
    cond: fc.oneof({ depthSize: 'small' }, leaf,
      fc.tuple(tie('cond'), tie('cond')).map(([a, b]) => ({ sql: `(${a.sql} AND ${b.sql})`, json: { and: [a.json, b.json] } })),
      fc.tuple(tie('cond'), tie('cond')).map(([a, b]) => ({ sql: `(${a.sql} OR ${b.sql})`, json: { or: [a.json, b.json] } })),
      tie('cond').map((a) => ({ sql: `NOT (${a.sql})`, json: { not: a.json } }))),
  }));
  const question = fc.record({
    where: fc.option(cond, { nil: undefined }),
    agg: fc.option(cond, { nil: undefined }),
    group: fc.shuffledSubarray(dims, { maxLength: 2 }),
    minutes: fc.option(fc.tuple(fc.integer({ min: 0, max: 1440 }), fc.integer({ min: 0, max: 1440 })), { nil: undefined }),
    gran: fc.constantFrom('all', 'minute', 'hour', '5 minutes'),
    desc: fc.boolean(),
    limit: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
  });
  it('for random filters, filtered aggregates, groups, buckets, ranges and limits', async () => {
    await fc.assert(fc.asyncProperty(question, async (qq) => {
      const bucketSql = { all: '', minute: "date_trunc('minute', ts)", hour: "date_trunc('hour', ts)", '5 minutes': "time_bucket('5 minutes', ts)" }[qq.gran];
      const select = [...(bucketSql ? [`${bucketSql} AS t`] : []), ...qq.group, 'count(*) AS n', `countIf(${qq.agg?.sql ?? "event = 'click'"}) AS c`, 'sum(cost) AS s'];
      const where: string[] = [];
      const q: Query = {
        datasource: 'events', granularity: qq.gran, groupBy: qq.group,
        aggregations: [{ name: 'n', type: 'count' }, { name: 'c', type: 'count', filter: qq.agg?.json ?? { dimension: 'event', eq: 'click' } }, { name: 's', type: 'sum', metric: 'cost' }],
        orderBy: [{ column: 'c', direction: qq.desc ? 'desc' : 'asc' }],
      };
      if (qq.gran !== 'all') q.timeColumn = 't';
      if (qq.where) {
        where.push(qq.where.sql);
        q.filter = qq.where.json;
      }
      if (qq.minutes) {
        const [a, b] = [Math.min(...qq.minutes), Math.max(...qq.minutes)];
        where.push(`ts >= ${DAY0 + a * M}`, `ts < ${DAY0 + b * M}`);
        q.from = DAY0 + a * M;
        q.to = DAY0 + b * M;
      }
      if (qq.limit !== undefined) q.limit = qq.limit;
      const groupSql = [...(bucketSql ? ['t'] : []), ...qq.group];
      const text = `SELECT ${select.join(', ')} FROM events${where.length ? ` WHERE ${where.join(' AND ')}` : ''}${groupSql.length ? ` GROUP BY ${groupSql.join(', ')}` : ''} ORDER BY c ${qq.desc ? 'DESC' : 'ASC'}${qq.limit !== undefined ? ` LIMIT ${qq.limit}` : ''}`;
      const s = await db.sql(text);
      const j = await db.query(q);
      expect(s.columns).toEqual(j.columns);
      expect(s.rows).toEqual(j.rows);
    }), { numRuns: Number(process.env.PROPERTY_RUNS ?? 150) });
  });
});
