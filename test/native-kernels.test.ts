/**
 * The C++ kernels (native/) and their TypeScript fallback (src/native/kernels.ts) give identical results — equal to
 * a plain reference model — for random inputs, and the same error for damaged or out-of-bounds inputs. A canary
 * shows the comparison can fail. The engine-level properties run on both kernel sets too
 * (test/property/engine-matches-model.test.ts, test/compaction/compaction-matches-model.test.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { kernels, nativeStatus, typescriptKernels, type Kernels } from '../src/native/index.js';
import { pack, zigzag } from '../src/segment/bitpack.js';

const native = kernels;
const ts = typescriptKernels;

/** The outcome of a kernel call in a comparable form: its result, or its error's class and message. */
function outcome(run: () => unknown): unknown {
  try {
    const r = run();
    return r instanceof Uint32Array || r instanceof Float64Array ? { ok: Array.from(r) } : { ok: r ?? null };
  } catch (e) {
    return { error: (e as Error).constructor.name, message: (e as Error).message };
  }
}

/** Runs `call` on both kernel sets with fresh copies of the mutable arguments; returns both outcomes and states. */
function both(call: (k: Kernels) => unknown): [unknown, unknown] {
  return [outcome(() => call(native)), outcome(() => call(ts))];
}

const u32Column = fc.oneof(
  fc.array(fc.nat({ max: 0xffffffff }), { maxLength: 600 }),
  fc.array(fc.nat({ max: 7 }), { maxLength: 600 }),
  fc.integer({ min: 0, max: 600 }).chain((n) => fc.constantFrom(0, 1, 0xffffffff).map((v) => Array.from({ length: n }, () => v))),
);

/** A selection over `n` rows: a range, or sorted/unsorted row ids, sometimes out of bounds. */
function selectionArb(n: number): fc.Arbitrary<{ rows: Uint32Array | null; start: number; end: number }> {
  const range = fc.tuple(fc.nat({ max: n }), fc.nat({ max: n })).map(([a, b]) => ({ rows: null, start: Math.min(a, b), end: Math.max(a, b) }));
  const list = fc.array(fc.nat({ max: Math.max(0, n - 1) }), { maxLength: 80 }).chain((ids) =>
    fc.tuple(fc.nat({ max: ids.length }), fc.nat({ max: ids.length })).map(([a, b]) => ({ rows: Uint32Array.from(ids), start: Math.min(a, b), end: Math.max(a, b) })));
  return n === 0 ? range : fc.oneof(range, list);
}

