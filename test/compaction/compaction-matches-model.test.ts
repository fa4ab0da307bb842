/**
 * Property: random ingest histories (late, duplicate and bad events included) with seals, compaction, restarts and
 * kills at random points give query answers identical to the plain reference model and to an uncompacted
 * in-memory engine — without rollup, and with rollup by minute and by hour (queries aligned to the rollup
 * granularity, where rollup promises exact answers). A canary shows the property fails for a wrong model.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { open, type DatasourceSpec, type Query, type Tally } from 'tallydb';
import { MemFs } from '../support/memfs.js';
import { Model } from '../support/model.js';
import { setKernelsForTests } from '../../src/native/index.js';
import { setSegmentIndexMaxForTests } from '../../src/segment/format.js';

const T0 = Date.parse('2026-11-23T00:00:00Z');
const NOW = T0 + 10 * 86_400_000;
const M = 60_000;
const H = 3_600_000;
const LATENESS = 10 * M;

type Variant = 'none' | 'minute' | 'hour';

type Cmd =
  | { kind: 'ingest'; events: { minute: number; off: number; d0: string; d1: string | null; v: number | null; retry: boolean }[] }
  | { kind: 'advance'; minutes: number }
  | { kind: 'flush' }
  | { kind: 'compact' }
  | { kind: 'restart' }
  | { kind: 'kill' };

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 5, arbitrary: fc.array(fc.record({
    minute: fc.integer({ min: -14, max: 2 }), off: fc.integer({ min: 0, max: M - 1 }),
    d0: fc.constantFrom('a', 'b', 'c'), d1: fc.option(fc.constantFrom('x', 'y'), { nil: null }),
    v: fc.option(fc.integer({ min: -20, max: 20 }), { nil: null }), retry: fc.boolean(),
  }), { maxLength: 40 }).map((events) => ({ kind: 'ingest' as const, events })) },
  { weight: 4, arbitrary: fc.oneof(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 30, max: 150 })).map((minutes) => ({ kind: 'advance' as const, minutes })) },
  { weight: 2, arbitrary: fc.constant({ kind: 'flush' as const }) },
  { weight: 3, arbitrary: fc.constant({ kind: 'compact' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'kill' as const }) },
);

function specFor(variant: Variant): DatasourceSpec {
  const base: DatasourceSpec = { name: 'ev', dimensions: ['d0', 'd1'], metrics: [{ name: 'v', type: 'int' }], lateness: LATENESS };
  // Rollup drops the dedup key hashes, so it waits until rows leave the dedup window; the rollup variants run
  // without a dedup key so that rollup happens at the hour merge.
  if (variant === 'none') return { ...base, dedupKey: 'id', dedupWindow: '1000h' };
  return { ...base, rollup: { granularity: variant } };
}

function queries(variant: Variant, cursor: number): Query[] {
  const aggs = [
    { name: 'n', type: 'count' as const },
    { name: 'c', type: 'count' as const, metric: 'v' },
    { name: 's', type: 'sum' as const, metric: 'v' },
    { name: 'lo', type: 'min' as const, metric: 'v' },
    { name: 'hi', type: 'max' as const, metric: 'v' },
    { name: 'avg', type: 'avg' as const, metric: 'v' },
    { name: 'nx', type: 'count' as const, filter: { dimension: 'd1', eq: 'x' } },
    { name: 'dd', type: 'distinctCount' as const, dimension: 'd0' },
  ];
  const unit = variant === 'hour' ? H : M;
  const hourStart = cursor - (cursor % H);
  const out: Query[] = [
    { datasource: 'ev', aggregations: aggs },
    { datasource: 'ev', groupBy: ['d0', 'd1'], aggregations: aggs },
    { datasource: 'ev', granularity: 'hour', groupBy: ['d1'], aggregations: aggs },
    { datasource: 'ev', from: hourStart - 2 * H, to: hourStart, filter: { not: { dimension: 'd0', eq: 'a' } }, aggregations: aggs },
    { datasource: 'ev', from: T0 + (unit === H ? 0 : 7 * M), to: hourStart + H, granularity: 'day', groupBy: ['d0'], aggregations: aggs },
  ];
  // Row counts per fixed bucket (the executor's per-bucket counter path), over multi-minute segments.
  out.push({ datasource: 'ev', granularity: variant === 'hour' ? '60 minutes' : '5 minutes', filter: { dimension: 'd1', eq: 'x' }, aggregations: [{ name: 'n', type: 'count' }, { name: 'n2', type: 'count' }] });
  if (variant !== 'hour') out.push({ datasource: 'ev', granularity: variant === 'none' ? 'minute' : '5 minutes', groupBy: ['d0'], aggregations: aggs.slice(0, 3) });
  return out;
}

async function run(variant: Variant, cmds: Cmd[], broken = false): Promise<{ merges: number; rolledUp: number }> {
  const spec = specFor(variant);
  let fs = new MemFs();
  const reopen = async (disk: MemFs): Promise<Tally> => {
    const db = await open({ dir: '/db', fileSystem: disk, clock: () => NOW, walSegmentBytes: 4096, compaction: { auto: false } });
    await db.createDatasource(spec);
    return db;
  };
  let db = await reopen(fs);
  const mem = await open({ memory: true, clock: () => NOW });
  await mem.createDatasource(spec);
  const model = new Model({ ...spec, latenessMs: LATENESS }, { now: NOW, futureToleranceMs: 3_600_000, maxCardinality: 10_000_000, broken });
  let cursor = T0 + 30 * M;
  let serial = 0;
  let previous: Record<string, unknown>[] = [];
  let merges = 0;
  let rolledUp = 0;
  const count = (): void => {
    const c = db.stats('ev').storage!.compaction;
    merges += c.merges;
    rolledUp += c.rollupRowsIn;
  };
  try {
    for (const cmd of cmds) {
      switch (cmd.kind) {
        case 'ingest': {
          const events: Record<string, unknown>[] = cmd.events.map((e, i) => {
            // A retry resends an event of the previous batch as it was (same id and time).
            if (e.retry && previous.length > 0 && variant === 'none') return previous[i % previous.length]!;
            const ev: Record<string, unknown> = { ts: cursor + e.minute * M + e.off, d0: e.d0 };
            if (e.d1 !== null) ev.d1 = e.d1;
            if (e.v !== null) ev.v = e.v;
            if (variant === 'none') ev.id = `e${serial++}`;
            return ev;
          });
          const got = await db.ingest('ev', events);
          const want = model.ingest(events);
          expect(await mem.ingest('ev', events)).toEqual(got);
          expect({ ...got, rejected: got.rejected.map((r) => [r.index, r.code]) }).toEqual({ ...want, rejected: want.rejected.map((r) => [r.index, r.code]) });
          previous = events;
          break;
        }
        case 'advance':
          cursor += cmd.minutes * M;
          break;
        case 'flush':
          await db.flush();
          break;
        case 'compact':
          await db.compact();
          break;
        case 'restart':
          count();
          await db.close();
          db = await reopen(fs);
          break;
        case 'kill':
          count();
          fs = fs.clone();
          db = await reopen(fs);
          break;
      }
      for (const q of queries(variant, cursor)) {
        const want = model.query(q);
        expect({ columns: (await db.query(q)).columns, rows: (await db.query(q)).rows }).toEqual(want);
        expect((await mem.query(q)).rows).toEqual(want.rows);
      }
    }
    count();
  } finally {
    await db.close();
    await mem.close();
  }
  return { merges, rolledUp };
}

// Histories long enough for hours to settle: the cursor moves through several hours.
const historyArb = fc.array(cmdArb, { minLength: 10, maxLength: 50, size: 'max' });

describe.each(['none', 'minute', 'hour'] as Variant[])('compaction with rollup %s', (variant) => {
  it('gives the answers of the reference model and of an uncompacted engine at every step', async () => {
    let merges = 0;
    let rolledUp = 0;
    await fc.assert(fc.asyncProperty(historyArb, async (cmds) => {
      const r = await run(variant, cmds);
      merges += r.merges;
      rolledUp += r.rolledUp;
    }), { numRuns: Number(process.env.PROPERTY_RUNS ?? 25) });
    // The property spoke about compacted data: merges (and, with rollup, rollup merges) happened.
    expect(merges).toBeGreaterThan(0);
    if (variant !== 'none') expect(rolledUp).toBeGreaterThan(0);
  }, 300_000);
});

describe('segments that store no bitmaps (every dimension above the index threshold)', () => {
  it('give the same answers, compacted or not', async () => {
    const previous = setSegmentIndexMaxForTests(1);
    try {
      await fc.assert(fc.asyncProperty(historyArb, async (cmds) => {
        await run('none', cmds);
      }), { numRuns: Number(process.env.PROPERTY_RUNS ?? 15) });
    } finally {
      setSegmentIndexMaxForTests(previous);
    }
  }, 300_000);
});

describe('compacted segments read with the TypeScript kernels (the fallback of the native addon)', () => {
  it('give the same answers', async () => {
    const previous = setKernelsForTests('typescript');
    try {
      await fc.assert(fc.asyncProperty(historyArb, async (cmds) => {
        await run('none', cmds);
      }), { numRuns: Number(process.env.PROPERTY_RUNS ?? 10) });
    } finally {
      setKernelsForTests(previous);
    }
  }, 300_000);
});

describe('canary', () => {
  it('the same property finds a model that counts one event twice', async () => {
    const cmds: Cmd[] = [{ kind: 'ingest', events: Array.from({ length: 5 }, (_, i) => ({ minute: 0, off: i, d0: 'a', d1: 'x', v: 1, retry: false })) }];
    await expect(run('hour', cmds, true)).rejects.toThrow(/expected/);
    await expect(run('hour', cmds, false)).resolves.toBeDefined();
  });
});
