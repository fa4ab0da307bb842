/**
 * wal/record.ts — the byte layout of WAL files and records (docs/format/wal.md), and the batch codec.
 *
 * Invariant: a record is either read back exactly as written or recognised as damaged — never half-applied.
 * The 12-byte record header protects its own length with a checksum, so a flipped length byte is told apart from
 * a torn tail (a record cut short by a crash, which only ever happens at the very end of the newest file).
 *
 *   file   = header(16) record*
 *   header = magic "TLYW" | version u16 | reserved u16 | firstLsn u64          (little-endian)
 *   record = len u32 | crc u32 = crc32c(payload) | hcrc u32 = crc32c(len ‖ crc) | payload[len]
 *   payload = lz4 block of msgpack { v: 2, lsn, ds, n, t0, ts, dims, metrics, keys }
 *     ts      = n × u32 LE offsets from t0 (bytes), or n × f64 LE when t0 is nil
 *     metrics = [n × f64 LE (bytes), …]   (NaN = null)
 *     dims    = [{ values: [string | null, …], w, ids: n × u{8w} LE (bytes) }, …]  (a record-local dictionary;
 *               w = 1, 2 or 4 bytes an id: the narrowest that holds values.length - 1)
 *     keys    = n × (hi u32, lo u32) LE (bytes) — 64-bit dedup key hashes — or null
 *   Version 1 payloads (ts as f64, ids as u32, no t0 or w) are still read.
 */
import { crc32c } from '@node-rs/crc32';
import { compress, compressAsync, decompress } from '../storage/compress.js';
import { Packr, unpack } from 'msgpackr';
import { WAL_PACK_BUFFERS } from '../limits.js';

export const WAL_MAGIC = 'TLYW';
export const WAL_VERSION = 1;
export const WAL_HEADER_BYTES = 16;
export const RECORD_HEADER_BYTES = 12;
/** A record longer than this is taken as a damaged length (a 100,000-event batch is far below it). */
export const MAX_RECORD_BYTES = 512 * 1024 * 1024;

export function walFileHeader(firstLsn: number): Buffer {
  const b = Buffer.alloc(WAL_HEADER_BYTES);
  b.write(WAL_MAGIC, 0, 'latin1');
  b.writeUInt16LE(WAL_VERSION, 4);
  b.writeBigUInt64LE(BigInt(firstLsn), 8);
  return b;
}

export function checkWalFileHeader(b: Buffer): string | null {
  if (b.length < WAL_HEADER_BYTES) return `file is ${b.length} bytes, shorter than its ${WAL_HEADER_BYTES}-byte header`;
  if (b.toString('latin1', 0, 4) !== WAL_MAGIC) return `bad magic ${JSON.stringify(b.toString('latin1', 0, 4))}; want "${WAL_MAGIC}"`;
  const v = b.readUInt16LE(4);
  if (v !== WAL_VERSION) return `format version ${v}; this build reads version ${WAL_VERSION}`;
  return null;
}

/** Write `payload` framed as one record into `out` at `at` (RECORD_HEADER_BYTES + its length); returns the end. */
export function frameRecordInto(payload: Buffer, out: Buffer, at: number): number {
  out.writeUInt32LE(payload.length, at);
  out.writeUInt32LE(crc32c(payload), at + 4);
  out.writeUInt32LE(crc32c(out.subarray(at, at + 8)), at + 8);
  payload.copy(out, at + RECORD_HEADER_BYTES);
  return at + RECORD_HEADER_BYTES + payload.length;
}

/** `payload` framed as one record, in a buffer of its own. */
export function frameRecord(payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  frameRecordInto(payload, out, 0);
  return out;
}

export type ScanStep =
  | { kind: 'record'; offset: number; payload: Buffer }
  | { kind: 'end' }
  | { kind: 'torn'; offset: number }
  | { kind: 'corrupt'; offset: number; reason: string };

/**
 * Walk the records of one file's bytes (after its header). A record cut short by the end of the bytes is `torn`;
 * a damaged header or payload checksum is `corrupt`. The caller decides what a torn record means (only the newest
 * file may end in one).
 */
export function* scanRecords(buf: Buffer, start: number): Generator<ScanStep> {
  let off = start;
  while (off < buf.length) {
    if (buf.length - off < RECORD_HEADER_BYTES) {
      yield { kind: 'torn', offset: off };
      return;
    }
    const len = buf.readUInt32LE(off);
    const crc = buf.readUInt32LE(off + 4);
    const hcrc = buf.readUInt32LE(off + 8);
    if (crc32c(buf.subarray(off, off + 8)) !== hcrc) {
      yield { kind: 'corrupt', offset: off, reason: 'record header checksum mismatch' };
      return;
    }
    if (len > MAX_RECORD_BYTES) {
      yield { kind: 'corrupt', offset: off, reason: `record length ${len} exceeds ${MAX_RECORD_BYTES}` };
      return;
    }
    if (off + RECORD_HEADER_BYTES + len > buf.length) {
      yield { kind: 'torn', offset: off };
      return;
    }
    const payload = buf.subarray(off + RECORD_HEADER_BYTES, off + RECORD_HEADER_BYTES + len);
    if (crc32c(payload) !== crc) {
      yield { kind: 'corrupt', offset: off, reason: 'payload checksum mismatch' };
      return;
    }
    yield { kind: 'record', offset: off, payload };
    off += RECORD_HEADER_BYTES + len;
  }
  yield { kind: 'end' };
}

