/**
 * The decode worker's function (http/decode-worker.ts), called here directly: a body becomes the same columns the
 * main thread's path gives, its typed arrays are named for transfer (each buffer once), and a failure comes back as
 * data with its stable code — the daemon's only path for JSON and MessagePack ingest bodies.
 */
import { expect, it } from 'vitest';
import { pack } from 'msgpackr';
import { Piscina } from 'piscina';
import decode, { type DecodeReply } from '../../src/http/decode-worker.js';
import { columnize } from '../../src/ingest/columns.js';
import { resolveDatasource } from '../../src/schema/datasource.js';
import { DEFAULT_LIMITS } from '../../src/limits.js';

const limits = { ...DEFAULT_LIMITS, maxBatchEvents: 100 };
const ds = resolveDatasource({ name: 'ev', dimensions: ['event', 'location'], metrics: [{ name: 'cost', type: 'float' }], dedupKey: 'id' }, limits);
const NOW = 1_764_547_200_000;
const events = Array.from({ length: 50 }, (_, i) => ({
  ts: NOW + i, id: `e${i}`, event: i % 3 ? 'impression' : 'click', location: `city${i % 7}`, ...(i % 5 ? { cost: i / 4 } : {}),
}));
// Two bad events among good ones: rejections are per event, by index.
const withBad = [...events.slice(0, 10), { ts: 'soon', id: 'x1', event: 'click' }, ...events.slice(10, 20), { ts: NOW, event: 'click' }];

type Moved = { [k: symbol]: unknown };
function unwrap(out: unknown): { reply: DecodeReply; transfer: ArrayBuffer[] } {
  const m = out as Moved;
  if (m !== null && typeof m === 'object' && Piscina.valueSymbol in m) {
    return { reply: m[Piscina.valueSymbol] as DecodeReply, transfer: m[Piscina.transferableSymbol] as ArrayBuffer[] };
  }
  return { reply: out as DecodeReply, transfer: [] };
}

const plain = (c: object): unknown => JSON.parse(JSON.stringify(c, (_k, v) => (ArrayBuffer.isView(v) ? [...(v as Uint32Array)] : v)));

it('a JSON or MessagePack body decodes to the columns the main thread gives, each column buffer named once for transfer', () => {
  for (const [type, body] of [['msgpack', pack(withBad)], ['json', Buffer.from(JSON.stringify(withBad))]] as const) {
    const { reply, transfer } = unwrap(decode({ body, type, ds, limits }));
    expect(reply.ok).toBe(true);
    if (!reply.ok) continue;
    expect(plain(reply.cols)).toEqual(plain(columnize(ds, limits, withBad)));
    expect(reply.cols.rejected.map((r) => r.index)).toEqual([10, 21]);
    expect(reply.cols.n).toBe(withBad.length - 2);
    const buffers = [reply.cols.index, reply.cols.ts, ...reply.cols.metrics, ...reply.cols.dims.map((d) => d.ids), reply.cols.keyHashes!].map((a) => a.buffer);
    expect(new Set(transfer)).toEqual(new Set(buffers));
    expect(transfer.length).toBe(new Set(transfer).size);
  }
});

it('a body that cannot be used comes back as data with its stable code, not as a thrown error', () => {
  const cases: [string, Uint8Array, 'json' | 'msgpack'][] = [
    ['BODY_MALFORMED', pack(events).subarray(0, 20), 'msgpack'],
    ['BODY_MALFORMED', Buffer.from('[{"ts": 1,'), 'json'],
    ['BODY_MALFORMED', Buffer.from([0xff, 0xfe]), 'json'],
    ['BATCH_NOT_ARRAY', pack({ ts: NOW }), 'msgpack'],
    ['BATCH_TOO_LARGE', pack(Array.from({ length: 101 }, () => events[0])), 'msgpack'],
  ];
  for (const [code, body, type] of cases) {
    const { reply } = unwrap(decode({ body, type, ds, limits }));
    expect(reply).toMatchObject({ ok: false, code });
  }
});
