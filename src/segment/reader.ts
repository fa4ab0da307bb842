/**
 * segment/reader.ts — an immutable segment file as a `SegmentReader`, read on demand through the block cache.
 *
 * Invariant: a value handed to the query engine came from a section whose CRC matched. A mismatch is reported to
 * the owner (`onCorrupt`, which quarantines the segment) and fails the query with SEGMENT_CORRUPT — a wrong answer
 * is never computed from damaged bytes. Files are opened only while reading, so many segments cost no descriptors.
 */
import { RoaringBitmap32, type Bitmap } from '../bitmap.js';
import { TallyError } from '../errors.js';
import type { FileSystem } from '../storage/fs.js';
import type { DictionaryView, RollupColumns, Selection, TimestampView } from '../query/reader.js';
import type { BlockCache } from './cache.js';
import { decodeDecimal, decodeDictionary, readSection, u32ToF64, type SegmentFooter, type SegmentSource } from './format.js';
import { kernels } from '../native/index.js';
import { MINUTE_MS } from '../time.js';
import { decodeRanked } from './ranked.js';

function checkedLength(a: Uint32Array, rows: number): Uint32Array {
  if (a.length !== rows) throw new Error(`column holds ${a.length} values; the footer says ${rows} rows`);
  return a;
}

/** Column decoders shared by the segment reader and the compaction merge (which reads whole files from memory). */
export const decode = {
  ids(raw: Buffer, footer: SegmentFooter, dim: number): Uint32Array {
    const rows = footer.rows;
    if (footer.dims[dim]!.idCodec === 'ranked') return decodeRanked(raw, rows);
    if (footer.columns === 'bp') return checkedLength(kernels.unpack(raw), rows);
    const idBytes = footer.dims[dim]!.idBytes;
    const src = idBytes === 1 ? new Uint8Array(raw.buffer, raw.byteOffset, raw.length)
      : idBytes === 2 ? new Uint16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length))
        : new Uint32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
    const out = new Uint32Array(rows);
    out.set(src);
    return out;
  },
  f64(raw: Buffer): Float64Array {
    return new Float64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
  },
  metric(raw: Buffer, footer: SegmentFooter, metric: number): Float64Array {
    const m = footer.metrics[metric]!;
    if (m.decimals === undefined) return decode.f64(raw);
    return decodeDecimal(checkedLength(kernels.unpack(raw), footer.rows), m.decimals, m.offset ?? 0);
  },
  u32(raw: Buffer): Uint32Array {
    return new Uint32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
  },
  timestamps(raw: Buffer, footer: SegmentFooter): Float64Array {
    const rows = footer.rows;
    if (footer.columns === 'bp') return kernels.decodeTimestamps(raw, footer.minTs, rows);
    const out = new Float64Array(rows);
    let t = footer.minTs;
    const deltas = new Int32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
    for (let i = 0; i < rows; i++) {
      t += deltas[i]!;
      out[i] = t;
    }
    return out;
  },
  rollup(footer: SegmentFooter, section: (index: number) => Buffer): RollupColumns | null {
    const r = footer.rollup;
    if (r === undefined) return null;
    return {
      counts: u32ToF64(section(r.counts)),
      metrics: r.metrics.map((m) => ({ count: u32ToF64(section(m.count)), min: decode.f64(section(m.min)), max: decode.f64(section(m.max)) })),
    };
  },
};


class SegmentDictionary implements DictionaryView {
  private ids: Map<string, number> | null = null;

  constructor(private readonly values: (string | null)[]) {}

  get size(): number {
    return this.values.length;
  }

  value(id: number): string | null {
    return this.values[id] ?? null;
  }

  idOf(value: string | null): number | undefined {
    if (value === null) return 0;
    if (this.ids === null) {
      this.ids = new Map();
      for (let i = 1; i < this.values.length; i++) this.ids.set(this.values[i]!, i);
    }
    return this.ids.get(value);
  }
}

interface Postings {
  /** Rows of value v: rows[start[v] .. start[v + 1]). */
  start: Uint32Array;
  rows: Uint32Array;
  bitmaps: (Bitmap | null | undefined)[];
}

interface PackedTimestamps {
  raw: Buffer;
  /** Per block of 128 rows, the timestamp before its first row (kernels.timestampAnchors). */
  anchors: Float64Array;
}

interface BitmapBlock {
  blob: Buffer;
  index: Uint32Array;
  bitmaps: (Bitmap | null | undefined)[];
}

export class DiskSegment implements SegmentSource {
  readonly minTs: number;
  readonly maxTs: number;
  readonly rowCount: number;
  private readonly prefix: string;

