/**
 * ingest/msgpack-columns.ts — a MessagePack batch of events straight into columns, without event objects.
 *
 * Invariant: when `MsgpackColumnizer.columnize` returns columns, they equal `columnize(ds, limits, unpack(body))`
 * exactly (test/msgpack-columns.test.ts compares the two on random batches); it returns null for anything outside
 * the common shape, and the caller then takes that general path, which decides exactly (with its rejections).
 *
 * The common shape: an array of maps whose keys are the datasource's field names, each at most once, and whose
 * values are nil, integers, float64s or UTF-8 strings, every event valid. One event outside it — an unknown or
 * repeated key, a boolean, a float32, a missing time, a value the validator would reject — sends the whole batch to
 * the general path. What it saves: the 10k objects a batch unpacks to, and a JS string per dimension value — a
 * value of at most 11 ASCII bytes is looked up in its batch-local dictionary by its bytes (the same packed key the
 * head dictionary uses), and becomes a string only the first time the batch meets it; an ASCII dedup key is hashed
 * from its bytes.
 */
import type { Limits } from '../limits.js';
import type { Datasource } from '../schema/datasource.js';
import { MAX_TIMESTAMP_MS } from '../time.js';
import { BatchDictionary } from './batch-dictionary.js';
import { hashAsciiInto, hashKeyInto } from './dedup.js';
import type { EventColumns } from './columns.js';
import type { LoggedDimension } from '../wal/record.js';

const enum Kind { Time, Dimension, Metric, DedupKey, DimensionAndKey }
/** What `readValue` found. */
const enum V { Nil, Number, String, Other }

const utf8 = new TextDecoder('utf-8', { fatal: true });
const latin1 = new TextDecoder('latin1');

interface Field {
  kind: Kind;
  index: number;
  bytes: Uint8Array;
  int: boolean;
}

export class MsgpackColumnizer {
  private readonly fields: Field[];
  /** The field of the i-th key of the previous event: events of one producer share their key order. */
  private readonly shape: number[] = [];
  private readonly locals: BatchDictionary[];
  private buf: Uint8Array = new Uint8Array(0);
  private view: DataView = new DataView(this.buf.buffer);
  private pos = 0;
  /** The last value read: its number, or its string's byte range. */
  private num = 0;
  private strOff = 0;
  private strLen = 0;
  private ascii = true;

  constructor(private readonly ds: Datasource, private readonly limits: Limits) {
    const enc = new TextEncoder();
    const field = (name: string, kind: Kind, index: number, int = false): Field => ({ kind, index, bytes: enc.encode(name), int });
    this.fields = [field(ds.timeField, Kind.Time, 0)];
    ds.dimensions.forEach((d, i) => this.fields.push(field(d, d === ds.dedupKey ? Kind.DimensionAndKey : Kind.Dimension, i)));
    ds.metrics.forEach((m, i) => this.fields.push(field(m.name, Kind.Metric, i, m.type === 'int')));
    if (ds.dedupKey !== null && !ds.dimensions.includes(ds.dedupKey)) this.fields.push(field(ds.dedupKey, Kind.DedupKey, 0));
    this.locals = ds.dimensions.map(() => new BatchDictionary());
  }

  /** The batch's columns, or null when it needs the general path (see the header). */
  columnize(body: Uint8Array): EventColumns | null {
    if (this.fields.length > 30) return null; // the repeated-key check below is a 31-bit mask
    this.buf = body;
    this.view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    this.pos = 0;
    try {
      const out = this.batch();
      return this.pos === body.length ? out : null;
    } catch {
      return null; // a read past the end, or bytes that are not UTF-8: the general path reports it
    }
  }

