/**
 * segment/seal-input.ts — a head bucket's rows as plain data that crosses a thread boundary: what the seal worker
 * (compact/worker.ts `seal`) builds a minute segment from, so that the encoding (sorting the values, ordering the
 * rows, bit packing, bitmaps, lz4) runs off the engine's thread.
 *
 * Invariant: `buildSegment(sourceOfSealInput(sealInputOf(src)))` makes the same bytes as `buildSegment(src)`.
 * `sealInputOf` keeps every row, its time, metrics and dedup hash as they are, and renumbers each dimension's ids
 * into a dictionary of only the values the rows use (in order of first use; null stays id 0). buildSegment sorts
 * a segment's values and derives everything else from the values and rows, never from the ids' numbering, so that
 * renumbering changes no byte (test/segment/seal-input.test.ts builds both ways and compares).
 * The arrays of a SealInput are its own (copies), so they can be transferred and the bucket can go on being read.
 */
import type { DictionaryView, RollupColumns } from '../query/reader.js';
import type { SegmentInput } from './format.js';

export interface SealInput {
  rows: number;
  ts: Float64Array;
  /** Per dimension: each row's id into `values` (0 = null), and the values of ids 1..values.length. */
  dims: { ids: Uint32Array; values: string[] }[];
  metrics: Float64Array[];
  keyHashes: Uint32Array | null;
  rollup: RollupColumns | null;
}

/** `src`'s rows 0..rowCount-1 as a SealInput (`dimCount` dimensions, `metricCount` metrics). */
export function sealInputOf(src: SegmentInput, dimCount: number, metricCount: number): SealInput {
  const n = src.rowCount;
  const dims: SealInput['dims'] = [];
  for (let d = 0; d < dimCount; d++) {
    const from = src.dimensionIds(d);
    const dict = src.dictionary(d);
    // Source id → local id + 0 (0: not met yet; the null id 0 maps to 0 and is never looked up as new).
    const local = new Uint32Array(dict.size);
    const values: string[] = [];
    const ids = new Uint32Array(n);
    for (let r = 0; r < n; r++) {
      const id = from[r]!;
      if (id === 0) continue;
      let l = local[id]!;
      if (l === 0) {
        values.push(dict.value(id)!);
        l = local[id] = values.length;
      }
      ids[r] = l;
    }
    dims.push({ ids, values });
  }
  const rollup = src.rollup();
  const hashes = src.keyHashes();
  return {
    rows: n,
    ts: src.timestamps().slice(0, n),
    dims,
    metrics: Array.from({ length: metricCount }, (_, m) => src.metricValues(m).slice(0, n)),
    keyHashes: hashes === null ? null : hashes.slice(0, 2 * n),
    rollup: rollup === null ? null : {
      counts: rollup.counts.slice(0, n),
      metrics: rollup.metrics.map((m) => ({ count: m.count.slice(0, n), min: m.min.slice(0, n), max: m.max.slice(0, n) })),
    },
  };
}

/** The buffers of `input`, to transfer rather than copy. */
export function sealInputBuffers(input: SealInput): ArrayBuffer[] {
  const arrays: ArrayBufferView[] = [input.ts, ...input.dims.map((d) => d.ids), ...input.metrics];
  if (input.keyHashes !== null) arrays.push(input.keyHashes);
  if (input.rollup !== null) {
    arrays.push(input.rollup.counts);
    for (const m of input.rollup.metrics) arrays.push(m.count, m.min, m.max);
  }
  return arrays.map((a) => a.buffer as ArrayBuffer);
}

class LocalDictionary implements DictionaryView {
  private byValue: Map<string, number> | null = null;

  constructor(private readonly values: readonly string[]) {}

  get size(): number {
    return this.values.length + 1;
  }

  value(id: number): string | null {
    return id === 0 ? null : this.values[id - 1] ?? null;
  }

  idOf(value: string | null): number | undefined {
    if (value === null) return 0;
    this.byValue ??= new Map(this.values.map((v, i) => [v, i + 1]));
    return this.byValue.get(value);
  }
}

/** `input` as the source buildSegment reads. */
export function sourceOfSealInput(input: SealInput): SegmentInput {
  const dicts = input.dims.map((d) => new LocalDictionary(d.values));
  return {
    rowCount: input.rows,
    timestamps: () => input.ts,
    dimensionIds: (d) => input.dims[d]!.ids,
    dictionary: (d) => dicts[d]!,
    metricValues: (m) => input.metrics[m]!,
    keyHashes: () => input.keyHashes,
    rollup: () => input.rollup,
  };
}
