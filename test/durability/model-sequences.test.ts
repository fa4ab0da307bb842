/**
 * Model-based: random sequences of ingest (with retries, late and bad events), seal, restart, kill and power loss
 * give the same ingest outcomes and query answers as the plain reference model, at every step. And a WAL reader
 * fuzz: any damage to a WAL file either replays a prefix of its records or stops with WAL_CORRUPT — nothing else.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Query, Tally } from 'tallydb';
import { frameRecord, scanRecords } from '../../src/wal/record.js';
import { replayWal } from '../../src/wal/replay.js';
import { TallyError } from '../../src/errors.js';
import { MemFs } from '../support/memfs.js';
import { Model } from '../support/model.js';
import { open } from 'tallydb';
import { DIR, openOn, SPEC, T0 } from '../support/durable.js';

const NOW = T0 + 10 * 86_400_000;
/** Short lateness, so that late events and sealing both happen within the generated 13 minutes. */
const spec = { ...SPEC, lateness: '3m' };
const QUERIES: Query[] = [
  { datasource: 'ev', groupBy: ['batch', 'kind'], aggregations: [{ name: 'n', type: 'count' }, { name: 's', type: 'sum', metric: 'v' }, { name: 'm', type: 'max', metric: 'v' }] },
  { datasource: 'ev', granularity: 'minute', filter: { not: { dimension: 'kind', eq: 'y' } }, aggregations: [{ name: 'n', type: 'count' }, { name: 'd', type: 'distinctCount', dimension: 'batch' }] },
  { datasource: 'ev', aggregations: [{ name: 'n', type: 'count' }, { name: 'a', type: 'avg', metric: 'v' }] },
];

type Cmd =
  | { kind: 'ingest'; events: unknown[] }
  | { kind: 'flush' }
  | { kind: 'restart' }
  | { kind: 'kill' }
  | { kind: 'powerLoss' };

const eventArb = fc.oneof(
  { weight: 12, arbitrary: fc.record({ m: fc.integer({ min: 0, max: 12 }), off: fc.integer({ min: 0, max: 59_999 }), id: fc.integer({ min: 0, max: 80 }), kind: fc.constantFrom('x', 'y'), v: fc.integer({ min: -9, max: 9 }) })
    .map((e) => ({ ts: T0 + e.m * 60_000 + e.off, id: `k${e.id}`, batch: `b${e.id % 7}`, kind: e.kind, v: e.v })) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>({ ts: 'bad', id: 'z' }, { id: 'q' }, 7, { ts: T0, id: 'w', v: 1.5 }) },
);
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 6, arbitrary: fc.array(eventArb, { maxLength: 25 }).map((events) => ({ kind: 'ingest' as const, events })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'flush' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'kill' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'powerLoss' as const }) },
);

async function run(cmds: Cmd[]): Promise<void> {
  let fs = new MemFs();
  const reopen = async (disk: MemFs): Promise<Tally> => {
    const db = await open({ dir: DIR, fileSystem: disk, walSegmentBytes: 512, clock: () => NOW });
    await db.createDatasource(spec); // a no-op after the first time: the definition is in the manifest
    return db;
  };
  let db = await reopen(fs);
  const model = new Model({ ...spec, latenessMs: 3 * 60_000 }, { now: NOW, futureToleranceMs: 3_600_000, maxCardinality: 10_000_000 });
  for (const cmd of cmds) {
    switch (cmd.kind) {
      case 'ingest': {
        const got = await db.ingest('ev', cmd.events);
        const want = model.ingest(cmd.events);
        expect({ ...got, rejected: got.rejected.map((r) => [r.index, r.code]) }).toEqual({ ...want, rejected: want.rejected.map((r) => [r.index, r.code]) });
        break;
      }
      case 'flush':
        await db.flush();
        break;
      case 'restart':
        await db.close();
        db = await reopen(fs);
        break;
      case 'kill': // the process dies; the OS keeps what it was given
        fs = fs.clone();
        db = await reopen(fs);
        break;
      case 'powerLoss': // only fsynced bytes survive; in 'always' mode that is everything acknowledged
        fs = fs.powerLossCopy();
        db = await reopen(fs);
        break;
    }
    for (const q of QUERIES) expect({ rows: (await db.query(q)).rows }).toEqual({ rows: model.query(q).rows });
  }
  await db.close();
}

describe('random ingest / seal / restart / crash sequences', () => {
  it('match the reference model at every step', async () => {
    await fc.assert(fc.asyncProperty(fc.array(cmdArb, { minLength: 1, maxLength: 14 }), run), { numRuns: Number(process.env.PROPERTY_RUNS ?? 200) });
  }, 240_000);
});

describe('WAL reader fuzz', () => {
  it('damaged WAL bytes replay a prefix of the records or stop with WAL_CORRUPT, nothing else', async () => {
    const base = new MemFs();
    const db = await openOn(base);
    for (let b = 0; b < 6; b++) await db.ingest('ev', Array.from({ length: 4 }, (_, i) => ({ ts: T0 + b * 1000 + i, id: `${b}-${i}`, batch: String(b), kind: 'x', v: i })));
    await db.close();
    const name = (await base.list(`${DIR}/wal`))[0]!;
    const original = Buffer.from(base.bytes(`${DIR}/wal/${name}`));
    const lsns = [...scanRecords(original, 16)].filter((s) => s.kind === 'record').length;
    expect(lsns).toBe(6);
    const mutation = fc.oneof(
      fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ op: fc.constant('cut' as const), at: fc.nat() }),
      fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
      fc.record({ op: fc.constant('frame' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 60 }) }),
    );
    await fc.assert(fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (muts) => {
      let bytes = Buffer.from(original);
      for (const m of muts) {
        const at = 16 + (m.at % Math.max(1, bytes.length - 16));
        if (m.op === 'flip') bytes[at]! ^= 1 << m.bit;
        else if (m.op === 'cut') bytes = bytes.subarray(0, at);
        else if (m.op === 'insert') bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(m.bytes), bytes.subarray(at)]);
        else bytes = Buffer.concat([bytes.subarray(0, at), frameRecord(Buffer.from(m.bytes)), bytes.subarray(at)]);
      }
      const fs = new MemFs();
      await fs.mkdirp('/w');
      const f = await fs.openWrite(`/w/${name}`, true);
      await f.write(bytes, 0);
      await f.close();
      const seen: number[] = [];
      try {
        await replayWal(fs, '/w', { repair: false }, (rec) => seen.push(rec.lsn));
      } catch (e) {
        expect(e).toBeInstanceOf(TallyError);
        expect((e as TallyError).code).toBe('WAL_CORRUPT');
      }
      // Whatever was applied is a prefix of the original records (LSNs 1..6), in order, each whole.
      expect(seen).toEqual(Array.from({ length: seen.length }, (_, i) => i + 1));
    }), { numRuns: Number(process.env.PROPERTY_RUNS ?? 500) });
  });
});
