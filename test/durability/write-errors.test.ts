/**
 * A failed WAL write (EIO, a short write, a full disk) is never acknowledged and costs nothing acknowledged; the
 * next append is clean. A failed fsync is fail-stop: everything pending and later is refused until a restart, which
 * recovers every acknowledged batch from the WAL. fsync is never retried and reported as success.
 */
import { describe, expect, it } from 'vitest';
import { MemFs } from '../support/memfs.js';
import { batch, countsByBatch, openOn, total } from '../support/durable.js';

describe('write errors', () => {
  it.each([
    ['EIO with nothing written', { code: 'EIO' as const }, 'STORAGE_IO_ERROR'],
    ['a short write then EIO', { code: 'EIO' as const, partialBytes: 17 }, 'STORAGE_IO_ERROR'],
    ['ENOSPC after a partial write', { code: 'ENOSPC' as const, partialBytes: 5 }, 'DISK_FULL'],
  ])('%s: the batch is refused, earlier data intact, the next append clean, all of it after restart', async (_what, fault, code) => {
    const fs = new MemFs();
    const db = await openOn(fs);
    await db.ingest('ev', batch(0, 4));
    fs.inject({ op: 'write', path: /wal/, ...fault });
    await expect(db.ingest('ev', batch(1, 4))).rejects.toMatchObject({ code });
    expect(await countsByBatch(db)).toEqual(new Map([[0, 4]]));
    // The refused batch's keys are free again: a retry is accepted, not a duplicate.
    expect(await db.ingest('ev', batch(1, 4))).toEqual({ accepted: 4, duplicates: 0, rejected: [] });
    await db.ingest('ev', batch(2, 4));
    await db.close();
    const re = await openOn(fs);
    expect(await countsByBatch(re)).toEqual(new Map([[0, 4], [1, 4], [2, 4]]));
    await re.close();
  });

  it('a full disk refuses ingest with DISK_FULL until space returns; every acknowledged event survives', async () => {
    const fs = new MemFs();
    const db = await openOn(fs);
    await db.ingest('ev', batch(0, 50));
    fs.diskLimitBytes = fs.usedBytes() + 100;
    let refused = 0;
    for (let b = 1; b <= 5; b++) {
      const r = await db.ingest('ev', batch(b, 50)).catch((e) => e);
      if (r.code === 'DISK_FULL') refused++;
    }
    expect(refused).toBe(5);
    expect(await total(db)).toBe(50);
    fs.diskLimitBytes = Infinity;
    await db.ingest('ev', batch(6, 50));
    await db.close();
    const re = await openOn(fs);
    expect(await countsByBatch(re)).toEqual(new Map([[0, 50], [6, 50]]));
    await re.close();
  });
});

describe('fsync failure is fail-stop', () => {
  it('fails the batch and everything after it, even once the fault is gone; a restart recovers the acknowledged', async () => {
    const fs = new MemFs();
    const db = await openOn(fs);
    await db.ingest('ev', batch(0, 3));
    fs.inject({ op: 'sync', path: /wal/ });
    const pending = [db.ingest('ev', batch(1, 3)), db.ingest('ev', batch(2, 3)), db.ingest('ev', batch(3, 3))];
    const outcomes = await Promise.allSettled(pending);
    expect(outcomes.every((o) => o.status === 'rejected' && (o.reason as { code: string }).code === 'STORAGE_FAILED')).toBe(true);
    fs.clearFaults();
    await expect(db.ingest('ev', batch(4, 3))).rejects.toMatchObject({ code: 'STORAGE_FAILED' });
    await expect(db.createDatasource({ name: 'other', dimensions: ['a'] })).rejects.toMatchObject({ code: 'STORAGE_FAILED' });
    const syncsBefore = fs.calls.sync;
    await expect(db.ingest('ev', batch(5, 3))).rejects.toMatchObject({ code: 'STORAGE_FAILED' });
    expect(fs.calls.sync).toBe(syncsBefore); // no retried fsync
    expect(await countsByBatch(db)).toEqual(new Map([[0, 3]]));
    await db.close();
    // After power loss and restart: the acknowledged batch is there; unacknowledged ones are whole or absent.
    const re = await openOn(fs.powerLossCopy());
    const counts = await countsByBatch(re);
    expect(counts.get(0)).toBe(3);
    for (const [b, n] of counts) if (b !== 0) expect(n).toBe(3);
    await re.close();
  });
});
