/**
 * A merge keeps the dedup key of every row that still has one, also next to rolled-up rows (which have none and
 * get the (0, 0) marker recovery skips), so a restart never forgets a key a retry may still need.
 */
import { expect, it } from 'vitest';
import { mergeSegments } from '../../src/compact/merge.js';
import { buildSegment, readFooter, readSection } from '../../src/segment/format.js';
import { decode } from '../../src/segment/reader.js';
import { Dictionary } from '../../src/head/dictionary.js';
import { resolveDatasource } from '../../src/schema/datasource.js';
import { DEFAULT_LIMITS } from '../../src/limits.js';
import { IngestPipeline } from '../../src/ingest/pipeline.js';
import type { SegmentSource } from '../../src/segment/format.js';

const ds = resolveDatasource({ name: 'ev', dimensions: ['d'], metrics: [{ name: 'v', type: 'int' }], dedupKey: 'id', rollup: { granularity: 'minute' } }, DEFAULT_LIMITS);
const T = Date.parse('2026-11-23T00:00:00Z');

function source(ts: number[], values: string[], keys: number[]): SegmentSource {
  const dict = new Dictionary();
  const ids = Uint32Array.from(values.map((v) => dict.intern(v)));
  return {
    minTs: Math.min(...ts), maxTs: Math.max(...ts), rowCount: ts.length,
    dictionary: () => dict, dimensionIds: () => ids, metricValues: () => Float64Array.from(ts.map(() => 1)),
    timestamps: () => Float64Array.from(ts), timestampsFor: (sel) => ({ ts: Float64Array.from(ts), sel }),
    bucketCounts: () => { throw new Error('not read by the merge'); },
    selectTimeRange: () => { throw new Error('not read by the merge'); }, indexed: () => false,
    bitmap: () => null, rollup: () => null,
    keyHashes: () => Uint32Array.from(keys),
  };
}

function bytes(src: SegmentSource): Uint8Array {
  return buildSegment(src, ds, 1).bytes;
}

function keysOf(seg: Uint8Array): { ts: Float64Array; keys: Uint32Array | null; rows: number } {
  const b = Buffer.from(seg.buffer, seg.byteOffset, seg.byteLength);
  const read = (p: number, l: number): Buffer => b.subarray(p, p + l);
  const f = readFooter(b.length, read);
  return { rows: f.rows, ts: decode.timestamps(readSection(f.sections[f.ts]!, read), f), keys: f.keys < 0 ? null : decode.u32(readSection(f.sections[f.keys]!, read)) };
}

it('rolled-up rows merged with keyed rows: keyed rows keep their keys, rolled rows get (0, 0), recovery skips those', () => {
  // Three identical events of one minute roll up into one row (and lose their keys: they left the window).
  const rolled = mergeSegments([bytes(source([T, T + 1, T + 2], ['a', 'a', 'a'], [1, 1, 2, 2, 3, 3]))], ds, { rollupMs: 60_000, keepKeys: false });
  expect(keysOf(rolled)).toMatchObject({ rows: 1, keys: null });
  const fresh = bytes(source([T + 30 * 60_000, T + 31 * 60_000], ['b', 'c'], [7, 8, 9, 10]));
  const merged = mergeSegments([rolled, fresh], ds, { rollupMs: null, keepKeys: true });
  const m = keysOf(merged);
  expect(m.rows).toBe(3);
  const pairs = Array.from({ length: m.rows }, (_, r) => [m.ts[r], m.keys![2 * r], m.keys![2 * r + 1]]).sort((x, y) => x[0]! - y[0]!);
  expect(pairs).toEqual([[T, 0, 0], [T + 30 * 60_000, 7, 8], [T + 31 * 60_000, 9, 10]]);

  const p = new IngestPipeline(ds, DEFAULT_LIMITS, () => T + 86_400_000);
  p.restoreFromSegment(m.ts, m.keys, m.rows);
  expect(p.dedup!.stats().keys).toBe(2);
});
