/**
 * priority.ts — the CPU priority of tallydb's worker threads: below the main thread's.
 *
 * Invariant: a decode thread (http/decode-worker.ts) or a compaction thread (compact/worker.ts) runs at a nice value
 * WORKER_THREAD_NICE above that of the thread that decides batches, commits them and answers queries (its creator),
 * so that on a machine whose cores are all busy the foreground work gets the CPU first. Background work only loses
 * time it could not have used well anyway: a decoded batch waits for the main thread to take it, and a merge has no
 * deadline.
 *
 * On Linux a thread's nice value is its own (setpriority on the calling thread), so lowering it in a worker leaves
 * the main thread alone. It is only ever done in a worker thread: a main thread that imports a worker module keeps
 * its priority, and so do the processes it starts (a child inherits the nice value of the thread that spawns it).
 */
import { getPriority, setPriority } from 'node:os';
import { isMainThread } from 'node:worker_threads';

/** How much higher a decode or compaction thread's nice value is than the main thread's (capped at 19). */
export const WORKER_THREAD_NICE = 10;

/** The nice value a worker thread takes when its creator's is `mainNice`. */
export function workerNice(mainNice: number): number {
  return Math.min(19, mainNice + WORKER_THREAD_NICE);
}

/**
 * Lower this thread's CPU priority to `workerNice` of the one it started with (its creator's), if it is a worker
 * thread and the system permits it. Relative, so it never raises a priority (a root process started at nice 15
 * gets 19 for its workers, not 10).
 */
export function lowerWorkerThreadPriority(): void {
  if (isMainThread) return;
  try {
    setPriority(workerNice(getPriority()));
  } catch {
    // Not permitted on this system: the thread keeps its priority.
  }
}
