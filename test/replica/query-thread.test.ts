/**
 * The daemon's query thread (replica/): its copy answers every query as the engine does after every kind of change
 * — appends to the head, seals, merges, late rows for sealed minutes, retention — and a query sent after an
 * acknowledged ingest sees it (read-your-writes across the two listeners). Its listener serves only reads, with the
 * same auth, and its own query metrics. Segment files the copy read are deleted once both it and the engine are done
 * with them — also when the thread ends unexpectedly.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { open, type Tally } from 'tallydb';
import { DEFAULT_LIMITS } from '../../src/limits.js';
import { startQueryThread, type QueryThread } from '../../src/replica/query-thread.js';

const T0 = Date.parse('2026-11-23T10:00:00Z');
const M = 60_000;
const spec = { name: 'ev', dimensions: ['event', 'image_id', 'location'], metrics: [{ name: 'cost', type: 'float' as const }], lateness: '10m', retention: '3h' };
const QUESTIONS = [
  `SELECT count(*) FROM ev WHERE event = 'click' AND image_id = 'img0'`,
  `SELECT count(*), sum(cost) FROM ev`,
  `SELECT date_trunc('minute', ts) AS m, count(*), sum(cost) FROM ev WHERE event = 'click' GROUP BY m ORDER BY m`,
  `SELECT image_id, countIf(event = 'click') AS c, countIf(event = 'impression') AS i FROM ev GROUP BY image_id ORDER BY c DESC, image_id LIMIT 5`,
  `SELECT location, count(*) FROM ev WHERE ts >= ${T0 + 30 * M} GROUP BY location ORDER BY location`,
];

let seq = 0;
function events(minute: number, n: number): unknown[] {
  return Array.from({ length: n }, (_, i) => {
    const k = seq++;
    return { ts: T0 + minute * M + (k % 59_000), event: k % 4 ? 'impression' : 'click', image_id: `img${k % 7}`, location: ['a', 'b', 'c'][k % 3], cost: (k % 9) / 8 };
  });
}

const dirs: string[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function setup(tokens: Record<string, ('read' | 'write')[]> = {}, feedEvents = true): Promise<{ db: Tally; qt: QueryThread; dir: string; ask: (sql: string, token?: string) => Promise<{ status: number; body: { rows?: unknown[][]; code?: string } }> }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tallydb-replica-'));
  dirs.push(dir);
  let now = T0 + 2 * 3_600_000;
  const db = await open({ dir, clock: () => now, compaction: { auto: false } });
  cleanups.push(() => db.close());
  (db as unknown as { setNow: (t: number) => void }).setNow = (t) => (now = t);
  await db.createDatasource(spec);
  const qt = await startQueryThread(db, { host: '127.0.0.1', port: 0, limits: DEFAULT_LIMITS, tokens, cacheBytes: 64 << 20, resultCache: true, logLevel: 'silent', feedEvents });
  cleanups.push(() => qt.stop());
  const ask = async (sql: string, token?: string) => {
    const res = await fetch(`${qt.url}/v1/sql`, { method: 'POST', body: sql, headers: { 'content-type': 'text/plain', ...(token ? { authorization: `Bearer ${token}` } : {}) } });
    return { status: res.status, body: (await res.json()) as { rows?: unknown[][]; code?: string } };
  };
  return { db, qt, dir, ask };
}

async function sameAnswers(db: Tally, ask: (sql: string) => Promise<{ status: number; body: { rows?: unknown[][] } }>): Promise<void> {
  for (const q of QUESTIONS) {
    const want = (await db.sql(q)).rows;
    const got = await ask(q);
    expect(got.status, q).toBe(200);
    expect(got.body.rows, q).toEqual(want);
  }
}

describe('the query thread', () => {
  it('answers as the engine does after appends, seals, merges, late rows for sealed minutes and retention', async () => {
    const { db, ask, dir } = await setup();
    for (let m = 0; m < 20; m++) await db.ingest('ev', events(m, 200));
    await sameAnswers(db, ask); // all in the head
    expect((await ask(QUESTIONS[1]!)).body.rows![0]![0]).toBe(4000);
    await db.ingest('ev', events(90, 10)); // the watermark moves on: minutes 0..79 settle
    await db.flush();
    expect(db.stats('ev').storage!.segments).toBeGreaterThan(20);
    await sameAnswers(db, ask); // in minute segments
    await db.ingest('ev', events(85, 50)); // late but within lateness, into new head buckets of sealed minutes' hour
    await sameAnswers(db, ask);
    await db.compact(); // minutes merged into an hour segment
    await sameAnswers(db, ask);
    // The inputs' files go once the copy has let go of them too (it answers a query first, then releases).
    const segDir = path.join(dir, 'segments', 'ev');
    for (let i = 0; i < 100 && readdirSync(segDir).length > db.stats('ev').storage!.segments; i++) await new Promise((r) => setTimeout(r, 20));
    expect(readdirSync(segDir).length).toBe(db.stats('ev').storage!.segments);
    // Retention: three hours on, the first hour's segment is dropped.
    (db as unknown as { setNow: (t: number) => void }).setNow(T0 + 5 * 3_600_000);
    await db.ingest('ev', events(4 * 60, 10));
    await db.compact();
    expect(db.stats('ev').storage!.compaction.retentionDroppedSegments).toBeGreaterThan(0);
    await sameAnswers(db, ask);
  });

  it('sees every acknowledged ingest in the next query (read-your-writes across the listeners)', async () => {
    const { db, ask } = await setup();
    let total = 0;
    for (let i = 0; i < 60; i++) {
      const n = 1 + (i % 5);
      const r = await db.ingest('ev', events(i % 30, n));
      total += r.accepted;
      expect((await ask(QUESTIONS[1]!)).body.rows![0]![0]).toBe(total);
      if (i === 30) await db.flush();
    }
  });

  it('applies what the engine posted before it answers, also when none of it was dispatched yet (the drain)', async () => {
    // No 'message' events in the thread: only the drain before each query applies the feed. Without it the copy
    // would stay at its snapshot (empty) and every count below would be 0.
    const { db, ask } = await setup({}, false);
    let total = 0;
    for (let i = 0; i < 12; i++) {
      total += (await db.ingest('ev', events(i, 3 + i))).accepted;
      if (i === 6) await db.flush();
      expect((await ask(QUESTIONS[1]!)).body.rows![0]![0]).toBe(total);
    }
    await sameAnswers(db, ask);
  });

  it('serves reads only, with the same bearer-token scopes', async () => {
    const { qt, ask } = await setup({ 'reader-secret-0000001': ['read'], 'writer-secret-0000001': ['write'] });
    expect((await ask(QUESTIONS[0]!)).status).toBe(401);
    expect((await ask(QUESTIONS[0]!, 'writer-secret-0000001')).body.code).toBe('FORBIDDEN');
    expect((await ask(QUESTIONS[0]!, 'reader-secret-0000001')).status).toBe(200);
    const post = await fetch(`${qt.url}/v1/datasources/ev/events`, { method: 'POST', body: '[]', headers: { 'content-type': 'application/json', authorization: 'Bearer writer-secret-0000001' } });
    expect(post.status).toBe(404);
    expect(((await post.json()) as { code: string }).code).toBe('NOT_FOUND');
    const list = await fetch(`${qt.url}/v1/datasources`, { headers: { authorization: 'Bearer reader-secret-0000001' } });
    expect(((await list.json()) as { datasources: { name: string }[] }).datasources.map((d) => d.name)).toEqual(['ev']);
    expect((await ask('SELECT count(*) FROM nope', 'reader-secret-0000001')).body.code).toBe('DATASOURCE_NOT_FOUND');
    // Its /metrics counts the queries it answered.
    const metrics = await (await fetch(`${qt.url}/metrics`, { headers: { authorization: 'Bearer reader-secret-0000001' } })).text();
    expect(metrics).toMatch(/tallydb_query_seconds_count\{kind="sql"\} [1-9]/);
  });
});

describe('a query thread that ends unexpectedly', () => {
  it('lets go of the segments held for it, so retired files are still deleted, and the engine keeps answering', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tallydb-replica-'));
    dirs.push(dir);
    const db = await open({ dir, clock: () => T0 + 2 * 3_600_000, compaction: { auto: false } });
    cleanups.push(() => db.close());
    await db.createDatasource(spec);
    const failures: string[] = [];
    const qt = await startQueryThread(db, { host: '127.0.0.1', port: 0, limits: DEFAULT_LIMITS, tokens: {}, cacheBytes: 64 << 20, resultCache: true, logLevel: 'silent', onFailure: (m) => failures.push(m) });
    for (let m = 0; m < 12; m++) await db.ingest('ev', events(m, 100));
    await db.ingest('ev', events(90, 10));
    await db.flush();
    const res = await fetch(`${qt.url}/v1/sql`, { method: 'POST', body: QUESTIONS[1]!, headers: { 'content-type': 'text/plain' } });
    expect(res.status).toBe(200);
    await qt.kill();
    expect(failures.some((f) => /exited/.test(f))).toBe(true);
    // Merged now, with no thread to release the inputs it was told of: the feed let go of them when it ended.
    await db.compact();
    const segDir = path.join(dir, 'segments', 'ev');
    for (let i = 0; i < 100 && readdirSync(segDir).length > db.stats('ev').storage!.segments; i++) await new Promise((r) => setTimeout(r, 20));
    expect(readdirSync(segDir).length).toBe(db.stats('ev').storage!.segments);
    expect((await db.sql(QUESTIONS[1]!)).rows[0]![0]).toBe(1210);
    await db.ingest('ev', events(91, 5)); // the feed, closed, takes no more
    expect((await db.sql(QUESTIONS[1]!)).rows[0]![0]).toBe(1215);
    // Nor does it hold what is sealed after it closed: minutes of the second hour, sealed and then merged away.
    for (let m = 100; m < 110; m++) await db.ingest('ev', events(m, 10));
    await db.ingest('ev', events(200, 10)); // settles the second hour
    await db.flush();
    const before = db.stats('ev').storage!.segments;
    await db.compact();
    expect(db.stats('ev').storage!.segments).toBeLessThan(before);
    for (let i = 0; i < 100 && readdirSync(segDir).length > db.stats('ev').storage!.segments; i++) await new Promise((r) => setTimeout(r, 20));
    expect(readdirSync(segDir).length).toBe(db.stats('ev').storage!.segments);
  });
});
