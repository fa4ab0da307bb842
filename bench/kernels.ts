/**
 * bench/kernels.ts — micro-benchmarks of single kernels (the `benchmark` package): the C++ addon (native/) against
 * its TypeScript fallback (src/native/kernels.ts), on the shapes the query benchmark feeds them — a 10M-row
 * segment, 500k selected rows (the clicks of a day), 1-minute buckets, a 100k-value dimension.
 *
 *   npm run bench:kernels [-- --rows 10000000]
 */
import Benchmark from 'benchmark';
import { kernels, nativeStatus, typescriptKernels, type Kernels } from '../src/native/index.js';
import { pack, zigzag } from '../src/segment/bitpack.js';
import { hashKeyInto } from '../src/ingest/dedup.js';
import { arg } from './util.js';

const N = arg('rows', 10_000_000);
const SEL = Math.floor(N / 20);
if (nativeStatus.kind !== 'native') throw new Error(`the native addon is not loaded (${nativeStatus.reason}); run npm install`);

// Deterministic data: ids with zipf-like skew, timestamps 0–17 ms apart (a day of 10M events), a contiguous and a
// scattered selection of 5% of the rows.
let seed = 42;
const rand = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
const ids = new Uint32Array(N);
for (let i = 0; i < N; i++) ids[i] = Math.floor(100_000 * rand() ** 3);
const ts = new Float64Array(N);
const deltas = new Uint32Array(N);
let t = Date.parse('2026-11-22T00:00:00Z');
for (let i = 0; i < N; i++) {
  const d = Math.floor(rand() * 17);
  deltas[i] = zigzag(i === 0 ? 0 : d);
  t += i === 0 ? 0 : d;
  ts[i] = t;
}
const idsPacked = pack(ids, N);
const tsPacked = pack(deltas, N);
const scattered = new Uint32Array(SEL);
for (let j = 0; j < SEL; j++) scattered[j] = j * 20 + (j % 20);
const first = Math.floor(ts[0]! / 60_000);
// A sorted segment's click rows: ~450 groups (location × gender × device), each in time order over the whole day.
const grouped = new Float64Array(SEL);
const per = Math.floor(SEL / 450);
for (let g = 0; g < 450; g++) for (let i = 0; i < per; i++) grouped[g * per + i] = ts[Math.min(N - 1, Math.floor(((i * 450 + g) * N) / SEL))]!;
for (let j = 450 * per; j < SEL; j++) grouped[j] = ts[N - 1]!;
const buckets = new Float64Array(Math.floor(ts[N - 1]! / 60_000) - first + 1);
// The same timestamps packed with their block anchors, and as a day segment's minute column (u16) with its table.
const tsAnchors = kernels.timestampAnchors(tsPacked, ts[0]!);
const minutes = Uint16Array.from(ts, (x) => Math.floor(x / 60_000) - first);
const minuteTable = Uint32Array.from({ length: buckets.length }, (_, m) => m);
const keyCounts = new Float64Array(100_000);
// The top-10 over 5 minutes at the 100M density: ~17,500 click rows spread over the ~208,000 of an hour segment's
// click run; each call's counters are cleared after it through the ids it listed, as the query's fold does.
const FIVE_MIN = 17_500;
const fiveMin = Uint32Array.from({ length: FIVE_MIN }, (_, j) => N / 2 + Math.floor(j * 11.9));
const firstCounts = new Float64Array(100_000);
const firstMet = new Uint32Array(FIVE_MIN);
const countFirstMet = (k: Kernels): void => {
  const met = k.countFirstMet(ids, fiveMin, 0, FIVE_MIN, null, firstCounts, firstMet);
  for (let j = 0; j < met; j++) firstCounts[firstMet[j]!] = 0;
};

