/** Bit-packed columns decode to exactly what was packed, for random columns and the edges of every block width. */
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { pack, unpack, unzigzag, zigzag } from '../src/segment/bitpack.js';

it('unpack(pack(v)) = v for random u32 columns of any length', () => {
  const value = fc.oneof(fc.constantFrom(0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1), fc.nat({ max: 2 ** 32 - 1 }), fc.nat(300));
  fc.assert(fc.property(fc.array(value, { maxLength: 700 }), (vs) => {
    const col = Uint32Array.from(vs);
    expect(unpack(pack(col, col.length))).toEqual(col);
  }), { numRuns: 500 });
});

it('every block width 0..32 round-trips, and a constant block costs no words', () => {
  for (let width = 0; width <= 32; width++) {
    const col = Uint32Array.from({ length: 300 }, (_, i) => (width === 0 ? 7 : 1000 + (i % 2 === 0 ? 0 : 2 ** width - 1)) >>> 0);
    expect(unpack(pack(col, col.length))).toEqual(col);
  }
  expect(pack(new Uint32Array(128).fill(9), 128).length).toBe(4 + 4 + 4);
});

it('a damaged length or block table is an error, not a wrong column', () => {
  const packed = pack(Uint32Array.from({ length: 200 }, (_, i) => i * 3), 200);
  const bad = Buffer.from(packed);
  bad[4] = 40;
  expect(() => unpack(bad)).toThrow();
  expect(() => unpack(packed.subarray(0, packed.length - 4))).toThrow(/bytes/);
});

it('zigzag maps signed deltas to small unsigned values and back', () => {
  fc.assert(fc.property(fc.integer({ min: -(2 ** 31) + 1, max: 2 ** 31 - 1 }), (d) => {
    expect(unzigzag(zigzag(d))).toBe(d);
    expect(zigzag(d)).toBeLessThan(2 ** 32);
  }));
  expect([0, -1, 1, -2].map(zigzag)).toEqual([0, 1, 2, 3]);
});

it('rowOrder sorts like a stable comparison sort, for keys of any size and timestamps of any range', async () => {
  const { rowOrder, digitKeys } = await import('../src/segment/radix.js');
  fc.assert(fc.property(
    fc.array(fc.tuple(fc.nat(3), fc.nat(700), fc.oneof(fc.nat(50), fc.nat(2 ** 32 - 2))), { maxLength: 300 }),
    (rows) => {
      const n = rows.length;
      const a = rows.map((r) => r[0]);
      const b = rows.map((r) => r[1]);
      const t = rows.map((r) => 1_700_000_000_000 + r[2]);
      const min = n === 0 ? 0 : Math.min(...t);
      const max = n === 0 ? 0 : Math.max(...t);
      const got = [...rowOrder(n, [{ values: a, size: 4 }, { values: b, size: 701 }, ...digitKeys(t, n, min, max)])];
      const want = rows.map((_, i) => i).sort((x, y) => a[x]! - a[y]! || b[x]! - b[y]! || t[x]! - t[y]! || x - y);
      expect(got).toEqual(want);
    },
  ), { numRuns: 300 });
});

it('decimal metric columns give back every value bit for bit, or are left as f64', async () => {
  const { decimalCodes, decodeDecimal } = await import('../src/segment/format.js');
  const same = (a: Float64Array, b: Float64Array): boolean => a.length === b.length && a.every((v, i) => Object.is(v, b[i]) || (v !== v && b[i] !== b[i]));
  const decimal = fc.tuple(fc.integer({ min: -1e9, max: 1e9 }), fc.integer({ min: 0, max: 8 })).map(([q, k]) => q / 10 ** k);
  const value = fc.oneof(decimal, fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constant(NaN), fc.constant(-0), fc.constantFrom(0.1 + 0.2, 2 ** 53, -(2 ** 53), 1e-7));
  let encoded = 0;
  fc.assert(fc.property(fc.array(fc.oneof({ weight: 6, arbitrary: decimal }, { weight: 1, arbitrary: value }), { maxLength: 300 }), (vs) => {
    const col = Float64Array.from(vs);
    const d = decimalCodes(col);
    if (d === null) return;
    encoded++;
    expect(d.decimals).toBeLessThanOrEqual(6);
    expect(same(decodeDecimal(d.codes, d.decimals, d.offset), col)).toBe(true);
  }), { numRuns: 500 });
  expect(encoded).toBeGreaterThan(50);
  // Cents: two decimals; 0.1 + 0.2 is not a short decimal, -0 has no integer code: both stay f64.
  expect(decimalCodes(Float64Array.from([0.37, NaN, 1.5, 0]))).toMatchObject({ decimals: 2, offset: 0 });
  expect(decimalCodes(Float64Array.from([0.1 + 0.2]))).toBeNull();
  expect(decimalCodes(Float64Array.from([-0]))).toBeNull();
  // canary: a decoder that forgets the offset is caught by the same comparison.
  const d = decimalCodes(Float64Array.from([5.25, 7.5]))!;
  expect(same(decodeDecimal(d.codes, d.decimals, 0), Float64Array.from([5.25, 7.5]))).toBe(false);
});

