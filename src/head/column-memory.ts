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
 * posts (seal inputs, the query thread's feed) is copied out of them first.
 */
import { adjustExternalMemory } from '../native/index.js';

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
    this.buf = buffer(bytes);
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
  return previous;
}

/** Which memory new columns get. */
export function columnMemory(): Mode {
  return mode;
}
