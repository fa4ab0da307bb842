/**
 * A sealed bucket's segment is the same bytes whether the seal worker encodes it or the engine's thread does
 * (segment/seal-input.ts): its SealInput renumbers each dimension's ids into the values the bucket uses and keeps
 * everything else, and buildSegment depends on values, never on the ids' numbering. A failed or ended seal worker
 * costs no row: the minute stays readable and in the WAL, and the seal succeeds when retried.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import { open, type Tally } from 'tallydb';
import { buildSegment } from '../../src/segment/format.js';
import { sealInputOf, sourceOfSealInput } from '../../src/segment/seal-input.js';
import { resolveDatasource } from '../../src/schema/datasource.js';
import { DEFAULT_LIMITS } from '../../src/limits.js';
import { IngestPipeline } from '../../src/ingest/pipeline.js';
import { rng } from '../../src/cli/generate.js';
import { MemFs } from '../support/memfs.js';
import { batch, countsByBatch, openOn } from '../support/durable.js';

const SPEC = {
  name: 'ev', dimensions: ['image', 'city', 'kind'], metrics: [{ name: 'clicks', type: 'int' as const }, { name: 'cost', type: 'float' as const }],
  dedupKey: 'id', lateness: '1d', dedupWindow: '1d',
};
const T = Date.parse('2026-11-23T00:00:00Z');

/** Events over `minutes` minutes: values first met in descending order, nulls, absent metrics, skewed images. */
function events(n: number, minutes: number, seed: number): object[] {
  const rnd = rng(seed);
  return Array.from({ length: n }, (_, i) => ({
    ts: T + Math.floor(rnd() * minutes * 60_000),
    id: `e${seed}-${i}`,
    image: rnd() < 0.05 ? null : `img${999 - Math.floor(rnd() * rnd() * 1000)}`,
    city: ['zurich', 'pune', 'bangalore', 'accra'][Math.floor(rnd() * 4)],
    ...(rnd() < 0.3 ? {} : { kind: rnd() < 0.5 ? 'click' : 'view' }),
    clicks: Math.floor(rnd() * 3),
    ...(rnd() < 0.2 ? {} : { cost: Math.round(rnd() * 1000) / 100 }),
  }));
}

async function headOf(n: number, minutes: number, seed: number): Promise<IngestPipeline> {
  const ds = resolveDatasource(SPEC, DEFAULT_LIMITS);
  const p = new IngestPipeline(ds, DEFAULT_LIMITS, () => T + 86_400_000);
  for (let b = 0; b < 4; b++) p.commit(await p.prepare(events(n / 4, minutes, seed * 10 + b)));
  return p;
}

it('a bucket built from its seal input makes byte for byte the segment the bucket itself makes', async () => {
  // Three minutes share one head dictionary, so each bucket uses a part of it, numbered in no sorted order.
  const p = await headOf(6000, 3, 1);
  const buckets = p.head.liveBuckets();
  expect(buckets.length).toBe(3);
  for (const b of buckets) {
    expect(b.rowCount).toBeGreaterThan(1000);
    const input = sealInputOf(b, 3, 2);
    expect(input.dims[0]!.values.length).toBeLessThan(p.head.dictionaries[0]!.size - 1);
    const direct = buildSegment(b, p.ds, 42).bytes;
    expect(Buffer.compare(buildSegment(sourceOfSealInput(input), p.ds, 42).bytes, direct)).toBe(0);
  }
});

it('canary: a seal input that loses one row\'s value does not make the same bytes', async () => {
  const p = await headOf(2000, 1, 2);
  const b = p.head.liveBuckets()[0]!;
  const input = sealInputOf(b, 3, 2);
  const r = input.dims[1]!.ids.findIndex((id, i) => i > 0 && id !== input.dims[1]!.ids[0]);
  input.dims[1]!.ids[r] = input.dims[1]!.ids[0]!;
  expect(Buffer.compare(buildSegment(sourceOfSealInput(input), p.ds, 42).bytes, buildSegment(b, p.ds, 42).bytes)).not.toBe(0);
});

/** Every segment file of `dir`, by name. */
function segmentFiles(dir: string): Map<string, Buffer> {
  const root = path.join(dir, 'segments', 'ev');
  return new Map(readdirSync(root).map((f) => [f, readFileSync(path.join(root, f))]));
}

