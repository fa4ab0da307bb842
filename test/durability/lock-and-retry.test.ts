/**
 * One process at a time: a directory held by another live process is refused with DIR_LOCKED, and so is a second
 * open in the same process; a LOCK left by a dead process is taken over. A failed seal leaves the minute readable
 * and in the WAL, and sealing succeeds on retry.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import { open } from 'tallydb';
import { MemFs } from '../support/memfs.js';
import { batch, countsByBatch, openOn } from '../support/durable.js';

it('a directory held by a live process, or already open here, is refused with DIR_LOCKED; a dead holder is taken over', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tallydb-lock-'));
  try {
    writeFileSync(path.join(dir, 'LOCK'), '1\n'); // pid 1 is always alive
    await expect(open({ dir })).rejects.toMatchObject({ code: 'DIR_LOCKED', details: { pid: 1 } });
    writeFileSync(path.join(dir, 'LOCK'), '999999999\n'); // no such process
    const db = await open({ dir });
    await expect(open({ dir })).rejects.toMatchObject({ code: 'DIR_LOCKED' });
    await db.close();
    const again = await open({ dir });
    await again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('a seal that fails keeps the minute readable and in the WAL, and succeeds when retried', async () => {
  const fs = new MemFs();
  const db = await openOn(fs);
  await db.ingest('ev', batch(0, 20));
  fs.inject({ op: 'write', path: /\.seg\.tmp$/ });
  await expect(db.flush()).rejects.toMatchObject({ code: 'EIO' });
  expect(db.stats('ev').storage!.lastSealError).toMatch(/EIO/);
  expect(await countsByBatch(db)).toEqual(new Map([[0, 20]]));
  await db.flush();
  expect(db.stats('ev').head.rows).toBe(0);
  expect(db.stats('ev').storage!.lastSealError).toBeNull();
  expect(await countsByBatch(db)).toEqual(new Map([[0, 20]]));
  await db.close();
  const re = await openOn(fs.powerLossCopy());
  expect(await countsByBatch(re)).toEqual(new Map([[0, 20]]));
  await re.close();
});

it('a late event for a minute already sealed becomes an additional segment for that minute, counted once', async () => {
  const fs = new MemFs();
  const db = await openOn(fs);
  await db.ingest('ev', batch(0, 10));
  await db.flush(); // seals minute 10:00 early (its lateness has not passed)
  await db.ingest('ev', batch(0, 10).map((e) => ({ ...e, id: `late-${(e as { id: string }).id}`, batch: '1' })));
  await db.flush();
  expect(db.stats('ev').storage!.segments).toBe(2);
  expect(await countsByBatch(db)).toEqual(new Map([[0, 10], [1, 10]]));
  await db.close();
  const re = await openOn(fs.powerLossCopy());
  expect(await countsByBatch(re)).toEqual(new Map([[0, 10], [1, 10]]));
  expect((await re.ingest('ev', batch(0, 10))).duplicates).toBe(10);
  await re.close();
});

it('concurrent creates of one datasource record it once, and ingest lands in the one that is used', async () => {
  const fs = new MemFs();
  const db = await openOn(fs);
  const spec = { name: 'twice', dimensions: ['a'], lateness: '1d' };
  await Promise.all([db.createDatasource(spec), db.createDatasource(spec), db.createDatasource(spec)]);
  await db.ingest('twice', [{ ts: Date.parse('2026-11-23T10:00:00Z'), a: 'x' }]);
  await db.close();
  const manifest = (await fs.readFile('/db/MANIFEST')).toString();
  expect(manifest.match(/"name": "twice"/g)).toHaveLength(1);
  const re = await openOn(fs);
  expect((await re.sql('SELECT count(*) FROM twice')).rows).toEqual([[1]]);
  await re.close();
});
