/**
 * bench/suite.ts — tallydb against DuckDB (@duckdb/node-api) in one process, on the same generated events (issue 6).
 *
 * The deterministic generator (src/cli/generate.ts: ~100k images with zipf skew, 50 locations, 3 genders,
 * 3 devices, 5% clicks with a cost, unique ids, spread evenly over 24 h) feeds both engines the same JS objects,
 * made `--chunk` events at a time before each engine's ingest clock runs:
 * tallydb embedded and durable (fsync always, group commit, 4 writers of 10k-event batches), DuckDB through its
 * appender into a database file. Then the same six questions are asked of both, warmed up (at least `--warmup`
 * unmeasured runs, then more up to `--warmup-max` runs or `--warmup-ms` of warm-up, the same rule for both) and
 * then `--runs` measured times each; the table shows medians and the ratio DuckDB / tallydb (how many times faster
 * tallydb is). Every answer is compared between the two engines and the run fails loudly on any difference (after
 * printing the table).
 * tallydb loads and answers first, alone in the process, so the peak RSS reported after its phase is its own;
 * DuckDB then loads and answers (`--events 100000000` is the scale run; DuckDB then gets a 2 GB memory limit).
 *
 * Ingest is then measured `--loads` times for each engine in all (the first load being the one the questions ran
 * on), alternating tallydb and DuckDB on fresh stores, and the table adds the medians: the machine's speed drifts
 * over minutes, and one load of each, one after the other, can catch different phases of it (docs/benchmarks.md,
 * "Eleventh session": the ratio of single loads ranged 1.86–3.29× over eight runs of nearly the same code).
 *
 *   npm run bench -- [--events 10000000] [--runs 31] [--warmup 3] [--warmup-max 300] [--warmup-ms 2000] [--chunk 500000]
 *                    [--loads 3 (1 from 20M events)]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import * as path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { open, type Query, type Tally } from '../src/index.js';
import { arg, median, ThreadClock } from './util.js';
import { nativeStatus } from '../src/native/index.js';
import { generate, AD_DATASOURCE, type AdEvent } from './gen.js';

const EVENTS = arg('events', 10_000_000);
const RUNS = arg('runs', 31);
const WARMUP = arg('warmup', 3);
/**
 * Then more unmeasured runs, until WARMUP_MAX runs or WARMUP_MS of warm-up in all, whichever comes first — the same
 * rule for both engines. A question's code in tallydb reaches V8's optimizing tier only after a few hundred calls
 * (the top-10 over 5 minutes at 10M: ~0.6 ms after 3 calls, ~0.17 ms after 300); a daemon answering dashboards
 * runs there. DuckDB's answers do not change with warm-up beyond the first few (its plans are built per query).
 */
const WARMUP_MAX = arg('warmup-max', 300);
const WARMUP_MS = arg('warmup-ms', 2000);
const DAY = 86_400_000;
const END = Date.parse('2026-11-23T00:00:00Z');
const GEN = { count: EVENTS, end: END, spanMs: DAY };
/** Events generated at a time, before either engine takes them in (see `chunks`). */
const CHUNK = arg('chunk', 500_000);
/** Ingest loads of each engine in all, alternating (see the header); at the 100M scale each pair takes ~6 minutes. */
const LOADS = arg('loads', EVENTS > 20_000_000 ? 1 : 3);


/**
 * The events in chunks of CHUNK, each generated before its ingest starts: both engines' ingest clocks run only
 * while they take in a chunk of ready JS objects (the generator's cost, the same for both, is reported beside them).
 * Generation is synchronous, so nothing of either engine's main-thread work runs while a chunk is made.
 */
function* chunks(): Generator<{ events: AdEvent[]; genMs: number }> {
  const it = generate(GEN);
  for (;;) {
    const t = performance.now();
    const events: AdEvent[] = [];
    for (let r = it.next(); !r.done; r = it.next()) {
      events.push(r.value);
      if (events.length === CHUNK) break;
    }
    if (events.length === 0) return;
    yield { events, genMs: performance.now() - t };
    if (events.length < CHUNK) return;
  }
}

interface Load {
  /** Events per second of ingest alone, and with the generation of the events added in. */
  rate: number;
  rateWithGeneration: number;
}

const rates = (ms: number, genMs: number): Load => ({ rate: (EVENTS / ms) * 1000, rateWithGeneration: (EVENTS / (ms + genMs)) * 1000 });

