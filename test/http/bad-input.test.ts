/**
 * Bad input never takes the daemon down and never costs other data: each malformed request is a 4xx with a stable
 * code, a malformed event costs only itself, and afterwards the daemon still answers and holds exactly the valid
 * events.
 */
import { pack } from 'msgpackr';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, open, type Tally } from 'tallydb';
import { build } from '../../src/http/app.js';
import type { FastifyInstance } from 'fastify';

const NOW = Date.parse('2026-11-23T10:00:00Z');
let db: Tally;
let app: FastifyInstance;
let valid = 0;
const good = () => ({ ts: NOW, id: `g${valid++}`, event: 'click', location: 'bangalore' });

beforeAll(async () => {
  db = await open({ memory: true, clock: () => NOW, limits: { maxSqlLength: 4096 } });
  app = build({ engine: () => db, limits: { ...DEFAULT_LIMITS, maxBodyBytes: 1 << 20, maxSqlLength: 4096 } });
  await app.inject({ method: 'PUT', url: '/v1/datasources/events', payload: { dimensions: ['event', 'location'], metrics: [{ name: 'cost', type: 'float' }], dedupKey: 'id', lateness: '1d' } });
});

const post = (url: string, type: string, payload: string | Buffer) => app.inject({ method: 'POST', url, headers: { 'content-type': type }, payload });

