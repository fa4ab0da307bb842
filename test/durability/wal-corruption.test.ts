/**
 * Damage in the middle of the WAL stops open with WAL_CORRUPT naming file and offset — never a crash, never a
 * half-applied batch; the documented repair keeps every record before the damage and moves the rest aside.
 */
import lz4 from 'lz4-napi';
import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { frameRecord, scanRecords } from '../../src/wal/record.js';
import { MemFs } from '../support/memfs.js';
import { batch, countsByBatch, DIR, openOn } from '../support/durable.js';

async function fiveBatches(): Promise<{ fs: MemFs; wal: string; bytes: Buffer; offsets: number[]; name: string }> {
  const fs = new MemFs();
  const db = await openOn(fs);
  for (let b = 0; b < 5; b++) await db.ingest('ev', batch(b, 3));
  await db.close();
  const name = (await fs.list(`${DIR}/wal`))[0]!;
  const wal = `${DIR}/wal/${name}`;
  const bytes = Buffer.from(fs.bytes(wal));
  const offsets = [...scanRecords(bytes, 16)].flatMap((s) => (s.kind === 'record' ? [s.offset] : []));
  return { fs, wal, bytes, offsets, name };
}

describe('a flipped byte', () => {
  const where: [string, number][] = [['length', 1], ['payload CRC', 5], ['header CRC', 9], ['payload', 20]];
  for (const record of [2, 4]) {
    it.each(where)(`in the %s of record ${record} of 5 stops open with the file and offset, and repair keeps records before it`, async (_what, at) => {
      const { fs, wal, bytes, offsets, name } = await fiveBatches();
      const damaged = Buffer.from(bytes);
      damaged[offsets[record]! + at]! ^= 0x40;
      fs.setBytes(wal, damaged);
      const err = await openOn(fs.clone()).catch((e) => e);
      expect(err.code).toBe('WAL_CORRUPT');
      expect(err.details).toMatchObject({ file: `wal/${name}`, offset: offsets[record] });
      expect(err.message).toContain(`offset ${offsets[record]}`);
      expect(err.message).toContain('repair');

      const repaired = await openOn(fs, { repair: true });
      const counts = await countsByBatch(repaired);
      expect([...counts.entries()]).toEqual(Array.from({ length: record }, (_, b) => [b, 3]));
      expect(repaired.recovery!.movedAside).toEqual([`${name}.${offsets[record]}.aside`]);
      expect((await fs.list(`${DIR}/wal/aside`))).toHaveLength(1);
      await repaired.ingest('ev', batch(9, 1));
      await repaired.close();
      const again = await openOn(fs);
      expect(await countsByBatch(again)).toEqual(new Map([...counts, [9, 1]]));
      await again.close();
    });
  }
});

describe('a record whose checksums match but whose payload does not decode', () => {
  const payloads: [string, Buffer][] = [
    ['not lz4', Buffer.from('definitely not an lz4 block')],
    ['lz4 of garbage', lz4.compressSync(Buffer.from([0xc1, 0xc1, 0xc1]))],
    ['a batch whose columns disagree with its row count', lz4.compressSync(pack({ v: 1, lsn: 3, ds: 'ev', n: 5, ts: Buffer.alloc(16), dims: [{ values: [], ids: Buffer.alloc(0) }], metrics: [Buffer.alloc(0)], keys: null }))],
    ['a dimension id beyond its record dictionary', lz4.compressSync(pack({ v: 1, lsn: 3, ds: 'ev', n: 1, ts: Buffer.alloc(8), dims: [{ values: ['a'], ids: Buffer.from([7, 0, 0, 0]) }, { values: ['b'], ids: Buffer.alloc(4) }], metrics: [Buffer.alloc(8)], keys: null }))],
    ['an unknown record version', lz4.compressSync(pack({ v: 99 }))],
  ];
  it.each(payloads)('(%s) stops open as corruption, in the middle or at the end, and applies nothing of it', async (_what, payload) => {
    for (const position of ['middle', 'end'] as const) {
      const { fs, wal, bytes, offsets } = await fiveBatches();
      const bad = frameRecord(payload);
      const at = position === 'middle' ? offsets[3]! : bytes.length;
      fs.setBytes(wal, Buffer.concat([bytes.subarray(0, at), bad, bytes.subarray(at)]));
      const err = await openOn(fs.clone()).catch((e) => e);
      expect(err.code).toBe('WAL_CORRUPT');
      expect(err.details.offset).toBe(at);
      expect(err.message).toMatch(/undecodable payload/);
      const repaired = await openOn(fs, { repair: true });
      expect([...(await countsByBatch(repaired)).keys()]).toEqual(position === 'middle' ? [0, 1, 2] : [0, 1, 2, 3, 4]);
      await repaired.close();
    }
  });
});

it('a record for a datasource the manifest does not know is corruption, not a crash', async () => {
  const { fs, wal, bytes } = await fiveBatches();
  const { encodeBatch } = await import('../../src/wal/record.js');
  const stray = frameRecord(encodeBatch({ lsn: 99, ds: 'ghost', n: 0, ts: new Float64Array(0), dims: [], metrics: [], keyHashes: null }));
  fs.setBytes(wal, Buffer.concat([bytes, stray]));
  await expect(openOn(fs)).rejects.toMatchObject({ code: 'WAL_CORRUPT', message: expect.stringContaining('ghost') });
});
