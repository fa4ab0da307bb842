/**
 * What a user writes in their own vitest suite: an in-memory tallydb per test, no files, no threads, no cleanup
 * beyond close(). This file is the example README.md points to.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { open, type Tally } from 'tallydb';

let db: Tally;

beforeEach(async () => {
  db = await open({ memory: true }); // no files, no threads: one per test
  await db.createDatasource({
    name: 'events',
    dimensions: ['event', 'image_id', 'location', 'gender'],
    metrics: [{ name: 'cost', type: 'float' }],
    dedupKey: 'event_id',
  });
});

afterEach(() => db.close());

it('counts clicks for an image by location and gender, and reports CTR', async () => {
  const now = Date.now();
  await db.ingest('events', [
    { ts: now, event_id: '1', event: 'impression', image_id: 'img0', location: 'bangalore', gender: 'male' },
    { ts: now, event_id: '2', event: 'click', image_id: 'img0', location: 'bangalore', gender: 'male', cost: 0.25 },
    { ts: now, event_id: '2', event: 'click', image_id: 'img0', location: 'bangalore', gender: 'male', cost: 0.25 }, // a retry
    { ts: now, event_id: '3', event: 'impression', image_id: 'img0', location: 'bangalore', gender: 'male' },
  ]);

  const { rows } = await db.sql(`
    SELECT countIf(event = 'click') AS clicks,
           countIf(event = 'click') / countIf(event = 'impression') AS ctr
      FROM events
     WHERE image_id = 'img0' AND location = 'bangalore' AND gender = 'male' AND ts >= now() - INTERVAL 1 DAY`);

  expect(rows).toEqual([[1, 0.5]]);
});

it('shows why an event was refused', async () => {
  const result = await db.ingest('events', [{ ts: Date.now(), event_id: '9', clicks: 3 }]);
  expect(result.rejected[0]).toMatchObject({ index: 0, code: 'FIELD_UNKNOWN' });
});
