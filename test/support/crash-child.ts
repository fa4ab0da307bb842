/**
 * Child process for the kill -9 test and script: opens a data directory, ingests numbered batches forever and
 * prints "ack <batch>" after each acknowledgement. The parent kills it with SIGKILL at a random moment.
 * argv: dir, first batch number, events per batch, fsync mode.
 */
import { open } from '../../src/index.js';

const [dir, firstArg, kArg, mode] = process.argv.slice(2);
const first = Number(firstArg);
const k = Number(kArg);
const T0 = Date.parse('2026-11-23T10:00:00Z');
const db = await open({ dir: dir!, fsync: (mode ?? 'always') as 'always', walSegmentBytes: 64 * 1024, clock: () => T0 + 1000 * 86_400_000 });
await db.createDatasource({ name: 'ev', dimensions: ['batch', 'kind'], metrics: [{ name: 'v', type: 'int' }], dedupKey: 'id', dedupWindow: '1d', lateness: '2m' });
process.stdout.write('ready\n');
// Two writers at once, so group commit and concurrent acknowledgements are in play.
const writer = async (lane: number): Promise<never> => {
  for (let b = first + lane; ; b += 2) {
    // Event time advances 5 s per batch, so minutes close, seal and the WAL is checkpointed while we are killed.
    const events = Array.from({ length: k }, (_, i) => ({ ts: T0 + b * 5000 + i, id: `${b}-${i}`, batch: String(b), kind: i % 3 ? 'a' : 'b', v: i }));
    await db.ingest('ev', events);
    process.stdout.write(`ack ${b}\n`);
  }
};
await Promise.all([writer(0), writer(1)]);
