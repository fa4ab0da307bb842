/**
 * segment/ranked.ts — the ranked-ids codec for a high-cardinality dimension's id column (segment format v3).
 *
 * Invariant: decode(encode(ids)) = ids for every column; damaged bytes decode to an Error, never to ids outside the
 * column's rank table or to a column of another length.
 *
 * Why: an image id column is random within its sort group, and its values are skewed (zipf: a few images get most
 * events). Bit packing pays the widest id of each block (~17 bits for ~100k images). Here each row stores the rank
 * of its id by frequency (0 = most frequent) as a LEB128 varint — one byte for the 128 most frequent ids — and the
 * section is then deflated, whose Huffman stage codes the varint bytes close to their entropy (measured on zipf(1)
 * over 100k ids: 17 bits → ~12 bits a row). docs/format/segment.md#ranked-ids has the byte layout.
 *
 *   raw = tableBytes u32 | table: bit-packed u32 column of the ids by rank | rows × LEB128 rank
 */
import { pack, unpack } from './bitpack.js';

/** The raw (not yet deflated) ranked encoding of `col`, whose ids are < `size`. */
export function encodeRanked(col: Uint32Array, n: number, size: number): Buffer {
  const freq = new Uint32Array(size);
  for (let i = 0; i < n; i++) freq[col[i]!]!++;
  const used: number[] = [];
  for (let id = 0; id < size; id++) if (freq[id]! > 0) used.push(id);
  used.sort((a, b) => freq[b]! - freq[a]! || a - b);
  const rank = new Uint32Array(size);
  used.forEach((id, r) => { rank[id] = r; });
  const table = pack(Uint32Array.from(used), used.length);
  const out = Buffer.allocUnsafe(4 + table.length + 5 * n);
  out.writeUInt32LE(table.length, 0);
  table.copy(out, 4);
  let at = 4 + table.length;
  for (let i = 0; i < n; i++) {
    let r = rank[col[i]!]!;
    while (r >= 0x80) {
      out[at++] = (r & 0x7f) | 0x80;
      r >>>= 7;
    }
    out[at++] = r;
  }
  return out.subarray(0, at);
}

/** The id column of `rows` rows from its raw ranked encoding. */
export function decodeRanked(raw: Buffer, rows: number): Uint32Array {
  if (raw.length < 4) throw new Error('ranked id column is shorter than its header');
  const tableBytes = raw.readUInt32LE(0);
  if (tableBytes > raw.length - 4) throw new Error(`ranked id column's table of ${tableBytes} bytes exceeds the section`);
  const table = unpack(raw.subarray(4, 4 + tableBytes));
  const k = table.length;
  const out = new Uint32Array(rows);
  let at = 4 + tableBytes;
  const end = raw.length;
  for (let i = 0; i < rows; i++) {
    let r = 0;
    let shift = 0;
    let b: number;
    do {
      if (at >= end) throw new Error(`ranked id column ends after ${i} of ${rows} rows`);
      b = raw[at++]!;
      r += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80 && shift < 35);
    if (b & 0x80 || r >= k) throw new Error(`ranked id column has rank ${r} at row ${i}; its table holds ${k} ids`);
    out[i] = table[r]!;
  }
  if (at !== end) throw new Error(`ranked id column has ${end - at} bytes after its ${rows} rows`);
  return out;
}
