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
