/**
 * cli/serve.ts — run the daemon: listen at once (health answers while the data directory recovers), open the
 * engine, then serve until SIGTERM/SIGINT.
 *
 * Invariant: a first signal shuts down gracefully — stop accepting, finish in-flight requests, close the engine
 * (which syncs the WAL), exit 0; a second signal exits at once, and the data is still safe by the WAL.
 */
import { nativeStatus } from '../native/index.js';
import type { FastifyInstance } from 'fastify';
import { open, type Tally } from '../db.js';
import { build, metricsOf } from '../http/app.js';
import type { ServeConfig } from './config.js';
import { startQueryThread, type QueryThread } from '../replica/query-thread.js';

export interface Running {
  app: FastifyInstance;
  url: string;
  ready: Promise<void>;
  /** The query thread's listener, once ready (with --query-port). */
  queryUrl: () => string | null;
  stop: () => Promise<void>;
}

export async function serve(cfg: ServeConfig, log: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<Running> {
  let db: Tally | null = null;
  const app = build({
    engine: () => db, limits: cfg.limits, tokens: cfg.tokens, decodeWorkers: cfg.decodeWorkers,
    logger: cfg.logLevel === 'silent' ? false : { level: cfg.logLevel },
  });
  await app.listen({ host: cfg.host, port: cfg.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : cfg.port;
  const url = `http://${cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host}:${port}`;
  log(`tallydb listening on ${url} (data: ${cfg.dir}, fsync: ${cfg.fsync}${Object.keys(cfg.tokens).length ? ', auth: bearer tokens' : ''}, kernels: ${nativeStatus.kind}${nativeStatus.reason ? ` — ${nativeStatus.reason}` : ''})`);
  let queries: QueryThread | null = null;
  const ready = (async () => {
    const started = Date.now();
    db = await open({
      dir: cfg.dir, fsync: cfg.fsync, headBytes: cfg.headBytes, cacheBytes: cfg.cacheBytes, repair: cfg.repair, limits: cfg.limits, compaction: { workers: cfg.compactionWorkers }, resultCache: cfg.resultCache,
      onWalSync: (s) => metricsOf(app).walFsync.observe(s),
    });
    const r = db.recovery;
    if (cfg.queryPort !== null) {
      queries = await startQueryThread(db, {
        host: cfg.host, port: cfg.queryPort, limits: cfg.limits, tokens: cfg.tokens, cacheBytes: cfg.cacheBytes, resultCache: cfg.resultCache, logLevel: cfg.logLevel,
        onFailure: (message) => log(`tallydb: ${message}`),
      });
      log(`tallydb queries on ${queries.url} (a query thread with its own copy of the head)`);
    }
    log(`tallydb ready in ${Date.now() - started} ms (replayed ${r?.walRecords ?? 0} WAL records, ${r?.walRowsReplayed ?? 0} rows)`);
  })();
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await app.close(); // stops accepting, waits for in-flight requests
      await ready.catch(() => {});
      await queries?.stop();
      await db?.close();
    })();
    return stopping;
  };
  return { app, url, ready, stop, queryUrl: () => queries?.url ?? null };
}

/** Wire SIGTERM/SIGINT: the first stops gracefully and exits 0, the second exits at once. */
export function handleSignals(running: Running, log: (line: string) => void): void {
  let signals = 0;
  const onSignal = (sig: string): void => {
    signals++;
    if (signals > 1) {
      log(`${sig} again: exiting now (acknowledged data is safe in the WAL)`);
      process.exit(130);
    }
    log(`${sig}: shutting down (finishing in-flight requests; send again to exit at once)`);
    running.stop().then(() => {
      log('tallydb stopped');
      process.exit(0);
    }, (e) => {
      log(`shutdown failed: ${(e as Error).message}`);
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}
