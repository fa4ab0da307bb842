/**
 * HTTP routes through inject: every endpoint and content type answers as docs/http.md says; with tokens, each data
 * endpoint needs its scope; every error is `{ code, message }` with its stable status.
 */
import { pack } from 'msgpackr';
import { beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, open, type Tally } from 'tallydb';
import { build } from '../../src/http/app.js';
import type { FastifyInstance } from 'fastify';
import { MemFs } from '../support/memfs.js';

const NOW = Date.parse('2026-11-23T10:00:00Z');
const SPEC = { dimensions: ['event', 'image_id', 'location'], metrics: [{ name: 'cost', type: 'float' }], dedupKey: 'id', lateness: '1d' };
const W = 'write-token-0123456789';
const R = 'read-token-0123456789';
const RW = 'both-token-0123456789';
let db: Tally;
let app: FastifyInstance;

async function setup(tokens?: Record<string, ('read' | 'write')[]>, limits: Partial<typeof DEFAULT_LIMITS> = {}): Promise<void> {
  db = await open({ memory: true, clock: () => NOW, limits });
  app = build({ engine: () => db, limits: { ...DEFAULT_LIMITS, ...limits }, ...(tokens ? { tokens } : {}), clock: () => NOW });
}
const ev = (i: number, extra: object = {}) => ({ ts: NOW + i, id: `e${i}`, event: i % 2 ? 'click' : 'impression', image_id: `img${i % 3}`, location: 'bangalore', ...extra });
const sqlCount = async (): Promise<number> => {
  const r = await app.inject({ method: 'POST', url: '/v1/sql', headers: { authorization: `Bearer ${RW}` }, payload: { sql: 'SELECT count(*) FROM events' } });
  return r.json().rows[0][0];
};

