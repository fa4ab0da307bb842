/**
 * A crash at any step of publishing a segment — temp file written, synced, renamed, directory synced, manifest
 * written/synced/renamed/dir-synced, published, before and after WAL truncation — leaves every event counted exactly
 * once after reopen, whether the crash was a killed process (the OS kept everything) or a power loss (only what
 * was fsynced survived). Dedup state survives too: re-sending a batch after the reopen is all duplicates.
 * Buckets ready together are sealed as one batch (their files side by side, one manifest change): the flush below
 * seals its ~3 minutes in one, and a crash at one file of the batch while the others are written is the same.
 */
import { describe, expect, it } from 'vitest';
import { MemFs } from '../support/memfs.js';
import { batch, countsByBatch, Crash, CRASH_KINDS, crashAt, openOn } from '../support/durable.js';

const STEPS = [
  'segment:temp-written', 'segment:temp-synced', 'segment:renamed', 'segment:dir-synced',
  'manifest:temp-written', 'manifest:temp-synced', 'manifest:renamed', 'manifest:dir-synced',
  'seal:published', 'wal:before-truncate', 'wal:truncated',
];
const BATCHES = 10;
const expected = new Map(Array.from({ length: BATCHES }, (_, b) => [b, 5]));

describe.each(CRASH_KINDS)('after %s', (_kind, afterCrash) => {
  it.each([...STEPS.map((s) => [s, 1] as const), ['segment:temp-synced', 2] as const, ['segment:renamed', 3] as const])('at %s (occurrence %i) every event is counted exactly once', async (step, nth) => {
    const fs = new MemFs();
    const crash = crashAt(step, nth);
    const { seen } = crash;
    const db = await openOn(fs, {
      walSegmentBytes: 1, // one record per WAL file, so checkpoints delete files
      testHooks: { step: crash.step },
    });
    for (let b = 0; b < BATCHES; b++) await db.ingest('ev', batch(b, 5, 20_000)); // ~3 minutes
    crash.arm();
    await expect(db.flush()).rejects.toBeInstanceOf(Crash);
    expect(seen.filter((s) => s === step).length).toBeGreaterThanOrEqual(nth);

    const disk = afterCrash(fs);
    const re = await openOn(disk);
    expect(await countsByBatch(re)).toEqual(expected);
    expect((await re.ingest('ev', batch(4, 5, 20_000))).duplicates).toBe(5);
    await re.flush();
    expect(await countsByBatch(re)).toEqual(expected);
    expect(re.stats('ev').head.rows).toBe(0);
    await re.close();
    const again = await openOn(disk);
    expect(await countsByBatch(again)).toEqual(expected);
    expect(again.stats('ev').storage!.walFiles).toBe(1); // every older WAL file was checkpointed away
    await again.close();
  });
});

it('buckets ready together are sealed in one batch: a file each, one directory sync and one manifest change', async () => {
  const fs = new MemFs();
  const seen: string[] = [];
  const db = await openOn(fs, { testHooks: { step: (name: string) => void seen.push(name) } });
  for (let b = 0; b < BATCHES; b++) await db.ingest('ev', batch(b, 5, 20_000)); // ~3 minutes
  seen.length = 0;
  await db.flush();
  const count = (name: string): number => seen.filter((s) => s === name).length;
  expect(count('segment:renamed')).toBe(db.stats('ev').storage!.segments);
  expect(count('segment:renamed')).toBeGreaterThanOrEqual(3);
  expect(count('segment:dir-synced')).toBe(1);
  expect(count('manifest:renamed')).toBe(1);
  expect(await countsByBatch(db)).toEqual(expected);
  await db.close();
});
