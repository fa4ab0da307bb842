/**
 * segment/format.ts — the byte layout of an immutable segment file (docs/format/segment.md): writing one from any
 * `SegmentReader`, and reading its footer back.
 *
 * Invariant: every byte of a segment is covered by a CRC32C — each section by its own, the footer by the
 * trailer's — so damage is detected before a decoded value is used; and a segment holds exactly the rows of its
 * source, each once.
 *
 *   file    = header(16) section* footer trailer(16)
 *   header  = magic "TLYS" | version u16 | reserved u16 | reserved u64
 *   footer  = msgpack SegmentFooter (below), sections addressed by index into `sections`
 *   trailer = footerLength u32 | footerCrc u32 | version u16 | reserved u16 | magic "TLYS"
 *
 * Rows are sorted by the dimensions in ascending order of their cardinality, then by time, so each value's rows
 * form long runs and its Roaring bitmap is a handful of run containers (shared/NOTES.md measured 100–200× cheaper
 * filters and a far smaller index than arrival order). Dictionaries are local to the segment, sorted, id 0 = null.
 */
import { crc32c } from '@node-rs/crc32';
import { compress, decompress, deflate, inflate } from '../storage/compress.js';
import { encodeRanked } from './ranked.js';
import { pack, unpack } from 'msgpackr';
import { RoaringBitmap32 } from '../bitmap.js';
import type { DictionaryView, SegmentReader } from '../query/reader.js';
import type { Datasource } from '../schema/datasource.js';
import { pack as bitpack, zigzag } from './bitpack.js';
import { digitKeys, rowOrder, stringOrder } from './radix.js';

/**
 * A dimension with more distinct values than this in a segment (or with fewer than 8 rows per value, when it has
 * more than 64 values) gets no stored bitmaps: one tiny bitmap per value costs more bytes than the rows (measured:
 * 4.2 B per event for ~60k image ids an hour) and, at sealing, an N-API call per value on the ingest thread. Readers
 * build its postings from the id column on first use instead; and it is left out of the row sort, so time orders
 * the rows within each combination of the indexed dimensions.
 */
let indexMaxValues = 4096;

/** Tests lower the threshold to run the unindexed path on small data; returns the previous value. */
export function setSegmentIndexMaxForTests(n: number): number {
  const previous = indexMaxValues;
  indexMaxValues = n;
  return previous;
}


export const SEGMENT_MAGIC = 'TLYS';
/** Version written; version 1 files (no rollup, no per-minute LSNs) and 2 (no decimal metrics) are still read. */
export const SEGMENT_VERSION = 3;
const READABLE_VERSIONS = [1, 2, 3];
export const SEGMENT_HEADER_BYTES = 16;
export const SEGMENT_TRAILER_BYTES = 16;

/** Where a section lives: byte offset, stored length, CRC32C of the stored bytes, decoded length; how it is stored. */
export type SectionRef = [offset: number, length: number, crc: number, rawLength: number, codec: SectionCodec];
/** 0 raw, 1 lz4 block, 2 (v3) raw deflate. */
export type SectionCodec = 0 | 1 | 2;

