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
