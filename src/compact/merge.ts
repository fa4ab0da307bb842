/**
 * compact/merge.ts — merge whole segment files into one (docs/compaction.md). Pure: bytes in, bytes out; it runs
 * in a worker thread and touches no file, handle or engine state.
 *
 * Invariant: the output holds exactly the events of the inputs, each once — without rollup row for row; with
 * rollup, rows with the same dimension values in the same rollup bucket become one row whose event count and
 * metric sum/count/min/max are those of the rows it replaced, so count/sum/min/max/avg/countIf/distinct answers do
 * not change. It also carries what recovery needs: for every minute of the inputs the highest LSN sealed for it,
 * and the newest event time. Every input byte is checked against its CRC before it is used.
 */
import { buildSegment, readFooter, readSection, sealedMinutes, decodeDictionary, type SegmentFooter, type SegmentSource } from '../segment/format.js';
import { decode } from '../segment/reader.js';
import { digitKeys, rowOrder } from '../segment/radix.js';
import type { RollupColumns } from '../query/reader.js';
import { Dictionary } from '../head/dictionary.js';
import type { Datasource } from '../schema/datasource.js';
import { kernels } from '../native/index.js';

export interface MergeOptions {
  /** Truncate timestamps to this bucket and merge rows with equal dimension values in it; null: no rollup. */
  rollupMs: number | null;
  /** Write the dedup key hashes (only rows still inside the dedup window need them). */
  keepKeys: boolean;
}

/** Thrown when an input fails its checks; `input` is its index (the caller quarantines that segment). */
export class MergeInputError extends Error {
  constructor(readonly input: number, reason: string) {
    super(`MERGE_INPUT_CORRUPT input=${input}: ${reason}`);
  }
}

interface Decoded {
  footer: SegmentFooter;
  ts: Float64Array;
  dicts: (string | null)[][];
  ids: Uint32Array[];
  metrics: Float64Array[];
  keys: Uint32Array | null;
  rollup: RollupColumns | null;
}

function decodeInput(buf: Uint8Array, index: number): Decoded {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const read = (pos: number, len: number): Buffer => b.subarray(pos, pos + len);
  try {
    const footer = readFooter(b.length, read);
    const section = (i: number): Buffer => readSection(footer.sections[i]!, read);
    return {
      footer,
      ts: decode.timestamps(section(footer.ts), footer),
      dicts: footer.dims.map((d) => decodeDictionary(section(d.dict), footer)),
      ids: footer.dims.map((d, i) => decode.ids(section(d.ids), footer, i)),
      metrics: footer.metrics.map((m, i) => decode.metric(section(m.values), footer, i)),
      keys: footer.keys < 0 ? null : decode.u32(section(footer.keys)),
      rollup: decode.rollup(footer, section),
    };
  } catch (e) {
    throw new MergeInputError(index, (e as Error).message);
  }
}

// The loops over rows (the id remap, the plain rows' rollup) are functions of their own, as in buildSegment: V8 then
// compiles each small loop when it gets hot, not the whole of a large function. mergeSegments itself is still
// recompiled a few times a load: moving its interning loop out as well raised the merge worker's RSS by ~0.4 GiB
// (cause not found) and was reverted (docs/benchmarks.md, "Twelfth session").

/** `dst[at + r] = remap[src[r]]` for rows 0..rows-1. */
function remapInto(dst: Uint32Array, at: number, src: Uint32Array, remap: Uint32Array, rows: number): void {
  for (let r = 0; r < rows; r++) dst[at + r] = remap[src[r]!]!;
}

/** The rollup columns of plain rows at..at+rows-1 of one metric: one event each, its value as sum, min and max. */
function plainRollup(v: Float64Array, col: RollupColumns['metrics'][number], at: number, rows: number): void {
  for (let r = 0; r < rows; r++) {
    const x = v[r]!;
    col.count[at + r] = x === x ? 1 : 0;
    col.min[at + r] = x;
    col.max[at + r] = x;
  }
}

