/** The CLI commands work against a data directory: import (NDJSON and CSV), sql, and bench ingest's report. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { open } from 'tallydb';
import { openTarget } from '../../src/cli/target.js';
import { importFile } from '../../src/cli/import.js';
import { benchIngest, formatBenchReport } from '../../src/cli/bench.js';

const work = mkdtempSync(path.join(tmpdir(), 'tallydb-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const NOW = Date.now();

it('import reads NDJSON and CSV into a datasource, reporting bad lines; sql reads them back', async () => {
  const dir = path.join(work, 'import');
  const db = await open({ dir });
  await db.createDatasource({ name: 'ev', dimensions: ['event', 'location'], metrics: [{ name: 'cost', type: 'float' }], lateness: '1d' });
  await db.close();
  const nd = path.join(work, 'a.ndjson');
  writeFileSync(nd, [`{"ts": ${NOW}, "event": "click", "cost": 1.5}`, 'not json', `{"ts": ${NOW}, "event": "impression", "colour": "x"}`, `{"ts": ${NOW}, "event": "click"}`].join('\n'));
  const csv = path.join(work, 'b.csv');
  writeFileSync(csv, `ts,event,location,cost\n${NOW},click,"bang,alore",2.25\n${new Date(NOW).toISOString()},impression,delhi,\n`);
  const target = await openTarget({ dir });
  const a = await importFile(target, nd, 'ev', { batch: 2, progress: false });
  expect(a).toMatchObject({ read: 4, accepted: 2, rejected: 1, unparsable: 1 });
  const b = await importFile(target, csv, 'ev', { batch: 10, progress: false });
  expect(b).toMatchObject({ read: 2, accepted: 2, rejected: 0 });
  const r = await target.sql('SELECT event, count(*), sum(cost) FROM ev GROUP BY event ORDER BY event');
  expect(r.rows).toEqual([['click', 3, 3.75], ['impression', 1, null]]);
  expect((await target.sql("SELECT count(*) FROM ev WHERE location = 'bang,alore'")).rows).toEqual([[1]]);
  await target.close();
});

it('bench ingest reports throughput, acknowledgement latency percentiles and bytes on disk', async () => {
  const target = await openTarget({ dir: path.join(work, 'bench'), fsync: 'none' });
  const r = await benchIngest(target, { events: 20_000, durationS: 60, batch: 2000, concurrency: 2, images: 1000, zipf: 1.1, locations: 10, progress: false }, false, () => {});
  await target.close();
  expect(r.events).toBe(20_000);
  expect(r.eventsPerSecond).toBeGreaterThan(0);
  expect(r.ackMs.p50).toBeLessThanOrEqual(r.ackMs.p99);
  expect(r.ackMs.p99).toBeLessThanOrEqual(r.ackMs.max);
  expect(r.bytesPerEvent).toBeGreaterThan(0);
  expect(formatBenchReport(r, 'x')).toMatch(/events\/s[\s\S]*p99/);
});