it('seals through the seal worker write the same segment files as seals on the engine\'s thread', async () => {
  const dirs = [mkdtempSync(path.join(tmpdir(), 'tallydb-seal-')), mkdtempSync(path.join(tmpdir(), 'tallydb-seal-'))];
  try {
    const dbs: Tally[] = [];
    for (const [i, dir] of dirs.entries()) {
      const db = await open({ dir, clock: () => T + 86_400_000, compaction: { auto: false }, testHooks: { sealWorkerMinRows: i === 0 ? 1 : Infinity } });
      await db.createDatasource(SPEC);
      for (let b = 0; b < 5; b++) await db.ingest('ev', events(3000, 4, 100 + b));
      await db.flush();
      dbs.push(db);
    }
    expect(dbs[0]!.stats('ev').storage!.sealEncodings).toMatchObject({ inline: 0 });
    expect(dbs[0]!.stats('ev').storage!.sealEncodings.worker).toBeGreaterThanOrEqual(4);
    expect(dbs[1]!.stats('ev').storage!.sealEncodings).toMatchObject({ worker: 0 });
    const q = { datasource: 'ev', groupBy: ['city', 'kind'], aggregations: [{ name: 'n', type: 'count' as const }, { name: 'c', type: 'sum' as const, metric: 'cost' }] };
    expect(await dbs[0]!.query(q)).toMatchObject({ rows: (await dbs[1]!.query(q)).rows });
    for (const db of dbs) await db.close();
    const [viaWorker, inline] = dirs.map(segmentFiles);
    expect(viaWorker!.size).toBeGreaterThanOrEqual(4);
    expect([...viaWorker!.keys()]).toEqual([...inline!.keys()]);
    for (const [name, bytes] of viaWorker!) expect(Buffer.compare(bytes, inline!.get(name)!), name).toBe(0);
  } finally {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
});

it('while the head is over its budget, the engine\'s thread encodes; within it, the seal worker', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tallydb-seal-'));
  try {
    // 6,000 rows over 12 minutes: ~230 KB of head estimate against a budget of 100 KB, so the oldest minutes are
    // sealed at once, on this thread, until the head is back within budget; flush seals the rest in the worker.
    const db = await open({ dir, clock: () => T + 86_400_000, headBytes: 100_000, compaction: { auto: false }, testHooks: { sealWorkerMinRows: 1 } });
    await db.createDatasource(SPEC);
    await db.ingest('ev', events(6000, 12, 7));
    await db.flush();
    const { worker, inline } = db.stats('ev').storage!.sealEncodings;
    expect(inline).toBeGreaterThan(0);
    expect(worker).toBeGreaterThan(0);
    expect(worker + inline).toBeGreaterThanOrEqual(12);
    expect((await db.query({ datasource: 'ev', aggregations: [{ name: 'n', type: 'count' }] })).rows).toEqual([[6000]]);
    await db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const fault of ['throw', 'exit'] as const) {
  it(`a seal worker that ${fault === 'throw' ? 'fails' : 'ends mid-encoding'} keeps the minute readable and in the WAL; the retry seals it`, async () => {
    const fs = new MemFs();
    let failing = true;
    const db = await openOn(fs, { testHooks: { sealWorkerMinRows: 1, sealFault: () => (failing ? fault : undefined) } });
    await db.ingest('ev', batch(0, 50));
    await db.ingest('ev', batch(1, 30));
    await expect(db.flush()).rejects.toThrow(/seal worker|exit/);
    expect(db.stats('ev').storage!.lastSealError).not.toBeNull();
    expect(db.stats('ev').head.rows).toBe(80);
    expect(await countsByBatch(db)).toEqual(new Map([[0, 50], [1, 30]]));
    failing = false;
    await db.flush();
    expect(db.stats('ev').head.rows).toBe(0);
    expect(db.stats('ev').storage!.sealEncodings.worker).toBeGreaterThan(0);
    expect(db.stats('ev').storage!.lastSealError).toBeNull();
    expect(await countsByBatch(db)).toEqual(new Map([[0, 50], [1, 30]]));
    await db.close();
    const re = await openOn(fs.powerLossCopy());
    expect(await countsByBatch(re)).toEqual(new Map([[0, 50], [1, 30]]));
    await re.close();
  });
}
