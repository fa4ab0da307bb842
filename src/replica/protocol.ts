/**
 * replica/protocol.ts — the messages from the engine's thread (feed.ts) to the query thread's copy (replica.ts).
 *
 * Invariant: applied in the order they were posted, they leave the copy holding, per datasource, exactly the rows
 * of the engine's head buckets (by serial, live or frozen) and the engine's segment list. Every message is applied
 * synchronously on arrival; nothing in the copy waits for I/O.
 */
import type { DatasourceSpec } from '../schema/datasource.js';
import type { SegmentFooter } from '../segment/format.js';

/** A segment as the copy opens it: its file (absolute path), footer and size. */
export interface SegmentRef {
  id: number;
  file: string;
  footer: SegmentFooter;
  bytes: number;
}

/** One head bucket's rows, with head dictionary ids (the start of a copy, `Hello`). */
export interface BucketRows {
  serial: number;
  minute: number;
  frozen: boolean;
  ts: Float64Array;
  ids: Uint32Array[];
  metrics: Float64Array[];
}

export type FeedMessage =
  /** A datasource: its definition, head dictionaries, buckets and segments as of now. */
  | { t: 'datasource'; spec: DatasourceSpec; dictionaries: (string | null)[][]; buckets: BucketRows[]; segments: SegmentRef[] }
  /**
   * Rows appended: dictionary values new since the last message (per dimension, in id order), then the batch's
   * columns (times, metrics, batch-local ids and their head ids) and which rows went to which bucket.
   */
  | {
    t: 'append'; ds: string; newValues: (string | null)[][]; ts: Float64Array; metrics: Float64Array[]; ids: Uint32Array[]; toHead: Int32Array[];
    runs: { serial: number; minute: number; from: number; to: number }[];
  }
  | { t: 'freeze'; ds: string; serial: number }
  | { t: 'release'; ds: string; serial: number }
  | { t: 'segments'; ds: string; added: SegmentRef[]; removed: number[] };

/** From the copy back: segments it no longer reads (the engine may delete their files once it too is done). */
export interface ReleasedMessage {
  t: 'released';
  ids: number[];
}
