/**
 * Damage at rest in a segment — a column block, a bitmap section, the footer — is caught by a CRC before any value
 * is used: the segment is quarantined and reported, and the rest of the data keeps being served. More broken
 * segments at open than limits.maxBrokenSegments stop open without changing anything.
 */
import { describe, expect, it } from 'vitest';
import { readFooter, SEGMENT_TRAILER_BYTES } from '../../src/segment/format.js';
import { MemFs } from '../support/memfs.js';
import { batch, countsByBatch, DIR, openOn } from '../support/durable.js';

/** Three minutes, one batch each, sealed into three segments; the WAL that carried them checkpointed away. */
async function threeSegments(): Promise<{ fs: MemFs; files: string[] }> {
  const fs = new MemFs();
  const db = await openOn(fs);
  for (let b = 0; b < 3; b++) await db.ingest('ev', batch(b, 40, 60_000));
  await db.flush();
  await db.close();
  await (await openOn(fs)).close(); // reopening starts a new WAL file and deletes the fully sealed old one
  const files = (await fs.list(`${DIR}/segments/ev`)).map((n) => `${DIR}/segments/ev/${n}`);
  expect(files).toHaveLength(3);
  return { fs, files };
}

function flip(fs: MemFs, file: string, at: number): void {
  const b = Buffer.from(fs.bytes(file));
  b[at]! ^= 0xff;
  fs.setBytes(file, b);
}

function footerOf(fs: MemFs, file: string) {
  const b = fs.bytes(file);
  return readFooter(b.length, (p, l) => b.subarray(p, p + l));
}

describe('corruption at rest', () => {
  it('a damaged footer is found at open: quarantined, reported, the rest served', async () => {
    const { fs, files } = await threeSegments();
    const size = fs.bytes(files[1]!).length;
    flip(fs, files[1]!, size - SEGMENT_TRAILER_BYTES - 3);
    const db = await openOn(fs);
    expect(db.stats('ev').storage!.quarantined).toEqual([{ file: 'segments/ev/0000000002.seg', reason: 'footer checksum mismatch' }]);
    expect(await countsByBatch(db)).toEqual(new Map([[0, 40], [2, 40]]));
    expect(await fs.list(`${DIR}/quarantine`)).toEqual(['ev-0000000002.seg']);
    await db.close();
    const again = await openOn(fs);
    expect(await countsByBatch(again)).toEqual(new Map([[0, 40], [2, 40]]));
    await again.close();
  });

  it.each([
    ['the timestamp block', (f: ReturnType<typeof footerOf>) => f.ts],
    ['the dedup key block', (f: ReturnType<typeof footerOf>) => f.keys],
  ])('%s, read at open to restore dedup keys, is caught there: quarantined, reported, open carries on', async (_what, pick) => {
    const { fs, files } = await threeSegments();
    const ref = footerOf(fs, files[1]!).sections[pick(footerOf(fs, files[1]!))]!;
    flip(fs, files[1]!, ref[0] + Math.floor(ref[1] / 2));
    const db = await openOn(fs);
    expect(db.stats('ev').storage!.quarantined.map((q) => q.file)).toEqual(['segments/ev/0000000002.seg']);
    expect(await countsByBatch(db)).toEqual(new Map([[0, 40], [2, 40]]));
    await db.close();
  });

  const sections: [string, (f: ReturnType<typeof footerOf>) => number, object][] = [
    ['a column block', (f) => f.dims[0]!.ids, { groupBy: ['batch'], aggregations: [{ name: 's', type: 'sum', metric: 'v' }] }],
    ['a bitmap section', (f) => f.dims[1]!.bitmaps, { filter: { dimension: 'kind', eq: 'x' }, aggregations: [{ name: 'n', type: 'count' }] }],
    ['a metric block', (f) => f.metrics[0]!.values, { aggregations: [{ name: 's', type: 'sum', metric: 'v' }] }],
  ];
  it.each(sections)('%s is caught by its CRC on first read: that query fails, the segment is quarantined, later queries are served', async (_what, pick, query) => {
    const { fs, files } = await threeSegments();
    const ref = footerOf(fs, files[1]!).sections[pick(footerOf(fs, files[1]!))]!;
    flip(fs, files[1]!, ref[0] + Math.floor(ref[1] / 2));
    const db = await openOn(fs);
    await expect(db.query({ datasource: 'ev', ...query })).rejects.toMatchObject({ code: 'SEGMENT_CORRUPT', message: expect.stringContaining('0000000002.seg') });
    expect(db.stats('ev').storage!.quarantined.map((q) => q.file)).toEqual(['segments/ev/0000000002.seg']);
    await db.query({ datasource: 'ev', ...query }); // served from the other segments
    expect(await countsByBatch(db)).toEqual(new Map([[0, 40], [2, 40]]));
    await db.close();
    const again = await openOn(fs);
    expect(await countsByBatch(again)).toEqual(new Map([[0, 40], [2, 40]]));
    await again.close();
  });

  it('more broken segments than limits.maxBrokenSegments stop open and change nothing', async () => {
    const { fs, files } = await threeSegments();
    for (const f of files) flip(fs, f, fs.bytes(f).length - SEGMENT_TRAILER_BYTES - 3);
    const before = fs.clone();
    await expect(openOn(fs, { limits: { maxBrokenSegments: 2 } })).rejects.toMatchObject({ code: 'TOO_MANY_BROKEN_SEGMENTS' });
    expect(await fs.list(`${DIR}/segments/ev`)).toEqual(await before.list(`${DIR}/segments/ev`));
    expect(await fs.readFile(`${DIR}/MANIFEST`)).toEqual(await before.readFile(`${DIR}/MANIFEST`));
  });
});

