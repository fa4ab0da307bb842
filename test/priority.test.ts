/**
 * Worker threads yield the CPU to the main thread (src/priority.ts): the decode and compaction threads run at
 * WORKER_THREAD_NICE above the main thread's, and importing their modules on a main thread changes nothing there.
 */
import { getPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { WORKER_THREAD_NICE, workerNice } from '../src/priority.js';

const moduleUrl = (rel: string): string => new URL(rel, import.meta.url).href;

/** The nice value of a worker thread right after it has loaded `url` (as the pools load their worker modules). */
function niceAfterLoading(url: string): Promise<number> {
  const w = new Worker(fileURLToPath(moduleUrl('./support/priority-probe.cjs')), { workerData: fileURLToPath(url), execArgv: ['--import', 'tsx'] });
  return new Promise((resolve, reject) => {
    w.once('message', (m: number) => {
      void w.terminate();
      resolve(m);
    });
    w.once('error', reject);
  });
}

describe.skipIf(process.platform !== 'linux')('worker thread priority', () => {
  it('decode and compaction threads run at WORKER_THREAD_NICE, and the main thread keeps its own', async () => {
    const main = getPriority();
    const expected = workerNice(main);
    expect(expected).toBe(Math.min(19, main + WORKER_THREAD_NICE));
    expect(await niceAfterLoading(moduleUrl('../src/http/decode-worker.ts'))).toBe(expected);
    expect(await niceAfterLoading(moduleUrl('../src/compact/worker.ts'))).toBe(expected);
    await import('../src/http/decode-worker.js');
    await import('../src/compact/worker.js');
    expect(getPriority()).toBe(main);
  });
});
