/**
 * http/app.ts — the HTTP API, built by `build(opts)`; `listen` lives in cli/serve.ts, so tests use `inject`.
 *
 * Invariants:
 *  - Every failure is answered as JSON `{ code, message }` with the stable code and status of errors.ts — also
 *    fastify's own (body too large, bad media type), unknown routes and bugs (INTERNAL). The process stays up.
 *  - With tokens configured, every data endpoint needs a bearer token with the right scope: `write` for ingest
 *    and datasource changes, `read` for queries, datasource listings and metrics. /healthz and /readyz are open.
 *  - A malformed event costs only itself: NDJSON and line protocol report bad lines per line and ingest the rest.
 *
 * `readOnly` builds the query listener of the daemon's query thread (replica/query-thread.ts): health, the
 * datasource list and definitions, the two query endpoints and /metrics (its own queries' latency and requests),
 * with the same auth, limits and errors; the other routes are not there (NOT_FOUND).
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Tally } from '../db.js';
import { TallyError, type ErrorCode } from '../errors.js';
import type { Limits } from '../limits.js';
import type { IngestResult } from '../ingest/pipeline.js';
import type { QueryResult } from '../query/shape.js';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { lineToEvent, parseLineProtocol, parsePrecision } from './lineprotocol.js';
import { Metrics } from './metrics.js';
import type { DecodeReply, DecodeRequest } from './decode-worker.js';
import { decodeBody, utf8Text as text } from './bodies.js';

export type Scope = 'read' | 'write';

/** What the query endpoints need of an engine (the query thread's copy, replica/replica.ts, has just this). */
export type ReadEngine = Pick<Tally, 'query' | 'sql' | 'listDatasources' | 'getDatasource'>;

export interface AppOptions {
  /** The engine, or null while it is still recovering (data endpoints answer NOT_READY); a ReadEngine if readOnly. */
  engine: () => Tally | ReadEngine | null;
  /** Serve only health, datasource definitions and queries (the query thread's listener). */
  readOnly?: boolean;
  limits: Limits;
  /** token → scopes. Empty or absent: no authentication (the default bind is loopback). */
  tokens?: Record<string, Scope[]>;
  logger?: boolean | { level: string };
  /** Clock for line protocol points without a timestamp. Default Date.now. */
  clock?: () => number;
  /**
   * Worker threads that decode and validate JSON and MessagePack event batches off the main thread (0: none).
   * Used only where the compiled worker exists (dist/); from TypeScript sources decoding stays on the main thread.
   */
  decodeWorkers?: number;
}

/** An event batch body left encoded, for a decode worker. */
class EncodedEvents {
  constructor(readonly bytes: Buffer, readonly type: 'json' | 'msgpack') {}
}

const EVENTS_ROUTE = '/v1/datasources/:name/events';

/**
 * A decode request whose body bytes move to the worker instead of being copied, when the body owns its whole
 * memory (a body assembled from chunks does; a small one cut from Node's shared pool does not, and is copied).
 */
function movable(request: DecodeRequest, bytes: Buffer): unknown {
  if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength || !(bytes.buffer instanceof ArrayBuffer)) return request;
  return Piscina.move({
    get [Piscina.transferableSymbol]() {
      return [bytes.buffer];
    },
    get [Piscina.valueSymbol]() {
      return request;
    },
  } as never);
}

function decodePool(workers: number): Piscina | null {
  if (workers <= 0) return null;
  const file = fileURLToPath(new URL('./decode-worker.js', import.meta.url));
  if (!existsSync(file)) return null;
  return new Piscina({ filename: file, minThreads: workers, maxThreads: workers, idleTimeout: Infinity });
}

declare module 'fastify' {
  interface FastifyContextConfig {
    scope?: Scope | null;
  }
}

class UntypedBody {
  constructor(readonly bytes: Buffer, readonly contentType: string | undefined) {}
}

/** Fail for a body whose Content-Type this endpoint does not take. */
function refuseUntyped(body: unknown): void {
  if (body instanceof UntypedBody) {
    throw new TallyError('UNSUPPORTED_MEDIA_TYPE', `Content-Type ${JSON.stringify(body.contentType ?? '(none)')} is not taken here; see docs/http.md`);
  }
}

