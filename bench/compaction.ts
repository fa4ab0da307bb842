/**
 * bench/compaction.ts — compaction's cost to the foreground and its own speed and effect (issue 5).
 *
 * 1. Foreground impact: a directory holding a compaction backlog (`--backlog` events over as many settled hours as
 *    it takes at 500k events an hour, sealed as minute segments), then 4 writers ingest `--events` new events
 *    (fsync always, batches of 10k) while one client runs the seed query back to back. Measured idle (no merge
 *    running) and while `compact()` works through the backlog in its worker, median of `--runs` runs each; the
 *    ratio is while/idle.
 * 2. Compaction throughput: events merged per second per worker (the backlog's rows / time for `compact()`).
 * 3. Bytes on disk per event: minute segments, then after compaction to hour and day segments (`--day-events`
 *    events over 25 hours, so one day settles), without and with rollup by minute.
 *
 *   npm run bench:compaction -- [--runs 3] [--events 1000000] [--backlog 3000000] [--day-events 4000000] [--bytes-only]
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { open, type Query, type Tally } from '../src/index.js';
import { arg, median, percentile } from './util.js';
import { batches, AD_DATASOURCE, type AdEvent } from './gen.js';

const RUNS = arg('runs', 3);
const EVENTS = arg('events', 1_000_000);
const BACKLOG = arg('backlog', 3_000_000);
const DAY_EVENTS = arg('day-events', 4_000_000);
const WRITERS = 4;
const H = 3_600_000;
const BASE = Date.parse('2026-11-20T00:00:00Z');
const SPEC = { ...AD_DATASOURCE, lateness: '10m', dedupWindow: '10m' };


const SEED: Query = {
  datasource: 'events', aggregations: [{ name: 'clicks', type: 'count' }],
  filter: { and: [{ dimension: 'event', eq: 'click' }, { dimension: 'image_id', eq: 'img0' }, { dimension: 'location', eq: 'bangalore' }, { dimension: 'gender', eq: 'male' }] },
};

function segmentBytes(dir: string): number {
  let n = 0;
  const d = path.join(dir, 'segments', 'events');
  for (const f of readdirSync(d)) {
    try {
      n += statSync(path.join(d, f)).size;
    } catch {
      // deleted meanwhile (a merged input)
    }
  }
  return n;
}

async function settle(db: Tally, dir: string): Promise<void> {
  // Deleting merged inputs finishes shortly after compact() resolves; wait until the directory matches the stats.
  for (let i = 0; i < 200 && readdirSync(path.join(dir, 'segments', 'events')).length !== db.stats('events').storage!.segments; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A directory with `events` events spread over settled hours from `start`, sealed as minute segments. */
async function preload(dir: string, events: number, start: number, spec: object = SPEC): Promise<number> {
  const hours = Math.max(1, Math.ceil(events / 500_000));
  const end = start + hours * H;
  const db = await open({ dir, fsync: 'none', clock: () => end + 10 * H, headBytes: 8e9, compaction: { auto: false } });
  await db.createDatasource(spec as typeof SPEC);
  for (const b of batches({ count: events, end, spanMs: hours * H, idPrefix: 'p' }, 10_000)) await db.ingest('events', b);
  // One event well past the last hour settles every hour of the backlog.
  await db.ingest('events', [{ ts: end + 2 * H, event_id: 'settle', event: 'click', image_id: 'img0', location: 'bangalore', gender: 'male', device: 'ios' }]);
  await db.flush();
  await db.close();
  return end + 2 * H;
}