/** Merge segment files (whole, as bytes) of one datasource into one segment file's bytes. */
export function mergeSegments(inputs: readonly Uint8Array[], ds: Datasource, opts: MergeOptions): Uint8Array {
  const parts = inputs.map((buf, i) => decodeInput(buf, i));
  const dimCount = ds.dimensions.length;
  const metricCount = ds.metrics.length;
  let n = 0;
  for (const p of parts) n += p.footer.rows;

  // One dictionary per dimension over all inputs; each input's ids remapped into it.
  const dicts = ds.dimensions.map(() => new Dictionary());
  const ids = Array.from({ length: dimCount }, () => new Uint32Array(n));
  for (let d = 0; d < dimCount; d++) {
    let at = 0;
    for (const p of parts) {
      const local = p.dicts[d]!;
      const remap = new Uint32Array(local.length);
      for (let id = 1; id < local.length; id++) remap[id] = dicts[d]!.intern(local[id]!);
      remapInto(ids[d]!, at, p.ids[d]!, remap, p.footer.rows);
      at += p.footer.rows;
    }
  }

  const ts = new Float64Array(n);
  const metrics = Array.from({ length: metricCount }, () => new Float64Array(n));
  const anyRollup = parts.some((p) => p.rollup !== null);
  // Key hashes stay row-aligned; rows that have none any more (rolled up, or dropped once past the dedup window)
  // get (0, 0), which recovery skips. A rollup merge keeps none: it runs only once no row needs its key.
  const withKeys = opts.keepKeys && opts.rollupMs === null && ds.dedupKey !== null && parts.some((p) => p.keys !== null);
  const keys = withKeys ? new Uint32Array(2 * n) : null;
  // Rollup columns of the concatenated rows (a plain row: one event, its value as sum, min and max).
  const ru: RollupColumns | null = anyRollup || opts.rollupMs !== null
    ? { counts: new Float64Array(n), metrics: ds.metrics.map(() => ({ count: new Float64Array(n), min: new Float64Array(n), max: new Float64Array(n) })) }
    : null;
  let at = 0;
  for (const p of parts) {
    const rows = p.footer.rows;
    ts.set(p.ts.subarray(0, rows), at);
    for (let m = 0; m < metricCount; m++) metrics[m]!.set(p.metrics[m]!.subarray(0, rows), at);
    if (keys !== null && p.keys !== null) keys.set(p.keys.subarray(0, 2 * rows), 2 * at);
    if (ru !== null) {
      if (p.rollup !== null) {
        ru.counts.set(p.rollup.counts, at);
        for (let m = 0; m < metricCount; m++) {
          ru.metrics[m]!.count.set(p.rollup.metrics[m]!.count, at);
          ru.metrics[m]!.min.set(p.rollup.metrics[m]!.min, at);
          ru.metrics[m]!.max.set(p.rollup.metrics[m]!.max, at);
        }
      } else {
        ru.counts.fill(1, at, at + rows);
        for (let m = 0; m < metricCount; m++) plainRollup(p.metrics[m]!, ru.metrics[m]!, at, rows);
      }
    }
    at += rows;
  }

  // What recovery needs: per minute the highest sealed LSN; the newest event time; the highest LSN overall.
  const minuteLsn = new Map<number, number>();
  let lsn = 0;
  let eventMaxTs = -Infinity;
  for (const p of parts) {
    const pairs = sealedMinutes(p.footer);
    for (let i = 0; i < pairs.length; i += 2) minuteLsn.set(pairs[i]!, Math.max(minuteLsn.get(pairs[i]!) ?? -1, pairs[i + 1]!));
    lsn = Math.max(lsn, p.footer.lsn);
    eventMaxTs = Math.max(eventMaxTs, p.footer.eventMaxTs ?? p.footer.maxTs);
  }
  const minuteLsns = [...minuteLsn].sort((a, b) => a[0] - b[0]).flat();

  const src = opts.rollupMs === null
    ? columnSource(n, dicts, ids, metrics, ts, keys, ru)
    : rollUp(n, dicts, ids, ts, metrics, ru!, opts.rollupMs, dimCount, metricCount);
  const { bytes } = buildSegment(src, ds, lsn, { minuteLsns, eventMaxTs, keys: keys !== null, entropy: true });
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Rows with equal (bucket, dimension ids) become one row: counts and sums add, mins and maxes fold. */
function rollUp(
  n: number, dicts: Dictionary[], ids: Uint32Array[], ts: Float64Array, metrics: Float64Array[], ru: RollupColumns,
  bucketMs: number, dimCount: number, metricCount: number,
): SegmentSource {
  const bucket = new Float64Array(n);
  let lo = Infinity;
  let hi = -Infinity;
  for (let r = 0; r < n; r++) {
    bucket[r] = ts[r]! - (ts[r]! % bucketMs);
    const b = bucket[r]! / bucketMs;
    if (b < lo) lo = b;
    if (b > hi) hi = b;
  }
  const bucketNo = new Float64Array(n);
  for (let r = 0; r < n; r++) bucketNo[r] = bucket[r]! / bucketMs;
  const order = rowOrder(n, [...ids.map((v, d) => ({ values: v, size: dicts[d]!.size })), ...digitKeys(bucketNo, n, n === 0 ? 0 : lo, n === 0 ? 0 : hi)]);
  const outIds = ids.map(() => new Uint32Array(n));
  const outTs = new Float64Array(n);
  const outMetrics = metrics.map(() => new Float64Array(n));
  const out: RollupColumns = { counts: new Float64Array(n), metrics: ru.metrics.map(() => ({ count: new Float64Array(n), min: new Float64Array(n), max: new Float64Array(n) })) };
  let k = -1;
  let prev = -1;
  for (let i = 0; i < n; i++) {
    const r = order[i]!;
    let same = prev >= 0 && bucket[r] === bucket[prev];
    for (let d = 0; same && d < dimCount; d++) same = ids[d]![r] === ids[d]![prev];
    if (!same) {
      k++;
      for (let d = 0; d < dimCount; d++) outIds[d]![k] = ids[d]![r]!;
      outTs[k] = bucket[r]!;
      for (let m = 0; m < metricCount; m++) {
        outMetrics[m]![k] = NaN;
        out.metrics[m]!.min[k] = NaN;
        out.metrics[m]!.max[k] = NaN;
      }
    }
    out.counts[k] += ru.counts[r]!;
    for (let m = 0; m < metricCount; m++) {
      const c = ru.metrics[m]!.count[r]!;
      if (c === 0) continue;
      const o = out.metrics[m]!;
      const sum = metrics[m]![r]!;
      const s = outMetrics[m]![k]!;
      outMetrics[m]![k] = s === s ? s + sum : sum;
      o.count[k] += c;
      const lo = ru.metrics[m]!.min[r]!;
      const hi = ru.metrics[m]!.max[r]!;
      if (!(o.min[k]! <= lo)) o.min[k] = lo;
      if (!(o.max[k]! >= hi)) o.max[k] = hi;
    }
    prev = r;
  }
  const rows = k + 1;
  const cut = (a: Float64Array): Float64Array => a.subarray(0, rows);
  const rolled: RollupColumns = { counts: cut(out.counts), metrics: out.metrics.map((m) => ({ count: cut(m.count), min: cut(m.min), max: cut(m.max) })) };
  return columnSource(rows, dicts, outIds, outMetrics, outTs, null, rolled);
}

/** Plain columns as the segment builder reads them (it computes the time range itself). */
function columnSource(
  rowCount: number, dicts: Dictionary[], ids: Uint32Array[], metrics: Float64Array[], ts: Float64Array,
  keys: Uint32Array | null, ru: RollupColumns | null,
): SegmentSource {
  return {
    minTs: 0, maxTs: 0, rowCount,
    dictionary: (d) => dicts[d]!,
    dimensionIds: (d) => ids[d]!,
    metricValues: (m) => metrics[m]!,
    timestamps: () => ts,
    timestampsFor: (sel) => ({ ts, sel }),
    bucketCounts: (sel, size, first, counts) => kernels.bucketCounts(ts, sel.rows, sel.start, sel.end, size, first, counts),
    selectTimeRange: (sel, from, to) => kernels.selectTimeRange(ts, sel.rows, sel.start, sel.end, from, to),
    indexed: () => false,
    bitmap: () => null,
    keyHashes: () => keys,
    rollup: () => ru,
  };
}