/** An NDJSON body: the events that parsed, and a rejection for each line that did not. */
interface NdjsonBody {
  ndjson: true;
  events: unknown[];
  /** Position in `events` order → original line index; lines that failed are in `errors`. */
  indexes: number[];
  errors: { index: number; message: string }[];
}

export function build(opts: AppOptions): FastifyInstance {
  const limits = opts.limits;
  const clock = opts.clock ?? Date.now;
  const app = Fastify({ logger: opts.logger ?? false, bodyLimit: limits.maxBodyBytes, exposeHeadRoutes: false });
  const readOnly = opts.readOnly === true;
  const metrics = new Metrics(readOnly ? () => null : (opts.engine as () => Tally | null));
  const tokens = opts.tokens ?? {};
  const authOn = Object.keys(tokens).length > 0;
  let runningQueries = 0;
  const pool = readOnly ? null : decodePool(opts.decodeWorkers ?? 0);
  if (pool !== null) app.addHook('onClose', async () => pool.destroy());
  /** Event batches for the decode workers stay encoded through body parsing. */
  const leaveEncoded = (req: FastifyRequest): boolean => pool !== null && req.routeOptions.url === EVENTS_ROUTE;

  // ---- bodies -----------------------------------------------------------------------------------------------
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/json'], { parseAs: 'buffer' }, (req, body, done) => {
    if (leaveEncoded(req)) return done(null, new EncodedEvents(body as Buffer, 'json'));
    try {
      done(null, decodeBody(body as Buffer, 'json'));
    } catch (e) {
      done(e as Error, undefined);
    }
  });
  app.addContentTypeParser(['application/x-ndjson', 'application/ndjson'], { parseAs: 'buffer' }, (_req, body, done) => {
    try {
      const out: NdjsonBody = { ndjson: true, events: [], indexes: [], errors: [] };
      let index = 0;
      for (const line of text(body as Buffer).split('\n')) {
        if (line.trim().length === 0) continue;
        try {
          out.events.push(JSON.parse(line));
          out.indexes.push(index);
        } catch (e) {
          out.errors.push({ index, message: `line ${index + 1}: not JSON: ${(e as Error).message}` });
        }
        index++;
      }
      done(null, out);
    } catch (e) {
      done(e as Error, undefined);
    }
  });
  app.addContentTypeParser(['application/msgpack', 'application/x-msgpack', 'application/vnd.msgpack'], { parseAs: 'buffer' }, (req, body, done) => {
    if (leaveEncoded(req)) return done(null, new EncodedEvents(body as Buffer, 'msgpack'));
    try {
      done(null, decodeBody(body as Buffer, 'msgpack'));
    } catch (e) {
      done(e as Error, undefined);
    }
  });
  app.addContentTypeParser(['text/plain'], { parseAs: 'buffer' }, (_req, body, done) => {
    try {
      done(null, text(body as Buffer));
    } catch (e) {
      done(e as Error, undefined);
    }
  });
  // Any other or no Content-Type: keep the bytes. Only /write takes them (InfluxDB clients often send no type);
  // every other endpoint answers UNSUPPORTED_MEDIA_TYPE.
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => {
    done(null, new UntypedBody(body as Buffer, req.headers['content-type']));
  });

  // ---- errors -----------------------------------------------------------------------------------------------
  const fastifyCodes: Record<string, ErrorCode> = {
    FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
    FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
    FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BODY_MALFORMED',
    FST_ERR_CTP_EMPTY_JSON_BODY: 'BODY_MALFORMED',
    FST_ERR_CTP_INVALID_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
    FST_ERR_VALIDATION: 'REQUEST_INVALID',
  };
  const send = (reply: FastifyReply, e: TallyError): FastifyReply => {
    if (e.code === 'TOO_MANY_QUERIES' || e.code === 'INGEST_OVERLOADED' || e.code === 'NOT_READY') {
      reply.header('Retry-After', String((e.details?.retryAfterSeconds as number | undefined) ?? 1));
    }
    if (e.code === 'UNAUTHORIZED') reply.header('WWW-Authenticate', 'Bearer realm="tallydb"');
    return reply.code(e.status).send(e.toJSON());
  };
  app.setErrorHandler((error, req, reply) => {
    if (error instanceof TallyError) return send(reply, error);
    const err = error as Error & { code?: string };
    const mapped = fastifyCodes[(err as { code?: string }).code ?? ''];
    if (mapped !== undefined) {
      const msg = mapped === 'BODY_TOO_LARGE' ? `the body is larger than ${limits.maxBodyBytes} bytes` : mapped === 'UNSUPPORTED_MEDIA_TYPE'
        ? `Content-Type ${JSON.stringify(req.headers['content-type'] ?? '(none)')} is not taken here; see docs/http.md` : err.message;
      return send(reply, new TallyError(mapped, msg));
    }
    req.log.error(err);
    return send(reply, new TallyError('INTERNAL', `internal error: ${err.message}`));
  });
  app.setNotFoundHandler((req, reply) => send(reply, new TallyError('NOT_FOUND', `no endpoint ${req.method} ${req.url.split('?')[0]}; see docs/http.md`)));

  // ---- auth and readiness -----------------------------------------------------------------------------------
  app.addHook('onRequest', async (req) => {
    const scope = req.routeOptions.config?.scope;
    if (scope === undefined || scope === null) return;
    if (authOn) {
      const header = req.headers.authorization ?? '';
      const m = /^(?:Bearer|Token)\s+(.+)$/i.exec(header);
      // InfluxDB 1.x clients send the password as HTTP Basic auth or as ?p=; on /write the password is the token.
      const q = req.query as Record<string, string | undefined>;
      let token = m?.[1];
      if (token === undefined && req.routeOptions.url === '/write') {
        const basic = /^Basic\s+(.+)$/i.exec(header);
        if (basic !== null) {
          const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
          token = decoded.slice(decoded.indexOf(':') + 1);
        } else {
          token = q.p;
        }
      }
      if (token === undefined) throw new TallyError('UNAUTHORIZED', 'this endpoint needs an Authorization: Bearer <token> header');
      const scopes = tokens[token];
      if (scopes === undefined) throw new TallyError('UNAUTHORIZED', 'the bearer token is not valid');
      if (!scopes.includes(scope)) throw new TallyError('FORBIDDEN', `the token lacks the '${scope}' scope this endpoint needs`);
    }
  });
  app.addHook('onResponse', async (req, reply) => {
    metrics.requests.inc({ route: req.routeOptions.url ?? 'unknown', status: String(reply.statusCode) });
  });
  const reader = (): ReadEngine => {
    const db = opts.engine();
    if (db === null) throw new TallyError('NOT_READY', 'the daemon is still recovering its data directory; retry shortly', { retryAfterSeconds: 1 });
    return db;
  };
  /** The full engine: only routes registered when not readOnly call it. */
  const engine = (): Tally => reader() as Tally;

  // ---- health -----------------------------------------------------------------------------------------------
  app.get('/healthz', { config: { scope: null } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { config: { scope: null } }, async (_req, reply) => {
    if (opts.engine() === null) return send(reply, new TallyError('NOT_READY', 'recovering', { retryAfterSeconds: 1 }));
    return { status: 'ready' };
  });

  // ---- datasources ------------------------------------------------------------------------------------------
  const dsName = (req: FastifyRequest): string => (req.params as { name: string }).name;
  app.get('/v1/datasources', { config: { scope: 'read' } }, async () => ({ datasources: reader().listDatasources() }));
  if (readOnly) app.get('/v1/datasources/:name', { config: { scope: 'read' } }, async (req) => reader().getDatasource(dsName(req)));
  if (!readOnly) app.put('/v1/datasources/:name', { config: { scope: 'write' } }, async (req, reply) => {
    const db = engine();
    const body = req.body;
    refuseUntyped(body);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new TallyError('DATASOURCE_INVALID', 'the body must be a JSON object: the datasource definition');
    const spec = { ...(body as Record<string, unknown>) };
    if (spec.name !== undefined && spec.name !== dsName(req)) throw new TallyError('DATASOURCE_INVALID', `name ${JSON.stringify(spec.name)} in the body differs from ${JSON.stringify(dsName(req))} in the URL`);
    spec.name = dsName(req);
    const existed = db.listDatasources().some((d) => d.name === spec.name);
    const created = await db.createDatasource(spec as never);
    return reply.code(existed ? 200 : 201).send(created);
  });
  if (!readOnly) app.get('/v1/datasources/:name', { config: { scope: 'read' } }, async (req) => {
    const db = engine();
    const spec = db.getDatasource(dsName(req));
    const s = db.stats(spec.name);
    return {
      ...spec,
      stats: {
        rows: s.rows, watermark: s.watermark, memoryBytes: s.memoryBytes, headRows: s.head.rows, headBytes: s.head.bytes,
        segments: s.storage?.segments ?? 0, bytesOnDisk: s.storage?.segmentBytes ?? 0, sealBacklogMinutes: s.sealBacklogMinutes,
        dedupKeys: s.dedup?.keys ?? 0, quarantined: s.storage?.quarantined ?? [],
        compaction: s.storage === null ? null : {
          ...s.storage.compaction,
          rollupRatio: s.storage.compaction.rollupRowsOut === 0 ? null : s.storage.compaction.rollupRowsIn / s.storage.compaction.rollupRowsOut,
        },
      },
    };
  });

  // ---- ingest -----------------------------------------------------------------------------------------------
  const count = (ds: string, r: IngestResult): void => {
    metrics.ingestEvents.inc({ datasource: ds, outcome: 'accepted' }, r.accepted);
    if (r.duplicates > 0) metrics.ingestEvents.inc({ datasource: ds, outcome: 'duplicate' }, r.duplicates);
    if (r.rejected.length > 0) metrics.ingestEvents.inc({ datasource: ds, outcome: 'rejected' }, r.rejected.length);
    for (const x of r.rejected) metrics.rejections.inc({ code: x.code });
  };
  if (!readOnly) app.post(EVENTS_ROUTE, { config: { scope: 'write' } }, async (req, reply) => {
    const db = engine();
    const name = dsName(req);
    const body = req.body as unknown;
    refuseUntyped(body);
    let result: IngestResult;
    if (body instanceof EncodedEvents) {
      const ds = db.datasourceDefinition(name);
      const request: DecodeRequest = { body: body.bytes, type: body.type, ds, limits };
      const decoded = (await pool!.run(movable(request, body.bytes))) as DecodeReply;
      if (!decoded.ok) throw new TallyError(decoded.code as ErrorCode, decoded.message);
      result = await db.ingestColumns(name, decoded.cols);
    } else if (typeof body === 'object' && body !== null && (body as NdjsonBody).ndjson === true) {
      const nd = body as NdjsonBody;
      const r = await db.ingest(name, nd.events);
      const rejected = [
        ...r.rejected.map((x) => ({ ...x, index: nd.indexes[x.index]! })),
        ...nd.errors.map((x) => ({ index: x.index, code: 'EVENT_MALFORMED' as ErrorCode, message: x.message })),
      ].sort((a, b) => a.index - b.index);
      result = { accepted: r.accepted, duplicates: r.duplicates, rejected };
    } else {
      if (!Array.isArray(body)) throw new TallyError('BATCH_NOT_ARRAY', 'the body must be an array of events (JSON or MessagePack), or NDJSON lines');
      result = await db.ingest(name, body);
    }
    count(name, result);
    return reply.code(result.rejected.length === 0 ? 200 : 207).send(result);
  });

  // InfluxDB 1.x compatible write: 204 when every point was stored, 400 with the per-line detail otherwise.
  if (!readOnly) app.post('/write', { config: { scope: 'write' } }, async (req, reply) => {
    const db = engine();
    const q = req.query as Record<string, string | undefined>;
    if (!q.db) throw new TallyError('REQUEST_INVALID', 'want ?db=<datasource>');
    const unit = parsePrecision(q.precision);
    if (unit === undefined) throw new TallyError('REQUEST_INVALID', `precision ${JSON.stringify(q.precision)}: want ns, us (u), ms, s, m or h`);
    const raw = req.body instanceof UntypedBody ? text(req.body.bytes) : req.body;
    if (typeof raw !== 'string') throw new TallyError('UNSUPPORTED_MEDIA_TYPE', 'line protocol wants a text body (text/plain, or any type as InfluxDB takes)');
    const spec = db.getDatasource(q.db);
    const dims = new Set(spec.dimensions);
    const parsed = parseLineProtocol(raw, unit);
    const now = clock();
    const events = parsed.lines.map((l) => lineToEvent(l.parsed, spec.timeField ?? 'ts', dims, now));
    if (events.length > limits.maxBatchEvents) throw new TallyError('BATCH_TOO_LARGE', `got ${events.length} points; want at most ${limits.maxBatchEvents}`);
    const r = await db.ingest(q.db, events);
    const rejected = [
      ...r.rejected.map((x) => ({ ...x, index: parsed.lines[x.index]!.index })),
      ...parsed.errors.map((x) => ({ index: x.index, code: 'LINE_PROTOCOL_INVALID' as ErrorCode, message: x.message })),
    ].sort((a, b) => a.index - b.index);
    const result: IngestResult = { accepted: r.accepted, duplicates: r.duplicates, rejected };
    count(q.db, result);
    if (rejected.length === 0) return reply.code(204).send();
    const first = rejected[0]!;
    return reply.code(400).send({
      code: first.code, message: `partial write: ${rejected.length} point(s) refused, ${r.accepted} stored; first: ${first.message}`,
      error: `partial write: ${first.message} dropped=${rejected.length}`, ...result,
    });
  });

  // ---- queries ----------------------------------------------------------------------------------------------
  const runQuery = async (kind: 'json' | 'sql', run: (db: ReadEngine) => Promise<QueryResult>, req: FastifyRequest, reply: FastifyReply) => {
    const db = reader();
    const format = (req.query as Record<string, string | undefined>).format ?? 'json';
    if (format !== 'json' && format !== 'csv' && format !== 'ndjson') throw new TallyError('REQUEST_INVALID', `format ${JSON.stringify(format)}: want json, csv or ndjson`);
    if (runningQueries >= limits.maxConcurrentQueries) {
      throw new TallyError('TOO_MANY_QUERIES', `${runningQueries} queries are running (limit ${limits.maxConcurrentQueries}); retry shortly`, { retryAfterSeconds: 1 });
    }
    runningQueries++;
    const end = metrics.queryLatency.startTimer({ kind });
    try {
      const r = await run(db);
      if (format === 'csv') return reply.type('text/csv; charset=utf-8').send(toCsv(r));
      if (format === 'ndjson') return reply.type('application/x-ndjson').send(r.rows.map((row) => JSON.stringify(Object.fromEntries(r.columns.map((c, i) => [c, row[i]])))).join('\n') + (r.rows.length ? '\n' : ''));
      return r;
    } finally {
      end();
      runningQueries--;
    }
  };
  app.post('/v1/query', { config: { scope: 'read' } }, async (req, reply) => {
    refuseUntyped(req.body);
    return runQuery('json', (db) => db.query(req.body as never), req, reply);
  });
  app.post('/v1/sql', { config: { scope: 'read' } }, async (req, reply) => {
    const body = req.body;
    refuseUntyped(body);
    const sql = typeof body === 'string' ? body : typeof body === 'object' && body !== null ? (body as { sql?: unknown }).sql : undefined;
    if (typeof sql !== 'string') throw new TallyError('REQUEST_INVALID', 'want { "sql": "…" } as JSON, or the statement as text/plain');
    return runQuery('sql', (db) => db.sql(sql), req, reply);
  });

  // ---- metrics ----------------------------------------------------------------------------------------------
  app.get('/metrics', { config: { scope: 'read' } }, async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));

  app.decorate('tallyMetrics', metrics);
  return app;
}

function csvCell(v: string | number | null): string {
  if (v === null) return '';
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function toCsv(r: QueryResult): string {
  return [r.columns.map(csvCell).join(','), ...r.rows.map((row) => row.map(csvCell).join(','))].join('\r\n') + '\r\n';
}

/** The metrics registry of an app built by `build` (the daemon wires the engine's WAL fsync observer to it). */
export function metricsOf(app: FastifyInstance): Metrics {
  return (app as unknown as { tallyMetrics: Metrics }).tallyMetrics;
}

