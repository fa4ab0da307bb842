/**
 * segment/bitpack.ts — frame-of-reference bit packing of u32 columns (docs/format/segment.md#bit-packed-columns).
 *
 * Invariant: `unpack(pack(v)) = v` for every array of u32 values (the tests check random and edge columns). Values
 * go in blocks of 128; a block stores its minimum (`base`) and the bit width of its largest `value − base`, then
 * 128 such offsets packed little-endian into 4 × width u32 words. A block whose values are all equal costs 5 bytes,
 * which is what sorted dimension ids mostly are.
 *
 *   packed = n u32 | widths u8 × blocks | pad to 4 | bases u32 × blocks | words u32 × (4 × Σ widths)
 */

export const BLOCK = 128;

export function pack(values: ArrayLike<number>, n: number): Buffer {
  const blocks = Math.ceil(n / BLOCK);
  const widths = new Uint8Array(blocks);
  const bases = new Uint32Array(blocks);
  let words = 0;
  for (let b = 0; b < blocks; b++) {
    const end = Math.min(n, (b + 1) * BLOCK);
    let lo = 0xffffffff;
    let hi = 0;
    for (let i = b * BLOCK; i < end; i++) {
      const v = values[i]! >>> 0;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    bases[b] = lo;
    const range = hi - lo;
    widths[b] = range === 0 ? 0 : 32 - Math.clz32(range);
    words += 4 * widths[b]!;
  }
  const headerBytes = 4 + ((blocks + 3) & ~3) + 4 * blocks;
  const out = Buffer.alloc(headerBytes + 4 * words);
  out.writeUInt32LE(n, 0);
  out.set(widths, 4);
  const basesAt = 4 + ((blocks + 3) & ~3);
  for (let b = 0; b < blocks; b++) out.writeUInt32LE(bases[b]!, basesAt + 4 * b);
  const w = new Uint32Array(words);
  let at = 0;
  for (let b = 0; b < blocks; b++) {
    const width = widths[b]!;
    if (width === 0) continue;
    const base = bases[b]!;
    const end = Math.min(n, (b + 1) * BLOCK);
    let bit = 0;
    for (let i = b * BLOCK; i < end; i++) {
      const d = ((values[i]! >>> 0) - base) >>> 0;
      const k = at + (bit >>> 5);
      const off = bit & 31;
      w[k] = (w[k]! | (d << off)) >>> 0;
      if (off + width > 32) w[k + 1] = (w[k + 1]! | (d >>> (32 - off))) >>> 0;
      bit += width;
    }
    at += 4 * width;
  }
  Buffer.from(w.buffer, w.byteOffset, w.byteLength).copy(out, headerBytes);
  return out;
}

export function unpack(buf: Buffer): Uint32Array {
  const col = packedBlocks(buf);
  const out = new Uint32Array(col.n);
  for (let b = 0; b < col.blocks; b++) col.block(b, out.subarray(b * BLOCK));
  return out;
}

/** A bit-packed column checked whole (header, block table, length, widths), whose blocks decode one at a time. */
export interface PackedBlocks {
  n: number;
  blocks: number;
  /** Decode block b's values into out[0..count); returns count. */
  block(b: number, out: Uint32Array): number;
}

/** Checks `buf` as `unpack` does, with the same errors in the same order, without decoding it. */
export function packedBlocks(buf: Buffer): PackedBlocks {
  if (buf.length < 4) throw new Error('bit-packed column is shorter than its header');
  const n = buf.readUInt32LE(0);
  const blocks = Math.ceil(n / BLOCK);
  const basesAt = 4 + ((blocks + 3) & ~3);
  const headerBytes = basesAt + 4 * blocks;
  if (buf.length < headerBytes) throw new Error('bit-packed column is shorter than its block table');
  let words = 0;
  for (let b = 0; b < blocks; b++) words += 4 * buf[4 + b]!;
  if (buf.length !== headerBytes + 4 * words) throw new Error(`bit-packed column is ${buf.length} bytes; its block table says ${headerBytes + 4 * words}`);
  const wordAt = new Float64Array(blocks);
  let at = 0;
  for (let b = 0; b < blocks; b++) {
    const width = buf[4 + b]!;
    if (width > 32) throw new Error(`bit-packed block ${b} has width ${width}`);
    wordAt[b] = at;
    at += 4 * width;
  }
  // The words read in place when they sit 4-byte aligned; copied once otherwise (a Uint32Array view needs it).
  const aligned = (buf.byteOffset + headerBytes) % 4 === 0 ? buf.subarray(headerBytes) : Buffer.from(buf.subarray(headerBytes));
  const w = new Uint32Array(aligned.buffer, aligned.byteOffset, words);
  return {
    n,
    blocks,
    block(b, out) {
      const width = buf[4 + b]!;
      const base = buf.readUInt32LE(basesAt + 4 * b);
      const count = Math.min(n - b * BLOCK, BLOCK);
      if (width === 0) {
        out.fill(base, 0, count);
        return count;
      }
      const mask = width === 32 ? 0xffffffff : (1 << width) - 1;
      const first = wordAt[b]!;
      let bit = 0;
      for (let i = 0; i < count; i++) {
        const k = first + (bit >>> 5);
        const off = bit & 31;
        let v = w[k]! >>> off;
        if (off + width > 32) v |= w[k + 1]! << (32 - off);
        out[i] = ((v & mask) + base) >>> 0;
        bit += width;
      }
      return count;
    },
  };
}

/** Zigzag: signed 32-bit deltas to u32 with small magnitudes small. */
export function zigzag(d: number): number {
  return d >= 0 ? 2 * d : -2 * d - 1;
}

export function unzigzag(z: number): number {
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
}