  constructor(
    readonly id: number,
    readonly file: string,
    readonly footer: SegmentFooter,
    readonly bytesOnDisk: number,
    private readonly fsys: FileSystem,
    private readonly cache: BlockCache,
    private readonly onCorrupt: (seg: DiskSegment, reason: string) => void,
    /** True when queries should read this segment's timestamps packed (the owner's policy, see timestampsFor). */
    private readonly packTimestamps: () => boolean = () => false,
  ) {
    this.minTs = footer.minTs;
    this.maxTs = footer.maxTs;
    this.rowCount = footer.rows;
    this.prefix = `${id}:`;
  }

  get cachePrefix(): string {
    return this.prefix;
  }

  private section(index: number): Buffer {
    let f;
    try {
      f = this.fsys.openRead(this.file);
    } catch (e) {
      throw new TallyError('SEGMENT_MISSING', `segment ${this.file} cannot be read: ${(e as Error).message}`, { file: this.file });
    }
    try {
      return readSection(this.footer.sections[index]!, (p, l) => f.read(p, l));
    } catch (e) {
      const reason = (e as Error).message;
      this.onCorrupt(this, reason);
      throw new TallyError('SEGMENT_CORRUPT', `segment ${this.file}: ${reason}; it was quarantined, retry the query`, { file: this.file, reason });
    } finally {
      f.close();
    }
  }

  dictionary(dim: number): DictionaryView {
    return this.cache.get(`${this.prefix}d${dim}`, () => {
      const raw = this.section(this.footer.dims[dim]!.dict);
      const values = this.decoded(() => decodeDictionary(raw, this.footer));
      let chars = 0;
      for (let i = 1; i < values.length; i++) chars += values[i]!.length;
      return { value: new SegmentDictionary(values), bytes: 2 * chars + 56 * values.length };
    });
  }

  dimensionIds(dim: number): Uint32Array {
    return this.cache.get(`${this.prefix}i${dim}`, () => {
      const out = this.decoded(() => decode.ids(this.section(this.footer.dims[dim]!.ids), this.footer, dim));
      return { value: out, bytes: out.byteLength };
    });
  }

  metricValues(metric: number): Float64Array {
    return this.cache.get(`${this.prefix}m${metric}`, () => {
      const out = this.decoded(() => decode.metric(this.section(this.footer.metrics[metric]!.values), this.footer, metric));
      return { value: out, bytes: out.byteLength };
    });
  }

  timestamps(): Float64Array {
    return this.cache.get(`${this.prefix}t`, () => {
      const out = this.decoded(() => decode.timestamps(this.section(this.footer.ts), this.footer));
      return { value: out, bytes: out.byteLength };
    });
  }

  /** Whether queries read this segment's timestamps from the bit-packed column rather than decoded (see below). */
  private readsPacked(): boolean {
    return this.footer.columns === 'bp' && this.packTimestamps() && !this.cache.has(`${this.prefix}t`);
  }

  /**
   * The bit-packed timestamp column with its block anchors (held packed, ~2 bytes a row, in the cache), or null
   * when queries read the decoded column: when it already is decoded, or when the datasource's timestamps fit the
   * cache comfortably.
   */
  private packedTimestamps(): PackedTimestamps | null {
    if (!this.readsPacked()) return null;
    return this.cache.get<PackedTimestamps>(`${this.prefix}T`, () => {
      const raw = this.section(this.footer.ts);
      const anchors = this.decoded(() => kernels.timestampAnchors(raw, this.footer.minTs));
      return { value: { raw, anchors }, bytes: raw.length + anchors.byteLength };
    });
  }

  /**
   * Each row's minute counted from the segment's first (floor(ts / 60 s) − floor(minTs / 60 s)): one byte a row
   * for a segment spanning ≤ 256 minutes (an hour), two for ≤ 65,536 (a day); null past that.
   */
  private minuteColumn(): Uint8Array | Uint16Array | null {
    const m0 = Math.floor(this.minTs / MINUTE_MS);
    const span = Math.floor(this.maxTs / MINUTE_MS) - m0 + 1;
    if (span > 65_536) return null;
    return this.cache.get<Uint8Array | Uint16Array>(`${this.prefix}M`, () => {
      return this.decoded(() => {
        const ts = decode.timestamps(this.section(this.footer.ts), this.footer);
        const out = span <= 256 ? new Uint8Array(ts.length) : new Uint16Array(ts.length);
        for (let r = 0; r < ts.length; r++) {
          const m = Math.floor(ts[r]! / MINUTE_MS) - m0;
          // A code that does not fit would wrap around silently: a row outside the footer's range is damage.
          if (!(m >= 0 && m < span)) throw new Error(`row ${r}'s timestamp ${ts[r]} lies outside the footer's range [${this.minTs}, ${this.maxTs}]`);
          out[r] = m;
        }
        return { value: out, bytes: out.byteLength };
      });
    });
  }