  private batch(): EventColumns | null {
    const n = this.arrayHeader();
    if (n < 0 || n > this.limits.maxBatchEvents) return null;
    const ds = this.ds;
    const dimCount = ds.dimensions.length;
    const ts = new Float64Array(n);
    const metrics = ds.metrics.map(() => new Float64Array(n).fill(NaN));
    const keyHashes = ds.dedupKey === null ? null : new Uint32Array(2 * n);
    const locals = this.locals;
    for (const l of locals) l.reset();
    const ids = locals.map(() => new Uint32Array(n));
    const fields = this.fields;
    const maxValueBytes = this.limits.maxDimensionValueBytes;
    const maxKey = this.limits.maxDedupKeyLength;
    for (let r = 0; r < n; r++) {
      const keys = this.mapHeader();
      if (keys < 0 || keys > fields.length) return null;
      let seen = 0;
      let sawTime = false;
      let keyKnown = false;
      for (let d = 0; d < dimCount; d++) {
        // Absent dimensions are null.
        ids[d]![r] = 0xffffffff;
      }
      for (let i = 0; i < keys; i++) {
        const f = this.fieldOfKey(i);
        if (f < 0 || (seen & (1 << f)) !== 0) return null;
        seen |= 1 << f;
        const field = fields[f]!;
        const v = this.readValue();
        if (v === V.Other) return null;
        switch (field.kind) {
          case Kind.Time:
            if (v !== V.Number || !(this.num >= 0 && this.num <= MAX_TIMESTAMP_MS) || !Number.isInteger(this.num)) return null;
            ts[r] = this.num;
            sawTime = true;
            break;
          case Kind.Metric:
            if (v === V.Nil) break;
            if (v !== V.Number || !Number.isFinite(this.num) || (field.int && !Number.isSafeInteger(this.num))) return null;
            metrics[field.index]![r] = this.num;
            break;
          case Kind.Dimension:
          case Kind.DimensionAndKey: {
            if (v === V.Nil) break;
            if (v !== V.String || this.strLen > maxValueBytes) return null;
            const dict = locals[field.index]!;
            const local = this.ascii ? dict.idOfAscii(this.buf, this.strOff, this.strLen) : dict.idOf(this.string());
            ids[field.index]![r] = local;
            if (field.kind === Kind.DimensionAndKey) {
              if (!this.hashKey(keyHashes!, r, maxKey, dict.value(local))) return null;
              keyKnown = true;
            }
            break;
          }
          case Kind.DedupKey:
            if (v === V.String) {
              if (!this.hashKey(keyHashes!, r, maxKey, null)) return null;
            } else if (v === V.Number && Number.isSafeInteger(this.num)) {
              const key = String(this.num);
              if (key.length > maxKey) return null;
              hashKeyInto(key, keyHashes!, r);
            } else {
              return null;
            }
            keyKnown = true;
            break;
        }
      }
      if (!sawTime || (keyHashes !== null && !keyKnown)) return null;
      for (let d = 0; d < dimCount; d++) if (ids[d]![r] === 0xffffffff) ids[d]![r] = locals[d]!.idOf(null);
    }
    const dims: LoggedDimension[] = locals.map((l, d) => ({ values: l.take(), ids: ids[d]! }));
    const index = new Uint32Array(n);
    for (let i = 0; i < n; i++) index[i] = i;
    return { total: n, n, index, ts, dims, dimKeys: locals.map((l) => l.takeKeys()), metrics, keyHashes, rejected: [] };
  }

  /** Hash the dedup key just read (or `value`, the dimension string it also is) into row r; false if invalid. */
  private hashKey(out: Uint32Array, r: number, maxKey: number, value: string | null): boolean {
    if (this.ascii) {
      if (this.strLen === 0 || this.strLen > maxKey) return false;
      hashAsciiInto(this.buf, this.strOff, this.strLen, out, r);
      return true;
    }
    const key = value ?? this.string();
    if (key.length === 0 || key.length > maxKey) return false;
    hashKeyInto(key, out, r);
    return true;
  }

  /** The string just read (its bytes are valid UTF-8, or this throws). */
  private string(): string {
    const bytes = this.buf.subarray(this.strOff, this.strOff + this.strLen);
    return this.ascii ? latin1.decode(bytes) : utf8.decode(bytes);
  }