async function foreground(compacting: boolean): Promise<{ rate: number; p50: number; p99: number; merges: number; queries: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tallydb-cbench-'));
  try {
    const wm = await preload(dir, BACKLOG, BASE);
    const db = await open({ dir, fsync: 'always', clock: () => wm + 10 * H, headBytes: 8e9, compaction: { auto: false, workers: 1 } });
    const bs = batches({ count: EVENTS, end: wm + H, spanMs: H, idPrefix: 'f' }, 10_000);
    await db.query(SEED); // warm the cache: both runs start from the same state
    let compactMs = 0;
    const merging = compacting ? (async () => {
      const t = performance.now();
      await db.compact();
      compactMs = performance.now() - t;
    })() : Promise.resolve();
    let done = false;
    const latencies: number[] = [];
    const queries = (async () => {
      while (!done) {
        const t = performance.now();
        await db.query(SEED);
        latencies.push(performance.now() - t);
        await new Promise((r) => setImmediate(r));
      }
    })();
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: WRITERS }, async () => {
      while (next < bs.length) await db.ingest('events', bs[next++]!);
    }));
    const ms = performance.now() - t0;
    done = true;
    await queries;
    await merging;
    // Compaction must outlast the ingest window, or the window was not measured under compaction throughout.
    const mergesDuringIngest = compactMs > ms ? 1 : 0;
    if (compacting && compactMs <= ms) console.warn(`compaction (${compactMs.toFixed(0)} ms) ended before ingest (${ms.toFixed(0)} ms): raise --backlog`);
    const backlogLeft = db.stats('events').storage!.compaction.backlog;
    await db.close();
    if (compacting && backlogLeft !== 0) throw new Error(`compaction left a backlog of ${backlogLeft}`);
    return { rate: (EVENTS / ms) * 1000, p50: percentile(latencies, 50), p99: percentile(latencies, 99), merges: mergesDuringIngest, queries: latencies.length };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function throughput(): Promise<number> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tallydb-cbench-'));
  try {
    const wm = await preload(dir, BACKLOG, BASE);
    const db = await open({ dir, fsync: 'always', clock: () => wm + 10 * H, compaction: { auto: false, workers: 1 } });
    const t = performance.now();
    await db.compact();
    const ms = performance.now() - t;
    await db.close();
    return (BACKLOG / ms) * 1000;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function bytesPerEvent(rollup: boolean, withImage = true): Promise<{ minute: number; compacted: number; levels: string; rollupRatio: number | null }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tallydb-cbench-'));
  try {
    const base = withImage ? SPEC : { ...SPEC, dimensions: SPEC.dimensions.filter((d) => d !== 'image_id') };
    const spec = rollup ? { ...base, rollup: { granularity: 'minute' } } : base;
    // 25 hours from midnight: the first day settles (a day segment), the 25th hour stays an hour segment.
    const hours = 25;
    const end = BASE + hours * H;
    const db0 = await open({ dir, fsync: 'none', clock: () => end + 10 * H, headBytes: 8e9, compaction: { auto: false } });
    await db0.createDatasource(spec as typeof SPEC);
    for (const b of batches({ count: DAY_EVENTS, end, spanMs: hours * H, idPrefix: 'd' }, 10_000)) {
      await db0.ingest('events', withImage ? b : b.map(({ image_id: _image, ...e }) => e));
    }
    await db0.ingest('events', [{ ts: end + 2 * H, event_id: 'settle', event: 'click', image_id: 'img0', location: 'bangalore', gender: 'male', device: 'ios' }]);
    await db0.flush();
    const minute = segmentBytes(dir) / DAY_EVENTS;
    await db0.compact();
    await settle(db0, dir);
    const compacted = segmentBytes(dir) / DAY_EVENTS;
    const c = db0.stats('events').storage!.compaction;
    const levels = `${db0.stats('events').storage!.segments} segments`;
    await db0.close();
    return { minute, compacted, levels, rollupRatio: c.rollupRowsOut === 0 ? null : c.rollupRowsIn / c.rollupRowsOut };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  console.log(`tallydb compaction — backlog ${BACKLOG.toLocaleString()} events, ingest ${EVENTS.toLocaleString()} events (4 writers, fsync always), median of ${RUNS} runs`);
  const idle: Awaited<ReturnType<typeof foreground>>[] = [];
  const busy: Awaited<ReturnType<typeof foreground>>[] = [];
  for (let r = 0; r < RUNS && !process.argv.includes('--bytes-only'); r++) {
    idle.push(await foreground(false));
    busy.push(await foreground(true));
  }
  const m = (xs: typeof idle, k: 'rate' | 'p50' | 'p99'): number => median(xs.map((x) => x[k]));
  if (process.argv.includes('--bytes-only')) return bytesTable();
  console.log('');
  console.log('| foreground | idle | while compacting | ratio |');
  console.log('|---|---:|---:|---:|');
  console.log(`| ingest, events/s | ${Math.round(m(idle, 'rate')).toLocaleString()} | ${Math.round(m(busy, 'rate')).toLocaleString()} | ${(m(busy, 'rate') / m(idle, 'rate')).toFixed(2)} |`);
  console.log(`| seed query p50, ms | ${m(idle, 'p50').toFixed(2)} | ${m(busy, 'p50').toFixed(2)} | ${(m(busy, 'p50') / m(idle, 'p50')).toFixed(2)} |`);
  console.log(`| seed query p99, ms | ${m(idle, 'p99').toFixed(2)} | ${m(busy, 'p99').toFixed(2)} | ${(m(busy, 'p99') / m(idle, 'p99')).toFixed(2)} |`);
  console.log(`(compaction outlasted the ingest window in ${busy.filter((b) => b.merges === 1).length} of ${busy.length} runs; seed queries per run idle ${idle.map((b) => b.queries).join(', ')}, compacting ${busy.map((b) => b.queries).join(', ')})`);

  const tput: number[] = [];
  for (let r = 0; r < RUNS; r++) tput.push(await throughput());
  console.log('');
  console.log(`compaction throughput: ${Math.round(median(tput)).toLocaleString()} events/s per worker (runs: ${tput.map((x) => Math.round(x).toLocaleString()).join(', ')})`);

  await bytesTable();
}

async function bytesTable(): Promise<void> {
  console.log('');
  console.log(`bytes on disk per event, ${DAY_EVENTS.toLocaleString()} events over 25 h`);
  console.log('| dimensions | rollup | minute segments | after compaction | segments | rollup ratio |');
  console.log('|---|---|---:|---:|---|---:|');
  for (const [rollup, withImage] of [[false, true], [true, true], [false, false], [true, false]] as const) {
    const b = await bytesPerEvent(rollup, withImage);
    console.log(`| ${withImage ? 'all five' : 'without image_id'} | ${rollup ? 'minute' : 'none'} | ${b.minute.toFixed(2)} | ${b.compacted.toFixed(2)} | ${b.levels} | ${b.rollupRatio === null ? '–' : b.rollupRatio.toFixed(2)} |`);
  }
}

await main();