  selectTimeRange(sel: Selection, from: number, to: number): Uint32Array {
    if (!this.readsPacked()) return kernels.selectTimeRange(this.timestamps(), sel.rows, sel.start, sel.end, from, to);
    let candidates = sel;
    const minutes = this.minuteColumn();
    if (minutes !== null) {
      // Rows in the minutes the range touches, by their minute codes: all of them when the range's ends are whole
      // minutes, otherwise a superset whose timestamps are then read (a few minutes' rows, not the selection's).
      const m0 = Math.floor(this.minTs / MINUTE_MS);
      const lo = Math.max(0, Math.floor(from / MINUTE_MS) - m0);
      const hi = Math.ceil(to / MINUTE_MS) - m0;
      const rows = hi > lo ? kernels.selectCodeRange(minutes, sel.rows, sel.start, sel.end, lo, hi) : new Uint32Array(0);
      if (from % MINUTE_MS === 0 && to % MINUTE_MS === 0) return rows;
      candidates = { rows, start: 0, end: rows.length };
    }
    const packed = this.packedTimestamps()!;
    const ts = kernels.timestampsAt(packed.raw, packed.anchors, candidates.rows, candidates.start, candidates.end);
    const kept = kernels.selectTimeRange(ts, null, 0, ts.length, from, to);
    // Positions in the candidates: back to row ids.
    for (let i = 0; i < kept.length; i++) kept[i] = candidates.rows === null ? candidates.start + kept[i]! : candidates.rows[candidates.start + kept[i]!]!;
    return kept;
  }

  timestampsFor(sel: Selection): TimestampView {
    const packed = this.packedTimestamps();
    if (packed === null) return { ts: this.timestamps(), sel };
    const ts = this.decoded(() => kernels.timestampsAt(packed.raw, packed.anchors, sel.rows, sel.start, sel.end));
    return { ts, sel: { rows: null, start: 0, end: ts.length } };
  }

  bucketCounts(sel: Selection, size: number, first: number, counts: Float64Array): void {
    // Buckets of whole minutes (minute, hour, day) count rows by the segment's minute column: a byte or two a
    // row, decoded once and cached, instead of the timestamps (8 bytes a row decoded: more memory traffic per row
    // even when they are in the cache; packed, a block decode on every query).
    const minutes = size % MINUTE_MS === 0 ? this.minuteColumn() : null;
    if (minutes === null && !this.readsPacked()) {
      kernels.bucketCounts(this.timestamps(), sel.rows, sel.start, sel.end, size, first, counts);
      return;
    }
    if (minutes !== null) {
      const m0 = Math.floor(this.minTs / MINUTE_MS);
      const perBucket = size / MINUTE_MS;
      const table = new Uint32Array(Math.floor(this.maxTs / MINUTE_MS) - m0 + 1);
      for (let m = 0; m < table.length; m++) {
        const k = Math.floor((m0 + m) / perBucket) - first;
        // A bucket past the counters: the kernel refuses a row that lands in it.
        table[m] = k >= 0 && k < counts.length ? k : 0xffffffff;
      }
      kernels.countByCode(minutes, sel.rows, sel.start, sel.end, table, counts);
      return;
    }
    const packed = this.packedTimestamps()!;
    // The anchors were derived from this column when it passed its CRC, so an error here is the query's (a
    // RangeError: a row or bucket out of bounds), not damage to the segment.
    kernels.bucketCountsAt(packed.raw, packed.anchors, sel.rows, sel.start, sel.end, size, first, counts);
  }

  indexed(dim: number): boolean {
    return this.footer.dims[dim]!.bitmaps >= 0;
  }

  keyHashes(): Uint32Array | null {
    if (this.footer.keys < 0) return null;
    return decode.u32(this.section(this.footer.keys));
  }

  rollup(): RollupColumns | null {
    if (this.footer.rollup === undefined) return null;
    return this.cache.get(`${this.prefix}r`, () => {
      const value = decode.rollup(this.footer, (i) => this.section(i))!;
      return { value, bytes: this.rowCount * 8 * (1 + 3 * value.metrics.length) };
    });
  }

  /** Report damage found outside this reader (a merge's check of the file): quarantine as for a failed read. */
  reportCorrupt(reason: string): void {
    this.onCorrupt(this, reason);
  }

  // ---- snapshots: a retired segment's file is deleted once no query reads it -------------------------------