  /** The field index of the i-th key of the event, or -1 when it names no field (or is not a string). */
  private fieldOfKey(i: number): number {
    const b = this.buf;
    const h = b[this.pos++]!;
    let len: number;
    if (h >= 0xa0 && h <= 0xbf) len = h & 0x1f;
    else if (h === 0xd9) len = b[this.pos++]!;
    else return -1;
    const off = this.pos;
    this.pos += len;
    if (this.pos > b.length) throw new RangeError('truncated');
    const guess = this.shape[i];
    if (guess !== undefined && this.keyIs(guess, off, len)) return guess;
    for (let f = 0; f < this.fields.length; f++) {
      if (this.keyIs(f, off, len)) {
        this.shape[i] = f;
        return f;
      }
    }
    return -1;
  }

  private keyIs(f: number, off: number, len: number): boolean {
    const name = this.fields[f]!.bytes;
    if (name.length !== len) return false;
    const b = this.buf;
    for (let j = 0; j < len; j++) if (b[off + j] !== name[j]) return false;
    return true;
  }

  private arrayHeader(): number {
    const h = this.buf[this.pos++]!;
    if (h >= 0x90 && h <= 0x9f) return h & 0x0f;
    if (h === 0xdc) return this.u16();
    if (h === 0xdd) return this.u32();
    return -1;
  }

  private mapHeader(): number {
    const h = this.buf[this.pos++]!;
    if (h >= 0x80 && h <= 0x8f) return h & 0x0f;
    if (h === 0xde) return this.u16();
    if (h === 0xdf) return this.u32();
    return -1;
  }

  /** Read one value: nil, a number (into `num`) or a string (its bytes into strOff/strLen, `ascii` set). */
  private readValue(): V {
    const b = this.buf;
    const h = b[this.pos++]!;
    if (h <= 0x7f) {
      this.num = h;
      return V.Number;
    }
    if (h >= 0xe0) {
      this.num = h - 0x100;
      return V.Number;
    }
    if (h >= 0xa0 && h <= 0xbf) return this.str(h & 0x1f);
    const v = this.view;
    const p = this.pos;
    switch (h) {
      case 0xc0: return V.Nil;
      case 0xcb: this.pos += 8; this.num = v.getFloat64(p); return V.Number;
      case 0xcc: this.pos += 1; this.num = v.getUint8(p); return V.Number;
      case 0xcd: this.pos += 2; this.num = v.getUint16(p); return V.Number;
      case 0xce: this.pos += 4; this.num = v.getUint32(p); return V.Number;
      case 0xd0: this.pos += 1; this.num = v.getInt8(p); return V.Number;
      case 0xd1: this.pos += 2; this.num = v.getInt16(p); return V.Number;
      case 0xd2: this.pos += 4; this.num = v.getInt32(p); return V.Number;
      case 0xcf:
      case 0xd3: {
        // 64-bit integers: only those a JS number holds exactly (msgpackr may decode others as BigInt).
        this.pos += 8;
        const x = h === 0xcf ? v.getBigUint64(p) : v.getBigInt64(p);
        if (x > BigInt(Number.MAX_SAFE_INTEGER) || x < BigInt(Number.MIN_SAFE_INTEGER)) return V.Other;
        this.num = Number(x);
        return V.Number;
      }
      case 0xd9: return this.str(b[this.pos++]!);
      case 0xda: return this.str(this.u16());
      case 0xdb: return this.str(this.u32());
      default: return V.Other;
    }
  }

  private str(len: number): V {
    const b = this.buf;
    const off = this.pos;
    this.pos += len;
    if (this.pos > b.length) throw new RangeError('truncated');
    let ascii = true;
    for (let j = 0; j < len; j++) {
      if (b[off + j]! >= 0x80) {
        ascii = false;
        break;
      }
    }
    this.strOff = off;
    this.strLen = len;
    this.ascii = ascii;
    if (!ascii) utf8.decode(b.subarray(off, off + len)); // throws on bytes that are not UTF-8
    return V.String;
  }

  private u16(): number {
    const x = this.view.getUint16(this.pos);
    this.pos += 2;
    return x;
  }

  private u32(): number {
    const x = this.view.getUint32(this.pos);
    this.pos += 4;
    return x;
  }
}
