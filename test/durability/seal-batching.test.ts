/**
 * How sealing paces itself (storage/store.ts `beginSeals`, limits.ts SEAL_ENCODING): while the head holds under
 * `batchFromHeadFraction` of its budget, ready buckets are sealed one per manifest change; above it, buckets ready
 * together are sealed in batches (their files side by side, one manifest change) so that sealing catches up. Either
 * way every ready bucket is sealed and every event is counted once. Crashes inside a batch: publish-crash.test.ts.
 */
import { expect, it } from 'vitest';
import { open } from 'tallydb';
import { DEFAULT_LIMITS, SEAL_ENCODING } from '../../src/limits.js';
import { headBytesPerRow, setSealBatchRowsForTests } from '../../src/storage/store.js';
import { resolveDatasource } from '../../src/schema/datasource.js';
import { MemFs } from '../support/memfs.js';

const T0 = Date.parse('2026-11-23T10:00:00Z');
const SPEC = { name: 'ev', dimensions: ['kind'], metrics: [{ name: 'v', type: 'int' as const }], dedupKey: 'id', lateness: '1m', dedupWindow: '1h' };
/** Head bytes the engine counts per row of SPEC. */
const ROW_BYTES = headBytesPerRow(resolveDatasource(SPEC, DEFAULT_LIMITS));
const PER_MINUTE = 50;
const READY = 6;

/** One batch: PER_MINUTE events in each of minutes 0..READY-1, and one at minute 10 that makes those minutes ready. */
function events(): object[] {
  const out: object[] = [];
  for (let m = 0; m < READY; m++) for (let i = 0; i < PER_MINUTE; i++) out.push({ ts: T0 + m * 60_000 + i * 1000, id: `${m}-${i}`, kind: i % 2 ? 'a' : 'b', v: 1 });
  out.push({ ts: T0 + 10 * 60_000, id: 'late-marker', kind: 'a', v: 1 });
  return out;
}

async function sealReady(headBytes: number): Promise<{ segments: number; manifestChanges: number; rows: number }> {
  const seen: string[] = [];
  const db = await open({ dir: '/db', fileSystem: new MemFs(), clock: () => T0 + 86_400_000, headBytes, compaction: { auto: false }, testHooks: { step: (name: string) => void seen.push(name) } });
  await db.createDatasource(SPEC);
  seen.length = 0;
  expect((await db.ingest('ev', events())).accepted).toBe(READY * PER_MINUTE + 1);
  // Sealing runs in the background after the commit; wait until every ready minute is a segment.
  for (let i = 0; i < 500 && db.stats('ev').storage!.segments < READY; i++) await new Promise((r) => setTimeout(r, 5));
  const stats = db.stats('ev');
  const rows = (await db.query({ datasource: 'ev', aggregations: [{ name: 'n', type: 'count' }] })).rows[0]![0] as number;
  await db.close();
  return { segments: stats.storage!.segments, manifestChanges: seen.filter((s) => s === 'manifest:renamed').length, rows };
}

it('below the batching fraction of the head budget, each ready bucket is sealed in a manifest change of its own', async () => {
  const r = await sealReady(1 << 30);
  expect(r).toEqual({ segments: READY, manifestChanges: READY, rows: READY * PER_MINUTE + 1 });
});

it('above the batching fraction, buckets ready together are sealed in one manifest change', async () => {
  const headRows = READY * PER_MINUTE + 1;
  // A budget the head holds more than batchFromHeadFraction of, and less than all of (over it, seals go inline).
  const headBytes = Math.floor((headRows * ROW_BYTES) / ((1 + SEAL_ENCODING.batchFromHeadFraction) / 2));
  expect(headRows * ROW_BYTES).toBeGreaterThan(SEAL_ENCODING.batchFromHeadFraction * headBytes);
  expect(headRows * ROW_BYTES).toBeLessThan(headBytes);
  const r = await sealReady(headBytes);
  expect(r.segments).toBe(READY);
  expect(r.rows).toBe(READY * PER_MINUTE + 1);
  expect(r.manifestChanges).toBe(Math.ceil(READY / SEAL_ENCODING.batchBuckets));
});

it('a batch ends once its buckets hold batchRows rows (the bucket that reaches it is the last one taken)', async () => {
  const headRows = READY * PER_MINUTE + 1;
  const headBytes = Math.floor((headRows * ROW_BYTES) / ((1 + SEAL_ENCODING.batchFromHeadFraction) / 2));
  // 2.4 buckets' rows: each batch takes three buckets (100 rows < 120, then 150 ≥ 120 ends it).
  const previous = setSealBatchRowsForTests(Math.floor(2.4 * PER_MINUTE));
  try {
    const r = await sealReady(headBytes);
    expect(r).toEqual({ segments: READY, manifestChanges: Math.ceil(READY / 3), rows: READY * PER_MINUTE + 1 });
  } finally {
    setSealBatchRowsForTests(previous);
  }
});

it('a flush makes the running seal loop batch the ready buckets, and starts no merge until its seals are done', async () => {
  const seen: string[] = [];
  const fs = new MemFs();
  const db = await open({ dir: '/db', fileSystem: fs, clock: () => T0 + 86_400_000, headBytes: 1 << 30, compaction: { workers: 1 }, testHooks: { step: (name: string) => void seen.push(name) } });
  await db.createDatasource(SPEC);
  const hourOf = (h: number, perMinute: number): object[] => {
    const out: object[] = [];
    for (let m = 0; m < 60; m++) for (let i = 0; i < perMinute; i++) out.push({ ts: T0 + h * 3_600_000 + m * 60_000 + i * 1000, id: `${h}-${m}-${i}`, kind: 'a', v: 1 });
    return out;
  };
  // Warm the merge worker first (its start takes longer than a flush): one hour sealed and merged.
  await db.ingest('ev', [...hourOf(0, 1), { ts: T0 + 2 * 3_600_000, id: 'marker-0', kind: 'a', v: 1 }]);
  await db.flush();
  for (let i = 0; i < 1000 && !seen.includes('compact:published'); i++) await new Promise((r) => setTimeout(r, 10));
  expect(seen).toContain('compact:published');
  // Two more hours, with slow fsyncs: without the flush's hold, hour 3 would be merged as soon as its minutes are
  // sealed, while hour 4's are still being sealed.
  fs.syncDelayMs = 3;
  seen.length = 0;
  await db.ingest('ev', [...hourOf(3, 3), ...hourOf(4, 3), { ts: T0 + 6 * 3_600_000, id: 'marker-1', kind: 'a', v: 1 }]);
  await db.flush();
  const flushed = [...seen];
  expect(flushed.filter((s) => s === 'segment:renamed').length).toBe(121);
  // Up to two ready buckets were taken one at a time before the flush began (the one sealing and the one begun
  // ahead of it), the rest in batches, and the marker's minute (not ready) by the flush's own loop — against 121
  // changes if the flush did not make the running loop batch.
  expect(flushed.filter((s) => s === 'manifest:renamed').length).toBeLessThanOrEqual(2 + Math.ceil(118 / SEAL_ENCODING.batchBuckets) + 1);
  expect(flushed.filter((s) => s.startsWith('compact:'))).toEqual([]);
  // After the flush, compaction goes on as usual.
  for (let i = 0; i < 1000 && !seen.includes('compact:published'); i++) await new Promise((r) => setTimeout(r, 10));
  expect(seen).toContain('compact:published');
  expect((await db.query({ datasource: 'ev', aggregations: [{ name: 'n', type: 'count' }] })).rows[0]![0]).toBe(60 + 1 + 360 + 1);
  await db.close();
});