/** `label` tells the extra loads' CPU lines apart from the first's (see moreLoads). */
async function loadTally(dir: string, label = ''): Promise<{ db: Tally } & Load> {
  // The result cache off: each question is timed as computed, as DuckDB computes it (it keeps no results).
  const db = await open({ dir, fsync: 'always', clock: () => END, resultCache: false });
  await db.createDatasource({ ...AD_DATASOURCE, lateness: '1h', dedupWindow: '10m' });
  let overloaded = 0;
  let ms = 0;
  let genMs = 0;
  const clock = ThreadClock.available() ? new ThreadClock() : null;
  for (const chunk of chunks()) {
    genMs += chunk.genMs;
    let next = 0;
    clock?.start();
    const t = performance.now();
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (next < chunk.events.length) {
        const batch = chunk.events.slice(next, (next += 10_000));
        // Backpressure (INGEST_OVERLOADED: the head is over its memory budget while sealing catches up) refuses the
        // whole batch; a client waits and sends it again, as this one does.
        for (;;) {
          try {
            await db.ingest('events', batch);
            break;
          } catch (e) {
            if ((e as { code?: string }).code !== 'INGEST_OVERLOADED') throw e;
            overloaded++;
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        }
      }
    }));
    ms += performance.now() - t;
    clock?.stop();
  }
  if (overloaded > 0) console.log(`tallydb: ${overloaded} batches refused with INGEST_OVERLOADED and sent again`);
  // Every thread's CPU while the ingest clock ran: how full the machine was (docs/benchmarks.md, "Ninth session").
  if (clock !== null) console.log(`tallydb ingest${label}: ${clock.summary(availableParallelism())}`);
  return { db, ...rates(ms, genMs) };
}

async function loadDuck(file: string, label = ''): Promise<{ conn: DuckDBConnection; instance: DuckDBInstance } & Load> {
  const instance = await DuckDBInstance.create(file, EVENTS > 20_000_000 ? { memory_limit: '2GB' } : {});
  const conn = await instance.connect();
  await conn.run(`CREATE TABLE events (ts BIGINT, event_id VARCHAR, event VARCHAR, image_id VARCHAR, location VARCHAR, gender VARCHAR, device VARCHAR, cost DOUBLE)`);
  const app = await conn.createAppender('events');
  let ms = 0;
  let genMs = 0;
  const clock = ThreadClock.available() ? new ThreadClock() : null;
  for (const chunk of chunks()) {
    genMs += chunk.genMs;
    clock?.start();
    const t = performance.now();
    for (const e of chunk.events) {
      app.appendBigInt(BigInt(e.ts));
      app.appendVarchar(e.event_id);
      app.appendVarchar(e.event);
      app.appendVarchar(e.image_id);
      app.appendVarchar(e.location);
      app.appendVarchar(e.gender);
      app.appendVarchar(e.device);
      if (e.cost === undefined) app.appendNull();
      else app.appendDouble(e.cost);
      app.endRow();
    }
    ms += performance.now() - t;
    clock?.stop();
  }
  if (clock !== null) console.log(`DuckDB appender${label} (its checkpoint not included): ${clock.summary(availableParallelism())}`);
  const t = performance.now();
  app.closeSync();
  await conn.run('CHECKPOINT');
  ms += performance.now() - t;
  return { conn, instance, ...rates(ms, genMs) };
}

type Row = (string | number | null)[];

const gib = (bytes: number): string => (bytes / 2 ** 30).toFixed(2);

interface Question {
  name: string;
  target: number;
  tally: Query;
  duck: string;
  /** Output rows of both engines in one comparable form. */
  shape?: (rows: Row[]) => Row[];
}

const H = 3_600_000;
const click = { dimension: 'event', eq: 'click' };
const SEED = { and: [click, { dimension: 'image_id', eq: 'img0' }, { dimension: 'location', eq: 'bangalore' }, { dimension: 'gender', eq: 'male' }] };
const SEED_SQL = `event = 'click' AND image_id = 'img0' AND location = 'bangalore' AND gender = 'male'`;
const range = (ms: number): { from: number; to: number } => ({ from: END - ms, to: END });
const sqlRange = (ms: number): string => `ts >= ${END - ms} AND ts < ${END}`;