/** One dimension column of a logged batch: the distinct values of the batch, and each row's index into them. */
export interface LoggedDimension {
  values: (string | null)[];
  ids: Uint32Array;
}

/** One ingest batch as logged: the accepted rows, with the 64-bit hashes of their dedup keys. */
export interface BatchRecord {
  lsn: number;
  ds: string;
  n: number;
  ts: Float64Array;
  dims: LoggedDimension[];
  metrics: Float64Array[];
  /** hi, lo per row; null when the datasource has no dedup key. */
  keyHashes: Uint32Array | null;
}

function bytesOf(a: Float64Array | Uint32Array | Uint16Array | Uint8Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function aligned(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

/** The payload of a record: msgpack of the batch, lz4-compressed. */
export function encodeBatch(r: BatchRecord): Buffer {
  const buf = takePackBuffer();
  try {
    return compress(packInto(buf, r));
  } finally {
    givePackBuffer(buf);
  }
}

/**
 * `encodeBatch` with the compression on libuv's thread pool (lz4-napi's async `compress`), off the calling thread:
 * the ingest thread only packs. Same bytes as `encodeBatch`.
 */
export async function encodeBatchAsync(r: BatchRecord): Promise<Buffer> {
  const buf = takePackBuffer();
  try {
    return await compressAsync(packInto(buf, r));
  } finally {
    givePackBuffer(buf);
  }
}

/**
 * Records are packed into buffers kept here (msgpackr's `useBuffer`), each taken by one record until its compression
 * has finished. Left to itself, msgpackr packs each value after the last one in one module-level buffer and starts a
 * new buffer when that one is full: a record of 10k events (~190 KB) filled one every few batches, and each new
 * buffer's pages were faulted in on the ingest thread — a quarter of its page faults (limits.ts WAL_PACK_BUFFERS;
 * docs/benchmarks.md, "Fifteenth session"). After each record, msgpackr's buffer is a new small one, so no other
 * pack in the process ever writes into a buffer kept here.
 */
const packr = new Packr({ useRecords: false }); // the options msgpackr's own `pack` is made with
const idlePackBuffers: Buffer[] = [];
/** The size of new pack buffers: grown past any record that did not fit (msgpackr then packs it into its own). */
let packBufferBytes = WAL_PACK_BUFFERS.initialBytes;

function takePackBuffer(): Buffer {
  return idlePackBuffers.pop() ?? Buffer.allocUnsafeSlow(packBufferBytes);
}

function givePackBuffer(buf: Buffer): void {
  if (buf.length === packBufferBytes && idlePackBuffers.length < WAL_PACK_BUFFERS.idle) idlePackBuffers.push(buf);
}

/** msgpack of `r`: a view of `buf`, or of a buffer of msgpackr's own when `r` does not fit in it. */
function packInto(buf: Buffer, r: BatchRecord): Buffer {
  packr.useBuffer(buf);
  try {
    const packed = packBatch(r);
    if (packed.buffer !== buf.buffer) packBufferBytes = Math.max(packBufferBytes, 2 * packed.length);
    return packed;
  } finally {
    packr.useBuffer(Buffer.allocUnsafeSlow(8192));
  }
}

/**
 * range = [least, greatest] of ts[0..n); true when every one is an integer. The loops over rows are functions of
 * their own that end in nothing new to V8: in `packBatch` itself, the loop's on-stack-optimized code was left at the
 * call after it on most batches (86 times in 150; docs/benchmarks.md, "Twelfth session").
 */
function timeBounds(ts: Float64Array, n: number, range: Float64Array): boolean {
  let lo = Infinity;
  let hi = -Infinity;
  let integral = true;
  for (let i = 0; i < n; i++) {
    const t = ts[i]!;
    if (t < lo) lo = t;
    if (t > hi) hi = t;
    if (!Number.isInteger(t)) integral = false;
  }
  range[0] = lo;
  range[1] = hi;
  return integral;
}

/** ts[i] − lo for i in 0..n-1, into `off`. */
function offsetsFrom(ts: Float64Array, n: number, lo: number, off: Uint32Array): Uint32Array {
  for (let i = 0; i < n; i++) off[i] = ts[i]! - lo;
  return off;
}

/**
 * The memory of the columns `packBatch` makes for a record (u32 time offsets, ids narrowed to 1 or 2 bytes), reused
 * from record to record: msgpackr copies them into the record as it packs, so they are free again when `pack`
 * returns. Fresh arrays cost ~120 KB of zeroing and page faults a 10k-event batch on the ingest thread.
 */
let packScratch = new ArrayBuffer(0);

function scratch(bytes: number): ArrayBuffer {
  if (packScratch.byteLength < bytes) packScratch = new ArrayBuffer(Math.max(bytes, 2 * packScratch.byteLength));
  return packScratch;
}

function packBatch(r: BatchRecord): Buffer {
  const n = r.n;
  const ts = r.ts.subarray(0, n);
  let t0: number | null = null;
  let tsBytes: Buffer;
  const range = new Float64Array(2);
  const integral = timeBounds(ts, n, range);
  const lo = range[0]!;
  const hi = range[1]!;
  // Offsets first, then each narrowed id column at a multiple of 4 bytes.
  const mem = scratch(4 * n + r.dims.length * (2 * n + 4));
  let at = 0;
  if (n > 0 && integral && hi - lo <= 0xffffffff) {
    // Times are integer ms (validated at ingest); a batch spans far less than the 49 days a u32 offset holds.
    t0 = lo;
    tsBytes = bytesOf(offsetsFrom(ts, n, lo, new Uint32Array(mem, 0, n)));
    at = 4 * n;
  } else {
    tsBytes = bytesOf(ts);
  }
  return packr.pack({
    v: 2,
    lsn: r.lsn,
    ds: r.ds,
    n,
    t0,
    ts: tsBytes,
    dims: r.dims.map((d) => {
      const w = d.values.length <= 0x100 ? 1 : d.values.length <= 0x10000 ? 2 : 4;
      const ids = d.ids.subarray(0, n);
      let narrow: Uint8Array | Uint16Array | Uint32Array = ids;
      if (w !== 4) {
        narrow = w === 1 ? new Uint8Array(mem, at, n) : new Uint16Array(mem, at, n);
        at += (w * n + 3) & ~3;
        narrow.set(ids); // every id < values.length fits the width
      }
      return { values: d.values, w, ids: bytesOf(narrow) };
    }),
    metrics: r.metrics.map((m) => bytesOf(m.subarray(0, n))),
    keys: r.keyHashes === null ? null : bytesOf(r.keyHashes.subarray(0, 2 * n)),
  });
}

/** Decode a payload; throws on anything malformed (the caller reports it as corruption). */
export function decodeBatch(payload: Buffer): BatchRecord {
  const o = unpack(decompress(payload)) as Record<string, unknown>;
  if (o === null || typeof o !== 'object' || (o.v !== 1 && o.v !== 2)) throw new Error('unknown record version');
  const v2 = o.v === 2;
  const n = o.n as number;
  if (!Number.isSafeInteger(n) || n < 0) throw new Error('bad row count');
  if (typeof o.ds !== 'string' || !Number.isSafeInteger(o.lsn)) throw new Error('bad datasource or lsn');
  if (!Buffer.isBuffer(o.ts) || !Array.isArray(o.dims) || !Array.isArray(o.metrics)) throw new Error('missing columns');
  let ts: Float64Array;
  if (v2 && o.t0 !== null) {
    if (!Number.isSafeInteger(o.t0) || o.ts.length % 4 !== 0) throw new Error('bad time column');
    const off = new Uint32Array(aligned(o.ts));
    const t0 = o.t0 as number;
    ts = new Float64Array(off.length);
    for (let i = 0; i < off.length; i++) ts[i] = t0 + off[i]!;
  } else {
    if (o.ts.length % 8 !== 0) throw new Error('bad time column');
    ts = new Float64Array(aligned(o.ts));
  }
  const dims = (o.dims as { values: unknown; ids: unknown; w?: unknown }[]).map((d) => {
    if (d === null || typeof d !== 'object' || !Array.isArray(d.values) || !Buffer.isBuffer(d.ids)) throw new Error('bad dimension column');
    const w = v2 ? d.w : 4;
    if (w !== 1 && w !== 2 && w !== 4) throw new Error('bad dimension id width');
    if (d.ids.length % w !== 0) throw new Error('bad dimension column');
    const raw = aligned(d.ids);
    const ids = w === 4 ? new Uint32Array(raw) : new Uint32Array(d.ids.length / w);
    if (w === 2) ids.set(new Uint16Array(raw));
    else if (w === 1) ids.set(new Uint8Array(raw));
    const values = d.values as (string | null)[];
    if (values.some((v) => v !== null && typeof v !== 'string')) throw new Error('bad dimension value');
    for (let r = 0; r < ids.length; r++) if (ids[r]! >= values.length) throw new Error('dimension id out of range');
    return { values, ids };
  });
  const metrics = (o.metrics as unknown[]).map((b) => {
    if (!Buffer.isBuffer(b)) throw new Error('bad metric column');
    return new Float64Array(aligned(b));
  });
  if (ts.length !== n || dims.some((c) => c.ids.length !== n) || metrics.some((m) => m.length !== n)) {
    throw new Error('column lengths disagree with the row count');
  }
  if (o.keys !== null && !Buffer.isBuffer(o.keys)) throw new Error('bad key column');
  const keys = o.keys === null ? null : new Uint32Array(aligned(o.keys as Buffer));
  if (keys !== null && keys.length !== 2 * n) throw new Error('key hashes disagree with the row count');
  return { lsn: o.lsn as number, ds: o.ds, n, ts, dims, metrics, keyHashes: keys };
}
