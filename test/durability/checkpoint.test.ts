/**
 * Checkpoint ordering: with ingest, sealing and WAL truncation all running, a crash right after a truncation
 * leaves every acknowledged event in a segment or in the remaining WAL — and counted once.
 */
import { expect, it } from 'vitest';
import { MemFs } from '../support/memfs.js';
import { batch, countsByBatch, openOn } from '../support/durable.js';

it('a power loss right after any WAL truncation keeps every acknowledged event exactly once', async () => {
  const fs = new MemFs();
  const snapshots: { disk: MemFs; acked: number[] }[] = [];
  const acked: number[] = [];
  const db = await openOn(fs, {
    walSegmentBytes: 2048,
    testHooks: {
      step: (name) => {
        if (name === 'wal:truncated') snapshots.push({ disk: fs.powerLossCopy(), acked: [...acked] });
      },
    },
  });
  await db.createDatasource({ ...(await import('../support/durable.js')).SPEC, name: 'ev2', lateness: '30s' });
  // Short lateness on ev2 keeps sealing (and so truncation) running while four writers ingest.
  const writer = async (w: number) => {
    for (let i = 0; i < 40; i++) {
      const b = w * 1000 + i;
      const events = batch(b, 20, 15_000).map((e) => ({ ...e, ts: (e as { ts: number }).ts - b * 15_000 + i * 15_000 }));
      await db.ingest('ev2', events);
      acked.push(b);
    }
  };
  await Promise.all([0, 1, 2, 3].map(writer));
  await db.close();
  expect(snapshots.length).toBeGreaterThan(3);
  for (const snap of snapshots) {
    const re = await openOn(snap.disk);
    const counts = new Map((await re.query({ datasource: 'ev2', groupBy: ['batch'], aggregations: [{ name: 'n', type: 'count' }] })).rows.map(([b, n]) => [Number(b), n]));
    for (const b of snap.acked) expect(counts.get(b)).toBe(20);
    for (const n of counts.values()) expect(n).toBe(20); // unacknowledged batches: whole or absent
    expect(re.stats('ev2').storage!.segments).toBeGreaterThan(0);
    await re.close();
  }
  expect(await countsByBatch(await openOn(fs))).toEqual(new Map()); // 'ev' untouched
});