export interface SegmentFooter {
  version: number;
  datasource: string;
  rows: number;
  minTs: number;
  maxTs: number;
  /** The WAL LSN committed when the source was frozen: rows of WAL records at or below it are in this segment. */
  lsn: number;
  /** Dimension indexes in the order rows are sorted by. */
  sortOrder: number[];
  /** Section of Int32 deltas: ts[r] − ts[r−1], with ts[−1] = minTs. */
  ts: number;
  /** `idCodec: 'ranked'` (v3): the ids section holds ranked ids (ranked.ts), deflated; absent: as `columns` says. */
  dims: { name: string; cardinality: number; dict: number; ids: number; idBytes: 1 | 2 | 4; bitmaps: number; bitmapIndex: number; idCodec?: 'ranked' }[];
  /**
   * Per metric, its values section: n × f64 (NaN null), or — v3, `decimals` set — a bit-packed u32 column of codes,
   * 0 for null and round(v · 10^decimals) − offset + 1 for a value v (docs/format/segment.md#decimal-metrics).
   */
  metrics: { name: string; values: number; decimals?: number; offset?: number }[];
  /** Section of (hi, lo) Uint32 pairs: the 64-bit dedup key hash of each row; -1 when the datasource has no key. */
  keys: number;
  sections: SectionRef[];
  /**
   * v2, compacted segments: (minute, LSN) pairs, flattened — for each minute of the inputs, the highest LSN sealed
   * for it. Absent: every minute of [minTs, maxTs] has `lsn`.
   */
  minuteLsns?: number[];
  /** v2: the newest event time of the rows before rollup truncated them (restores the watermark at open). */
  eventMaxTs?: number;
  /** v2, rolled-up segments: Uint32 sections of event counts per row and, per metric, non-null counts, mins, maxes. */
  rollup?: { counts: number; metrics: { count: number; min: number; max: number }[] };
  /**
   * v2: 'bp' — timestamps are bit-packed zigzag deltas and dimension ids bit-packed u32 (bitpack.ts); a dimension
   * with `bitmaps: -1` has no stored bitmaps. Absent (v1): i32 deltas and u8/u16/u32 ids, lz4.
   */
  columns?: 'bp';
}

/** Extra facts a compacted segment records (see the footer fields of the same names). */
export interface SegmentExtras {
  minuteLsns?: number[];
  eventMaxTs?: number;
  /** Write the dedup key hashes (default true when the source has them). */
  keys?: boolean;
  /**
   * Spend CPU for bytes: ranked ids for unindexed dimensions and deflated dictionaries. Compaction (in a worker)
   * sets it; sealing (on the ingest thread, for minute segments that compaction rewrites anyway) leaves it off and
   * stores dictionaries with lz4 and ids bit-packed.
   */
  entropy?: boolean;
}

/** What a segment is built from: any reader, plus the dedup key hashes of its rows. */
export interface SegmentSource extends SegmentReader {
  keyHashes(): Uint32Array | null;
}

/** What `buildSegment` reads of its source (a head bucket, a merge's inputs, or a seal worker's SealInput). */
export type SegmentInput = Pick<SegmentSource, 'rowCount' | 'timestamps' | 'dimensionIds' | 'dictionary' | 'metricValues' | 'rollup' | 'keyHashes'>;

class SectionWriter {
  readonly parts: Buffer[] = [];
  readonly refs: SectionRef[] = [];
  offset = SEGMENT_HEADER_BYTES;

  /** lz4 'auto': compressed only when that saves at least a tenth (runs in a sorted column; not random bits). */
  add(raw: Buffer, lz4: boolean | 'auto'): number {
    let stored = raw;
    if (lz4 === true) stored = compress(raw);
    if (lz4 === 'auto') {
      const c = compress(raw);
      if (c.length <= raw.length * 0.9) stored = c;
    }
    return this.addStored(raw, stored, stored === raw ? 0 : 1);
  }

  addDeflated(raw: Buffer): number {
    return this.addStored(raw, deflate(raw), 2);
  }

  addStored(raw: Buffer, stored: Buffer, codec: SectionCodec): number {
    this.refs.push([this.offset, stored.length, crc32c(stored), raw.length, codec]);
    this.parts.push(stored);
    this.offset += stored.length;
    return this.refs.length - 1;
  }
}

