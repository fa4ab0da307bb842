/**
 * replica/query-thread.ts — the daemon's query thread: a copy of the engine's readable state (replica.ts) fed by
 * the engine's thread (feed.ts), and an HTTP listener of its own that answers queries from it
 * (`tallydb serve --query-port`). A query here never waits behind ingest work on the engine's thread: decoding,
 * deciding, the WAL and commits run there, and this thread only applies the feed's column copies.
 *
 * Invariant (read-your-writes across the two listeners): before it runs a query, the thread applies every feed
 * message already posted (`receiveMessageOnPort` drains the port synchronously), so a query sent after an ingest
 * was acknowledged — which the engine posts before it acknowledges — sees that ingest's rows.
 *
 * `startQueryThread` (the engine's side) starts it and wires the feed; the rest of this file runs in the thread.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker, isMainThread, parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import type { Tally } from '../db.js';
import type { Limits } from '../limits.js';
import { build, type Scope } from '../http/app.js';
import { NODE_FS } from '../storage/fs.js';
import { ReplicaFeed } from './feed.js';
import { Replica } from './replica.js';
import type { FeedMessage, ReleasedMessage } from './protocol.js';

export interface QueryThreadOptions {
  host: string;
  port: number;
  limits: Limits;
  tokens: Record<string, Scope[]>;
  /** Budget of the thread's own cache of decoded segment data. */
  cacheBytes: number;
  resultCache: boolean;
  logLevel: string;
  /** Told when the thread ends other than by `stop` (its listener is gone; the main listener still answers). */
  onFailure?: (message: string) => void;
  /**
   * Tests only: false leaves every feed message to the drain before each query (no 'message' events), as when a
   * query arrives before the thread has dispatched what the engine posted — the case the drain exists for.
   */
  feedEvents?: boolean;
}

interface ThreadData extends QueryThreadOptions {
  feed: MessagePort;
}

export interface QueryThread {
  /** The query listener's URL. */
  url: string;
  /** Close the listener (in-flight queries finish), end the thread, and let go of the segments it held. */
  stop(): Promise<void>;
  /** End the thread at once, as a crash would (tests): `onFailure` is told, and its segments are let go. */
  kill(): Promise<void>;
}

/** Start the query thread for `db` (durable, open) and feed it; resolves once its listener accepts queries. */
export async function startQueryThread(db: Tally, opts: QueryThreadOptions): Promise<QueryThread> {
  const js = fileURLToPath(new URL('./query-thread.js', import.meta.url));
  const compiled = existsSync(js);
  const { port1, port2 } = new MessageChannel();
  const { onFailure, ...rest } = opts;
  const data: ThreadData = { ...rest, feed: port2 };
  // From TypeScript sources (tests, tsx) the thread loads this file through tsx's require hook (load-ts.cjs).
  const worker = compiled
    ? new Worker(js, { workerData: data, transferList: [port2] })
    : new Worker(fileURLToPath(new URL('./load-ts.cjs', import.meta.url)), { workerData: { ...data, entry: fileURLToPath(new URL('./query-thread.ts', import.meta.url)) }, transferList: [port2], execArgv: ['--import', 'tsx'] });
  const feed = new ReplicaFeed(port1);
  let stopped = false;
  // However the thread ends, the segments held for it are let go (else retired files would stay on disk), and an
  // error in it never reaches this thread as an uncaught one.
  worker.on('error', (e) => onFailure?.(`query thread failed: ${e.message}`));
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  worker.on('exit', (code) => {
    feed.close();
    port1.close();
    if (!stopped) onFailure?.(`query thread exited (code ${code}); queries are answered on the main listener only`);
  });
  // The snapshot and every change after it go out synchronously from here on, before any further ingest commits.
  db.follow(feed);
  const url = await new Promise<string>((resolve, reject) => {
    worker.once('message', (m: { t: string; url?: string; message?: string }) => (m.t === 'listening' ? resolve(m.url!) : reject(new Error(m.message))));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the query thread exited with code ${code} before listening`)));
  });
  let stopping: Promise<void> | null = null;
  return {
    url,
    stop: () => {
      stopping ??= (async () => {
        stopped = true;
        worker.postMessage({ t: 'stop' }); // a no-op if the thread is gone already; then `exited` has settled
        await exited;
      })();
      return stopping;
    },
    kill: async () => {
      await worker.terminate();
      await exited;
    },
  };
}

async function runThread(data: ThreadData): Promise<void> {
  try {
    writeFileSync('/proc/thread-self/comm', 'tallydb-query'); // its name in `top -H` and /proc (Linux)
  } catch {
    // elsewhere threads keep their names
  }
  const feed = data.feed;
  const replica = new Replica(data.limits, NODE_FS, data.cacheBytes, (ids) => feed.postMessage({ t: 'released', ids } satisfies ReleasedMessage), Date.now, data.resultCache);
  const drain = (): void => {
    for (let m = receiveMessageOnPort(feed); m !== undefined; m = receiveMessageOnPort(feed)) replica.apply(m.message as FeedMessage);
  };
  // In order: a message's event comes after every earlier one was applied (by its event or by a drain).
  if (data.feedEvents !== false) feed.on('message', (m: FeedMessage) => replica.apply(m));
  const app = build({
    engine: () => replica, readOnly: true, limits: data.limits, tokens: data.tokens, logger: data.logLevel === 'silent' ? false : { level: data.logLevel },
  });
  app.addHook('preHandler', async () => drain());
  await app.listen({ host: data.host, port: data.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : data.port;
  parentPort!.postMessage({ t: 'listening', url: `http://${data.host.includes(':') ? `[${data.host}]` : data.host}:${port}` });
  parentPort!.on('message', (m: { t: string }) => {
    if (m.t !== 'stop') return;
    void app.close().finally(() => {
      feed.close();
      parentPort!.close();
    });
  });
}

if (!isMainThread && (workerData as ThreadData | null)?.feed !== undefined) {
  runThread(workerData as ThreadData).catch((e: Error) => {
    parentPort!.postMessage({ t: 'failed', message: `query thread: ${e.message}` });
  });
}
