/**
 * bench/durable.ts — durable ingest throughput per fsync mode, and recovery time of a large WAL (issue 3).
 *
 * Each figure is the median of `--runs` runs. Ingest: 1M generated ad events (unique ids, 5 dimensions, a
 * metric, dedup on) in batches of 10k from `--writers` concurrent writers, in-process, on a fresh directory per
 * run; the in-memory engine is measured in the same run as the baseline. Recovery: a WAL of `--recover` events
 * (default 10M) written with nothing sealed, then the time for open() to replay it into the head.
 *
 *   npm run bench:durable -- [--runs 5] [--events 1000000] [--writers 4] [--recover 10000000]
 */
import { mkdtempSync, rmSync, statSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { open, type Tally } from '../src/index.js';
import { arg, median } from './util.js';
import { batches, AD_DATASOURCE, type AdEvent } from './gen.js';

const RUNS = arg('runs', 5);
const EVENTS = arg('events', 1_000_000);
const WRITERS = arg('writers', 4);
const RECOVER = arg('recover', 10_000_000);
const END = Date.parse('2026-11-23T00:00:00Z');


async function ingestAll(db: Tally, bs: AdEvent[][]): Promise<number> {
  let next = 0;
  const t = performance.now();
  await Promise.all(Array.from({ length: WRITERS }, async () => {
    while (next < bs.length) await db.ingest('events', bs[next++]!);
  }));
  return performance.now() - t;
}

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n += statSync(path.join(e.parentPath, e.name)).size;
  return n;
}

async function main(): Promise<void> {
  console.log(`tallydb durable ingest — ${EVENTS.toLocaleString()} events, batches of 10k, ${WRITERS} writers, median of ${RUNS} runs`);
  const bs = batches({ count: EVENTS, end: END, spanMs: 3_600_000 }, 10_000);
  const rows: [string, number, number][] = [];
  let memoryRate = 0;
  for (const mode of ['memory', 'always', 'interval', 'none'] as const) {
    const rates: number[] = [];
    let bytesPerEvent = 0;
    for (let r = 0; r < RUNS; r++) {
      const dir = mkdtempSync(path.join(tmpdir(), 'tallydb-bench-'));
      const db = mode === 'memory'
        ? await open({ memory: true, clock: () => END })
        : await open({ dir, fsync: mode, clock: () => END, headBytes: 8e9 });
      await db.createDatasource({ ...AD_DATASOURCE, lateness: '2h' });
      const ms = await ingestAll(db, bs);
      rates.push((EVENTS / ms) * 1000);
      await db.close();
      if (mode !== 'memory') bytesPerEvent = dirBytes(dir) / EVENTS;
      rmSync(dir, { recursive: true, force: true });
    }
    const rate = median(rates);
    if (mode === 'memory') memoryRate = rate;
    rows.push([mode, rate, bytesPerEvent]);
  }
  console.log('mode       events/s (median)   vs in-memory   WAL bytes/event');
  for (const [mode, rate, bpe] of rows) {
    console.log(`${mode.padEnd(10)} ${(rate / 1e6).toFixed(2).padStart(8)} M/s       ${(rate / memoryRate).toFixed(2).padStart(6)}×      ${mode === 'memory' ? '-' : bpe.toFixed(1)}`);
  }

  if (RECOVER > 0) {
    const dir = mkdtempSync(path.join(tmpdir(), 'tallydb-recover-'));
    const db = await open({ dir, fsync: 'none', clock: () => END, headBytes: 64e9 });
    await db.createDatasource({ ...AD_DATASOURCE, lateness: '2d' });
    // Reuse the generated batches with fresh ids and shifted times until RECOVER events are logged.
    let written = 0;
    for (let round = 0; written < RECOVER; round++) {
      for (const b of bs) {
        if (written >= RECOVER) break;
        const shifted = b.map((e) => ({ ...e, event_id: `${round}-${e.event_id}`, ts: e.ts - round * 3_600_000 }));
        written += (await db.ingest('events', shifted)).accepted;
      }
    }
    await db.close();
    const walBytes = dirBytes(path.join(dir, 'wal'));
    const times: number[] = [];
    for (let r = 0; r < Math.min(RUNS, 3); r++) {
      const t = performance.now();
      const re = await open({ dir, clock: () => END, headBytes: 64e9 });
      times.push(performance.now() - t);
      const rows = re.stats('events').rows;
      if (rows !== written) throw new Error(`recovered ${rows} rows; want ${written}`);
      await re.close();
    }
    console.log(`recovery: ${written.toLocaleString()} events, WAL ${(walBytes / 1e6).toFixed(0)} MB: open() median ${(median(times) / 1000).toFixed(2)} s (${((written / median(times)) * 1000 / 1e6).toFixed(2)} M events/s)`);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
