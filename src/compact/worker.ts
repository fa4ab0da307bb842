/**
 * compact/worker.ts — runs in a worker thread (piscina): one merge, or the encoding of one sealed head bucket into
 * a minute segment's bytes (`seal`); plain data in and out.
 *
 * Invariant: the worker gets bytes, columns and options, never a file handle or engine object, and writes nothing;
 * so a failed or terminated worker cannot leave a file behind or touch its inputs. The input buffers arrive
 * transferred; the output buffer goes back transferred. A failure comes back as data (`{ ok: false }`) so its
 * details survive the thread boundary. The engine's thread writes, syncs and publishes what comes back.
 */
import { Piscina } from 'piscina';
import { MergeInputError, mergeSegments, type MergeOptions } from './merge.js';
import type { Datasource } from '../schema/datasource.js';
import { buildSegment, type SegmentFooter } from '../segment/format.js';
import { sourceOfSealInput, type SealInput } from '../segment/seal-input.js';
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

export interface SealTask {
  input: SealInput;
  ds: Datasource;
  lsn: number;
  /** Tests only: make this encoding fail ('throw') or end the worker thread mid-way ('exit'). */
  fault?: 'throw' | 'exit';
}

export type SealReply = { ok: true; bytes: Uint8Array; footer: SegmentFooter } | { ok: false; message: string };

/** The minute segment of a sealed bucket: exactly the bytes `buildSegment` makes from the bucket itself. */
export function seal(task: SealTask): SealReply {
  if (task.fault === 'exit') process.exit(3);
  try {
    if (task.fault === 'throw') throw new Error('injected seal failure');
    const { bytes, footer } = buildSegment(sourceOfSealInput(task.input), task.ds, task.lsn);
    // As a merge's output: the segment's own buffer moves (Node copies its shared pool instead of moving it, should
    // a small segment be cut from it).
    const out = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const reply: SealReply = { ok: true, bytes: out, footer };
    return Piscina.move({ [Piscina.transferableSymbol]: [out.buffer], [Piscina.valueSymbol]: reply } as never) as unknown as SealReply;
  } catch (e) {
    return { ok: false, message: (e as Error).message };
  }
}
