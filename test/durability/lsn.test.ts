/**
 * WAL LSNs are never reused: replay skips a record whose LSN a segment of its minute claims, so a reused LSN would
 * silently drop an acknowledged event. (Found by the model-based test: seal, restart twice so the WAL is empty,
 * ingest into the sealed minute, lose power.)
 */
import { expect, it } from 'vitest';
import { MemFs } from '../support/memfs.js';
import { batch, countsByBatch, openOn } from '../support/durable.js';

it('an event ingested into a sealed minute after the WAL was checkpointed away survives power loss', async () => {
  const fs = new MemFs();
  let db = await openOn(fs);
  await db.ingest('ev', batch(0, 1));
  await db.flush();
  await db.close();
  db = await openOn(fs); // checkpoints the old WAL file away
  await db.close();
  db = await openOn(fs); // starts with an empty WAL
  await db.ingest('ev', batch(0, 1).map((e) => ({ ...e, id: 'other', batch: '1' })));
  const re = await openOn(fs.powerLossCopy());
  expect(await countsByBatch(re)).toEqual(new Map([[0, 1], [1, 1]]));
  await re.close();
  await db.close();
});
