/**
 * http/decode-worker.ts — runs in a worker thread (piscina): an ingest body's bytes into validated columns.
 *
 * Invariant: a pure function of a plain-data request — the body bytes, their content type, the datasource
 * definition and the limits — with the same outcome as the main-thread path (columnize, the same parsers; MessagePack of
 * the common shape decoded straight into columns, proven equal to that by test/msgpack-columns.test.ts). Failures
 * come back as data (`{ ok: false, code, message }`), never as thrown errors, so their codes survive the thread
 * boundary. The columns' typed arrays are transferred back, not copied.
 */
import { Piscina } from 'piscina';
import { TallyError } from '../errors.js';
import { columnize, type EventColumns } from '../ingest/columns.js';
import { decodeBody } from './bodies.js';
import type { Limits } from '../limits.js';
import type { Datasource } from '../schema/datasource.js';
import { EventValidator } from '../schema/event.js';
import { MsgpackColumnizer } from '../ingest/msgpack-columns.js';
import { lowerWorkerThreadPriority } from '../priority.js';

// Decode threads yield the CPU to the main thread (priority.ts). Measured with `bench:http` (docs/benchmarks.md):
// seed p50 / p99 under full ingest 4.9 / 27 → 3.8 / 22–24 ms, for ~5% of HTTP ingest.
lowerWorkerThreadPriority();

export interface DecodeRequest {
  body: Uint8Array;
  type: 'json' | 'msgpack';
  ds: Datasource;
  limits: Limits;
}

export type DecodeReply = { ok: true; cols: EventColumns } | { ok: false; code: string; message: string };

/**
 * One validator and one MessagePack columnizer per datasource definition and limits, kept across requests: their
 * generated fast path and batch-local dictionary tables are built once, not per batch. Keyed by the definition's JSON (requests carry
 * copies, never the same object).
 */
const decoders = new Map<string, { validator: EventValidator; msgpack: MsgpackColumnizer }>();
const MAX_DECODERS = 64;

function decodersFor(ds: Datasource, limits: Limits): { validator: EventValidator; msgpack: MsgpackColumnizer } {
  const key = JSON.stringify([ds, limits]);
  let v = decoders.get(key);
  if (v === undefined) {
    if (decoders.size >= MAX_DECODERS) decoders.clear();
    v = { validator: new EventValidator(ds, limits), msgpack: new MsgpackColumnizer(ds, limits) };
    decoders.set(key, v);
  }
  return v;
}

export default function decode(req: DecodeRequest): unknown {
  try {
    const dec = decodersFor(req.ds, req.limits);
    // MessagePack of the common shape goes straight into columns; anything else (and JSON) through event objects.
    const cols = (req.type === 'msgpack' ? dec.msgpack.columnize(req.body) : null)
      ?? columnize(req.ds, req.limits, decodeBody(req.body, req.type), dec.validator);
    const transfer = [cols.index, cols.ts, ...cols.metrics, ...cols.dims.map((d) => d.ids), ...(cols.keyHashes ? [cols.keyHashes] : [])]
      .map((a) => a.buffer)
      .filter((b, i, all) => all.indexOf(b) === i);
    const reply: DecodeReply = { ok: true, cols };
    // piscina's Transferable protocol: the value, and the buffers to move with it instead of copying.
    return Piscina.move({
      get [Piscina.transferableSymbol]() {
        return transfer;
      },
      get [Piscina.valueSymbol]() {
        return reply;
      },
    } as never);
  } catch (e) {
    if (e instanceof TallyError) return { ok: false, code: e.code, message: e.message };
    return { ok: false, code: 'INTERNAL', message: (e as Error).message };
  }
}
