// The head's columns count toward V8's external memory only once they are garbage (src/head/column-memory.ts), and
// are never what the head hands to another thread. Blocks of the sizes made ahead are handed out once each, after
// their pages were given to `populate`.
import { afterEach, describe, expect, it } from 'vitest';
import { setFlagsFromString } from 'node:v8';
import { readFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import { open } from 'tallydb';
import { DEFAULT_LIMITS } from '../../src/limits.js';
import { resolveDatasource } from '../../src/schema/datasource.js';
import { IngestPipeline } from '../../src/ingest/pipeline.js';
import { ColumnBlock, blocksAhead, columnMemory, reportedBytes, retire, setColumnMemoryForTests, setPopulateForTests } from '../../src/head/column-memory.js';
import { HEAD_BLOCKS_AHEAD } from '../../src/limits.js';
import { adjustExternalMemory, nativeStatus, populate } from '../../src/native/index.js';
import { headBytesPerRow } from '../../src/storage/store.js';
import { ReplicaFeed } from '../../src/replica/feed.js';
import { sealInputOf } from '../../src/segment/seal-input.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const T0 = Date.parse('2026-11-23T10:00:00Z');
const MB = 1 << 20;
/** V8's count of external memory (ArrayBuffer backing stores and what addons report), which starts its GCs. */
const v8External = (): number => adjustExternalMemory!(0);
/** A column in a block of its own. */
const columnU16 = (n: number): Uint16Array => new ColumnBlock(2 * n).u16(n);
const columnU32 = (n: number): Uint32Array => new ColumnBlock(4 * n).u32(n);
const columnF64 = (n: number): Float64Array => new ColumnBlock(8 * n).f64(n);

/** Collect, then let the FinalizationRegistry's cleanup task run. */
async function collect(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
}

const initial = columnMemory();
afterEach(() => {
  setColumnMemoryForTests(initial);
});

describe.runIf(nativeStatus.kind === 'native')('with the addon: shared column memory', () => {
  it('is the default when the addon loads', () => {
    expect(initial).toBe('shared');
  });

  it('a live column is not counted as external memory; a retired one is, once, until its buffer is collected', async () => {
    setColumnMemoryForTests('shared');
    await collect();
    const reported0 = reportedBytes();
    const external0 = v8External();
    let column: Uint32Array | null = columnU32(16 * MB / 4);
    expect(column.buffer).toBeInstanceOf(SharedArrayBuffer);
    // V8 leaves a SharedArrayBuffer out of its external count: the premise of the module.
    expect(v8External() - external0).toBeLessThan(8 * MB);
    expect(reportedBytes()).toBe(reported0);

    // Measured around each call alone, so that a collection of unrelated buffers cannot blur the figure.
    let before = v8External();
    retire([column]);
    expect(v8External() - before).toBeGreaterThan(15 * MB);
    expect(reportedBytes() - reported0).toBe(16 * MB);
    before = v8External();
    retire([column]);
    retire([column.subarray(5, 9)]); // another view of the same buffer
    expect(Math.abs(v8External() - before)).toBeLessThan(MB);
    expect(reportedBytes() - reported0).toBe(16 * MB);

    column = null;
    await collect();
    expect(reportedBytes()).toBe(reported0);
    expect(v8External() - external0).toBeLessThan(8 * MB);
  });

  it('columns retired together are reported as their sum, each buffer once however often it is listed', async () => {
    setColumnMemoryForTests('shared');
    await collect();
    const reported0 = reportedBytes();
    const a: Uint32Array | null = columnU32(4 * MB / 4);
    const b: Float64Array | null = columnF64(8 * MB / 8);
    const before = v8External();
    retire([a, null, b, a.subarray(3, 7), b]);
    expect(reportedBytes() - reported0).toBe(12 * MB);
    expect(v8External() - before).toBeGreaterThan(11 * MB);
    expect(v8External() - before).toBeLessThan(13 * MB);
    // Listed again with a new column: only the new one counts.
    const c: Uint16Array | null = columnU16(2 * MB / 2);
    retire([b, c, a]);
    expect(reportedBytes() - reported0).toBe(14 * MB);
  });

  it('the addon takes only a safe integer as the change, and V8\'s count is untouched by one it refuses', () => {
    const before = v8External();
    expect(() => (adjustExternalMemory as unknown as (d: unknown) => number)('1024')).toThrow(TypeError);
    expect(() => (adjustExternalMemory as unknown as () => number)()).toThrow(TypeError);
    for (const bad of [Number.NaN, Infinity, -Infinity, 1.5, 2 ** 60]) expect(() => adjustExternalMemory!(bad), String(bad)).toThrow(RangeError);
    expect(v8External()).toBe(before);
    // And one it takes moves the count by exactly that much.
    expect(adjustExternalMemory!(4096) - before).toBe(4096);
    expect(adjustExternalMemory!(-4096)).toBe(before);
  });

  it('a plain ArrayBuffer of the same size is counted while live (what the module avoids)', async () => {
    await collect();
    const external0 = v8External();
    const plain = new Uint32Array(16 * MB / 4);
    expect(v8External() - external0).toBeGreaterThanOrEqual(16 * MB);
    expect(plain.length).toBe(4 * MB);
  });

  it('a bucket retires each column it outgrows, and all of its columns when the head releases it; it stays readable', async () => {
    setColumnMemoryForTests('shared');
    const ds = resolveDatasource({ name: 'events', dimensions: ['image_id', 'location'], metrics: [{ name: 'cost', type: 'float' }], dedupKey: 'event_id' }, DEFAULT_LIMITS);
    const p = new IngestPipeline(ds, DEFAULT_LIMITS, () => T0 + 60_000);
    const events = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ ts: T0 + from + i, event_id: `e${from + i}`, image_id: `img${(from + i) % 7}`, location: 'bangalore', cost: from + i }));
    const first = await p.prepare(events(0, 200));
    p.commit(first);
    const [bucket] = p.head.liveBuckets();
    expect(bucket!.rowCount).toBe(200);
    // 256 rows of room at first (capacityFor(0)): offsets u16, two u32 id columns, one f64 metric, (hi, lo) keys.
    const perRow = headBytesPerRow(ds);
    const before = reportedBytes();
    p.commit(await p.prepare(events(200, 200)));
    expect(reportedBytes() - before).toBe(256 * perRow);

    const grown = reportedBytes();
    p.head.freeze(bucket!);
    expect(reportedBytes()).toBe(grown); // frozen is still the head's
    p.head.release(bucket!);
    expect(reportedBytes() - grown).toBe(512 * perRow);
    expect(bucket!.rowCount).toBe(400);
    expect(Array.from(bucket!.metricValues(0).subarray(0, 400))).toEqual(Array.from({ length: 400 }, (_, i) => i));
  });

  it('nothing the head hands to another thread is backed by its shared memory (the query thread\'s feed, seal inputs)', async () => {
    setColumnMemoryForTests('shared');
    const ds = resolveDatasource({ name: 'events', dimensions: ['image_id', 'location'], metrics: [{ name: 'cost', type: 'float' }], dedupKey: 'event_id' }, DEFAULT_LIMITS);
    const p = new IngestPipeline(ds, DEFAULT_LIMITS, () => T0 + 600_000);
    const events = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ ts: T0 + (from + i) * 100, event_id: `e${from + i}`, image_id: `img${(from + i) % 7}`, location: 'pune', cost: i }));
    p.commit(await p.prepare(events(0, 300)));
    const posted: unknown[] = [];
    const feed = new ReplicaFeed({ postMessage: (m: unknown, transfer?: readonly unknown[]) => posted.push(m, ...(transfer ?? [])), on: () => undefined } as never);
    feed.datasource(p, []); // the head as it is: its buckets' rows
    p.commit(await p.prepare(events(300, 900))); // appends across two minutes
    const [bucket] = p.head.liveBuckets();
    // The premise: the head's own columns are shared memory, so the checks below can fail.
    expect(bucket!.dimensionIds(0).buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(bucket!.metricValues(0).buffer).toBeInstanceOf(SharedArrayBuffer);
    const input = sealInputOf(bucket!, ds.dimensions.length, ds.metrics.length);
    p.head.freeze(bucket!);
    p.head.release(bucket!);
    expect(posted.map((m) => (m as { t?: string }).t).filter((t) => t !== undefined)).toEqual(['datasource', 'append', 'freeze', 'release']);
    const shared: string[] = [];
    const walk = (v: unknown, at: string): void => {
      if (v instanceof SharedArrayBuffer) shared.push(at);
      else if (ArrayBuffer.isView(v)) {
        if (v.buffer instanceof SharedArrayBuffer) shared.push(at);
      } else if (v !== null && typeof v === 'object' && !(v instanceof ArrayBuffer)) {
        for (const [k, x] of Object.entries(v)) walk(x, `${at}.${k}`);
      }
    };
    walk(posted, 'posted');
    walk(input, 'sealInput');
    expect(shared).toEqual([]);
    expect(input.ts.length).toBe(bucket!.rowCount);
  });

  it('closing an engine retires its head', async () => {
    setColumnMemoryForTests('shared');
    const db = await open({ memory: true, clock: () => T0 + 60_000 });
    await db.createDatasource({ name: 'events', dimensions: ['image_id'], dedupKey: 'event_id' });
    await db.ingest('events', Array.from({ length: 1000 }, (_, i) => ({ ts: T0 + i, event_id: `e${i}`, image_id: `img${i % 3}` })));
    const before = reportedBytes();
    await db.close();
    expect(reportedBytes() - before).toBeGreaterThanOrEqual(1000 * (2 + 4 + 8));
  });
});

