/**
 * head/column-memory.ts — the memory behind the head's columns, and what V8 is told about it.
 *
 * Invariant: a column made here counts toward V8's external memory exactly from its `retire` (it left the head)
 * until its buffer is collected — not while the head holds it, and once however often it is retired.
 *
 * Why: V8 starts a full marking cycle whenever the external memory it counts (ArrayBuffer backing stores) has grown
 * by about 64 MB since the last one. The head's columns are live data growing at the ingest rate (~30 MB/s at a
 * million events a second), so in plain ArrayBuffers they alone started most marking cycles of a load — cycles that
 * cannot free a byte of them and mark the whole JavaScript heap, the caller's events included (docs/benchmarks.md,
 * "Tenth session"). V8 does not count a SharedArrayBuffer's backing store, so the head's columns are allocated in
 * SharedArrayBuffers. And since memory V8 does not count would not prompt the collection that frees it either, a
 * column leaving the head (its bucket released after sealing, replaced by a larger one, or its engine closed) is
 * reported then (`napi_adjust_external_memory`, native/), and unreported when a FinalizationRegistry sees its
 * buffer collected — so garbage prompts a collection as it did, and live data no longer does.
 *
 * Without the addon (or with TALLYDB_NATIVE=0) nothing can be reported, so columns are plain ArrayBuffers, which V8
 * counts itself (the engine's behaviour before). The buffers are never shared with another thread: what the head
 * posts (seal inputs, the query thread's feed) is copied out of them first. (libuv's thread pool faults in the pages
 * of blocks made ahead, see `ColumnBlock`; that reads and writes no byte of them.)
 */
import { adjustExternalMemory, populate } from '../native/index.js';
import { HEAD_BLOCKS_AHEAD } from '../limits.js';

type Mode = 'shared' | 'plain';
let mode: Mode = adjustExternalMemory === null ? 'plain' : 'shared';

/** Bytes of retired columns reported to V8 and not yet collected. */
let reported = 0;
/** Buffers retired (reported) already: a second `retire` of one is a no-op. */
const retired = new WeakSet<ArrayBufferLike>();

const collected = new FinalizationRegistry<number>((bytes) => {
  reported -= bytes;
  adjustExternalMemory!(-bytes);
});

/** A buffer of `bytes` for a new column. */
function buffer(bytes: number): ArrayBuffer {
  // A SharedArrayBuffer is used only as the backing of a plain typed array, read and written on this thread.
  return (mode === 'plain' ? new ArrayBuffer(bytes) : new SharedArrayBuffer(bytes)) as ArrayBuffer;
}

/** Blocks made ahead (`ColumnBlock`), by size, the size asked for least recently first; each is handed out once. */
const ahead = new Map<number, ArrayBuffer[]>();
let populateAhead = populate;

/**
 * A new buffer of `bytes` for a block: for the sizes limits.ts HEAD_BLOCKS_AHEAD names, one made ahead, its pages
 * faulted in on libuv's thread pool (the addon's `populate`) while the blocks before it filled. A new minute's bucket
 * (the suite's: 8,192 rows, 304 KiB) otherwise took its ~76 page faults on the engine's thread as it appended. Blocks
 * are made `HEAD_BLOCKS_AHEAD.batchBytes` at a time and given to one `populate` call: a call wakes a pool thread,
 * ~20 µs of this thread's time on the suite's VM, about what one small block's faults cost (docs/benchmarks.md,
 * "Fifteenth session"). There is always one made ahead once a size was asked for. Without the addon, or in plain
 * memory, every buffer is made when asked for.
 */
function blockBuffer(bytes: number): ArrayBuffer {
  if (populateAhead === null || mode !== 'shared' || bytes < HEAD_BLOCKS_AHEAD.minBytes || bytes > HEAD_BLOCKS_AHEAD.maxBytes) return buffer(bytes);
  let ready = ahead.get(bytes);
  if (ready === undefined) ready = [];
  ahead.delete(bytes);
  ahead.set(bytes, ready);
  if (ahead.size > HEAD_BLOCKS_AHEAD.sizes) {
    // The size asked for least recently: its waiting blocks are garbage now, reported as retired columns are.
    const [dropped, blocks] = ahead.entries().next().value!;
    ahead.delete(dropped);
    retire(blocks.map((b) => new Uint8Array(b, 0, 0)));
  }
  if (ready.length === 0) makeAhead(bytes, ready);
  const block = ready.shift()!;
  if (ready.length === 0) makeAhead(bytes, ready);
  return block;
}

