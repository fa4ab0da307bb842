/**
 * compact/pool.ts — the one loader of the worker threads (piscina) that merges and seal encodings run in.
 *
 * Invariant: merges never run on the main thread, and neither does the encoding of a large sealed bucket: ingest
 * and queries keep the event loop while a worker decodes, sorts, indexes and compresses. Seals have a pool of
 * their own (SEAL_ENCODING.workerThreads threads), so a sealed minute never waits behind a long merge and the head
 * does not grow while one runs. Built code (dist/) runs `worker.js`; from TypeScript sources (tests, `tsx`) the
 * pools run `worker.ts` through tsx's loader, so tests exercise the same worker path the daemon uses.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { MergeReply, MergeTask, SealReply, SealTask } from './worker.js';
import { sealInputBuffers } from '../segment/seal-input.js';
import { SEAL_ENCODING } from '../limits.js';

function workerPool(maxThreads: number): Piscina {
  const js = fileURLToPath(new URL('./worker.js', import.meta.url));
  const compiled = existsSync(js);
  return new Piscina({
    filename: compiled ? js : fileURLToPath(new URL('./worker.ts', import.meta.url)),
    minThreads: 0,
    maxThreads,
    idleTimeout: 30_000,
    ...(compiled ? {} : { execArgv: ['--import', 'tsx'] }),
  });
}

export class MergePool {
  private readonly pool: Piscina;

  constructor(threads: number) {
    this.pool = workerPool(threads);
  }

  /** Run one merge; the input buffers are transferred (unusable here afterwards). */
  run(task: MergeTask): Promise<MergeReply> {
    return this.pool.run(task, { transferList: task.inputs.map((b) => b.buffer as ArrayBuffer) });
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

export class SealPool {
  private readonly pool = workerPool(SEAL_ENCODING.workerThreads);

  /** Encode one sealed bucket; the input's buffers are transferred (unusable here afterwards). */
  run(task: SealTask): Promise<SealReply> {
    return this.pool.run(task, { name: 'seal', transferList: sealInputBuffers(task.input) });
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