// The dedup index of the suite's load (10-minute window, ~75k live keys): 262,144 slots, 40% full; each call stores
// a chunk of 1,024 new keys, the next of 64 chunks, and the table is put back once all 64 are in (1 call in 64).
const DEDUP_SLOTS = 262_144;
const dedupPristine = new Int32Array(3 * DEDUP_SLOTS);
const keyHash = new Uint32Array(2);
for (let k = 0; k < 0.4 * DEDUP_SLOTS; k++) {
  hashKeyInto(`old-${k}`, keyHash, 0);
  let i = (keyHash[0]! ^ keyHash[1]!) & (DEDUP_SLOTS - 1);
  while (dedupPristine[3 * i + 2] !== 0) i = (i + 1) & (DEDUP_SLOTS - 1);
  dedupPristine.set([keyHash[0]! | 0, keyHash[1]! | 0, 2], 3 * i);
}
const dedupSlots = Int32Array.from(dedupPristine);
const dedupHashes = new Uint32Array(2 * 64 * 1024);
for (let k = 0; k < 64 * 1024; k++) hashKeyInto(`new-${k}`, dedupHashes, k);
const dedupTs = new Float64Array(64 * 1024).fill(1000);
const dedupDuplicates = new Uint32Array(1024);
const dedupOut = new Float64Array(3);
let dedupChunk = 0;
const dedupChunkCase = (k: Kernels): void => {
  if (dedupChunk === 64) {
    dedupSlots.set(dedupPristine);
    dedupChunk = 0;
  }
  const from = 1024 * dedupChunk++;
  k.dedupChunk(dedupSlots, 2, dedupHashes, dedupTs, from, from + 1024, 75_000, 0, dedupDuplicates, dedupOut);
};

const cases: [string, (k: Kernels) => unknown][] = [
  [`unpack ${N.toLocaleString()} ids`, (k) => k.unpack(idsPacked)],
  [`decodeTimestamps ${N.toLocaleString()}`, (k) => k.decodeTimestamps(tsPacked, ts[0]!, N)],
  [`bucketCounts ${SEL.toLocaleString()} contiguous rows`, (k) => k.bucketCounts(ts, null, N / 2, N / 2 + SEL, 60_000, first, buckets)],
  [`bucketCounts ${SEL.toLocaleString()} rows in 450 sorted groups`, (k) => k.bucketCounts(grouped, null, 0, SEL, 60_000, first, buckets)],
  [`bucketCounts ${SEL.toLocaleString()} scattered rows`, (k) => k.bucketCounts(ts, scattered, 0, SEL, 60_000, first, buckets)],
  [`bucketCountsAt ${SEL.toLocaleString()} contiguous rows (packed)`, (k) => k.bucketCountsAt(tsPacked, tsAnchors, null, N / 2, N / 2 + SEL, 60_000, first, buckets)],
  [`countByCode ${SEL.toLocaleString()} contiguous rows (minute column)`, (k) => k.countByCode(minutes, null, N / 2, N / 2 + SEL, minuteTable, buckets)],
  [`countByCode ${SEL.toLocaleString()} scattered rows (minute column)`, (k) => k.countByCode(minutes, scattered, 0, SEL, minuteTable, buckets)],
  [`selectTimeRange over ${N.toLocaleString()} rows`, (k) => k.selectTimeRange(ts, null, 0, N, ts[N / 2]!, ts[N / 2 + 30_000]!)],
  [`countByKey ${SEL.toLocaleString()} scattered rows`, (k) => k.countByKey(ids, scattered, 0, SEL, null, keyCounts)],
  [`countFirstMet ${FIVE_MIN.toLocaleString()} rows, counters cleared after`, countFirstMet],
  ['dedupChunk 1,024 new keys into a 3 MiB table (a 64th of the calls restores it)', dedupChunkCase],
];

console.log(`kernels: C++ addon vs TypeScript, ${N.toLocaleString()} rows (median-free: benchmark.js reports mean ± RME over its samples)`);
console.log('');
console.log('| kernel | C++ ms | TypeScript ms | TypeScript / C++ |');
console.log('|---|---:|---:|---:|');
for (const [name, run] of cases) {
  const ms: Record<string, number> = {};
  await new Promise<void>((resolve) => {
    new Benchmark.Suite()
      .add('native', () => run(kernels))
      .add('typescript', () => run(typescriptKernels))
      .on('cycle', (e: Benchmark.Event) => {
        const b = e.target as unknown as Benchmark;
        ms[b.name!] = b.stats.mean * 1000;
      })
      .on('complete', () => resolve())
      .run({ async: false });
  });
  console.log(`| ${name} | ${ms['native']!.toFixed(3)} | ${ms['typescript']!.toFixed(3)} | ${(ms['typescript']! / ms['native']!).toFixed(1)} |`);
}