it('ranked id columns decode to exactly the encoded ids; damaged bytes are an error, never other ids', async () => {
  const { encodeRanked, decodeRanked } = await import('../src/segment/ranked.js');
  const size = 400;
  // Skewed columns (most rows on a few ids, as image ids are) and uniform ones, including ids past one varint byte.
  const id = fc.oneof({ weight: 3, arbitrary: fc.nat(5) }, { weight: 1, arbitrary: fc.nat(size - 1) });
  fc.assert(fc.property(fc.array(id, { maxLength: 600 }), fc.nat(), fc.nat(255), (vs, at, byte) => {
    const col = Uint32Array.from(vs);
    const raw = encodeRanked(col, col.length, size);
    expect(decodeRanked(raw, col.length)).toEqual(col);
    expect(() => decodeRanked(raw, col.length + 1)).toThrow(/ends after/);
    if (col.length > 0) expect(() => decodeRanked(raw, col.length - 1)).toThrow(/bytes after/);
    // A flipped byte either still decodes to a column of the right length with ids from the table, or fails.
    const bad = Buffer.from(raw);
    bad[at % bad.length] = byte;
    try {
      const got = decodeRanked(bad, col.length);
      expect(got.length).toBe(col.length);
    } catch (e) {
      expect(e).toBeInstanceOf(Error);
    }
  }), { numRuns: 400 });
  // The most frequent id gets rank 0: a one-byte varint per row.
  const skewed = Uint32Array.from({ length: 1000 }, (_, i) => (i % 10 === 0 ? 300 + (i % 7) : 299));
  const raw = encodeRanked(skewed, skewed.length, size);
  expect(raw.length - 4 - raw.readUInt32LE(0)).toBe(1000);
});

it('front-coded dictionaries decode to exactly the values, surrogate pairs and all; damage is an error', async () => {
  const { encodeDictionary, decodeDictionary } = await import('../src/segment/format.js');
  const v3 = { version: 3 };
  // Well-formed strings only, as ingest admits (a lone surrogate is DIMENSION_MALFORMED); pairs sharing a high half.
  const str = fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 6 }), fc.constantFrom('img1', 'img10', 'img100', '😀a', '😁a', '😀', 'é', 'e\u0301'))
    .filter((v) => v.isWellFormed());
  fc.assert(fc.property(fc.uniqueArray(str, { maxLength: 80 }), (vs) => {
    const values = [null, ...[...vs].sort()];
    expect(decodeDictionary(encodeDictionary(values), v3)).toEqual(values);
  }), { numRuns: 500 });
  // Shared prefixes are stored once: a thousand ids cost little more than their distinct digits.
  const ids = [null, ...Array.from({ length: 1000 }, (_, i) => `image-number-${100000 + i}`).sort()];
  expect(encodeDictionary(ids).length).toBeLessThan(ids.length * 6);
  const { pack } = await import('msgpackr');
  expect(() => decodeDictionary(pack([[0, 9], ['a', 'b']]), v3)).toThrow(/entry 2/);
  expect(() => decodeDictionary(pack({ not: 'a dictionary' }), v3)).toThrow(/does not decode/);
});