function bytesOf(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** Most decimal places a metric column is stored with as scaled integers. */
const MAX_DECIMALS = 6;

/**
 * A metric column as scaled integers when every value has at most MAX_DECIMALS decimal places — exactly: each
 * value must come back bit-for-bit from `decodeDecimal` — and the codes fit a u32; else null (stored as f64).
 * Prices, costs and counts stored as floats mostly are such numbers: a cost in cents takes ~7 bits instead of 64.
 */
export function decimalCodes(col: Float64Array): { codes: Uint32Array; decimals: number; offset: number } | null {
  for (let k = 0; k <= MAX_DECIMALS; k++) {
    const scale = 10 ** k;
    let lo = Infinity;
    let hi = -Infinity;
    let ok = true;
    for (let i = 0; i < col.length && ok; i++) {
      const v = col[i]!;
      if (v !== v) continue;
      const q = Math.round(v * scale);
      if (q / scale !== v || Object.is(v, -0) || !Number.isSafeInteger(q)) ok = false;
      if (q < lo) lo = q;
      if (q > hi) hi = q;
    }
    if (!ok) continue;
    if (lo === Infinity) lo = hi = 0;
    if (hi - lo + 1 > 0xfffffffe) return null;
    const codes = new Uint32Array(col.length);
    for (let i = 0; i < col.length; i++) {
      const v = col[i]!;
      codes[i] = v !== v ? 0 : Math.round(v * scale) - lo + 1;
    }
    return { codes, decimals: k, offset: lo };
  }
  return null;
}

/** The values of a decimal metric column from its codes (the inverse of decimalCodes). */
export function decodeDecimal(codes: Uint32Array, decimals: number, offset: number): Float64Array {
  const scale = 10 ** decimals;
  const out = new Float64Array(codes.length);
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i]!;
    out[i] = c === 0 ? NaN : (c - 1 + offset) / scale;
  }
  return out;
}

/*
 * The loops of the segment builder, one a function (see buildSegment). A function whose loop V8 optimizes while it
 * runs (on the stack) must end in nothing whose type feedback the interpreter has not yet gathered — a new object
 * or array literal, a call: there the optimized code is left, and since V8 keeps that code for the loop and enters
 * it again next time, it is left there on every call (measured: a literal after `frontCode`'s loop, once per
 * dimension of every sealed minute). So these functions fill what the caller passes, or return what they made
 * before the loop.
 */

/** The values of `dict` that rows 0..n-1 of `ids` use, sorted (null first, as id 0), and source id → local id. */
function localDictionary(ids: Uint32Array, dict: DictionaryView, n: number): { values: (string | null)[]; remap: Uint32Array } {
  const present = markPresent(ids, n, dict.size);
  const sourceIds: number[] = [];
  const strings: string[] = [];
  presentValues(present, dict, sourceIds, strings);
  const sorted = stringOrder(strings);
  const values: (string | null)[] = [null];
  const remap = new Uint32Array(dict.size);
  sortedRemap(sorted, strings, sourceIds, values, remap);
  return { values, remap };
}

/** present[id] = 1 for each id that rows 0..n-1 of `ids` hold. */
function markPresent(ids: Uint32Array, n: number, size: number): Uint8Array {
  const present = new Uint8Array(size);
  for (let r = 0; r < n; r++) present[ids[r]!] = 1;
  return present;
}

/** Appends each present id (from 1) and its value, in id order. */
function presentValues(present: Uint8Array, dict: DictionaryView, sourceIds: number[], strings: string[]): void {
  for (let id = 1; id < present.length; id++) {
    if (present[id]) {
      sourceIds.push(id);
      strings.push(dict.value(id)!);
    }
  }
}

/** Appends the strings in `sorted` order to `values` and sets remap[source id] to each one's local id (from 1). */
function sortedRemap(sorted: Uint32Array, strings: string[], sourceIds: number[], values: (string | null)[], remap: Uint32Array): void {
  for (let i = 0; i < sorted.length; i++) {
    values.push(strings[sorted[i]!]!);
    remap[sourceIds[sorted[i]!]!] = i + 1;
  }
}

/** `remap[ids[r]]` for rows 0..n-1. */
function remapIds(ids: Uint32Array, remap: Uint32Array, n: number): Uint32Array {
  const out = new Uint32Array(n);
  for (let r = 0; r < n; r++) out[r] = remap[ids[r]!]!;
  return out;
}

