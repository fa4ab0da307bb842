/**
 * cli/node-flags.ts — the V8 flags and the environment a tallydb process runs with, in one place. The launchers
 * cannot import them and repeat them: the `tallydb` bin's shebang (src/cli/main.ts, through `env -S`) and
 * `npm start` (package.json); test/cli/node-flags.test.ts checks that both say exactly this, and the daemon's
 * end-to-end test and bench:http start it with the flags.
 *
 * `--initial-old-space-size=256`: V8 starts with a small old-generation limit and raises it from the live heap
 * (~25 MB in a daemon under ingest), so it ran a full mark-compact every ~100 ms there — about 70 in a 5M-event
 * bench:http run, pauses of 2–14 ms each on the thread that serves queries. With a 256 MB floor, 13 (HTTP ingest
 * 0.86 → 1.01 M events/s, seed p99 under ingest 17.4 → 15.4 ms; docs/benchmarks.md). The cost: up to that much
 * garbage may wait for collection (RSS up to ~256 MB higher under load); it is a floor for when to collect, not
 * memory set aside.
 */
export const NODE_FLAGS: readonly string[] = ['--initial-old-space-size=256'];

/**
 * The environment a tallydb process starts with, set by the same launchers before `node` (and by `npm run bench`).
 * `MALLOC_MMAP_THRESHOLD_=131072`: glibc serves allocations from 128 KiB up (segment columns, seal inputs, merge
 * buffers — most of them ArrayBuffers freed by another thread's GC) with mmap, returned to the system when freed.
 * By default the threshold rises with each such free (up to 32 MiB), and the freed blocks then stay in the heap
 * arenas: the 100M-event suite's tallydb load peaked at 3.70 GiB RSS with 1.1 GiB of it accounted for by V8 and the
 * workers; with the fixed threshold 3.04 GiB (docs/benchmarks.md, seventh session). Ingest unchanged (10M load,
 * 1.05–1.24 M events/s either way, within noise).
 */
export const LAUNCH_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '131072' };