/** Make blocks of `bytes` into `ready`, HEAD_BLOCKS_AHEAD.batchBytes of them (at least one), and populate them. */
function makeAhead(bytes: number, ready: ArrayBuffer[]): void {
  const count = Math.max(1, Math.floor(HEAD_BLOCKS_AHEAD.batchBytes / bytes));
  const made = Array.from({ length: count }, () => buffer(bytes));
  ready.push(...made);
  // Not awaited: a block handed out before its pages are in is only slower to fill (populate changes no byte).
  populateAhead!(...made.map((b) => new Uint8Array(b))).catch(() => {});
}

/**
 * Columns carved one after the other from one new buffer of `bytes`: a head bucket's columns are made together,
 * and a SharedArrayBuffer costs ~10–28 µs to make whatever its size (a bucket of 8,192 rows with the suite's eight
 * columns: 41–147 µs as eight buffers, 9–21 µs as one; docs/benchmarks.md, "Thirteenth session"). Take the 8-byte
 * columns first, then the 4-byte, then the 2-byte ones, so that each starts aligned (a typed array's constructor
 * throws otherwise). Retiring any of them retires the buffer, so a block's columns leave the head together.
 */
export class ColumnBlock {
  private readonly buf: ArrayBuffer;
  private at = 0;

  constructor(bytes: number) {
    this.buf = blockBuffer(bytes);
  }

  f64(length: number): Float64Array {
    const a = new Float64Array(this.buf, this.at, length);
    this.at += 8 * length;
    return a;
  }

  u32(length: number): Uint32Array {
    const a = new Uint32Array(this.buf, this.at, length);
    this.at += 4 * length;
    return a;
  }

  u16(length: number): Uint16Array {
    const a = new Uint16Array(this.buf, this.at, length);
    this.at += 2 * length;
    return a;
  }
}

/**
 * `columns` left the head: from now on their bytes count as garbage V8 may collect. Reported to V8 in one call for
 * all of them: past V8's external-memory limit each call runs a step of incremental marking, and closing an engine
 * whose head held 3M rows took 710 ms when its ~3,500 columns were reported one by one (docs/benchmarks.md,
 * "Thirteenth session").
 */
export function retire(columns: readonly (ArrayBufferView | null)[]): void {
  let bytes = 0;
  for (const column of columns) {
    if (column === null) continue;
    const buffer = column.buffer;
    if (!(buffer instanceof SharedArrayBuffer) || retired.has(buffer)) continue;
    retired.add(buffer);
    bytes += buffer.byteLength;
    collected.register(buffer, buffer.byteLength);
  }
  if (bytes === 0) return;
  reported += bytes;
  adjustExternalMemory!(bytes);
}

/** Bytes retired and not yet seen collected (tests). */
export function reportedBytes(): number {
  return reported;
}

/**
 * Tests: allocate new columns in SharedArrayBuffers ('shared', needs the addon) or plain ArrayBuffers ('plain').
 * Returns the previous mode.
 */
export function setColumnMemoryForTests(next: Mode): Mode {
  if (next === 'shared' && adjustExternalMemory === null) throw new Error('shared column memory needs the native addon');
  const previous = mode;
  mode = next;
  ahead.clear();
  return previous;
}

/** Which memory new columns get. */
export function columnMemory(): Mode {
  return mode;
}

/** The sizes of the blocks made ahead, least recently asked for first, and how many of each wait (tests). */
export function blocksAhead(): [number, number][] {
  return [...ahead].map(([bytes, ready]) => [bytes, ready.length]);
}

/** Tests: what faults in the pages of a block made ahead (null: blocks are not made ahead). Returns the previous. */
export function setPopulateForTests(fn: typeof populate): typeof populate {
  const previous = populateAhead;
  populateAhead = fn;
  ahead.clear();
  return previous;
}