describe('without tokens', () => {
  beforeEach(async () => {
    await setup();
    const r = await app.inject({ method: 'PUT', url: '/v1/datasources/events', payload: SPEC });
    expect(r.statusCode).toBe(201);
  });

  it('health and readiness are answered', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await app.inject({ method: 'GET', url: '/readyz' })).json()).toEqual({ status: 'ready' });
  });

  it('PUT creates (201), repeats (200), conflicts (409), and refuses a mismatched name', async () => {
    expect((await app.inject({ method: 'PUT', url: '/v1/datasources/events', payload: SPEC })).statusCode).toBe(200);
    const c = await app.inject({ method: 'PUT', url: '/v1/datasources/events', payload: { ...SPEC, dimensions: ['x'] } });
    expect([c.statusCode, c.json().code]).toEqual([409, 'DATASOURCE_EXISTS']);
    const m = await app.inject({ method: 'PUT', url: '/v1/datasources/events', payload: { ...SPEC, name: 'other' } });
    expect([m.statusCode, m.json().code]).toEqual([400, 'DATASOURCE_INVALID']);
    const bad = await app.inject({ method: 'PUT', url: '/v1/datasources/x', payload: { dimensions: 'nope' } });
    expect([bad.statusCode, bad.json().code]).toEqual([400, 'DATASOURCE_INVALID']);
  });

  it('GET lists datasources and shows one with its stats', async () => {
    await app.inject({ method: 'POST', url: '/v1/datasources/events/events', payload: [ev(1), ev(2)] });
    expect((await app.inject({ method: 'GET', url: '/v1/datasources' })).json().datasources.map((d: { name: string }) => d.name)).toEqual(['events']);
    const one = (await app.inject({ method: 'GET', url: '/v1/datasources/events' })).json();
    expect(one).toMatchObject({ name: 'events', dedupKey: 'id', stats: { rows: 2, headRows: 2, segments: 0, dedupKeys: 2 } });
    expect((await app.inject({ method: 'GET', url: '/v1/datasources/nope' })).statusCode).toBe(404);
  });

  it('ingests JSON arrays, NDJSON and MessagePack alike; 200 when all accepted, 207 with the rejected list otherwise', async () => {
    const json = await app.inject({ method: 'POST', url: '/v1/datasources/events/events', payload: [ev(1), ev(2)] });
    expect([json.statusCode, json.json()]).toEqual([200, { accepted: 2, duplicates: 0, rejected: [] }]);
    const nd = await app.inject({ method: 'POST', url: '/v1/datasources/events/events', headers: { 'content-type': 'application/x-ndjson' }, payload: `${JSON.stringify(ev(3))}\n\n${JSON.stringify(ev(1))}\n` });
    expect([nd.statusCode, nd.json()]).toEqual([200, { accepted: 1, duplicates: 1, rejected: [] }]);
    const mp = await app.inject({ method: 'POST', url: '/v1/datasources/events/events', headers: { 'content-type': 'application/msgpack' }, payload: pack([ev(4), { ...ev(5), cost: 'x' }]) });
    expect(mp.statusCode).toBe(207);
    expect(mp.json()).toMatchObject({ accepted: 1, rejected: [{ index: 1, code: 'METRIC_NOT_NUMBER' }] });
    expect(await sqlCount()).toBe(4);
  });

  it('queries as JSON and SQL (JSON body or text/plain), in json, csv and ndjson formats', async () => {
    await app.inject({ method: 'POST', url: '/v1/datasources/events/events', payload: [ev(1), ev(2), ev(3, { location: 'a,"b"' })] });
    const q = await app.inject({ method: 'POST', url: '/v1/query', payload: { datasource: 'events', groupBy: ['event'], aggregations: [{ name: 'n', type: 'count' }] } });
    expect(q.json()).toMatchObject({ columns: ['event', 'n'], rows: [['click', 2], ['impression', 1]], stats: { readers: 1 } });
    expect(typeof q.json().stats.elapsedMs).toBe('number');
    const s = await app.inject({ method: 'POST', url: '/v1/sql', headers: { 'content-type': 'text/plain' }, payload: 'SELECT location, count(*) AS n FROM events GROUP BY location ORDER BY location' });
    expect(s.json().rows).toEqual([['a,"b"', 1], ['bangalore', 2]]);
    const csv = await app.inject({ method: 'POST', url: '/v1/sql?format=csv', payload: { sql: 'SELECT location, count(*) AS n FROM events GROUP BY location ORDER BY location' } });
    expect(csv.headers['content-type']).toMatch(/text\/csv/);
    expect(csv.body).toBe('location,n\r\n"a,""b""",1\r\nbangalore,2\r\n');
    const nd = await app.inject({ method: 'POST', url: '/v1/query?format=ndjson', payload: { datasource: 'events', groupBy: ['event'], aggregations: [{ name: 'n', type: 'count' }] } });
    expect(nd.body.trim().split('\n').map((l) => JSON.parse(l))).toEqual([{ event: 'click', n: 2 }, { event: 'impression', n: 1 }]);
    expect((await app.inject({ method: 'POST', url: '/v1/sql?format=xml', payload: { sql: 'SELECT count(*) FROM events' } })).json().code).toBe('REQUEST_INVALID');
  });

  it('writes InfluxDB line protocol: 204 when all stored, 400 with per-line detail otherwise, valid lines kept', async () => {
    const body = [
      `events,event=click,image_id=img0,location=delhi cost=0.5,id="lp-1" ${NOW}`,
      `events,event=impression,image_id=img1 id="lp-2" ${(NOW + 1) * 1000}`,
    ];
    const ok = await app.inject({ method: 'POST', url: '/write?db=events&precision=ms', headers: { 'content-type': 'text/plain' }, payload: body[0] });
    expect(ok.statusCode).toBe(204);
    const us = await app.inject({ method: 'POST', url: '/write?db=events&precision=us', headers: { 'content-type': 'text/plain' }, payload: body[1] });
    expect(us.statusCode).toBe(204);
    const mixed = await app.inject({ method: 'POST', url: '/write?db=events&precision=ms', headers: { 'content-type': 'text/plain' }, payload: `# comment\nevents,event=click id="lp-3" ${NOW}\nevents,event=click\nevents,nope=1 id="lp-4" ${NOW}\n` });
    expect(mixed.statusCode).toBe(400);
    expect(mixed.json()).toMatchObject({ accepted: 1, rejected: [{ index: 1, code: 'LINE_PROTOCOL_INVALID' }, { index: 2, code: 'FIELD_UNKNOWN' }] });
    expect(mixed.json().error).toMatch(/partial write/);
    const r = await app.inject({ method: 'POST', url: '/v1/sql', payload: { sql: "SELECT sum(cost), count(*) FROM events WHERE event = 'click'" } });
    expect(r.json().rows).toEqual([[0.5, 2]]);
    const t = await app.inject({ method: 'POST', url: '/v1/sql', payload: { sql: "SELECT count(*) FROM events WHERE image_id = 'img1' AND ts = " + (NOW + 1) } });
    expect(t.json().rows).toEqual([[1]]);
    expect((await app.inject({ method: 'POST', url: '/write?precision=ms', headers: { 'content-type': 'text/plain' }, payload: body[0] })).json().code).toBe('REQUEST_INVALID');
    expect((await app.inject({ method: 'POST', url: '/write?db=events&precision=fortnight', headers: { 'content-type': 'text/plain' }, payload: body[0] })).json().code).toBe('REQUEST_INVALID');
  });

  it('exposes Prometheus metrics: ingest outcomes, rejections by code, query latency, head and storage gauges', async () => {
    await app.inject({ method: 'POST', url: '/v1/datasources/events/events', payload: [ev(1), ev(1), { ts: 'x', id: 'z' }] });
    await app.inject({ method: 'POST', url: '/v1/sql', payload: { sql: 'SELECT count(*) FROM events' } });
    const m = await app.inject({ method: 'GET', url: '/metrics' });
    expect(m.headers['content-type']).toMatch(/text\/plain/);
    expect(m.body).toContain('tallydb_ingest_events_total{datasource="events",outcome="accepted"} 1');
    expect(m.body).toContain('tallydb_ingest_events_total{datasource="events",outcome="duplicate"} 1');
    expect(m.body).toContain('tallydb_ingest_rejections_total{code="TIMESTAMP_INVALID"} 1');
    expect(m.body).toContain('tallydb_query_seconds_count{kind="sql"} 1');
    expect(m.body).toContain('tallydb_head_rows{datasource="events"} 1');
    expect(m.body).toMatch(/tallydb_wal_fsync_seconds_count 0/);
    expect(m.body).toContain('tallydb_seal_backlog_minutes{datasource="events"} 0');
  });

  it('unknown routes are NOT_FOUND and unknown media types UNSUPPORTED_MEDIA_TYPE, as JSON', async () => {
    const nf = await app.inject({ method: 'GET', url: '/v2/whatever' });
    expect([nf.statusCode, nf.json().code]).toEqual([404, 'NOT_FOUND']);
    const mt = await app.inject({ method: 'POST', url: '/v1/datasources/events/events', headers: { 'content-type': 'application/xml' }, payload: '<a/>' });
    expect([mt.statusCode, mt.json().code]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
  });
});