describe('native kernels', () => {
  it('the addon is built by npm install and loaded (unless TALLYDB_NATIVE=0 forces the TypeScript kernels)', () => {
    if (process.env['TALLYDB_NATIVE'] === '0') {
      expect(nativeStatus).toEqual({ kind: 'typescript', reason: 'TALLYDB_NATIVE=0' });
      return;
    }
    expect(nativeStatus.reason).toBeUndefined();
    expect(nativeStatus.kind).toBe('native');
    expect(native).not.toBe(ts);
  });

  it('unpack equals the packed column in both versions, for random columns', () => {
    fc.assert(fc.property(u32Column, (values) => {
      const buf = pack(values, values.length);
      expect(Array.from(native.unpack(buf))).toEqual(values);
      expect(Array.from(ts.unpack(buf))).toEqual(values);
    }), { numRuns: 300 });
  });

  it('decodeTimestamps equals the prefix sums of the deltas in both versions (integer and fractional origins)', () => {
    const deltas = fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { maxLength: 400 });
    fc.assert(fc.property(deltas, fc.oneof(fc.integer({ min: -(2 ** 45), max: 2 ** 45 }), fc.double({ min: -1e12, max: 1e12, noNaN: true })), (ds, minTs) => {
      const buf = pack(ds.map(zigzag), ds.length);
      const expected: number[] = [];
      let t = minTs;
      for (const d of ds) expected.push((t += d));
      expect(Array.from(native.decodeTimestamps(buf, minTs, ds.length))).toEqual(expected);
      expect(Array.from(ts.decodeTimestamps(buf, minTs, ds.length))).toEqual(expected);
    }), { numRuns: 300 });
  });

  it('a damaged bit-packed column gives the same error in both versions, never a result', () => {
    fc.assert(fc.property(fc.array(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 300 }), fc.nat(), fc.nat({ max: 255 }), fc.boolean(), (values, at, byte, cut) => {
      const good = pack(values, values.length);
      const bad = Buffer.from(good);
      if (cut) {
        const short = bad.subarray(0, at % bad.length);
        const [n, t] = both((k) => k.unpack(short));
        expect(n).toEqual(t);
        expect(n).toHaveProperty('error');
      } else {
        bad[at % Math.min(bad.length, 8)] = byte; // the count or the widths
        const [n, t] = both((k) => k.unpack(bad));
        expect(n).toEqual(t);
      }
      const [n, t] = both((k) => k.decodeTimestamps(good, 0, values.length + 1));
      expect(n).toEqual(t);
      expect(n).toHaveProperty('error');
    }), { numRuns: 300 });
  });

  it('timestampsAt gives the fully decoded timestamps of the selected rows, from anchors, in both versions', () => {
    const deltas = fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { maxLength: 700 });
    const origin = fc.oneof(fc.integer({ min: -(2 ** 45), max: 2 ** 45 }), fc.double({ min: -1e12, max: 1e12, noNaN: true }));
    fc.assert(fc.property(deltas.chain((ds) => fc.tuple(fc.constant(ds), origin, selectionArb(ds.length))), ([ds, minTs, sel]) => {
      const buf = pack(ds.map(zigzag), ds.length);
      const full = ts.decodeTimestamps(buf, minTs, ds.length);
      const anchors = native.timestampAnchors(buf, minTs);
      expect(Array.from(anchors)).toEqual(Array.from(ts.timestampAnchors(buf, minTs)));
      expect(anchors.length).toBe(Math.ceil(ds.length / 128));
      const [n, t] = both((k) => k.timestampsAt(buf, anchors, sel.rows, sel.start, sel.end));
      expect(n).toEqual(t);
      const rows = sel.rows;
      const inBounds = sel.end <= (rows === null ? ds.length : rows.length) && (rows === null || rows.subarray(sel.start, sel.end).every((r) => r < ds.length));
      if (inBounds) {
        const expected: number[] = [];
        for (let j = sel.start; j < sel.end; j++) expected.push(full[rows === null ? j : rows[j]!]!);
        expect(n).toEqual({ ok: expected });
      } else {
        expect(n).toMatchObject({ error: 'RangeError' });
      }
    }), { numRuns: 300 });
  });

  it('timestampsAt refuses anchors of another column and a damaged column with the same error in both versions', () => {
    fc.assert(fc.property(fc.array(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 400 }), fc.nat(), fc.nat({ max: 255 }), (values, at, byte) => {
      const good = pack(values, values.length);
      const anchors = ts.timestampAnchors(good, 0);
      const [n1, t1] = both((k) => k.timestampsAt(good, new Float64Array(anchors.length + 1), null, 0, 0));
      expect(n1).toEqual(t1);
      expect(n1).toMatchObject({ error: 'RangeError' });
      const bad = Buffer.from(good);
      bad[at % Math.min(bad.length, 8)] = byte;
      const [n2, t2] = both((k) => k.timestampsAt(bad, anchors, null, 0, Math.min(1, values.length)));
      expect(n2).toEqual(t2);
      const [n3, t3] = both((k) => k.timestampAnchors(bad, 0));
      expect(n3).toEqual(t3);
    }), { numRuns: 300 });
  });

  it('bucketCounts counts each selected row in bucket floor(ts / size) − first, in both versions', () => {
    const arb = fc.record({
      size: fc.constantFrom(1, 7, 1000, 60_000, 3_600_000, 0.5),
      // (ranges stay small so that size 0.5 keeps the counters few)
      origin: fc.constantFrom(0, Date.parse('2026-11-23T00:00:00Z'), -86_400_000),
      offsets: fc.array(fc.oneof(fc.nat({ max: 20_000 }), fc.double({ min: 0, max: 20_000, noNaN: true })), { maxLength: 200 }),
    }).chain((r) => selectionArb(r.offsets.length).map((sel) => ({ ...r, sel })));
    fc.assert(fc.property(arb, ({ size, origin, offsets, sel }) => {
      const column = Float64Array.from(offsets, (o) => origin + o);
      const first = Math.floor(origin / size) - 1;
      const buckets = Math.floor((origin + 20_000) / size) - first + 2;
      const expected = new Float64Array(buckets);
      let expectedError = false;
      for (let j = sel.start; j < sel.end; j++) {
        const r = sel.rows === null ? j : sel.rows[j]!;
        if (r >= column.length) expectedError = true;
        else expected[Math.floor(column[r]! / size) - first]! += 1;
      }
      const counts = { n: new Float64Array(buckets), t: new Float64Array(buckets) };
      const [n, t] = [
        outcome(() => native.bucketCounts(column, sel.rows, sel.start, sel.end, size, first, counts.n)),
        outcome(() => ts.bucketCounts(column, sel.rows, sel.start, sel.end, size, first, counts.t)),
      ];
      expect(n).toEqual(t);
      if (expectedError) {
        expect(n).toHaveProperty('error', 'RangeError');
      } else {
        // Compared as bytes: the counter arrays hold up to 40k buckets.
        expect(Buffer.from(counts.n.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
        expect(Buffer.from(counts.t.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
      }
    }), { numRuns: 400 });
  });

  it('bucketCounts refuses a timestamp outside its counters in both versions', () => {
    const column = Float64Array.of(0, 60_000, 120_000, Number.NaN, 1e300, -60_000);
    for (const r of [0, 1, 2, 3, 4, 5]) {
      const [n, t] = both((k) => k.bucketCounts(column, Uint32Array.of(r), 0, 1, 60_000, 0, new Float64Array(2))); // buckets 0 and 1 only
      expect(n).toEqual(t);
      if (r <= 1) expect(n).toEqual({ ok: null });
      else expect(n).toEqual({ error: 'RangeError', message: 'a timestamp falls outside the bucket counters' });
    }
  });

  it('bucketCountsAt counts the selected rows of a packed column as bucketCounts counts the decoded column, in both versions', () => {
    const arb = fc.record({
      size: fc.constantFrom(1, 7, 1000, 60_000, 0.5),
      origin: fc.oneof(fc.constantFrom(0, Date.parse('2026-11-23T00:00:00Z'), -86_400_000), fc.double({ min: -1e6, max: 1e6, noNaN: true })),
      offsets: fc.array(fc.nat({ max: 20_000 }), { maxLength: 700 }),
      // Counters cut short sometimes: a row past them stops both versions at the same row, with the same counts.
      short: fc.boolean(),
    }).chain((r) => selectionArb(r.offsets.length).map((sel) => ({ ...r, sel })));
    fc.assert(fc.property(arb, ({ size, origin, offsets, short, sel }) => {
      const deltas = offsets.map((o, i) => o - (i === 0 ? 0 : offsets[i - 1]!));
      const buf = pack(deltas.map(zigzag), deltas.length);
      const anchors = ts.timestampAnchors(buf, origin);
      const column = ts.decodeTimestamps(buf, origin, deltas.length);
      const first = Math.floor(origin / size) - 1;
      const buckets = short ? 3 : Math.floor((origin + 20_000) / size) - first + 2;
      const reference = new Float64Array(buckets);
      const ref = outcome(() => ts.bucketCounts(column, sel.rows, sel.start, sel.end, size, first, reference));
      const counts = { n: new Float64Array(buckets), t: new Float64Array(buckets) };
      const n = outcome(() => native.bucketCountsAt(buf, anchors, sel.rows, sel.start, sel.end, size, first, counts.n));
      const t = outcome(() => ts.bucketCountsAt(buf, anchors, sel.rows, sel.start, sel.end, size, first, counts.t));
      expect(n).toEqual(t);
      expect(Buffer.from(counts.n.buffer).equals(Buffer.from(counts.t.buffer))).toBe(true);
      // The decoded column gives the same counts, except that an out-of-bounds selection is refused before any row.
      if (!('error' in (ref as object)) || (ref as { message: string }).message === 'a timestamp falls outside the bucket counters') {
        expect(n).toEqual(ref);
        expect(Buffer.from(counts.n.buffer).equals(Buffer.from(reference.buffer))).toBe(true);
      } else {
        expect(n).toMatchObject({ error: 'RangeError' });
      }
    }), { numRuns: 400 });
  });

  it('bucketCountsAt refuses anchors of another column, a damaged column and a bad bucket size with the same error in both versions', () => {
    fc.assert(fc.property(fc.array(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 400 }), fc.nat(), fc.nat({ max: 255 }), (values, at, byte) => {
      const good = pack(values, values.length);
      const anchors = ts.timestampAnchors(good, 0);
      const counts = (): Float64Array => new Float64Array(1 + Math.ceil(values.length * 1000 / 60_000) * 2);
      const [n1, t1] = both((k) => k.bucketCountsAt(good, new Float64Array(anchors.length + 1), null, 0, 0, 60_000, 0, counts()));
      expect(n1).toEqual(t1);
      expect(n1).toMatchObject({ error: 'RangeError' });
      const [n2, t2] = both((k) => k.bucketCountsAt(good, anchors, null, 0, 1, 0, 0, counts()));
      expect(n2).toEqual(t2);
      expect(n2).toEqual({ error: 'RangeError', message: 'bucket size must be positive' });
      const bad = Buffer.from(good);
      bad[at % Math.min(bad.length, 8)] = byte;
      const [n3, t3] = both((k) => k.bucketCountsAt(bad, anchors, null, 0, Math.min(1, values.length), 60_000, 0, counts()));
      expect(n3).toEqual(t3);
    }), { numRuns: 300 });
  });

  it('countByCode counts each selected row in counter table[codes[row]], stopping at the same bad row in both versions', () => {
    const arb = fc.record({
      wide: fc.boolean(),
      codes: fc.array(fc.nat({ max: 70 }), { maxLength: 300 }),
      // Some codes past the table, some table entries past the counters.
      table: fc.array(fc.nat({ max: 40 }), { minLength: 1, maxLength: 64 }),
      counters: fc.integer({ min: 1, max: 40 }),
    }).chain((r) => selectionArb(r.codes.length).map((sel) => ({ ...r, sel })));
    fc.assert(fc.property(arb, ({ wide, codes, table, counters, sel }) => {
      const column = wide ? Uint16Array.from(codes, (c) => c * 1000) : Uint8Array.from(codes);
      const tbl = new Uint32Array(wide ? 70_001 : 71).fill(0xffffffff);
      table.forEach((k, c) => (tbl[wide ? c * 1000 : c] = k));
      const reference = new Float64Array(counters);
      let expected: unknown = { ok: null };
      const rowsOf = (j: number): number => (sel.rows === null ? j : sel.rows[j]!);
      const inBounds = sel.end <= (sel.rows === null ? column.length : sel.rows.length) &&
        Array.from({ length: sel.end - sel.start }, (_, i) => rowsOf(sel.start + i)).every((r) => r < column.length);
      // An out-of-bounds selection is refused before any row is counted.
      if (!inBounds) expected = { error: 'RangeError' };
      for (let j = sel.start; inBounds && j < sel.end; j++) {
        const r = rowsOf(j);
        const k = tbl[column[r]!]!;
        if (k >= counters) {
          expected = { error: 'RangeError', message: 'a key falls outside the counters' };
          break;
        }
        reference[k]! += 1;
      }
      const counts = { n: new Float64Array(counters), t: new Float64Array(counters) };
      const n = outcome(() => native.countByCode(column, sel.rows, sel.start, sel.end, tbl, counts.n));
      const t = outcome(() => ts.countByCode(column, sel.rows, sel.start, sel.end, tbl, counts.t));
      expect(n).toEqual(t);
      expect(n).toMatchObject(expected as object);
      expect(Array.from(counts.n)).toEqual(Array.from(reference));
      expect(Array.from(counts.t)).toEqual(Array.from(reference));
    }), { numRuns: 400 });
    const [n, t] = both((k) => k.countByCode(Uint8Array.of(3), null, 0, 1, new Uint32Array(2), new Float64Array(1)));
    expect(n).toEqual(t);
    expect(n).toEqual({ error: 'RangeError', message: 'a code falls outside the table' });
    const [n2, t2] = both((k) => k.countByCode(Uint32Array.of(0) as unknown as Uint8Array, null, 0, 1, new Uint32Array(1), new Float64Array(1)));
    expect(n2).toEqual(t2);
    expect(n2).toMatchObject({ error: 'TypeError' });
  });

  it('selectCodeRange keeps exactly the selected rows whose code is in [lo, hi), in selection order, in both versions', () => {
    const arb = fc.record({ wide: fc.boolean(), codes: fc.array(fc.nat({ max: 300 }), { maxLength: 300 }), lo: fc.integer({ min: -2, max: 302 }), hi: fc.integer({ min: -2, max: 302 }) })
      .chain((r) => selectionArb(r.codes.length).map((sel) => ({ ...r, sel })));
    fc.assert(fc.property(arb, ({ wide, codes, lo, hi, sel }) => {
      const column = wide ? Uint16Array.from(codes, (c) => c * 200) : Uint8Array.from(codes, (c) => c % 256);
      const [l, h] = wide ? [lo * 200, hi * 200] : [lo, hi];
      const expected: number[] = [];
      for (let j = sel.start; j < sel.end; j++) {
        const r = sel.rows === null ? j : sel.rows[j]!;
        if (column[r]! >= l && column[r]! < h) expected.push(r);
      }
      const [n, t] = both((k) => k.selectCodeRange(column, sel.rows, sel.start, sel.end, l, h));
      expect(n).toEqual(t);
      expect(n).toEqual({ ok: expected });
    }), { numRuns: 400 });
    const [n, t] = both((k) => k.selectCodeRange(Uint8Array.of(1), null, 0, 2, 0, 5));
    expect(n).toEqual(t);
    expect(n).toMatchObject({ error: 'RangeError' });
  });

  it('selectTimeRange keeps exactly the selected rows inside [from, to), in selection order, in both versions', () => {
    const arb = fc.array(fc.integer({ min: 0, max: 100 }), { maxLength: 200 }).chain((col) =>
      fc.tuple(fc.constant(col), selectionArb(col.length), fc.integer({ min: -5, max: 105 }), fc.integer({ min: -5, max: 105 })));
    fc.assert(fc.property(arb, ([col, sel, a, b]) => {
      const column = Float64Array.from(col);
      const [from, to] = [Math.min(a, b), Math.max(a, b)];
      const expected: number[] = [];
      let bad = false;
      for (let j = sel.start; j < sel.end; j++) {
        const r = sel.rows === null ? j : sel.rows[j]!;
        if (r >= column.length) bad = true;
        else if (column[r]! >= from && column[r]! < to) expected.push(r);
      }
      const [n, t] = both((k) => k.selectTimeRange(column, sel.rows, sel.start, sel.end, from, to));
      expect(n).toEqual(t);
      expect(n).toEqual(bad ? { error: 'RangeError', message: 'row id past the column' } : { ok: expected });
    }), { numRuns: 400 });
  });

  it('countByKey adds one (or the row weight) per selected row to its key, in both versions', () => {
    const arb = fc.array(fc.nat({ max: 40 }), { maxLength: 200 }).chain((keys) =>
      fc.tuple(fc.constant(keys), selectionArb(keys.length), fc.boolean(), fc.constantFrom(41, 20)));
    fc.assert(fc.property(arb, ([keys, sel, weighted, counters]) => {
      const k32 = Uint32Array.from(keys);
      const weights = weighted ? Float64Array.from(keys, (k, i) => (k * 7 + i) % 5) : null;
      const expected = new Float64Array(counters);
      let bad: string | null = null;
      for (let j = sel.start; j < sel.end && bad === null; j++) {
        const r = sel.rows === null ? j : sel.rows[j]!;
        if (r >= k32.length) bad = 'row id past the column';
      }
      for (let j = sel.start; j < sel.end && bad === null; j++) {
        const r = sel.rows === null ? j : sel.rows[j]!;
        if (k32[r]! >= counters) bad = 'a key falls outside the counters';
        else expected[k32[r]!]! += weights === null ? 1 : weights[r]!;
      }
      const counts = { n: new Float64Array(counters), t: new Float64Array(counters) };
      const n = outcome(() => native.countByKey(k32, sel.rows, sel.start, sel.end, weights, counts.n));
      const t = outcome(() => ts.countByKey(k32, sel.rows, sel.start, sel.end, weights, counts.t));
      expect(n).toEqual(t);
      if (bad !== null) {
        expect(n).toEqual({ error: 'RangeError', message: bad });
      } else {
        expect(Array.from(counts.n)).toEqual(Array.from(expected));
        expect(Array.from(counts.t)).toEqual(Array.from(expected));
      }
    }), { numRuns: 400 });
  });

  it('countFirstMet counts as countByKey does and lists each key whose counter was 0 in the order met, in both versions', () => {
    // Counters start with some keys already counted (a second set of rows over the same counters), weights may be 0
    // (a key is then listed again), and `out` is sometimes one short of the selection.
    const arb = fc.array(fc.nat({ max: 40 }), { maxLength: 200 }).chain((keys) =>
      fc.tuple(fc.constant(keys), selectionArb(keys.length), fc.boolean(), fc.constantFrom(41, 20), fc.array(fc.nat({ max: 40 }), { maxLength: 5 }), fc.boolean()));
    fc.assert(fc.property(arb, ([keys, sel, weighted, counters, counted, short]) => {
      const k32 = Uint32Array.from(keys);
      const weights = weighted ? Float64Array.from(keys, (k, i) => (k * 7 + i) % 5) : null;
      const initial = new Float64Array(counters);
      for (const k of counted) if (k < counters) initial[k] = 3;
      const expected = Float64Array.from(initial);
      const met: number[] = [];
      let bad: string | null = null;
      for (let j = sel.start; j < sel.end && bad === null; j++) {
        const r = sel.rows === null ? j : sel.rows[j]!;
        if (r >= k32.length) bad = 'row id past the column';
      }
      const outLength = Math.max(0, sel.end - sel.start - (short ? 1 : 0));
      if (bad === null && outLength < sel.end - sel.start) bad = 'out is shorter than the selection';
      for (let j = sel.start; j < sel.end && bad === null; j++) {
        const r = sel.rows === null ? j : sel.rows[j]!;
        const k = k32[r]!;
        if (k >= counters) bad = 'a key falls outside the counters';
        else {
          if (expected[k] === 0) met.push(k);
          expected[k]! += weights === null ? 1 : weights[r]!;
        }
      }
      const run = (kernels: Kernels) => {
        const counts = Float64Array.from(initial);
        const out = new Uint32Array(outLength);
        const r = outcome(() => kernels.countFirstMet(k32, sel.rows, sel.start, sel.end, weights, counts, out));
        return { r, counts, out };
      };
      const n = run(native);
      const t = run(ts);
      expect(n.r).toEqual(t.r);
      if (bad !== null) {
        expect(n.r).toEqual({ error: 'RangeError', message: bad });
      } else {
        expect(n.r).toEqual({ ok: met.length });
        for (const k of [n, t]) {
          expect(Array.from(k.counts)).toEqual(Array.from(expected));
          expect(Array.from(k.out.subarray(0, met.length))).toEqual(met);
        }
      }
    }), { numRuns: 400 });
  });

  it('dedupChunk marks exactly the keys live in the table or stored earlier in the chunk, stores the others in one sub-window, and leaves identical tables in both versions', () => {
    // A table of 8–64 slots filled by the same linear probing, some keys then dead (below the floor) or tombstoned;
    // rows with keys from a small pool (so repeats and shared probe sequences are common) and times over a few
    // sub-windows of 10 ms. Sometimes the table has too few empty slots, a time is NaN or the base is fractional:
    // both versions then fail or round alike.
    const BASE = 0x40000000; // sub-window words come out as floor(t / 10) + 2
    const arb = fc.record({
      log2: fc.integer({ min: 3, max: 6 }),
      initial: fc.array(fc.record({ key: fc.nat(24), sub: fc.integer({ min: 1, max: 12 }) }), { maxLength: 60 }),
      floor: fc.integer({ min: 2, max: 8 }),
      rows: fc.array(fc.record({ key: fc.nat(24), t: fc.integer({ min: 0, max: 60 }) }), { maxLength: 40 }),
      sorted: fc.boolean(),
      nanAt: fc.oneof({ arbitrary: fc.constant(null), weight: 2 }, { arbitrary: fc.nat(12), weight: 1 }),
      fractionalBase: fc.boolean(),
    });
    const hashes = Array.from({ length: 25 }, (_, k) => [Math.imul(k + 1, 0x9e3779b1) >>> 0, (k % 5) * 3 >>> 0]);
    // How often each way out was taken: every one must be (a property that never meets a full table proves nothing of it).
    const ways = { full: 0, nan: 0, all: 0, stopped: 0 };
    fc.assert(fc.property(arb, (a) => {
      const capacity = 2 ** a.log2;
      const mask = capacity - 1;
      const table = new Int32Array(3 * capacity);
      const live = new Set<number>();
      let filled = 0;
      for (const { key, sub } of a.initial) {
        if (filled === capacity) break;
        if (live.has(key)) continue;
        const [hi, lo] = hashes[key]!;
        let i = (hi! ^ lo!) & mask;
        while (table[3 * i + 2] !== 0) i = (i + 1) & mask;
        table.set([hi! | 0, lo! | 0, sub], 3 * i);
        filled++;
        if (sub >= a.floor) live.add(key);
      }
      const rows = a.sorted ? [...a.rows].sort((x, y) => x.t - y.t) : a.rows;
      const h = new Uint32Array(2 * rows.length);
      const t = new Float64Array(rows.length);
      rows.forEach((r, i) => {
        h.set(hashes[r.key]!, 2 * i);
        t[i] = a.nanAt === null || a.nanAt !== i ? r.t : NaN;
      });
      const base = a.fractionalBase ? BASE + 0.5 : BASE;
      const from = Math.min(1, rows.length);
      const run = (k: Kernels) => {
        const slots = Int32Array.from(table);
        const duplicates = new Uint32Array(rows.length);
        const out = new Float64Array(3);
        const r = outcome(() => k.dedupChunk(slots, a.floor, h, t, from, rows.length, 10, base, duplicates, out));
        return { r, slots, duplicates, out };
      };
      const n = run(native);
      const s = run(ts);
      expect(n.r).toEqual(s.r);
      expect(Array.from(n.slots)).toEqual(Array.from(s.slots));
      if ('error' in (n.r as object)) {
        const message = (n.r as { message: string }).message;
        expect(['slots holds no empty slot', "a row's sub-window is not a number"]).toContain(message);
        if (message === 'slots holds no empty slot') ways.full++;
        else ways.nan++;
        return;
      }
      expect(Array.from(n.out)).toEqual(Array.from(s.out));
      expect(Array.from(n.duplicates.subarray(0, n.out[0]!))).toEqual(Array.from(s.duplicates.subarray(0, s.out[0]!)));
      // The reference: row by row, a duplicate when live or stored before; otherwise stored, until a sub-window change.
      const seen = new Set(live);
      const dups: number[] = [];
      let stored = 0;
      let sub = 0;
      let r = from;
      for (; r < rows.length; r++) {
        const key = rows[r]!.key;
        if (seen.has(key)) {
          dups.push(r);
          continue;
        }
        const w = Math.trunc(Math.min(0x7ffffffe, Math.max(2, Math.floor(t[r]! / 10) - base + 0x40000002)));
        if (stored > 0 && w !== sub) break;
        if (stored === 0) sub = w;
        // Stored below the floor, a key is dead at once (the index never passes such rows: they are not remembered).
        if (w >= a.floor) seen.add(key);
        stored++;
      }
      expect(n.r).toEqual({ ok: r - from });
      if (r < rows.length) ways.stopped++;
      else ways.all++;
      expect(Array.from(n.duplicates.subarray(0, n.out[0]!))).toEqual(dups);
      expect([n.out[1], stored > 0 ? n.out[2] : 0]).toEqual([stored, sub]);
      // Every key of `seen` is now found by a probe of the table with a live sub-window; nothing else changed.
      let changed = 0;
      for (let i = 0; i < capacity; i++) if (table[3 * i + 2] !== n.slots[3 * i + 2]) changed++;
      expect(changed).toBe(stored);
      for (const key of seen) {
        const [hi, lo] = hashes[key]!;
        let i = (hi! ^ lo!) & mask;
        while (n.slots[3 * i + 2] !== 0 && !(n.slots[3 * i] === (hi! | 0) && n.slots[3 * i + 1] === (lo! | 0) && n.slots[3 * i + 2]! >= a.floor)) i = (i + 1) & mask;
        expect(n.slots[3 * i + 2]).not.toBe(0);
      }
    }), { numRuns: 600 });
    expect(Math.min(ways.full, ways.nan, ways.all, ways.stopped)).toBeGreaterThan(10);
  });

  it('dedupMove copies exactly the live slots of a range into the first empty slots of their probes and leaves tombstones, in both versions', () => {
    const arb = fc.record({
      oldSlots: fc.array(fc.record({ hi: fc.integer(), lo: fc.integer({ min: -3, max: 3 }), sub: fc.integer({ min: 0, max: 9 }) }), { minLength: 1, maxLength: 40 }),
      log2: fc.constantFrom(1, 2, 3, 5, 6),
      filled: fc.array(fc.nat(63), { maxLength: 20 }),
      floor: fc.integer({ min: 2, max: 6 }),
      range: fc.tuple(fc.nat(45), fc.nat(45)),
      pastEnd: fc.nat(5).map((x) => x === 0),
    });
    const ways = { ok: 0, full: 0, outside: 0 };
    fc.assert(fc.property(arb, (a) => {
      const old = new Int32Array(3 * a.oldSlots.length);
      a.oldSlots.forEach((o, j) => old.set([o.hi, o.lo, o.sub], 3 * j));
      const capacity = 2 ** a.log2;
      const slots = new Int32Array(3 * capacity);
      for (const f of a.filled) slots.set([f, f, 5], 3 * (f % capacity));
      // A range inside the old table, or (one run in six) ending one slot past it.
      const from = Math.min(...a.range) % (a.oldSlots.length + 1);
      const to = Math.max(from, Math.max(...a.range) % (a.oldSlots.length + 1)) + (a.pastEnd ? 1 : 0);
      const run = (k: Kernels) => {
        const o = Int32Array.from(old);
        const t = Int32Array.from(slots);
        return { r: outcome(() => k.dedupMove(o, from, to, a.floor, t)), old: Array.from(o), slots: Array.from(t) };
      };
      const nat = run(native);
      expect(nat).toEqual(run(ts));
      // The reference: slot by slot.
      const o = Int32Array.from(old);
      const t = Int32Array.from(slots);
      let want: unknown;
      if (3 * to > old.length) want = { error: 'RangeError', message: 'slots from..to must lie within old' };
      else {
        let moved = 0;
        for (let j = from; j < to && want === undefined; j++) {
          if (o[3 * j + 2]! < a.floor) continue;
          let i = (o[3 * j]! ^ o[3 * j + 1]!) & (capacity - 1);
          let steps = 0;
          while (t[3 * i + 2] !== 0 && steps++ < capacity) i = (i + 1) & (capacity - 1);
          if (t[3 * i + 2] !== 0) {
            want = { error: 'RangeError', message: 'slots holds no empty slot' };
            break;
          }
          t.set([o[3 * j]!, o[3 * j + 1]!, o[3 * j + 2]!], 3 * i);
          o[3 * j + 2] = 1;
          moved++;
        }
        want ??= { ok: moved };
      }
      expect(nat.r).toEqual(want);
      expect([nat.old, nat.slots]).toEqual([Array.from(o), Array.from(t)]);
      const w = want as { ok?: number; message?: string };
      if (w.ok !== undefined) ways.ok++;
      else if (w.message === 'slots holds no empty slot') ways.full++;
      else ways.outside++;
    }), { numRuns: 600 });
    expect(Math.min(ways.ok, ways.full, ways.outside)).toBeGreaterThan(10);
  });

  it('probeSlots ends each probe at the first empty slot or slot with the same key words, in both versions', () => {
    // Tables of 4–64 slots filled at random (keys from a small pool, so equal key words and long probe runs are
    // common; sometimes full), and keys whose home slots are anywhere, −1, or past the table.
    const arb = fc.record({
      log2: fc.constantFrom(2, 2, 3, 4, 6),
      filled: fc.array(fc.record({ at: fc.nat(63), key: fc.nat(9) }), { maxLength: 120 }),
      asked: fc.array(fc.record({ home: fc.integer({ min: -1, max: 200 }), key: fc.nat(9) }), { maxLength: 40 }),
      outShort: fc.nat(9).map((x) => x === 0),
    });
    const words = (key: number): [number, number, number] => [key * 3 + 1, -key, key === 9 ? 0xff : key];
    const ways = { ok: 0, full: 0, outside: 0 };
    fc.assert(fc.property(arb, (a) => {
      const capacity = 2 ** a.log2;
      const table = new Int32Array(4 * capacity);
      for (const f of a.filled) table.set([f.at % 11 === 0 ? 0 : 1 + f.key, ...words(f.key)], 4 * (f.at % capacity));
      // Home slot 200 stands for one just past the table; the others fall inside it (or are −1: no value).
      const asked = a.asked.map((q) => ({ home: q.home === 200 ? capacity : q.home < 0 ? -1 : q.home % capacity, key: q.key }));
      const keys = new Int32Array(4 * asked.length);
      asked.forEach((q, v) => keys.set([q.home, ...words(q.key)], 4 * v));
      const n = a.outShort && a.asked.length > 0 ? a.asked.length - 1 : a.asked.length;
      const run = (k: Kernels) => {
        const out = new Int32Array(n).fill(-7);
        const r = outcome(() => k.probeSlots(table, keys, a.asked.length, out));
        return { r, out: Array.from(out) };
      };
      const nat = run(native);
      expect(nat).toEqual(run(ts));
      // The reference: a walk from each home slot.
      let want: unknown = { ok: null };
      const expected: number[] = [];
      if (a.asked.length > n) want = { error: 'RangeError', message: 'n must be a count of keys within keys and out' };
      else if (asked.some((q) => q.home >= capacity)) want = { error: 'RangeError', message: 'a home slot lies outside the table' };
      else {
        for (const q of asked) {
          if (q.home < 0) {
            expected.push(-1);
            continue;
          }
          const [k0, k1, k2] = words(q.key);
          let found = -1;
          for (let steps = 0, i = q.home; steps < capacity; steps++, i = (i + 1) % capacity) {
            if (table[4 * i] === 0 || (table[4 * i + 1] === k0 && table[4 * i + 2] === k1 && table[4 * i + 3] === k2)) {
              found = 4 * i;
              break;
            }
          }
          if (found < 0) {
            want = { error: 'RangeError', message: 'table holds no empty slot' };
            break;
          }
          expected.push(found);
        }
      }
      expect(nat.r).toEqual(want);
      expect(nat.out.slice(0, expected.length)).toEqual(expected);
      if ('ok' in (want as object)) ways.ok++;
      else if ((want as { message: string }).message === 'table holds no empty slot') ways.full++;
      else ways.outside++;
    }), { numRuns: 600 });
    expect(Math.min(ways.ok, ways.full, ways.outside)).toBeGreaterThan(10);
  });

  it('arguments of the wrong type are refused, not read as memory', () => {
    expect(() => native.unpack('abc' as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => native.countByKey(new Float64Array(4) as unknown as Uint32Array, null, 0, 4, null, new Float64Array(4))).toThrow(TypeError);
    for (const k of [native, ts]) {
      expect(() => k.countFirstMet(new Uint32Array(4), null, 0, 4, null, new Float64Array(4), new Int32Array(4) as unknown as Uint32Array)).toThrow(new TypeError('out must be a Uint32Array'));
    }
    expect(() => native.bucketCounts(new Float64Array(4), null, 0, 5, 60_000, 0, new Float64Array(4))).toThrow(RangeError);
    expect(() => native.selectTimeRange(new Float64Array(4), null, 2, 1, 0, 1)).toThrow(RangeError);
    expect(() => native.timestampsAt(pack([1, 2], 2), new Uint32Array(1) as unknown as Float64Array, null, 0, 1)).toThrow(TypeError);
    expect(() => ts.timestampsAt(pack([1, 2], 2), new Uint32Array(1) as unknown as Float64Array, null, 0, 1)).toThrow(TypeError);
    for (const k of [native, ts]) {
      const call = (slots: Int32Array, floor: number, to: number, duplicates: Uint32Array) => () =>
        k.dedupChunk(slots, floor, new Uint32Array(8), new Float64Array(4), 0, to, 10, 0, duplicates, new Float64Array(3));
      expect(call(new Uint32Array(48) as unknown as Int32Array, 2, 4, new Uint32Array(4))).toThrow(new TypeError('slots must be an Int32Array'));
      expect(call(new Int32Array(47), 2, 4, new Uint32Array(4))).toThrow(new RangeError('slots must hold 3 words a slot, a power of two of slots'));
      expect(call(new Int32Array(36), 2, 4, new Uint32Array(4))).toThrow(new RangeError('slots must hold 3 words a slot, a power of two of slots'));
      expect(call(new Int32Array(48), 2.5, 4, new Uint32Array(4))).toThrow(new RangeError('floor must be an int32'));
      expect(call(new Int32Array(48), 2, 5, new Uint32Array(5))).toThrow(new RangeError('rows from..to must lie within ts and hashes'));
      expect(call(new Int32Array(48), 2, 4, new Uint32Array(3))).toThrow(new RangeError('duplicates must hold to - from rows and out 3 numbers'));
      expect(call(new Int32Array(48), 2, 4, new Int32Array(4) as unknown as Uint32Array)).toThrow(new TypeError('duplicates must be a Uint32Array'));
    }
  });

  it('canary: the comparison finds a kernel that drops the last selected row', () => {
    const broken: Kernels = { ...ts, selectTimeRange: (c, rows, start, end, from, to) => ts.selectTimeRange(c, rows, start, Math.max(start, end - 1), from, to) };
    const outcomeOf = fc.check(fc.property(fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 50 }), (col) => {
      const column = Float64Array.from(col);
      expect(outcome(() => broken.selectTimeRange(column, null, 0, column.length, 0, 10))).toEqual(outcome(() => native.selectTimeRange(column, null, 0, column.length, 0, 10)));
    }));
    expect(outcomeOf.failed).toBe(true);
  });
});