/** range = [least, greatest] of `ts[0..n)` (±Infinity crossed when n = 0). */
function timeRange(ts: Float64Array, n: number, range: Float64Array): void {
  let minTs = Infinity;
  let maxTs = -Infinity;
  for (let r = 0; r < n; r++) {
    if (ts[r]! < minTs) minTs = ts[r]!;
    if (ts[r]! > maxTs) maxTs = ts[r]!;
  }
  range[0] = minTs;
  range[1] = maxTs;
}

/** The zigzag deltas of the times in `order`, the first from `minTs`. */
function timeDeltas(ts: Float64Array, order: Uint32Array, n: number, minTs: number): Uint32Array {
  const deltas = new Uint32Array(n);
  let prev = minTs;
  for (let i = 0; i < n; i++) {
    const t = ts[order[i]!]!;
    deltas[i] = zigzag(t - prev);
    prev = t;
  }
  return deltas;
}

/**
 * `col[order[i]]` for i in 0..n-1, one function per pair of element types: a single one over every kind of typed
 * array would be polymorphic in its loads and stores, and deoptimize as each new kind arrived.
 */
function gatherU32(col: Uint32Array, order: Uint32Array, n: number): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = col[order[i]!]!;
  return out;
}

function gatherF64(col: Float64Array, order: Uint32Array, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = col[order[i]!]!;
  return out;
}

/** Rollup counts (f64 in the head, u32 in a segment). */
function gatherF64AsU32(col: Float64Array, order: Uint32Array, n: number): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = col[order[i]!]!;
  return out;
}

/** The (hi, lo) pairs of `pairs` in `order`. */
function gatherPairs(pairs: Uint32Array, order: Uint32Array, n: number): Uint32Array {
  const out = new Uint32Array(2 * n);
  for (let i = 0; i < n; i++) {
    out[2 * i] = pairs[2 * order[i]!]!;
    out[2 * i + 1] = pairs[2 * order[i]! + 1]!;
  }
  return out;
}

/**
 * The bitmap of each value's rows in a sorted column `col` (ids < size): the portable serializations one after the
 * other, and `index[id]` the offset of value id's (index[size]: the end; a value without rows has none).
 * Each value's rows (positions in the sorted order), ascending, one run of `postings` per value: a bitmap is made
 * from a typed array in one call (from a JS array, element by element).
 */
function valueBitmaps(col: Uint32Array, n: number, size: number): { blobs: Buffer; index: Uint32Array } {
  const start = new Uint32Array(size + 1);
  const postings = new Uint32Array(n);
  postingsOf(col, n, size, start, postings);
  const index = new Uint32Array(size + 1);
  const blobs: Buffer[] = [];
  const off = serializeBitmaps(postings, start, size, index, blobs);
  return { blobs: Buffer.concat(blobs, off), index };
}

/** start[id]..start[id+1]: where value id's rows are in `postings`, which lists each value's rows ascending. */
function postingsOf(col: Uint32Array, n: number, size: number, start: Uint32Array, postings: Uint32Array): void {
  for (let i = 0; i < n; i++) start[col[i]! + 1]!++;
  for (let id = 0; id < size; id++) start[id + 1]! += start[id]!;
  const fill = start.slice(0, size);
  for (let i = 0; i < n; i++) postings[fill[col[i]!]!++] = i;
}

/** Appends each value's bitmap, portable-serialized, to `blobs`, with index[id] its offset; returns the total. */
function serializeBitmaps(postings: Uint32Array, start: Uint32Array, size: number, index: Uint32Array, blobs: Buffer[]): number {
  let off = 0;
  for (let id = 0; id < size; id++) {
    index[id] = off;
    if (start[id] === start[id + 1]) continue;
    const bm = new RoaringBitmap32(postings.subarray(start[id]!, start[id + 1]!));
    bm.runOptimize();
    const blob = Buffer.from(bm.serialize('portable'));
    blobs.push(blob);
    off += blob.length;
  }
  index[size] = off;
  return off;
}