describe('with tokens', () => {
  beforeEach(async () => {
    await setup({ [W]: ['write'], [R]: ['read'], [RW]: ['read', 'write'] });
    await app.inject({ method: 'PUT', url: '/v1/datasources/events', headers: { authorization: `Bearer ${W}` }, payload: SPEC });
  });

  const endpoints: [string, string, string, object | string | undefined][] = [
    ['write', 'PUT', '/v1/datasources/events', SPEC],
    ['write', 'POST', '/v1/datasources/events/events', [ev(1)]],
    ['write', 'POST', '/write?db=events&precision=ms', `events,event=x id="w" ${NOW}`],
    ['read', 'GET', '/v1/datasources', undefined],
    ['read', 'GET', '/v1/datasources/events', undefined],
    ['read', 'POST', '/v1/query', { datasource: 'events', aggregations: [{ name: 'n', type: 'count' }] }],
    ['read', 'POST', '/v1/sql', { sql: 'SELECT count(*) FROM events' }],
    ['read', 'GET', '/metrics', undefined],
  ];
  it.each(endpoints)('%s scope: %s %s is 401 without a token, 401 with a wrong one, 403 with the other scope, 2xx with its own', async (scope, method, url, payload) => {
    const headers = (token?: string) => ({ ...(token ? { authorization: `Bearer ${token}` } : {}), ...(typeof payload === 'string' ? { 'content-type': 'text/plain' } : {}) });
    const call = (token?: string) => app.inject({ method: method as 'GET', url, headers: headers(token), ...(payload !== undefined ? { payload: payload as string } : {}) });
    const none = await call();
    expect([none.statusCode, none.json().code]).toEqual([401, 'UNAUTHORIZED']);
    expect(none.headers['www-authenticate']).toMatch(/Bearer/);
    expect((await call('not-a-token-at-all-xx')).json().code).toBe('UNAUTHORIZED');
    const other = await call(scope === 'write' ? R : W);
    expect([other.statusCode, other.json().code]).toEqual([403, 'FORBIDDEN']);
    expect((await call(scope === 'write' ? W : R)).statusCode).toBeLessThan(300);
    expect((await call(RW)).statusCode).toBeLessThan(300);
  });

  it('health and readiness stay open; line protocol also takes the token as ?p= (InfluxDB 1.x clients)', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    const r = await app.inject({ method: 'POST', url: `/write?db=events&precision=ms&u=x&p=${W}`, headers: { 'content-type': 'text/plain' }, payload: `events,event=x id="p" ${NOW}` });
    expect(r.statusCode).toBe(204);
  });
});

