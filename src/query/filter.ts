/**
 * query/filter.ts — evaluation of a filter tree on one reader, with Roaring bitmap algebra.
 *
 * Invariant: `evalFilter` returns exactly the rows < reader.rowCount that satisfy the filter, as a `RowSet`, and
 * never mutates a bitmap it got from the reader (those are the reader's index). eq/in read the value bitmaps;
 * and/or/not are AND / OR / ANDNOT. Empty and full sets are kept symbolic ('none', 'all') so that the common
 * cases — no filter, a value absent from this reader — cost nothing.
 *
 * Bitmaps and row lists this module builds (intersections, unions, row lists for kernels) come from a scratch
 * arena, not from `new`: each roaring bitmap object is a native object whose finalizer the next scavenge runs,
 * and a query over 60 head minutes makes hundreds of them — measured, scavenges of 10–14 ms, mostly finalizers,
 * every ~130 seed queries, and ~2 µs per intersection against ~0.1 µs for reusing one. Invariant: a bitmap or row
 * list from the arena is valid until the next `resetScratch()`, which `execute` calls as it starts each reader;
 * no reader, cache or result keeps one past that.
 */
import { RoaringBitmap32, type Bitmap } from '../bitmap.js';
import type { SegmentReader, Selection } from './reader.js';
import type { ResolvedFilter } from './shape.js';

export type { Selection } from './reader.js';


export type RowSet = Bitmap | 'all' | 'none';

/** Row lists up to this many rows reuse a buffer (at most ARENA_BUFFERS of them); longer ones are allocated. */
const ARENA_ROWS_MAX = 1 << 16;
const ARENA_BUFFERS = 16;

class Arena {
  private readonly bitmaps: Bitmap[] = [];
  private usedBitmaps = 0;
  private readonly buffers: Uint32Array[] = [];
  private usedBuffers = 0;

  /** An empty bitmap of the arena. */
  bitmap(): Bitmap {
    if (this.usedBitmaps === this.bitmaps.length) this.bitmaps.push(new RoaringBitmap32());
    return this.bitmaps[this.usedBitmaps++]!;
  }

  /** The rows of `s` in order, in an arena buffer when short (the caller may overwrite them). */
  rows(s: Bitmap): Uint32Array {
    const size = s.size;
    if (size > ARENA_ROWS_MAX || this.usedBuffers === ARENA_BUFFERS) return s.toUint32Array();
    if (this.usedBuffers === this.buffers.length) this.buffers.push(new Uint32Array(Math.max(1024, size)));
    let buf = this.buffers[this.usedBuffers]!;
    if (buf.length < size) this.buffers[this.usedBuffers] = buf = new Uint32Array(Math.min(ARENA_ROWS_MAX, Math.max(size, 2 * buf.length)));
    this.usedBuffers++;
    return s.toUint32Array(buf);
  }

  mark(): number {
    return this.usedBitmaps * 65536 + this.usedBuffers;
  }

  /** Give back what was taken since `mark` (bitmaps are cleared: their memory goes back at once). */
  release(mark: number): void {
    const bitmaps = Math.floor(mark / 65536);
    for (let i = bitmaps; i < this.usedBitmaps; i++) this.bitmaps[i]!.clear();
    this.usedBitmaps = bitmaps;
    this.usedBuffers = mark % 65536;
  }
}

const arena = new Arena();

/** Start a reader: every bitmap and row list handed out before is void from here on. */
export function resetScratch(): void {
  arena.release(0);
}

/** A mark to `releaseScratch` to, for a loop that builds a set per step and needs only the current one. */
export function scratchMark(): number {
  return arena.mark();
}

export function releaseScratch(mark: number): void {
  arena.release(mark);
}

function union(parts: Bitmap[]): Bitmap {
  if (parts.length === 1) return parts[0]!;
  if (parts.length > 8) return RoaringBitmap32.orMany(parts);
  const out = arena.bitmap().copyFrom(parts[0]!);
  for (let i = 1; i < parts.length; i++) out.orInPlace(parts[i]!);
  return out;
}