it.each([
  ['its footer', (fs: MemFs, file: string) => fs.bytes(file).length - SEGMENT_TRAILER_BYTES - 3],
  ['its timestamp block', (fs: MemFs, file: string) => {
    const ref = footerOf(fs, file).sections[footerOf(fs, file).ts]!;
    return ref[0] + 2;
  }],
])('rows of a segment quarantined at open for %s come back from the WAL when it still holds them', async (_what, where) => {
  const fs = new MemFs();
  const db = await openOn(fs);
  for (let b = 0; b < 3; b++) await db.ingest('ev', batch(b, 40, 60_000));
  await db.flush();
  await db.close(); // the WAL file that carried the rows is still the newest one: not deleted
  const file = `${DIR}/segments/ev/0000000002.seg`;
  flip(fs, file, where(fs, file));
  const re = await openOn(fs);
  expect(re.stats('ev').storage!.quarantined).toHaveLength(1);
  expect(await countsByBatch(re)).toEqual(new Map([[0, 40], [1, 40], [2, 40]]));
  await re.close();
});

describe('manifest versus directory', () => {
  it('a listed file that is missing stops open with a repair hint; repair drops it and serves the rest', async () => {
    const { fs, files } = await threeSegments();
    await fs.unlink(files[0]!);
    const err = await openOn(fs).catch((e) => e);
    expect(err.code).toBe('SEGMENT_MISSING');
    expect(err.message).toContain('segments/ev/0000000001.seg');
    expect(err.message).toContain('repair');
    const db = await openOn(fs, { repair: true });
    expect(db.recovery!.missingDropped).toBe(1);
    expect(await countsByBatch(db)).toEqual(new Map([[1, 40], [2, 40]]));
    await db.close();
  });

  it('files the manifest does not list — and temp leftovers — are removed at open', async () => {
    const { fs } = await threeSegments();
    for (const junk of ['segments/ev/0000009999.seg', 'segments/ev/0000000004.seg.tmp', 'MANIFEST.tmp']) {
      const f = await fs.openWrite(`${DIR}/${junk}`, true);
      await f.write(Buffer.from('leftover'), 0);
      await f.close();
    }
    const db = await openOn(fs);
    expect(db.recovery!.leftoversRemoved).toBe(2);
    expect(await fs.exists(`${DIR}/MANIFEST.tmp`)).toBe(false);
    expect(await fs.list(`${DIR}/segments/ev`)).toEqual(['0000000001.seg', '0000000002.seg', '0000000003.seg']);
    expect(await countsByBatch(db)).toEqual(new Map([[0, 40], [1, 40], [2, 40]]));
    await db.close();
  });
});
