/**
 * InfluxDB 1.x compatibility, checked with a real client library (node-influx), over a real socket: points it
 * writes land as events — tags as dimensions, fields as metrics or dimensions, its timestamps and precisions —
 * and its password parameter carries a tallydb token.
 */
import Influx from 'influx';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEFAULT_LIMITS, open, type Tally } from 'tallydb';
import { build } from '../../src/http/app.js';
import type { FastifyInstance } from 'fastify';

const NOW = Date.parse('2026-11-23T10:00:00Z');
const TOKEN = 'influx-writer-token-0001';
let db: Tally;
let app: FastifyInstance;
let port = 0;

beforeAll(async () => {
  db = await open({ memory: true, clock: () => NOW });
  await db.createDatasource({ name: 'events', dimensions: ['measurement', 'event', 'location', 'host'], metrics: [{ name: 'cost', type: 'float' }, { name: 'clicks', type: 'int' }], lateness: '1d' });
  app = build({ engine: () => db, limits: DEFAULT_LIMITS, tokens: { [TOKEN]: ['write'], 'reader-token-0000000001': ['read'] }, clock: () => NOW });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
});

afterAll(async () => {
  await app.close();
  await db.close();
});

it('points written by node-influx arrive with tags, fields, measurement and timestamps intact', async () => {
  const influx = new Influx.InfluxDB({ host: '127.0.0.1', port, database: 'events', username: 'ignored', password: TOKEN });
  await influx.writePoints([
    { measurement: 'ads', tags: { event: 'click', location: 'bangalore' }, fields: { cost: 0.25, clicks: 1 }, timestamp: new Date(NOW) },
    { measurement: 'ads', tags: { event: 'impression', location: 'bangalore', host: 'web-1' }, fields: { clicks: 0 }, timestamp: new Date(NOW + 1000) },
  ], { precision: 'ms' });
  await influx.writePoints([
    { measurement: 'ads', tags: { event: 'click', location: 'delhi' }, fields: { cost: 1.5, clicks: 1 }, timestamp: new Date(NOW + 2000) },
  ], { precision: 's' });
  await influx.writePoints([{ measurement: 'ads', tags: { event: 'click', location: 'pune' }, fields: { cost: 2 } }]); // no timestamp: server clock
  const r = await db.sql('SELECT measurement, location, event, sum(cost), sum(clicks) FROM events GROUP BY measurement, location, event ORDER BY location, event');
  expect(r.rows).toEqual([
    ['ads', 'bangalore', 'click', 0.25, 1],
    ['ads', 'bangalore', 'impression', null, 0],
    ['ads', 'delhi', 'click', 1.5, 1],
    ['ads', 'pune', 'click', 2, null],
  ]);
  const at = async (t: number) => (await db.sql(`SELECT location FROM events WHERE ts = ${t} GROUP BY location ORDER BY location`)).rows.map((x) => x[0]);
  expect(await at(NOW)).toEqual(['bangalore', 'pune']); // pune: no timestamp, so the server clock
  expect(await at(NOW + 1000)).toEqual(['bangalore']);
  expect(await at(NOW + 2000)).toEqual(['delhi']); // written with precision s
  expect((await db.query({ datasource: 'events', filter: { dimension: 'host', eq: 'web-1' }, aggregations: [{ name: 'n', type: 'count' }] })).rows).toEqual([[1]]);
});

it('node-influx sees a write with an unknown tag or a wrong token as an error', async () => {
  const bad = new Influx.InfluxDB({ host: '127.0.0.1', port, database: 'events', username: 'x', password: TOKEN });
  await expect(bad.writePoints([{ measurement: 'ads', tags: { colour: 'red' }, fields: { cost: 1 }, timestamp: new Date(NOW) }], { precision: 'ms' })).rejects.toThrow(/partial write|FIELD_UNKNOWN/);
  const wrong = new Influx.InfluxDB({ host: '127.0.0.1', port, database: 'events', username: 'x', password: 'not-the-token-xxxxxxx' });
  await expect(wrong.writePoints([{ measurement: 'ads', fields: { cost: 1 } }])).rejects.toThrow(/401|UNAUTHORIZED|bearer/i);
});
