/**
 * compact/pool.ts — the one loader of the compaction worker pool (piscina).
 *
 * Invariant: merges never run on the main thread: ingest and queries keep the event loop while a merge decodes,
 * sorts, indexes and compresses. Built code (dist/) runs `worker.js`; from TypeScript sources (tests, `tsx`) the
 * pool runs `worker.ts` through tsx's loader, so tests exercise the same worker path the daemon uses.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { MergeReply, MergeTask } from './worker.js';

export class MergePool {
  private readonly pool: Piscina;

  constructor(threads: number) {
    const js = fileURLToPath(new URL('./worker.js', import.meta.url));
    const compiled = existsSync(js);
    this.pool = new Piscina({
      filename: compiled ? js : fileURLToPath(new URL('./worker.ts', import.meta.url)),
      minThreads: 0,
      maxThreads: threads,
      idleTimeout: 30_000,
      ...(compiled ? {} : { execArgv: ['--import', 'tsx'] }),
    });
  }

  /** Run one merge; the input buffers are transferred (unusable here afterwards). */
  run(task: MergeTask): Promise<MergeReply> {
    return this.pool.run(task, { transferList: task.inputs.map((b) => b.buffer as ArrayBuffer) });
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
