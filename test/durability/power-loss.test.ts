/**
 * Power loss drops every byte not yet fsynced. In `always` mode nothing acknowledged is lost; in `interval` mode
 * only batches acknowledged after the last WAL fsync can be lost; in no mode is the result corrupt — reopen
 * always succeeds with whole batches. Group commit makes concurrent batches share fsyncs.
 */
import { describe, expect, it } from 'vitest';
import { MemFs } from '../support/memfs.js';
import { batch, countsByBatch, openOn } from '../support/durable.js';

const walSyncs = (fs: MemFs): number => fs.syncLog.filter((p) => p.includes('/wal/')).length;

describe('power loss', () => {
  it("'always': every acknowledged batch survives, and concurrent batches share fsyncs (group commit)", async () => {
    const fs = new MemFs();
    const db = await openOn(fs, { fsync: 'always' });
    // An fsync that takes time, as a disk's does: with an instant one, whether a batch decides while the one before
    // it syncs is a race (batches decide one at a time, each on an event-loop turn of its own), lost under load.
    fs.syncDelayMs = 5;
    const before = walSyncs(fs);
    const acked: number[] = [];
    await Promise.all(Array.from({ length: 64 }, (_, b) => db.ingest('ev', batch(b, 10)).then(() => acked.push(b))));
    const syncs = walSyncs(fs) - before;
    expect(acked).toHaveLength(64);
    expect(syncs).toBeLessThan(64); // batches that arrived during an fsync went out together in the next one
    const re = await openOn(fs.powerLossCopy());
    expect(await countsByBatch(re)).toEqual(new Map(acked.map((b) => [b, 10])));
    await re.close();
    await db.close();
  });

  it("'interval': only batches acknowledged after the last WAL fsync may be lost, and nothing is corrupt", async () => {
    const fs = new MemFs();
    const db = await openOn(fs, { fsync: 'interval', fsyncIntervalMs: 15 });
    const syncsAtAck = new Map<number, number>();
    for (let b = 0; b < 60; b++) {
      await db.ingest('ev', batch(b, 5));
      syncsAtAck.set(b, walSyncs(fs));
      if (b % 6 === 0) await new Promise((r) => setTimeout(r, 20));
    }
    const disk = fs.powerLossCopy();
    const final = walSyncs(fs);
    expect(final).toBeGreaterThan(3); // the periodic fsync ran
    const re = await openOn(disk);
    const counts = await countsByBatch(re);
    for (const [b, atAck] of syncsAtAck) {
      if (atAck < final) expect(counts.get(b)).toBe(5); // an fsync came after its acknowledgement
    }
    for (const n of counts.values()) expect(n).toBe(5);
    await re.close();
    await db.close();
  });

  it("'none': reopen after power loss succeeds with whole batches only", async () => {
    const fs = new MemFs();
    const db = await openOn(fs, { fsync: 'none' });
    for (let b = 0; b < 20; b++) await db.ingest('ev', batch(b, 5));
    const re = await openOn(fs.powerLossCopy());
    for (const n of (await countsByBatch(re)).values()) expect(n).toBe(5);
    await re.close();
    await db.close();
  });

  it('closing in any mode makes everything acknowledged durable', async () => {
    for (const fsync of ['interval', 'none'] as const) {
      const fs = new MemFs();
      const db = await openOn(fs, { fsync, fsyncIntervalMs: 10_000 });
      for (let b = 0; b < 10; b++) await db.ingest('ev', batch(b, 5));
      await db.close();
      const re = await openOn(fs.powerLossCopy());
      expect((await countsByBatch(re)).size).toBe(10);
      await re.close();
    }
  });
});
