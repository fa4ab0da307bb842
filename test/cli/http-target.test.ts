/**
 * The CLI's URL target (cli/target.ts over cli/http-client.ts) against a daemon listening on a real socket: what
 * it sends arrives, answers come back whole, and a refusal keeps the daemon's stable error code.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEFAULT_LIMITS, open, type Tally } from 'tallydb';
import type { FastifyInstance } from 'fastify';
import { build } from '../../src/http/app.js';
import { openTarget } from '../../src/cli/target.js';
import { HttpClient } from '../../src/cli/http-client.js';
import { encodeEvents } from '../../src/cli/target.js';

const NOW = Date.now();
let db: Tally;
let app: FastifyInstance;
let url: string;

beforeAll(async () => {
  db = await open({ memory: true, clock: () => NOW });
  app = build({ engine: () => db, limits: DEFAULT_LIMITS, tokens: { w: ['write', 'read'], r: ['read'] }, clock: () => NOW });
  url = await app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await app.close();
  await db.close();
});

const events = (n: number, from: number): unknown[] =>
  Array.from({ length: n }, (_, i) => ({ ts: NOW - 1000, id: `e${from + i}`, event: i % 2 ? 'click' : 'impression', location: `city${i % 3}` }));

it('a URL target creates, ingests (objects and pre-encoded MessagePack) and queries over a real socket', async () => {
  const t = await openTarget({ url: `${url}/`, token: 'w' });
  await t.ensureDatasource({ name: 'ev', dimensions: ['event', 'location'], dedupKey: 'id' });
  expect((await t.datasource('ev')).dimensions).toEqual(['event', 'location']);
  expect(await t.ingest('ev', events(3000, 0))).toEqual({ accepted: 3000, duplicates: 0, rejected: [] });
  // A body large enough to arrive in many chunks, and a retry of part of it: the answer is read whole.
  expect(await t.ingest('ev', encodeEvents(events(20_000, 2000)))).toEqual({ accepted: 19_000, duplicates: 1000, rejected: [] });
  const r = await t.sql('SELECT event, count(*) FROM ev GROUP BY event ORDER BY event');
  expect(r.rows).toEqual([['click', 11_000], ['impression', 11_000]]);
  await t.close();
});

it("a refusal reaches the caller with the daemon's stable code", async () => {
  const reader = await openTarget({ url, token: 'r' });
  await expect(reader.ingest('ev', events(1, 0))).rejects.toMatchObject({ code: 'FORBIDDEN' });
  await expect(reader.sql('SELEC nonsense')).rejects.toMatchObject({ code: 'SQL_PARSE_ERROR' });
  await reader.close();
  const anonymous = await openTarget({ url });
  await expect(anonymous.sql('SELECT count(*) FROM ev')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
  await anonymous.close();
});

it('the client rejects a URL it cannot use with OPTIONS_INVALID, and a refused connection with its socket error', async () => {
  expect(() => new HttpClient('ftp://127.0.0.1:21')).toThrow(expect.objectContaining({ code: 'OPTIONS_INVALID' }));
  expect(() => new HttpClient('not a url')).toThrow(expect.objectContaining({ code: 'OPTIONS_INVALID' }));
  const closed = new HttpClient('http://127.0.0.1:1');
  await expect(closed.request('GET', '/healthz')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  closed.close();
});