describe('column blocks', () => {
  it('the columns of a block are disjoint and fill it exactly, in either memory', () => {
    for (const m of ['shared', 'plain'] as const) {
      if (m === 'shared' && adjustExternalMemory === null) continue;
      setColumnMemoryForTests(m);
      const rows = 300;
      const block = new ColumnBlock(rows * (8 * 2 + 4 * 3 + 2));
      const cols = [block.f64(rows), block.f64(rows), block.u32(rows), block.u32(rows), block.u32(rows), block.u16(rows)];
      cols.forEach((c, i) => c.fill(i + 1));
      cols.forEach((c, i) => expect(c.every((x) => x === i + 1), `column ${i}`).toBe(true));
      expect(new Set(cols.map((c) => c.buffer)).size).toBe(1);
      expect(cols.reduce((n, c) => n + c.byteLength, 0)).toBe(cols[0]!.buffer.byteLength);
      // One more column than the block holds does not fit.
      expect(() => block.u16(1)).toThrow(RangeError);
    }
  });
});

describe('blocks made ahead', () => {
  it.runIf(nativeStatus.kind === 'native')('blocks of a size asked for before come from groups made ahead and populated together, each handed out once; small, large and plain ones are made when asked for', async () => {
    const calls: ArrayBufferLike[][] = [];
    const previousPopulate = setPopulateForTests(async (...views) => {
      calls.push(views.map((v) => v.buffer));
      return true;
    });
    try {
      setColumnMemoryForTests('shared');
      const B = HEAD_BLOCKS_AHEAD.minBytes;
      const per = Math.floor(HEAD_BLOCKS_AHEAD.batchBytes / B);
      expect(per).toBeGreaterThan(2);
      const take = (bytes: number): ArrayBufferLike => new ColumnBlock(bytes).u16(bytes / 2).buffer;
      // The first block asked for is the first of a group made then; the others wait, given to one populate call.
      const handed = [take(B)];
      expect(calls.map((c) => c.length)).toEqual([per]);
      expect(handed[0]).toBe(calls[0]![0]);
      expect(blocksAhead()).toEqual([[B, per - 1]]);
      // The next blocks are the group's, in order; handing out its last makes the next group, so one always waits.
      for (let i = 1; i < per; i++) handed.push(take(B));
      expect(handed).toEqual(calls[0]);
      expect(calls.map((c) => c.length)).toEqual([per, per]);
      expect(blocksAhead()).toEqual([[B, per]]);
      handed.push(take(B));
      expect(handed[per]).toBe(calls[1]![0]);
      expect(new Set(handed).size).toBe(per + 1);
      // Groups of bigger blocks hold fewer. A second size is kept beside the first; a third displaces the size asked
      // for least recently, whose waiting blocks are garbage then, counted as such (as retired columns are).
      const per2 = Math.floor(HEAD_BLOCKS_AHEAD.batchBytes / (2 * B));
      take(2 * B);
      expect(blocksAhead()).toEqual([[B, per - 1], [2 * B, per2 - 1]]);
      take(B);
      expect(blocksAhead()).toEqual([[2 * B, per2 - 1], [B, per - 2]]);
      const reported0 = reportedBytes();
      take(4 * B);
      expect(blocksAhead()).toEqual([[B, per - 2], [4 * B, Math.floor(HEAD_BLOCKS_AHEAD.batchBytes / (4 * B)) - 1]]);
      expect(reportedBytes() - reported0).toBe((per2 - 1) * 2 * B);
      const before = calls.length;
      const again = take(2 * B);
      expect(calls.length).toBe(before + 1);
      expect(again).toBe(calls[before]![0]);
      // Below and above the sizes made ahead, nothing is; nor in plain memory.
      const made = calls.length;
      take(B - 8);
      take(HEAD_BLOCKS_AHEAD.maxBytes + 8);
      expect(calls.length).toBe(made);
      setColumnMemoryForTests('plain');
      take(B);
      take(B);
      expect(calls.length).toBe(made);
      expect(blocksAhead()).toEqual([]);
    } finally {
      setPopulateForTests(previousPopulate);
    }
  });

  it.runIf(populate !== null)('populate faults in the pages under a view without changing a byte, and the writer then takes next to no faults', async () => {
    const minorFaults = (): number => Number(readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1]!.split(' ')[7]);
    // 40 MiB: above the largest size glibc ever serves from its heap (32 MiB), so each buffer is a fresh mapping.
    const bytes = 40 * MB;
    const fresh = new Uint8Array(new SharedArrayBuffer(bytes));
    let f0 = minorFaults();
    for (let i = 0; i < bytes; i += 4096) fresh[i] = 1;
    const unpopulated = minorFaults() - f0;
    expect(unpopulated).toBeGreaterThan(bytes / 4096 / 2);

    const view = new Uint8Array(new SharedArrayBuffer(bytes));
    view[5] = 7; // written before and during: populate leaves the bytes as they are
    const other = new Uint8Array(new SharedArrayBuffer(4 * 4096));
    const done = populate!(view.subarray(3), other);
    view[bytes - 1] = 9;
    expect(await done).toBe(true);
    expect([view[5], view[bytes - 1], view[6]]).toEqual([7, 9, 0]);
    f0 = minorFaults();
    for (let i = 0; i < bytes; i += 4096) view[i] = 1;
    expect(minorFaults() - f0).toBeLessThan(unpopulated / 20);
    expect(() => (populate as unknown as (v: unknown) => unknown)(new ArrayBuffer(8))).toThrow(TypeError);
    expect(() => (populate as unknown as () => unknown)()).toThrow(TypeError);
  });
});