const QUESTIONS: Question[] = [
  {
    name: 'seed count (image × location × gender, 24 h)', target: 50,
    tally: { datasource: 'events', ...range(DAY), filter: SEED, aggregations: [{ name: 'clicks', type: 'count' }] },
    duck: `SELECT count(*) FROM events WHERE ${SEED_SQL} AND ${sqlRange(DAY)}`,
  },
  {
    name: 'seed per minute (24 h)', target: 20,
    tally: { datasource: 'events', ...range(DAY), granularity: 'minute', filter: SEED, aggregations: [{ name: 'clicks', type: 'count' }] },
    duck: `SELECT ts // 60000 * 60000 AS m, count(*) FROM events WHERE ${SEED_SQL} AND ${sqlRange(DAY)} GROUP BY m ORDER BY m`,
  },
  {
    name: 'clicks per minute (24 h)', target: 20,
    tally: { datasource: 'events', ...range(DAY), granularity: 'minute', filter: click, aggregations: [{ name: 'clicks', type: 'count' }] },
    duck: `SELECT ts // 60000 * 60000 AS m, count(*) FROM events WHERE event = 'click' AND ${sqlRange(DAY)} GROUP BY m ORDER BY m`,
  },
  {
    name: 'clicks, impressions by location × gender (24 h)', target: 10,
    tally: {
      datasource: 'events', ...range(DAY), groupBy: ['location', 'gender'],
      aggregations: [{ name: 'clicks', type: 'count', filter: click }, { name: 'imps', type: 'count', filter: { dimension: 'event', eq: 'impression' } }],
      orderBy: [{ column: 'location', direction: 'asc' }, { column: 'gender', direction: 'asc' }],
    },
    duck: `SELECT location, gender, count(*) FILTER (WHERE event = 'click'), count(*) FILTER (WHERE event = 'impression') FROM events WHERE ${sqlRange(DAY)} GROUP BY location, gender ORDER BY location, gender`,
  },
  {
    name: 'top-10 images by clicks with CTR, one location (1 h)', target: 5,
    tally: {
      datasource: 'events', ...range(H), groupBy: ['image_id'], filter: { dimension: 'location', eq: 'bangalore' },
      aggregations: [{ name: 'clicks', type: 'count', filter: click }, { name: 'imps', type: 'count', filter: { dimension: 'event', eq: 'impression' } }],
      postAggregations: [{ name: 'ctr', expr: { op: '/', left: { ref: 'clicks' }, right: { ref: 'imps' } } }],
      orderBy: [{ column: 'clicks', direction: 'desc' }], limit: 10,
    },
    duck: `SELECT image_id, count(*) FILTER (WHERE event = 'click') AS clicks, count(*) FILTER (WHERE event = 'impression') AS imps,
             clicks / NULLIF(imps, 0) AS ctr
           FROM events WHERE location = 'bangalore' AND ${sqlRange(H)} GROUP BY image_id ORDER BY clicks DESC, image_id LIMIT 10`,
  },
  {
    name: 'top-10 images by clicks (5 min)', target: 5,
    tally: {
      datasource: 'events', ...range(5 * 60_000), groupBy: ['image_id'], filter: click,
      aggregations: [{ name: 'clicks', type: 'count' }], orderBy: [{ column: 'clicks', direction: 'desc' }], limit: 10,
    },
    duck: `SELECT image_id, count(*) AS clicks FROM events WHERE event = 'click' AND ${sqlRange(5 * 60_000)} GROUP BY image_id ORDER BY clicks DESC, image_id LIMIT 10`,
  },
];

function normal(rows: unknown[][]): Row[] {
  return rows.map((r) => r.map((v) => (typeof v === 'bigint' ? Number(v) : typeof v === "number" && !Number.isInteger(v) ? Math.round(v * 1e9) / 1e9 : (v as string | null))));
}

async function timed(run: () => Promise<Row[]>): Promise<{ ms: number[]; rows: Row[] }> {
  const start = performance.now();
  for (let r = 0; r < WARMUP || (r < WARMUP_MAX && performance.now() - start < WARMUP_MS); r++) await run();
  const ms: number[] = [];
  let rows: Row[] = [];
  for (let r = 0; r < RUNS; r++) {
    const s = performance.now();
    rows = await run();
    ms.push(performance.now() - s);
  }
  return { ms, rows };
}