export function evalFilter(f: ResolvedFilter, reader: SegmentReader): RowSet {
  switch (f.kind) {
    case 'eq': {
      const id = reader.dictionary(f.dim).idOf(f.value);
      if (id === undefined) return 'none';
      return reader.bitmap(f.dim, id) ?? 'none';
    }
    case 'in': {
      const dict = reader.dictionary(f.dim);
      const parts: Bitmap[] = [];
      for (const v of f.values) {
        const id = dict.idOf(v);
        if (id === undefined) continue;
        const bm = reader.bitmap(f.dim, id);
        if (bm !== null) parts.push(bm);
      }
      if (parts.length === 0) return 'none';
      return union(parts);
    }
    case 'and': {
      // Terms on an unindexed dimension (an image id) go last: once the indexed terms have narrowed the rows, the
      // ids of just those rows are tested instead of deriving the value's rows from the whole id column.
      const parts: Bitmap[] = [];
      const deferred: (ResolvedFilter & { kind: 'eq' | 'in' })[] = [];
      for (const c of f.children) {
        if ((c.kind === 'eq' || c.kind === 'in') && !reader.indexed(c.dim)) {
          deferred.push(c);
          continue;
        }
        const s = evalFilter(c, reader);
        if (s === 'none') return 'none';
        if (s !== 'all') parts.push(s);
      }
      let acc = intersectAll(parts);
      for (const c of deferred) {
        if (acc === 'none') return 'none';
        acc = acc !== 'all' && acc.size * CANDIDATE_TEST_RATIO <= reader.rowCount ? testRows(c, reader, acc) : intersect(acc, evalFilter(c, reader));
      }
      return acc;
    }
    case 'or': {
      const parts: Bitmap[] = [];
      for (const c of f.children) {
        const s = evalFilter(c, reader);
        if (s === 'all') return 'all';
        if (s !== 'none') parts.push(s);
      }
      if (parts.length === 0) return 'none';
      return union(parts);
    }
    case 'not': {
      const s = evalFilter(f.child, reader);
      if (s === 'all') return 'none';
      if (s === 'none') return 'all';
      const out = arena.bitmap();
      out.addRange(0, reader.rowCount);
      out.andNotInPlace(s);
      return out.size === 0 ? 'none' : out;
    }
  }
}

/**
 * out[r − from] = 1 for each row r in [from, to) of `reader` that satisfies `f`, else 0, by testing the rows' ids
 * (`evalFilter`'s rows, restricted to the range, without a bitmap): for the few rows a head bucket appended since
 * a result was kept (query/result-cache.ts), where building or catching up bitmaps costs more than the test.
 */
export function testRange(f: ResolvedFilter, reader: SegmentReader, from: number, to: number, out: Uint8Array): void {
  const n = to - from;
  switch (f.kind) {
    case 'eq':
    case 'in': {
      const dict = reader.dictionary(f.dim);
      const wanted: number[] = [];
      for (const v of f.kind === 'eq' ? [f.value] : f.values) {
        const id = dict.idOf(v);
        if (id !== undefined) wanted.push(id);
      }
      const ids = reader.dimensionIds(f.dim);
      if (wanted.length === 0) out.fill(0, 0, n);
      else if (wanted.length === 1) {
        const id = wanted[0]!;
        for (let i = 0; i < n; i++) out[i] = ids[from + i] === id ? 1 : 0;
      } else {
        const set = new Set(wanted);
        for (let i = 0; i < n; i++) out[i] = set.has(ids[from + i]!) ? 1 : 0;
      }
      return;
    }
    case 'and':
    case 'or': {
      if (f.children.length === 0) {
        out.fill(f.kind === 'and' ? 1 : 0, 0, n);
        return;
      }
      testRange(f.children[0]!, reader, from, to, out);
      if (f.children.length === 1) return;
      const part = new Uint8Array(n);
      for (let c = 1; c < f.children.length; c++) {
        testRange(f.children[c]!, reader, from, to, part);
        if (f.kind === 'and') for (let i = 0; i < n; i++) out[i]! &= part[i]!;
        else for (let i = 0; i < n; i++) out[i]! |= part[i]!;
      }
      return;
    }
    case 'not': {
      testRange(f.child, reader, from, to, out);
      for (let i = 0; i < n; i++) out[i]! ^= 1;
      return;
    }
  }
}

/** Candidate rows are tested one by one when they are at most this fraction (1/n) of the reader's rows. */
const CANDIDATE_TEST_RATIO = 8;