describe('plain column memory (no addon, or TALLYDB_NATIVE=0)', () => {
  it('columns are ArrayBuffers, which V8 counts itself, and retiring one reports nothing', () => {
    setColumnMemoryForTests('plain');
    const before = reportedBytes();
    const columns = [columnU16(10), columnU32(10), columnF64(10)];
    for (const c of columns) expect(c.buffer).toBeInstanceOf(ArrayBuffer);
    retire(columns);
    expect(reportedBytes()).toBe(before);
  });

  it('an engine on plain columns answers as one on shared columns', async () => {
    const answers: unknown[] = [];
    for (const mode of nativeStatus.kind === 'native' ? ['plain', 'shared'] as const : ['plain'] as const) {
      setColumnMemoryForTests(mode);
      const db = await open({ memory: true, clock: () => T0 + 3_600_000 });
      await db.createDatasource({ name: 'events', dimensions: ['image_id', 'location'], dedupKey: 'event_id' });
      // Enough rows in one minute to grow its bucket several times.
      await db.ingest('events', Array.from({ length: 5000 }, (_, i) => ({ ts: T0 + (i % 120) * 1000, event_id: `e${i}`, image_id: `img${i % 13}`, location: i % 3 === 0 ? 'bangalore' : 'pune' })));
      answers.push((await db.sql("SELECT image_id, count(*) AS n FROM events WHERE location = 'bangalore' GROUP BY image_id ORDER BY image_id")).rows);
      await db.close();
    }
    if (answers.length === 2) expect(answers[0]).toEqual(answers[1]);
    // 5000 rows, every third in bangalore, images i % 13: image k has the i ≡ 0 (mod 3), i ≡ k (mod 13) rows.
    const expected = Array.from({ length: 13 }, (_, k) => [`img${k}`, Array.from({ length: 5000 }, (_, i) => i).filter((i) => i % 3 === 0 && i % 13 === k).length]);
    expect(answers[0]).toEqual(expected.sort((a, b) => String(a[0]) < String(b[0]) ? -1 : 1));
  });
});