/** Build a segment file's bytes from `src` (rows 0..rowCount-1). */
export function buildSegment(src: SegmentInput, ds: Datasource, lsn: number, extras: SegmentExtras = {}): { bytes: Buffer; footer: SegmentFooter } {
  // Each loop over the rows is a function of its own (above): in one function of this size, V8 compiled the whole of
  // it (~35–70 ms of a compiler thread) each time one of its loops got hot on the stack or a deoptimization threw the
  // code away — 21 times in a 10M-event load's seal worker after warm-up (docs/benchmarks.md, "Twelfth session").
  const n = src.rowCount;
  const dimCount = ds.dimensions.length;
  const ts = src.timestamps();

  // Local dictionaries: the values present, sorted; a remap from source ids.
  const remaps: Uint32Array[] = [];
  const dicts: (string | null)[][] = [];
  for (let d = 0; d < dimCount; d++) {
    const local = localDictionary(src.dimensionIds(d), src.dictionary(d), n);
    remaps.push(local.remap);
    dicts.push(local.values);
  }
  const localIds = ds.dimensions.map((_, d) => remapIds(src.dimensionIds(d), remaps[d]!, n));

  // Row order: indexed (low-cardinality) dimensions, fewest values first, then time.
  // A value with few rows gains nothing from a bitmap over its postings (built from the ids on first use), so a
  // dimension is indexed only when its values have 8 rows each on average, or it has at most 64 values.
  const indexed = dicts.map((dict) => dict.length - 1 <= indexMaxValues && (dict.length - 1 <= Math.min(64, indexMaxValues) || 8 * (dict.length - 1) <= n));
  const sortOrder = ds.dimensions.map((_, d) => d).filter((d) => indexed[d]).sort((a, b) => dicts[a]!.length - dicts[b]!.length || a - b);
  const range = new Float64Array(2);
  timeRange(ts, n, range);
  const minTs = n === 0 ? 0 : range[0]!;
  const maxTs = n === 0 ? 0 : range[1]!;
  const order = rowOrder(n, [...sortOrder.map((d) => ({ values: localIds[d]!, size: dicts[d]!.length })), ...digitKeys(ts, n, minTs, maxTs)]);

  const w = new SectionWriter();
  const entropy = extras.entropy === true;
  const addDictionary = (dict: (string | null)[]): number => (entropy ? w.addDeflated(encodeDictionary(dict)) : w.add(encodeDictionary(dict), true));
  const tsSection = w.add(bitpack(timeDeltas(ts, order, n, minTs), n), false);

  const dims = ds.dimensions.map((name, d) => {
    const dict = dicts[d]!;
    const idBytes: 1 | 2 | 4 = dict.length <= 0x100 ? 1 : dict.length <= 0x10000 ? 2 : 4;
    const col = gatherU32(localIds[d]!, order, n);
    if (!indexed[d]) {
      // Ranked ids when they beat bit packing by a tenth (skewed values); else bit-packed.
      const bp = bitpack(col, n);
      const rankedRaw = entropy ? encodeRanked(col, n, dict.length) : null;
      const ranked = rankedRaw === null ? null : deflate(rankedRaw);
      const useRanked = ranked !== null && ranked.length <= bp.length * 0.9;
      return {
        name, cardinality: dict.length - 1, dict: addDictionary(dict), ids: useRanked ? w.addStored(rankedRaw!, ranked, 2) : w.add(bp, 'auto'),
        idBytes, bitmaps: -1, bitmapIndex: -1, ...(useRanked ? { idCodec: 'ranked' as const } : {}),
      };
    }
    const { blobs, index } = valueBitmaps(col, n, dict.length);
    return {
      name, cardinality: dict.length - 1,
      dict: addDictionary(dict),
      ids: w.add(bitpack(col, n), 'auto'),
      idBytes,
      bitmaps: w.add(blobs, false),
      bitmapIndex: w.add(bytesOf(index), true),
    };
  });

  const metrics = ds.metrics.map((m, mi) => {
    const col = gatherF64(src.metricValues(mi), order, n);
    const dec = decimalCodes(col);
    if (dec !== null) return { name: m.name, values: w.add(bitpack(dec.codes, n), 'auto'), decimals: dec.decimals, offset: dec.offset };
    return { name: m.name, values: w.add(bytesOf(col), true) };
  });

  let rollup: SegmentFooter['rollup'];
  const ru = src.rollup();
  if (ru !== null) {
    const u32 = (a: Float64Array): number => w.add(bytesOf(gatherF64AsU32(a, order, n)), true);
    const f64 = (a: Float64Array): number => w.add(bytesOf(gatherF64(a, order, n)), true);
    rollup = { counts: u32(ru.counts), metrics: ru.metrics.map((m) => ({ count: u32(m.count), min: f64(m.min), max: f64(m.max) })) };
  }

  let keys = -1;
  const hashes = extras.keys === false ? null : src.keyHashes();
  if (hashes !== null) keys = w.add(bytesOf(gatherPairs(hashes, order, n)), true);

  const footer: SegmentFooter = {
    version: SEGMENT_VERSION, datasource: ds.name, rows: n, minTs, maxTs, lsn, sortOrder, ts: tsSection, dims, metrics, keys, sections: w.refs,
    columns: 'bp',
  };
  if (extras.minuteLsns !== undefined) footer.minuteLsns = extras.minuteLsns;
  if (extras.eventMaxTs !== undefined) footer.eventMaxTs = extras.eventMaxTs;
  if (rollup !== undefined) footer.rollup = rollup;
  const footerBytes = pack(footer);
  const header = Buffer.alloc(SEGMENT_HEADER_BYTES);
  header.write(SEGMENT_MAGIC, 0, 'latin1');
  header.writeUInt16LE(SEGMENT_VERSION, 4);
  const trailer = Buffer.alloc(SEGMENT_TRAILER_BYTES);
  trailer.writeUInt32LE(footerBytes.length, 0);
  trailer.writeUInt32LE(crc32c(footerBytes), 4);
  trailer.writeUInt16LE(SEGMENT_VERSION, 8);
  trailer.write(SEGMENT_MAGIC, 12, 'latin1');
  return { bytes: Buffer.concat([header, ...w.parts, footerBytes, trailer]), footer };
}