/** LOADS − 1 more loads of each engine on fresh stores, alternating; prints the medians of all LOADS. */
async function moreLoads(dir: string, firstTally: number, firstDuck: number): Promise<void> {
  const t = [firstTally];
  const d = [firstDuck];
  for (let i = 1; i < LOADS; i++) {
    const tdir = path.join(dir, `tally-${i}`);
    const tl = await loadTally(tdir, `, load ${i + 1} of ${LOADS}`);
    await tl.db.close();
    rmSync(tdir, { recursive: true, force: true });
    t.push(tl.rate);
    const file = path.join(dir, `duck-${i}.db`);
    const dl = await loadDuck(file, `, load ${i + 1} of ${LOADS}`);
    dl.conn.closeSync();
    dl.instance.closeSync();
    rmSync(file, { force: true });
    rmSync(`${file}.wal`, { force: true });
    d.push(dl.rate);
  }
  const list = (xs: number[]): string => xs.map((x) => Math.round(x).toLocaleString()).join(', ');
  console.log('');
  console.log(`| ingest, events/s (durable), median of ${LOADS} loads each, alternating | tallydb | DuckDB | tallydb / DuckDB | target |`);
  console.log('|---|---:|---:|---:|---:|');
  console.log(`| medians | ${Math.round(median(t)).toLocaleString()} | ${Math.round(median(d)).toLocaleString()} | ${(median(t) / median(d)).toFixed(2)} | ≥ 4 |`);
  console.log(`| loads, in order (the first is the table's above) | ${list(t)} | ${list(d)} | ${t.map((x, i) => (x / d[i]!).toFixed(2)).join(', ')} | |`);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tallydb-suite-'));
  const peak = (): string => gib(process.resourceUsage().maxRSS * 1024);
  try {
    console.log(`tallydb vs DuckDB ${(await import('@duckdb/node-api')).version?.() ?? ''} — ${EVENTS.toLocaleString()} events over 24 h, median of ${RUNS} runs per question`);
    // tallydb first, alone in the process: its load, compaction and questions set the peak RSS reported for it.
    // DuckDB then loads and answers the same questions; the answers are compared at the end.
    const tally = await loadTally(path.join(dir, 'tally'));
    const flushStart = performance.now();
    await tally.db.flush();
    const flushMs = performance.now() - flushStart;
    await tally.db.compact();
    const st = tally.db.stats('events');
    console.log(`tallydb: ${st.storage!.segments} segments, ${(st.storage!.segmentBytes / EVENTS).toFixed(2)} bytes per event on disk; RSS ${gib(process.memoryUsage().rss)} GiB (peak ${peak()} GiB) after loading`);
    const tallyRuns = [];
    for (const q of QUESTIONS) {
      const r = await timed(async () => normal((await tally.db.query(q.tally)).rows));
      tallyRuns.push(r);
      // Printed as it comes, so a long scale run shows tallydb's figures before DuckDB has loaded.
      const { stats } = await tally.db.query(q.tally);
      console.log(`tallydb: ${q.name}: median ${median(r.ms).toFixed(2)} ms (${stats.readers} readers, ${stats.rowsScanned} rows scanned)`);
    }
    console.log(`tallydb alone: peak RSS ${peak()} GiB (load, compaction and questions), RSS now ${gib(process.memoryUsage().rss)} GiB; kernels: ${nativeStatus.kind}`);

    const duck = await loadDuck(path.join(dir, 'duck.db'));
    console.log('');
    console.log('| question | tallydb ms | DuckDB ms | DuckDB / tallydb | target |');
    console.log('|---|---:|---:|---:|---:|');
    console.log(`| ingest, events/s (durable) | ${Math.round(tally.rate).toLocaleString()} | ${Math.round(duck.rate).toLocaleString()} | ${(tally.rate / duck.rate).toFixed(2)} (tallydb / DuckDB) | ≥ 4 |`);
    console.log(`| (ingest with the events' generation timed in, as runs 1–14 measured it) | ${Math.round(tally.rateWithGeneration).toLocaleString()} | ${Math.round(duck.rateWithGeneration).toLocaleString()} | ${(tally.rateWithGeneration / duck.rateWithGeneration).toFixed(2)} | |`);
    // tallydb's load ends durable in its WAL, with the minutes its head still holds sealed at flush; DuckDB's ends
    // with its checkpoint into the database file. Timing the flush in as well shows what sealing left for later.
    const sealedRate = (EVENTS / (EVENTS / tally.rate * 1000 + flushMs)) * 1000;
    console.log(`| (ingest with the flush that seals the head into segments timed in: ${(flushMs / 1000).toFixed(1)} s) | ${Math.round(sealedRate).toLocaleString()} | ${Math.round(duck.rate).toLocaleString()} | ${(sealedRate / duck.rate).toFixed(2)} | |`);
    const differences: string[] = [];
    for (const [i, q] of QUESTIONS.entries()) {
      const t = tallyRuns[i]!;
      const d = await timed(async () => normal((await duck.conn.runAndReadAll(q.duck)).getRows() as unknown[][]));
      if (JSON.stringify(t.rows) !== JSON.stringify(d.rows)) {
        differences.push(`answers differ for '${q.name}':\n tallydb ${JSON.stringify(t.rows).slice(0, 400)}\n DuckDB  ${JSON.stringify(d.rows).slice(0, 400)}`);
      }
      const ratio = median(d.ms) / median(t.ms);
      console.log(`| ${q.name} | ${median(t.ms).toFixed(2)} | ${median(d.ms).toFixed(2)} | ${ratio.toFixed(1)} | ≥ ${q.target} |`);
    }
    console.log('');
    console.log(`peak RSS of the process ${peak()} GiB (both engines), RSS now ${gib(process.memoryUsage().rss)} GiB`);
    if (differences.length > 0) throw new Error(differences.join('\n'));
    await tally.db.close();
    duck.conn.closeSync();
    duck.instance.closeSync();
    if (LOADS > 1) await moreLoads(dir, tally.rate, duck.rate);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