describe('limits and protection', () => {
  it('a body over limits.maxBodyBytes is 413 BODY_TOO_LARGE; a batch over maxBatchEvents is 413 BATCH_TOO_LARGE', async () => {
    await setup(undefined, { maxBodyBytes: 2000, maxBatchEvents: 5 });
    await app.inject({ method: 'PUT', url: '/v1/datasources/events', payload: SPEC });
    const big = await app.inject({ method: 'POST', url: '/v1/datasources/events/events', payload: Array.from({ length: 100 }, (_, i) => ev(i)) });
    expect([big.statusCode, big.json().code]).toEqual([413, 'BODY_TOO_LARGE']);
    const many = await app.inject({ method: 'POST', url: '/v1/datasources/events/events', payload: Array.from({ length: 6 }, (_, i) => ({ ts: NOW, id: `${i}` })) });
    expect([many.statusCode, many.json().code]).toEqual([413, 'BATCH_TOO_LARGE']);
  });

  it('the daemon answers NOT_READY with Retry-After while the engine recovers', async () => {
    const booting = build({ engine: () => null, limits: DEFAULT_LIMITS });
    const r = await booting.inject({ method: 'POST', url: '/v1/sql', payload: { sql: 'SELECT 1' } });
    expect([r.statusCode, r.json().code, r.headers['retry-after']]).toEqual([503, 'NOT_READY', '1']);
    expect((await booting.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
    expect((await booting.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  it('ingest over the WAL backlog budget is refused with 503 INGEST_OVERLOADED and Retry-After, nothing accepted', async () => {
    const fs = new MemFs();
    fs.syncDelayMs = 20; // a slow disk: batches queue behind each fsync
    db = await open({ dir: '/db', fileSystem: fs, clock: () => NOW, limits: { maxWalBacklogBytes: 1 } });
    app = build({ engine: () => db, limits: { ...DEFAULT_LIMITS, maxWalBacklogBytes: 1 } });
    await db.createDatasource({ name: 'events', ...SPEC } as never);
    const replies = await Promise.all(Array.from({ length: 6 }, (_, b) => app.inject({ method: 'POST', url: '/v1/datasources/events/events', payload: [ev(b * 10), ev(b * 10 + 1)] })));
    const refused = replies.filter((r) => r.statusCode === 503);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) expect([r.json().code, r.headers['retry-after']]).toEqual(['INGEST_OVERLOADED', '1']);
    const accepted = replies.filter((r) => r.statusCode === 200).length;
    expect(accepted + refused.length).toBe(6);
    expect((await db.sql('SELECT count(*) FROM events')).rows).toEqual([[accepted * 2]]);
    // A refused batch left nothing behind, its dedup keys included: sent again one at a time, each is accepted.
    for (const [b, r] of replies.entries()) {
      if (r.statusCode !== 503) continue;
      const again = await app.inject({ method: 'POST', url: '/v1/datasources/events/events', payload: [ev(b * 10), ev(b * 10 + 1)] });
      expect([again.statusCode, again.json().accepted]).toEqual([200, 2]);
    }
    expect((await db.sql('SELECT count(*) FROM events')).rows).toEqual([[12]]);
    await db.close();
  });

  /** ~2,700 minutes of data, so a per-minute group-by visits ~2,700 readers. */
  const manyMinutes = async (target: Tally): Promise<void> => {
    for (let b = 0; b < 40; b++) {
      const r = await target.ingest('events', Array.from({ length: 1000 }, (_, i) => ({ ts: NOW - 2 * 86_400_000 + (b * 1000 + i) * 4000, id: `x${b}-${i}`, image_id: `img${i}` })));
      expect(r.accepted).toBe(1000);
    }
  };

  it('a runaway query is cancelled with 504 QUERY_TIMEOUT, and ingest goes on while a long query runs', async () => {
    await setup(undefined, { queryTimeoutMs: 5 });
    await app.inject({ method: 'PUT', url: '/v1/datasources/events', payload: SPEC });
    await manyMinutes(db);
    const slow = { datasource: 'events', granularity: 'minute', groupBy: ['image_id'], aggregations: [{ name: 'u', type: 'distinctCount', dimension: 'location' }] };
    const t = await app.inject({ method: 'POST', url: '/v1/query', payload: slow });
    expect([t.statusCode, t.json().code]).toEqual([504, 'QUERY_TIMEOUT']);

    const patient = await open({ memory: true, clock: () => NOW, limits: { queryTimeoutMs: 60_000 } });
    await patient.createDatasource({ name: 'events', ...SPEC } as never);
    await manyMinutes(patient);
    let queryDone = false;
    const q = patient.query(slow as never).then(() => (queryDone = true));
    const ingested = await patient.ingest('events', [ev(1_000_000)]);
    expect(ingested.accepted).toBe(1);
    expect(queryDone).toBe(false); // the ingest was served while the query was still running
    await q;
  });

  it('more concurrent queries than limits.maxConcurrentQueries get 429 TOO_MANY_QUERIES with Retry-After', async () => {
    await setup(undefined, { maxConcurrentQueries: 1 });
    await app.inject({ method: 'PUT', url: '/v1/datasources/events', payload: SPEC });
    await manyMinutes(db);
    const slow = { datasource: 'events', granularity: 'minute', groupBy: ['image_id'], aggregations: [{ name: 'n', type: 'count' }] };
    const [a, b] = await Promise.all([app.inject({ method: 'POST', url: '/v1/query', payload: slow }), app.inject({ method: 'POST', url: '/v1/query', payload: slow })]);
    const codes = [a, b].map((r) => r.statusCode).sort();
    expect(codes).toEqual([200, 429]);
    const limited = a.statusCode === 429 ? a : b;
    expect([limited.json().code, limited.headers['retry-after']]).toEqual(['TOO_MANY_QUERIES', '1']);
  });
});

describe('compaction status', () => {
  it('GET /v1/datasources/:name and /metrics show compaction backlog, merges, last merge, bytes reclaimed and the rollup ratio', async () => {
    const T = Date.parse('2026-11-23T00:00:00Z');
    db = await open({ dir: '/db', fileSystem: new MemFs(), clock: () => NOW, compaction: { auto: false } });
    app = build({ engine: () => db, limits: DEFAULT_LIMITS, clock: () => NOW });
    const spec = { dimensions: ['event', 'location'], lateness: '10m', rollup: { granularity: 'hour' } };
    expect((await app.inject({ method: 'PUT', url: '/v1/datasources/ads', payload: spec })).statusCode).toBe(201);
    // 30 minutes of hour 0, 4 identical events a minute, then one in hour 2: hour 0 is settled.
    const events = Array.from({ length: 120 }, (_, i) => ({ ts: T + Math.floor(i / 4) * 60_000 + i, event: 'click', location: 'blr' }));
    events.push({ ts: T + 2 * 3_600_000, event: 'click', location: 'blr' });
    expect((await app.inject({ method: 'POST', url: '/v1/datasources/ads/events', payload: events })).json().accepted).toBe(121);
    await db.flush();
    const before = (await app.inject({ method: 'GET', url: '/v1/datasources/ads' })).json();
    expect(before.rollup).toEqual({ granularity: 'hour' });
    expect(before.stats).toMatchObject({ segments: 31, compaction: { backlog: 1, merges: 0, lastMerge: null, rollupRatio: null } });
    await db.compact();
    const after = (await app.inject({ method: 'GET', url: '/v1/datasources/ads' })).json();
    expect(after.stats).toMatchObject({ segments: 2, compaction: { backlog: 0, merges: 1, rollupRowsIn: 120, rollupRowsOut: 1, rollupRatio: 120, lastMerge: { level: 'hour', inputs: 30, rowsIn: 120, rowsOut: 1 } } });
    expect(after.stats.compaction.bytesReclaimed).toBeGreaterThan(0);
    const m = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(m).toContain('tallydb_compaction_backlog{datasource="ads"} 0');
    expect(m).toContain('tallydb_compaction_merges{datasource="ads"} 1');
    expect(m).toMatch(/tallydb_compaction_reclaimed_bytes\{datasource="ads"\} [1-9]/);
    expect(m).toMatch(/tallydb_compaction_last_merge_timestamp_seconds\{datasource="ads"\} [1-9]/);
    const q = await app.inject({ method: 'POST', url: '/v1/sql', payload: { sql: 'SELECT count(*) AS n FROM ads' } });
    expect(q.json().rows).toEqual([[121]]);
    await db.close();
  });
});