/** Read and check a footer from the file's last bytes; throws an Error describing the damage. */
export function readFooter(size: number, read: (position: number, length: number) => Buffer): SegmentFooter {
  if (size < SEGMENT_HEADER_BYTES + SEGMENT_TRAILER_BYTES) throw new Error(`file is ${size} bytes, too short for a segment`);
  const header = read(0, SEGMENT_HEADER_BYTES);
  if (header.toString('latin1', 0, 4) !== SEGMENT_MAGIC) throw new Error('bad header magic');
  const trailer = read(size - SEGMENT_TRAILER_BYTES, SEGMENT_TRAILER_BYTES);
  if (trailer.toString('latin1', 12, 16) !== SEGMENT_MAGIC) throw new Error('bad trailer magic');
  const version = trailer.readUInt16LE(8);
  if (!READABLE_VERSIONS.includes(version)) throw new Error(`format version ${version}; this build reads ${READABLE_VERSIONS.join(', ')}`);
  const len = trailer.readUInt32LE(0);
  if (len > size - SEGMENT_HEADER_BYTES - SEGMENT_TRAILER_BYTES) throw new Error(`footer length ${len} exceeds the file`);
  const footerBytes = read(size - SEGMENT_TRAILER_BYTES - len, len);
  if (crc32c(footerBytes) !== trailer.readUInt32LE(4)) throw new Error('footer checksum mismatch');
  const footer = unpack(footerBytes) as SegmentFooter;
  if (footer?.version !== version || !Array.isArray(footer.sections)) throw new Error('footer does not decode');
  return footer;
}

