/** `npm run crash-loop -- --cycles 1000`: the kill -9 loop of test/durability/kill9.test.ts, for as long as you like. */
import { crashLoop } from './crash-loop.js';

const i = process.argv.indexOf('--cycles');
const cycles = i < 0 ? 1000 : Number(process.argv[i + 1]);
const started = Date.now();
const report = await crashLoop(cycles, { log: (s) => process.stdout.write(`${s}\r`) });
console.log(`\n${report.cycles} SIGKILLs in ${((Date.now() - started) / 1000).toFixed(0)} s: ${report.acked} acknowledged batches all present exactly once; ${report.presentUnacked} unacknowledged batches present whole; ${report.segments} segments at the end`);