/** The rows of `within` whose value of the term's dimension is one the term asks for. */
function testRows(f: ResolvedFilter & { kind: 'eq' | 'in' }, reader: SegmentReader, within: Bitmap): RowSet {
  const dict = reader.dictionary(f.dim);
  const wanted = new Set<number>();
  for (const v of f.kind === 'eq' ? [f.value] : f.values) {
    const id = dict.idOf(v);
    if (id !== undefined) wanted.add(id);
  }
  if (wanted.size === 0) return 'none';
  const ids = reader.dimensionIds(f.dim);
  const rows = arena.rows(within);
  let n = 0;
  if (wanted.size === 1) {
    const id = wanted.values().next().value!;
    for (let j = 0; j < rows.length; j++) if (ids[rows[j]!] === id) rows[n++] = rows[j]!;
  } else {
    for (let j = 0; j < rows.length; j++) if (wanted.has(ids[rows[j]!]!)) rows[n++] = rows[j]!;
  }
  return n === 0 ? 'none' : arena.bitmap().copyFrom(rows.subarray(0, n));
}

/** AND of sets, smallest first so intermediate results shrink fast. */
export function intersectAll(parts: Bitmap[]): RowSet {
  if (parts.length === 0) return 'all';
  if (parts.length === 1) return parts[0]!;
  parts.sort((a, b) => a.size - b.size);
  const acc = arena.bitmap().copyFrom(parts[0]!);
  for (let i = 1; i < parts.length && acc.size > 0; i++) acc.andInPlace(parts[i]!);
  return acc.size === 0 ? 'none' : acc;
}

export function intersect(a: RowSet, b: RowSet): RowSet {
  if (a === 'none' || b === 'none') return 'none';
  if (a === 'all') return b;
  if (b === 'all') return a;
  return intersectAll([a, b]);
}

export function cardinality(s: RowSet, rowCount: number): number {
  return s === 'all' ? rowCount : s === 'none' ? 0 : s.size;
}

/** A row set as a kernel selection (src/native/kernels.ts): a contiguous run as a range, else its row ids. */
export function selection(s: Bitmap | 'all', rowCount: number): Selection {
  if (s === 'all') return { rows: null, start: 0, end: rowCount };
  const size = s.size;
  if (size === 0) return { rows: null, start: 0, end: 0 };
  const min = s.minimum();
  // Rows sorted by a leading dimension make its value's rows one run: no row list is built for them.
  if (s.maximum() - min + 1 === size) return { rows: null, start: min, end: min + size };
  const rows = arena.rows(s);
  return { rows, start: 0, end: rows.length };
}

/**
 * The rows of `within` whose timestamp lies in [from, to): 'inside' when the reader lies wholly inside the range (all
 * of `within`), 'none' when there are none, else the kernel's row list (non-empty, in row order). A reader
 * straddling a range end checks the timestamps of just those rows, so a selective filter spares the scan of the rest.
 */
function rowsInRange(reader: SegmentReader, from: number, to: number, within: RowSet): 'inside' | 'none' | Uint32Array {
  if (within === 'none') return 'none';
  if (reader.minTs >= from && reader.maxTs < to) return 'inside';
  if (reader.maxTs < from || reader.minTs >= to) return 'none';
  const rows = reader.selectTimeRange(selection(within, reader.rowCount), from, to);
  return rows.length === 0 ? 'none' : rows;
}

/** Rows of `within` (the rows a filter kept, or all rows) whose timestamp lies in [from, to), as a row set. */
export function timeRangeRows(reader: SegmentReader, from: number, to: number, within: RowSet = 'all'): RowSet {
  const rows = rowsInRange(reader, from, to, within);
  if (rows === 'inside') return within;
  if (rows === 'none') return 'none';
  if (rows.length === reader.rowCount) return 'all';
  return within !== 'all' && within !== 'none' && rows.length === within.size ? within : arena.bitmap().copyFrom(rows);
}

/**
 * `timeRangeRows` as a selection, for a caller that only reads the rows in order (counts by one dimension): the
 * rows the time range keeps stay the kernel's row list instead of becoming a bitmap that is then listed again.
 * The same rows as `selection(timeRangeRows(…), rowCount)`; its row list is the caller's or the arena's.
 */
export function timeRangeSelection(reader: SegmentReader, from: number, to: number, within: RowSet): Selection | 'none' {
  const rows = rowsInRange(reader, from, to, within);
  if (rows === 'none' || within === 'none') return 'none';
  if (rows === 'inside') return selection(within, reader.rowCount);
  return { rows, start: 0, end: rows.length };
}

/** The rows of a bitmap in order, as `selection` lists them (arena-backed: valid until the next reader). */
export function rowsOf(s: Bitmap): Uint32Array {
  return arena.rows(s);
}