/** (minute, LSN) pairs this segment seals: rows of WAL records at or below the LSN for that minute are in it. */
export function sealedMinutes(footer: SegmentFooter): number[] {
  if (footer.minuteLsns !== undefined) return footer.minuteLsns;
  const out: number[] = [];
  for (let m = footer.minTs - (footer.minTs % 60_000); m <= footer.maxTs; m += 60_000) out.push(m, footer.lsn);
  return out;
}

/** Decode a Uint32 section into float64 (rollup counts). */
export function u32ToF64(raw: Buffer): Float64Array {
  const src = new Uint32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
  return Float64Array.from(src);
}

/** Read one section and check its CRC; throws an Error describing the damage. */
export function readSection(ref: SectionRef, read: (position: number, length: number) => Buffer): Buffer {
  const [offset, length, crc, rawLength, compressed] = ref;
  const stored = read(offset, length);
  if (stored.length !== length || crc32c(stored) !== crc) throw new Error(`section at offset ${offset} failed its checksum`);
  const raw = compressed === 2 ? inflate(stored, rawLength) : compressed ? decompress(stored, rawLength) : stored;
  if (raw.length !== rawLength) throw new Error(`section at offset ${offset} decoded to ${raw.length} bytes; want ${rawLength}`);
  return raw;
}

/**
 * A dictionary section's raw bytes. v3: front-coded — msgpack [prefixes, suffixes] of values 1.. (sorted, so each
 * shares a prefix with the one before: `img10023` after `img10022` stores (6, "3")), stored deflated; a prefix never
 * ends between the halves of a surrogate pair. v1/v2: msgpack array of all values, index 0 null, lz4.
 */
export function encodeDictionary(values: readonly (string | null)[]): Buffer {
  // The loop is a function of its own: optimized on the stack together with this `pack` call, its code was left at
  // that call over and over (a deoptimization per dimension of each sealed minute; see localDictionary).
  const prefixes: number[] = [];
  const suffixes: string[] = [];
  frontCode(values, prefixes, suffixes);
  return pack([prefixes, suffixes]);
}

/** Appends the prefix length and suffix of each of values 1.. of a sorted dictionary, against the value before. */
function frontCode(values: readonly (string | null)[], prefixes: number[], suffixes: string[]): void {
  let prev = '';
  for (let i = 1; i < values.length; i++) {
    const v = values[i]!;
    let p = 0;
    const max = Math.min(prev.length, v.length);
    while (p < max && prev.charCodeAt(p) === v.charCodeAt(p)) p++;
    if (p > 0 && p < v.length && (v.charCodeAt(p - 1) & 0xfc00) === 0xd800) p--;
    prefixes.push(p);
    suffixes.push(v.slice(p));
    prev = v;
  }
}

export function decodeDictionary(raw: Buffer, footer: Pick<SegmentFooter, 'version'>): (string | null)[] {
  if (footer.version < 3) return unpack(raw) as (string | null)[];
  const fc = unpack(raw) as [number[], string[]];
  if (!Array.isArray(fc) || !Array.isArray(fc[0]) || !Array.isArray(fc[1]) || fc[0].length !== fc[1].length) throw new Error('dictionary section does not decode');
  const [prefixes, suffixes] = fc;
  const out: (string | null)[] = [null];
  let prev = '';
  for (let i = 0; i < prefixes.length; i++) {
    const p = prefixes[i]!;
    const suffix = suffixes[i]!;
    if (!Number.isInteger(p) || p < 0 || p > prev.length || typeof suffix !== 'string') throw new Error(`dictionary entry ${i + 1} does not decode`);
    prev = prev.slice(0, p) + suffix;
    out.push(prev);
  }
  return out;
}
