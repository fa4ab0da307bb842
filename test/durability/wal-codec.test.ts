/**
 * A WAL record decodes to exactly the batch that was encoded — with ids stored 1, 2 or 4 bytes wide and times as
 * u32 offsets or f64 — and version 1 payloads (written before narrow columns) still decode. A malformed width or
 * column is an error (reported as corruption by replay), never a half-decoded batch. Records are packed into buffers
 * the codec reuses: a record being compressed keeps its buffer, and no other msgpackr pack lands in one.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pack } from 'msgpackr';
import { decodeBatch, encodeBatch, encodeBatchAsync, type BatchRecord } from '../../src/wal/record.js';
import { compress } from '../../src/storage/compress.js';

const bytes = (a: Float64Array | Uint32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

const recordArb: fc.Arbitrary<BatchRecord> = fc.record({
  n: fc.integer({ min: 0, max: 40 }),
  cards: fc.array(fc.constantFrom(1, 2, 256, 257, 65_536, 65_537), { minLength: 1, maxLength: 3 }),
  base: fc.integer({ min: 0, max: 2 ** 44 }),
  span: fc.constantFrom(0, 60_000, 2 ** 32 - 1, 2 ** 32, 2 ** 40),
  metrics: fc.integer({ min: 0, max: 2 }),
  keyed: fc.boolean(),
  seed: fc.integer(),
}).map(({ n, cards, base, span, metrics, keyed, seed }) => {
  let x = seed | 0;
  const rnd = (): number => ((x = (Math.imul(x, 1103515245) + 12345) | 0) >>> 0) / 2 ** 32;
  const ts = new Float64Array(n);
  for (let i = 0; i < n; i++) ts[i] = base + Math.floor(rnd() * (span + 1));
  if (n > 1) ts[n - 1] = base + span; // the span's far end is present
  return {
    lsn: 7, ds: 'ev', n, ts,
    dims: cards.map((card) => {
      const values = Array.from({ length: card }, (_, i) => (i === 0 ? null : `v${i}`));
      const ids = new Uint32Array(n);
      for (let i = 0; i < n; i++) ids[i] = Math.floor(rnd() * card);
      if (n > 0) ids[0] = card - 1; // the widest id is present
      return { values, ids };
    }),
    metrics: Array.from({ length: metrics }, () => Float64Array.from({ length: n }, () => (rnd() < 0.5 ? NaN : rnd() * 100))),
    keyHashes: keyed ? Uint32Array.from({ length: 2 * n }, () => Math.floor(rnd() * 2 ** 32)) : null,
  };
});

describe('WAL record codec', () => {
  it('decode(encode(batch)) is the batch, for every id width and time range', () => {
    fc.assert(fc.property(recordArb, (r) => {
      const back = decodeBatch(encodeBatch(r));
      expect(back).toEqual(r);
    }), { numRuns: 60 });
  });

  it('records packed at once, each compressed on the thread pool, keep their own bytes until compressed, also records too big for a pack buffer', async () => {
    const records = fc.sample(recordArb, { numRuns: 40, seed: 11 });
    // A record of 40k rows (~840 KB packed) does not fit a pack buffer of 512 KB: msgpackr packs it into its own.
    const big = (lsn: number): BatchRecord => {
      const n = 40_000;
      return { lsn, ds: 'ev', n, ts: Float64Array.from({ length: n }, (_, i) => 1000 + i), dims: [{ values: [null, 'a', 'b'], ids: Uint32Array.from({ length: n }, (_, i) => i % 3) }], metrics: [Float64Array.from({ length: n }, (_, i) => i / 2)], keyHashes: Uint32Array.from({ length: 2 * n }, (_, i) => i) };
    };
    const all = [...records.slice(0, 20), big(1), ...records.slice(20), big(2)];
    for (let round = 0; round < 2; round++) {
      const payloads = await Promise.all(all.map((r) => encodeBatchAsync(r)));
      payloads.forEach((p, i) => expect(decodeBatch(p)).toEqual(all[i]));
      // The same bytes as the synchronous codec.
      payloads.forEach((p, i) => expect(p.equals(encodeBatch(all[i]!))).toBe(true));
    }
  });

  it('a msgpackr pack made elsewhere between two records is not written over by the second', async () => {
    const r = fc.sample(recordArb, { numRuns: 1, seed: 5 })[0]!;
    for (let round = 0; round < 3; round++) {
      await encodeBatchAsync({ ...r, n: 0, ts: new Float64Array(0), dims: [], metrics: [], keyHashes: null });
      const other = pack({ someone: 'else', values: Array.from({ length: 50 }, (_, i) => `value-${i}`) });
      const copy = Buffer.from(other);
      encodeBatch(r);
      await encodeBatchAsync(r);
      expect(other.equals(copy)).toBe(true);
    }
  });

  it('a version 1 payload (f64 times, u32 ids) still decodes', () => {
    const r: BatchRecord = {
      lsn: 3, ds: 'ev', n: 2, ts: Float64Array.from([1000, 2000]),
      dims: [{ values: [null, 'a'], ids: Uint32Array.from([1, 0]) }], metrics: [Float64Array.from([NaN, 2.5])], keyHashes: null,
    };
    const v1 = compress(pack({ v: 1, lsn: 3, ds: 'ev', n: 2, ts: bytes(r.ts), dims: [{ values: [null, 'a'], ids: bytes(r.dims[0]!.ids) }], metrics: [bytes(r.metrics[0]!)], keys: null }));
    expect(decodeBatch(v1)).toEqual(r);
  });

  it.each([
    ['an unknown id width', { w: 3 }],
    ['ids that do not fill whole ids of their width', { w: 2, ids: Buffer.from([1, 0, 1]) }],
    ['an id beyond its dictionary', { w: 1, ids: Buffer.from([5, 0]) }],
  ])('%s is an error', (_what, dim) => {
    const payload = compress(pack({ v: 2, lsn: 1, ds: 'ev', n: 2, t0: 0, ts: bytes(Uint32Array.from([0, 1])), dims: [Object.assign({ values: [null, 'a'], w: 1, ids: Buffer.from([1, 0]) }, dim)], metrics: [], keys: null }));
    expect(() => decodeBatch(payload)).toThrow();
  });
});
