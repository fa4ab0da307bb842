/**
 * compact/worker.ts — runs in a worker thread (piscina): one merge, plain data in and out.
 *
 * Invariant: the worker gets bytes and options, never a file handle or engine object, and writes nothing; so a
 * failed or terminated worker cannot leave a file behind or touch its inputs. The input buffers arrive
 * transferred; the output buffer goes back transferred. A merge failure comes back as data (`{ ok: false }`) so
 * its details survive the thread boundary.
 */
import { Piscina } from 'piscina';
import { MergeInputError, mergeSegments, type MergeOptions } from './merge.js';
import type { Datasource } from '../schema/datasource.js';
import { lowerWorkerThreadPriority } from '../priority.js';

// A merge is background work: it yields the CPU to ingest and queries on the main thread (priority.ts).
lowerWorkerThreadPriority();

export interface MergeTask {
  inputs: Uint8Array[];
  ds: Datasource;
  options: MergeOptions;
  /** Tests only: make this merge fail ('throw') or end the worker thread mid-merge ('exit'). */
  fault?: 'throw' | 'exit';
}

export type MergeReply = Uint8Array | { ok: false; input: number; message: string };

export default function merge(task: MergeTask): MergeReply {
  if (task.fault === 'exit') process.exit(3);
  try {
    if (task.fault === 'throw') throw new Error('injected merge failure');
    return Piscina.move(mergeSegments(task.inputs, task.ds, task.options)) as unknown as Uint8Array;
  } catch (e) {
    return { ok: false, input: e instanceof MergeInputError ? e.input : -1, message: (e as Error).message };
  }
}
