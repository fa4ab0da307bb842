/**
 * A WAL cut at any byte (a torn write at the crash) replays exactly the whole records before the cut; appends after
 * the reopen are durable and survive another reopen.
 */
import { expect, it } from 'vitest';
import { scanRecords } from '../../src/wal/record.js';
import { MemFs } from '../support/memfs.js';
import { batch, countsByBatch, DIR, openOn, total } from '../support/durable.js';

it('truncating the last WAL file at every byte offset replays exactly the whole records', async () => {
  const fs = new MemFs();
  const db = await openOn(fs);
  for (let b = 0; b < 4; b++) await db.ingest('ev', batch(b, 2));
  await db.close();
  const wal = `${DIR}/wal/${(await fs.list(`${DIR}/wal`))[0]}`;
  const bytes = Buffer.from(fs.bytes(wal));
  const ends = [...scanRecords(bytes, 16)].flatMap((s) => (s.kind === 'record' ? [s.offset + 12 + s.payload.length] : []));
  expect(ends).toHaveLength(4);

  for (let cut = 16; cut <= bytes.length; cut++) {
    const copy = fs.clone();
    copy.setBytes(wal, bytes.subarray(0, cut));
    const whole = ends.filter((e) => e <= cut).length;
    const re = await openOn(copy);
    const counts = await countsByBatch(re);
    expect([...counts.keys()].sort()).toEqual(Array.from({ length: whole }, (_, i) => i));
    for (const n of counts.values()) expect(n).toBe(2);
    expect(re.recovery!.tornBytes).toBe(cut - (whole === 0 ? 16 : ends[whole - 1]!));
    // Appends after the cut are clean and durable.
    expect((await re.ingest('ev', batch(100, 3))).accepted).toBe(3);
    await re.close();
    const again = await openOn(copy);
    expect(await total(again)).toBe(whole * 2 + 3);
    await again.close();
  }
});
