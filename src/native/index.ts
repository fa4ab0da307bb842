/**
 * native/index.ts — the one loader of the C++ kernels (native/), and the one place that decides which version of
 * the hot loops runs.
 *
 * Invariant: `kernels` is the C++ addon when it was built and loads, and the TypeScript versions otherwise (or
 * when TALLYDB_NATIVE=0 forces them); both give identical results (src/native/kernels.ts), so the choice changes
 * speed, never an answer. `nativeStatus` says which one runs and, for the fallback, why.
 *
 * The addon is built by `npm install` (the package's install script runs node-gyp in native/). Its path is the
 * same relative to src/native/ and to dist/native/.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { typescriptKernels, type Kernels } from './kernels.js';

export type { Kernels } from './kernels.js';

export interface NativeStatus {
  /** 'native': the C++ addon; 'typescript': the fallback. */
  kind: 'native' | 'typescript';
  /** Why the fallback runs: forced by TALLYDB_NATIVE=0, or the addon's load error. */
  reason?: string;
}

const ADDON = fileURLToPath(new URL('../../native/build/Release/tallydb_native.node', import.meta.url));
const NAMES: (keyof Kernels)[] = ['unpack', 'decodeTimestamps', 'timestampAnchors', 'timestampsAt', 'bucketCounts', 'bucketCountsAt', 'selectTimeRange', 'countByCode', 'selectCodeRange', 'countByKey', 'countFirstMet', 'dedupChunk', 'dedupMove', 'probeSlots'];

/** Tell V8 that `delta` bytes it does not count became garbage (> 0) or were freed (< 0); returns its new total. */
export type AdjustExternalMemory = (delta: number) => number;
/** Fault in the pages under `views` on libuv's thread pool, changing no byte; true when done, false if unsupported. */
export type Populate = (...views: ArrayBufferView[]) => Promise<boolean>;

function load(): { kernels: Kernels; status: NativeStatus; adjust: AdjustExternalMemory | null; populate: Populate | null } {
  if (process.env['TALLYDB_NATIVE'] === '0') {
    return { kernels: typescriptKernels, status: { kind: 'typescript', reason: 'TALLYDB_NATIVE=0' }, adjust: null, populate: null };
  }
  try {
    const addon = createRequire(import.meta.url)(ADDON) as Partial<Kernels> & { adjustExternalMemory?: AdjustExternalMemory; populate?: Populate };
    const missing = [...NAMES, 'adjustExternalMemory' as const, 'populate' as const].filter((n) => typeof addon[n] !== 'function');
    if (missing.length > 0) throw new Error(`the addon at ${ADDON} lacks ${missing.join(', ')}; rebuild it with npm install`);
    return { kernels: addon as Kernels, status: { kind: 'native' }, adjust: addon.adjustExternalMemory!, populate: addon.populate! };
  } catch (e) {
    return { kernels: typescriptKernels, status: { kind: 'typescript', reason: (e as Error).message.split('\n')[0]! }, adjust: null, populate: null };
  }
}

const loaded = load();

/**
 * The addon's `napi_adjust_external_memory`, or null without the addon (head/column-memory.ts then keeps the head's
 * columns in plain ArrayBuffers). Not a kernel: it has no TypeScript twin, because there is no way to do it in
 * JavaScript.
 */
export const adjustExternalMemory: AdjustExternalMemory | null = loaded.adjust;

/**
 * The addon's `populate` (madvise MADV_POPULATE_WRITE on libuv's thread pool), or null without the addon: the head
 * then makes its blocks as they are needed (head/column-memory.ts). Not a kernel either: no JavaScript can do it.
 */
export const populate: Populate | null = loaded.populate;

export let kernels: Kernels = loaded.kernels;
export const nativeStatus: NativeStatus = loaded.status;

/**
 * Tests only: run the engine on the TypeScript kernels ('typescript') or on what the loader picked ('loaded'), so
 * one process can check that both give the reference model's answers. Returns the previous choice.
 */
export function setKernelsForTests(which: 'typescript' | 'loaded'): 'typescript' | 'loaded' {
  const previous = kernels === loaded.kernels ? 'loaded' : 'typescript';
  kernels = which === 'typescript' ? typescriptKernels : loaded.kernels;
  return previous;
}
/**
 * The TypeScript versions, for tests that compare them with `kernels`, and for calls too small to repay a call into
 * the addon (ingest/dedup.ts moves one insert's few slots with `typescriptKernels.dedupMove`; same results).
 */
export { typescriptKernels };
