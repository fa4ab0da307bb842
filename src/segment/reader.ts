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
import type { DictionaryView } from '../query/reader.js';
import type { BlockCache } from './cache.js';
import { decodeDictionary, readSection, type SegmentFooter, type SegmentSource } from './format.js';


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
      return { value: new SegmentDictionary(decodeDictionary(raw)), bytes: raw.length * 3 };
    });
  }

  dimensionIds(dim: number): Uint32Array {
    return this.cache.get(`${this.prefix}i${dim}`, () => {
      const info = this.footer.dims[dim]!;
      const raw = this.section(info.ids);
      const src = info.idBytes === 1 ? new Uint8Array(raw.buffer, raw.byteOffset, raw.length)
        : info.idBytes === 2 ? new Uint16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length))
          : new Uint32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
      const out = new Uint32Array(this.rowCount);
      out.set(src);
      return { value: out, bytes: out.byteLength };
    });
  }

  metricValues(metric: number): Float64Array {
    return this.cache.get(`${this.prefix}m${metric}`, () => {
      const raw = this.section(this.footer.metrics[metric]!.values);
      const out = new Float64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
      return { value: out, bytes: out.byteLength };
    });
  }

  timestamps(): Float64Array {
    return this.cache.get(`${this.prefix}t`, () => {
      const raw = this.section(this.footer.ts);
      const deltas = new Int32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
      const out = new Float64Array(this.rowCount);
      let t = this.minTs;
      for (let i = 0; i < this.rowCount; i++) {
        t += deltas[i]!;
        out[i] = t;
      }
      return { value: out, bytes: out.byteLength };
    });
  }

  keyHashes(): Uint32Array | null {
    if (this.footer.keys < 0) return null;
    const raw = this.section(this.footer.keys);
    return new Uint32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
  }

  bitmap(dim: number, id: number): Bitmap | null {
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