describe('malformed requests: 4xx with a stable code', () => {
  const cases: [string, () => ReturnType<typeof post>, number, string][] = [
    ['malformed JSON', () => post('/v1/datasources/events/events', 'application/json', '[{"ts": 1,'), 400, 'BODY_MALFORMED'],
    ['an empty JSON body', () => post('/v1/datasources/events/events', 'application/json', ''), 400, 'BODY_MALFORMED'],
    ['NaN in JSON (not JSON)', () => post('/v1/datasources/events/events', 'application/json', `[{"ts": ${NOW}, "id": "n", "cost": NaN}]`), 400, 'BODY_MALFORMED'],
    ['a JSON object instead of an array', () => post('/v1/datasources/events/events', 'application/json', '{"ts": 1}'), 400, 'BATCH_NOT_ARRAY'],
    ['truncated MessagePack', () => post('/v1/datasources/events/events', 'application/msgpack', pack([good(), good()]).subarray(0, 20)), 400, 'BODY_MALFORMED'],
    ['MessagePack that is not an array', () => post('/v1/datasources/events/events', 'application/msgpack', pack({ a: 1 })), 400, 'BATCH_NOT_ARRAY'],
    ['non-UTF-8 JSON', () => post('/v1/datasources/events/events', 'application/json', Buffer.from([0x5b, 0x22, 0xff, 0xfe, 0x22, 0x5d])), 400, 'BODY_MALFORMED'],
    ['non-UTF-8 NDJSON', () => post('/v1/datasources/events/events', 'application/x-ndjson', Buffer.from([0x7b, 0xc3, 0x28, 0x7d])), 400, 'BODY_MALFORMED'],
    ['non-UTF-8 line protocol', () => post('/write?db=events', 'text/plain', Buffer.from([0x65, 0x76, 0xff, 0x20])), 400, 'BODY_MALFORMED'],
    ['the wrong content type', () => post('/v1/datasources/events/events', 'text/csv', 'ts,id\n1,a'), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['no content type', () => app.inject({ method: 'POST', url: '/v1/datasources/events/events', payload: Buffer.from('[]') }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['a body over the limit', () => post('/v1/datasources/events/events', 'application/json', `[${'1,'.repeat(600_000)}1]`), 413, 'BODY_TOO_LARGE'],
    ['an unknown datasource', () => post('/v1/datasources/nope/events', 'application/json', '[]'), 404, 'DATASOURCE_NOT_FOUND'],
    ['line protocol for an unknown datasource', () => post('/write?db=nope', 'text/plain', 'm f=1'), 404, 'DATASOURCE_NOT_FOUND'],
    ['SQL garbage', () => post('/v1/sql', 'text/plain', 'SELEKT everything FROM *'), 400, 'SQL_PARSE_ERROR'],
    ['an injection-shaped statement', () => post('/v1/sql', 'text/plain', "SELECT count(*) FROM events; DROP TABLE events; --"), 400, 'SQL_UNSUPPORTED'],
    ['SQL over its length limit', () => post('/v1/sql', 'text/plain', `SELECT count(*) FROM events WHERE location = '${'x'.repeat(5000)}'`), 413, 'SQL_TOO_LONG'],
    ['a SQL body without sql', () => post('/v1/sql', 'application/json', '{"query": "x"}'), 400, 'REQUEST_INVALID'],
    ['a query that is not an object', () => post('/v1/query', 'application/json', '[1,2]'), 400, 'QUERY_INVALID'],
    ['a deeply nested filter', () => post('/v1/query', 'application/json', JSON.stringify({ datasource: 'events', aggregations: [], filter: JSON.parse('{"not":'.repeat(200) + '{"dimension":"event","eq":"x"}' + '}'.repeat(200)) })), 400, 'QUERY_TOO_COMPLEX'],
    ['a huge filter', () => post('/v1/query', 'application/json', JSON.stringify({ datasource: 'events', filter: { or: Array.from({ length: 20_000 }, () => ({ dimension: 'event', eq: 'x' })) } })), 400, 'QUERY_TOO_COMPLEX'],
    ['a query on an unknown datasource', () => post('/v1/query', 'application/json', JSON.stringify({ datasource: 'nope' })), 404, 'DATASOURCE_NOT_FOUND'],
  ];
  it.each(cases)('%s', async (_what, send, status, code) => {
    const before = (await db.sql('SELECT count(*) FROM events')).rows[0]![0];
    const r = await send();
    expect(r.statusCode).toBe(status);
    expect(r.json()).toMatchObject({ code, message: expect.any(String) });
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await db.sql('SELECT count(*) FROM events')).rows[0]![0]).toBe(before);
  });
});

describe('a malformed event costs only itself', () => {
  it.each([
    ['NaN and Infinity as MessagePack floats', 'application/msgpack', () => pack([good(), { ...good(), cost: Number.NaN }, { ...good(), cost: Infinity }, good()]), ['METRIC_NOT_FINITE', 'METRIC_NOT_FINITE']],
    ['timestamps out of range', 'application/json', () => JSON.stringify([good(), { ...good(), ts: -1 }, { ...good(), ts: 1e20 }, good()]), ['TIMESTAMP_OUT_OF_RANGE', 'TIMESTAMP_OUT_OF_RANGE']],
    ['broken NDJSON lines', 'application/x-ndjson', () => [JSON.stringify(good()), '{"ts":', '[1,2', JSON.stringify(good())].join('\n'), ['EVENT_MALFORMED', 'EVENT_MALFORMED']],
    ['wrong types and unknown fields', 'application/json', () => JSON.stringify([good(), { ...good(), location: 7 }, { ...good(), hacker: '<script>' }, good()]), ['DIMENSION_NOT_STRING', 'FIELD_UNKNOWN']],
  ])('%s: 207, the bad ones listed by index, the good ones stored', async (_what, type, body, codes) => {
    const before = (await db.sql('SELECT count(*) FROM events')).rows[0]![0] as number;
    const r = await post('/v1/datasources/events/events', type, body());
    expect(r.statusCode).toBe(207);
    expect(r.json().accepted).toBe(2);
    expect(r.json().rejected.map((x: { index: number; code: string }) => [x.index, x.code])).toEqual([[1, codes[0]], [2, codes[1]]]);
    expect((await db.sql('SELECT count(*) FROM events')).rows[0]![0]).toBe(before + 2);
  });

  it('bad lines of line protocol are reported per line; the good lines are stored', async () => {
    const before = (await db.sql('SELECT count(*) FROM events')).rows[0]![0] as number;
    const lines = [`events,event=click id="lp-a" ${NOW}000000`, 'events,event=click', 'events id="unterminated', `events,event=click cost=1e999x,id="x" ${NOW}`, `events,event=click id="lp-b" ${NOW}000000`, 'events,event=click id="lp-c" 99999999999999999999999999'];
    const r = await post('/write?db=events', 'text/plain', lines.join('\n'));
    expect(r.statusCode).toBe(400);
    expect(r.json().rejected.map((x: { index: number; code: string }) => [x.index, x.code])).toEqual([[1, 'LINE_PROTOCOL_INVALID'], [2, 'LINE_PROTOCOL_INVALID'], [3, 'LINE_PROTOCOL_INVALID'], [5, 'LINE_PROTOCOL_INVALID']]);
    expect((await db.sql('SELECT count(*) FROM events')).rows[0]![0]).toBe(before + 2);
  });
});