  private refs = 0;
  private retiredAction: (() => void) | null = null;

  /** A query starts reading this segment. */
  acquire(): void {
    this.refs++;
  }

  /** A query is done with it; the last release of a retired segment runs its deletion. */
  release(): void {
    this.refs--;
    if (this.refs === 0 && this.retiredAction !== null) {
      const act = this.retiredAction;
      this.retiredAction = null;
      act();
    }
  }

  /** No new query will see this segment; run `remove` now or when the last reader releases it. */
  retire(remove: () => void): void {
    if (this.refs === 0) remove();
    else this.retiredAction = remove;
  }

  /** A decode that fails after the CRC matched (a format bug or a crafted file) is damage too. */
  private decoded<T>(run: () => T): T {
    try {
      return run();
    } catch (e) {
      if (e instanceof TallyError) throw e;
      const reason = (e as Error).message;
      this.onCorrupt(this, reason);
      throw new TallyError('SEGMENT_CORRUPT', `segment ${this.file}: ${reason}; it was quarantined, retry the query`, { file: this.file, reason });
    }
  }

  /** Rows of each value of a dimension stored without bitmaps, grouped by value (a counting sort of its ids). */
  private postings(dim: number): Postings {
    const key = `${this.prefix}p${dim}`;
    return this.cache.get<Postings>(key, () => {
      const ids = this.dimensionIds(dim);
      const size = this.dictionary(dim).size;
      const start = new Uint32Array(size + 1);
      for (let r = 0; r < this.rowCount; r++) start[ids[r]! + 1]!++;
      for (let v = 0; v < size; v++) start[v + 1]! += start[v]!;
      const rows = new Uint32Array(this.rowCount);
      const fill = start.slice(0, size);
      for (let r = 0; r < this.rowCount; r++) rows[fill[ids[r]!]!++] = r;
      return { value: { start, rows, bitmaps: [] }, bytes: rows.byteLength + start.byteLength };
    });
  }

  bitmap(dim: number, id: number): Bitmap | null {
    if (this.footer.dims[dim]!.bitmaps < 0) {
      const p = this.postings(dim);
      let bm = p.bitmaps[id];
      if (bm === undefined) {
        const from = p.start[id];
        const to = p.start[id + 1];
        bm = from === undefined || to === undefined || from === to ? null : new RoaringBitmap32(p.rows.subarray(from, to));
        p.bitmaps[id] = bm;
        if (bm !== null) this.cache.grow(`${this.prefix}p${dim}`, 16 + 4 * (to! - from!));
      }
      return bm;
    }
    const key = `${this.prefix}b${dim}`;
    const block = this.cache.get<BitmapBlock>(key, () => {
      const info = this.footer.dims[dim]!;
      const blob = this.section(info.bitmaps);
      const idx = this.section(info.bitmapIndex);
      const index = new Uint32Array(idx.buffer.slice(idx.byteOffset, idx.byteOffset + idx.length));
      return { value: { blob, index, bitmaps: [] }, bytes: blob.length + index.byteLength };
    });
    let bm = block.bitmaps[id];
    if (bm === undefined) {
      const start = block.index[id];
      const end = block.index[id + 1];
      if (start === undefined || end === undefined || start === end) {
        bm = null;
      } else {
        bm = RoaringBitmap32.deserialize(block.blob.subarray(start, end), 'portable');
        this.cache.grow(key, end - start);
      }
      block.bitmaps[id] = bm;
    }
    return bm;
  }
}

/**
 * The segments of `segments` that may hold rows in [from, to), each acquired (its file kept until released), and
 * `release`, which lets go of them all once. The engine's snapshots and the query thread's take their segments so.
 */
export function acquireRange(segments: readonly DiskSegment[], from: number, to: number): { held: DiskSegment[]; release: () => void } {
  const held: DiskSegment[] = [];
  for (const seg of segments) {
    if (seg.maxTs >= from && seg.minTs < to) {
      seg.acquire();
      held.push(seg);
    }
  }
  let released = false;
  return {
    held,
    release: () => {
      if (released) return;
      released = true;
      for (const seg of held) seg.release();
    },
  };
}

/**
 * Whether queries read a datasource's segment timestamps packed (decoding only the blocks they need): once its
 * segments' decoded timestamps — 8 bytes a row — would take more than a quarter of the cache. One rule for the
 * engine (storage/store.ts) and the query thread's copy (replica/replica.ts), each against its own cache.
 */
export function packsTimestamps(segmentRows: number, cacheBudgetBytes: number): boolean {
  return segmentRows * 8 > cacheBudgetBytes / 4;
}
