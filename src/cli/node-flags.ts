/**
 * cli/node-flags.ts — the V8 flags a tallydb process runs with, in one place. The launchers cannot import them and
 * repeat them: the `tallydb` bin's shebang (src/cli/main.ts, through `env -S`) and `npm start` (package.json);
 * test/cli/node-flags.test.ts checks that both say exactly this, and the daemon's end-to-end test and bench:http
 * start it with them.
 *
 * `--initial-old-space-size=256`: V8 starts with a small old-generation limit and raises it from the live heap
 * (~25 MB in a daemon under ingest), so it ran a full mark-compact every ~100 ms there — about 70 in a 5M-event
 * bench:http run, pauses of 2–14 ms each on the thread that serves queries. With a 256 MB floor, 13 (HTTP ingest
 * 0.86 → 1.01 M events/s, seed p99 under ingest 17.4 → 15.4 ms; docs/benchmarks.md). The cost: up to that much
 * garbage may wait for collection (RSS up to ~256 MB higher under load); it is a floor for when to collect, not
 * memory set aside.
 */
export const NODE_FLAGS: readonly string[] = ['--initial-old-space-size=256'];
