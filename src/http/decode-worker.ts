/**
 * http/decode-worker.ts — runs in a worker thread (piscina): an ingest body's bytes into validated columns.
 *
 * Invariant: a pure function of a plain-data request — the body bytes, their content type, the datasource
 * definition and the limits — with the same outcome as the main-thread path (columnize, the same parsers). Failures
 * come back as data (`{ ok: false, code, message }`), never as thrown errors, so their codes survive the thread
 * boundary. The columns' typed arrays are transferred back, not copied.
 */
import { Piscina } from 'piscina';
import { unpack } from 'msgpackr';
import { TallyError } from '../errors.js';
import { columnize, type EventColumns } from '../ingest/columns.js';
import type { Limits } from '../limits.js';
import type { Datasource } from '../schema/datasource.js';

export interface DecodeRequest {
  body: Uint8Array;
  type: 'json' | 'msgpack';
  ds: Datasource;
  limits: Limits;
}

export type DecodeReply = { ok: true; cols: EventColumns } | { ok: false; code: string; message: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeEvents(body: Uint8Array, type: 'json' | 'msgpack'): unknown {
  if (type === 'msgpack') {
    try {
      return unpack(body);
    } catch (e) {
      throw new TallyError('BODY_MALFORMED', `the body is not valid MessagePack: ${(e as Error).message}`);
    }
  }
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new TallyError('BODY_MALFORMED', 'the body is not valid UTF-8');
  }
  if (text.trim().length === 0) throw new TallyError('BODY_MALFORMED', 'the JSON body is empty');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new TallyError('BODY_MALFORMED', `the body is not valid JSON: ${(e as Error).message}`);
  }
}

export default function decode(req: DecodeRequest): unknown {
  try {
    const cols = columnize(req.ds, req.limits, decodeEvents(req.body, req.type));
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
