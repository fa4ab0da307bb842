/**
 * storage/compress.ts — lz4 blocks (lz4-napi), with the size prefix checked before anything is allocated.
 *
 * Invariant: decompressing damaged bytes fails fast with an Error and never allocates more than the block could
 * honestly hold. An lz4-napi block starts with its decompressed size (u32 LE); a flipped byte there would
 * otherwise make recovery allocate gigabytes (measured: ~2 s and 1.7 GB for 27 bytes of text).
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import lz4 from 'lz4-napi';

/** LZ4 cannot expand input by more than ~255×; anything claiming more is damaged. */
const MAX_RATIO = 256;

export function compress(raw: Buffer): Buffer {
  return lz4.compressSync(raw);
}

/** `compress` on libuv's thread pool; the same bytes. `raw` must not change until the promise settles. */
export function compressAsync(raw: Buffer): Promise<Buffer> {
  return lz4.compress(raw);
}

/** Decompress `stored`; `expected` is the exact decompressed size when known (segment sections). */
export function decompress(stored: Buffer, expected?: number): Buffer {
  if (stored.length < 4) throw new Error(`lz4 block of ${stored.length} bytes is too short`);
  const claimed = stored.readUInt32LE(0);
  if (expected !== undefined && claimed !== expected) throw new Error(`lz4 block claims ${claimed} bytes; want ${expected}`);
  if (claimed > (stored.length - 4) * MAX_RATIO + 16) throw new Error(`lz4 block of ${stored.length} bytes claims ${claimed} bytes`);
  return lz4.uncompressSync(stored);
}

/** Deflate (zlib, raw): entropy-codes its input, where lz4 only finds repeats — for skewed ids (ranked-ids codec). */
export function deflate(raw: Buffer): Buffer {
  return deflateRawSync(raw, { level: 6 });
}

/** Inflate exactly `expected` bytes; damaged input or a different size is an Error, never a larger allocation. */
export function inflate(stored: Buffer, expected: number): Buffer {
  let out: Buffer;
  try {
    out = inflateRawSync(stored, { maxOutputLength: Math.max(1, expected) });
  } catch (e) {
    throw new Error(`deflate block does not inflate to ${expected} bytes: ${(e as Error).message}`);
  }
  if (out.length !== expected) throw new Error(`deflate block inflated to ${out.length} bytes; want ${expected}`);
  return out;
}
