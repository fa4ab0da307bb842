/**
 * The answer to a query does not depend on where the rows sit: the in-memory engine, the durable head, sealed
 * segments, and the same after a restart all give identical results.
 */
import { expect, it } from 'vitest';
import { open, type Query } from 'tallydb';
import { MemFs } from '../support/memfs.js';

const DAY0 = Date.parse('2026-11-22T00:00:00Z');
const NOW = DAY0 + 86_400_000;
const spec = { name: 'events', dimensions: ['event', 'image_id', 'location', 'gender'], metrics: [{ name: 'cost', type: 'float' as const }, { name: 'n', type: 'int' as const }], dedupKey: 'event_id', dedupWindow: '2d', lateness: '2d' };
const events = Array.from({ length: 6000 }, (_, i) => ({
  ts: DAY0 + ((i * 7919) % 1440) * 60_000 + (i % 60) * 1000, event_id: `e${i}`, event: i % 5 ? 'impression' : 'click',
  image_id: `img${(i * 31) % 97}`, location: ['bangalore', 'delhi', 'mumbai', 'pune'][i % 4]!, ...(i % 3 ? { gender: ['male', 'female'][i % 2] } : {}),
  ...(i % 5 ? {} : { cost: (i % 16) / 8 }), n: i % 11,
}));
const sql = [
  `SELECT count(*) FROM events WHERE event = 'click' AND image_id = 'img0' AND location = 'bangalore' AND gender = 'male'`,
  `SELECT date_trunc('minute', ts) AS m, count(*) FROM events WHERE event = 'click' GROUP BY m ORDER BY m`,
  `SELECT image_id, countIf(event='click') AS c, countIf(event='impression') AS i, countIf(event='click') / countIf(event='impression') AS ctr FROM events WHERE location = 'bangalore' AND ts >= now() - INTERVAL 1 HOUR GROUP BY image_id ORDER BY c DESC, image_id LIMIT 10`,
  `SELECT location, gender, countIf(event='click') AS c, sum(cost), min(cost), max(n), avg(n), uniqExact(image_id) FROM events GROUP BY location, gender ORDER BY c DESC`,
  `SELECT date_trunc('hour', ts) AS h, count(*) FROM events WHERE gender IS NULL OR location IN ('pune', 'delhi') GROUP BY h`,
  `SELECT time_bucket('5 minutes', ts) AS b, image_id, count(*) FROM events WHERE ts >= now() - INTERVAL 30 MINUTE GROUP BY b, image_id ORDER BY b, image_id`,
];
const json: Query[] = [
  { datasource: 'events', granularity: 'day', timeZone: 'Asia/Kolkata', groupBy: ['gender'], aggregations: [{ name: 'n', type: 'count' }, { name: 'u', type: 'distinctCount', dimension: 'location', filter: { dimension: 'event', eq: 'click' } }] },
  { datasource: 'events', from: DAY0 + 3_600_000 + 123, to: DAY0 + 7_200_000 - 77, aggregations: [{ name: 'n', type: 'count' }, { name: 's', type: 'sum', metric: 'n' }] },
];

async function answers(db: Awaited<ReturnType<typeof open>>): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const q of sql) out.push((await db.sql(q)).rows);
  for (const q of json) out.push((await db.query(q)).rows);
  return out;
}

it('memory engine, durable head, sealed segments and a restarted engine answer identically', async () => {
  const mem = await open({ memory: true, clock: () => NOW });
  await mem.createDatasource(spec);
  for (let i = 0; i < events.length; i += 1000) await mem.ingest('events', events.slice(i, i + 1000));
  const want = await answers(mem);
  expect((want[0] as unknown[][])[0]![0]).toBeGreaterThan(0);

  const fs = new MemFs();
  const db = await open({ dir: '/db', fileSystem: fs, clock: () => NOW });
  await db.createDatasource(spec);
  for (let i = 0; i < events.length; i += 1000) await db.ingest('events', events.slice(i, i + 1000));
  expect(db.stats('events').storage!.segments).toBe(0);
  expect(await answers(db)).toEqual(want); // all in the head

  await db.flush();
  expect(db.stats('events').head.rows).toBe(0);
  expect(db.stats('events').storage!.segments).toBeGreaterThan(100);
  expect(await answers(db)).toEqual(want); // all in segments

  await db.ingest('events', events.slice(0, 10)); // duplicates: nothing changes
  await db.close();
  const re = await open({ dir: '/db', fileSystem: fs, clock: () => NOW, cacheBytes: 64 * 1024 });
  expect(await answers(re)).toEqual(want); // after a restart, through a cache far smaller than the data
  await re.close();
});
