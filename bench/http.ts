/**
 * bench/http.ts — HTTP ingest over loopback (issue 4): the daemon in its own process (`node dist/cli/main.js
 * serve`), `--clients` concurrent clients posting MessagePack batches of 10k events, while one more client runs
 * the seed query (clicks for one image, location and gender over 24 h) in a loop. Reports the median over
 * `--runs` of events/s, and the seed query's latency p50/p99 while ingest runs, against the same query idle.
 *
 *   npm run build && npm run bench:http -- [--runs 3] [--events 5000000] [--clients 4] [--fsync always] [--rate 0] [--query-client process] [--query-every 10] [--result-cache on] [--query-thread off] [--query-target daemon] [--floor on]
 *
 * 5M events by default (until 2026-12-01's fourth session 1M): a 1M-event run lasts ~1.5 s, much of it the daemon's
 * warm-up (JIT, dictionaries and the dedup index growing from empty); 5M runs ~6 s and measures the steady state.
 * The seed query starts every 10 ms at most by default (before: back to back, which loads the daemon more the faster
 * its answers come).
 * The daemon runs as configured by default, its result cache on (query/result-cache.ts: the seed query then computes
 * only the head minutes that changed since its last run); `--result-cache off` times the query computed in full.
 * `--query-thread on` starts the daemon with `--query-port 0` and sends the seed query to the query thread's
 * listener (replica/query-thread.ts) instead of the main one, as a dashboard pointed at that port would.
 * `--query-target constant` sends the seed queries instead to a node:http server in a process of its own that answers
 * every query at once with a constant reply of the same shape (`constantServer`), while the daemon takes the same
 * ingest: the latency any Node server answering in no time gets on this machine under this load — the floor the
 * daemon's figures are to be read against. By default (`--floor on`) the floor is measured after the daemon's runs,
 * in as many runs, and the seed query's p99 is printed as a multiple of the floor's.
 *   (env: PROFILE_DAEMON=DIR writes a CPU profile of the daemon; DAEMON_NODE_FLAGS="--trace-gc ..." adds node flags)
 */
import { median } from './util.js';
import { fork, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as hdr from 'hdr-histogram-js';
import { pack } from 'msgpackr';
import { AD_DATASOURCE, batches } from './gen.js';
import { HttpClient } from '../src/cli/http-client.js';
import { NODE_FLAGS } from '../src/cli/node-flags.js';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1]!;
};
const RUNS = Number(arg('runs', '3'));
const EVENTS = Number(arg('events', '5000000'));
const CLIENTS = Number(arg('clients', '4'));
const FSYNC = arg('fsync', 'always');
const QUERY_CLIENT = arg('query-client', 'process');
/** Milliseconds between the starts of two seed queries at least (0: back to back). */
const QUERY_EVERY_MS = Number(arg('query-every', '10'));
/** Events per second the clients send at most (0: as fast as the daemon takes them). */
const RATE = Number(arg('rate', '0'));
const RESULT_CACHE = arg('result-cache', 'on');
const QUERY_THREAD = arg('query-thread', 'off') === 'on';
const QUERY_TARGET = arg('query-target', 'daemon') as 'daemon' | 'constant';
if (QUERY_TARGET !== 'daemon' && QUERY_TARGET !== 'constant') throw new Error(`--query-target: got ${QUERY_TARGET}; want daemon or constant`);
/** After the daemon's runs, the same runs with the queries sent to the constant server (`--floor off` skips them). */
const FLOOR = arg('floor', 'on') === 'on';
const SEED = `SELECT count(*) FROM events WHERE event = 'click' AND image_id = 'img0' AND location = 'bangalore' AND gender = 'male' AND ts >= now() - INTERVAL 1 DAY`;

async function daemon(dir: string): Promise<{ url: string; queryUrl: string; stop: () => Promise<void> }> {
  // Started as `npm start` starts it (with NODE_FLAGS; DAEMON_NODE_FLAGS adds more, or overrides a V8 flag).
  const flags = [
    ...NODE_FLAGS,
    ...(process.env.PROFILE_DAEMON ? ['--cpu-prof', '--cpu-prof-dir', process.env.PROFILE_DAEMON] : []),
    ...(process.env.DAEMON_NODE_FLAGS ? process.env.DAEMON_NODE_FLAGS.split(' ').filter((f) => f.length > 0) : []),
  ];
  const proc = spawn(process.execPath, [...flags, 'dist/cli/main.js', 'serve', '--dir', dir, '--port', '0', '--fsync', FSYNC, '--log-level', 'silent', '--head-bytes', String(8e9), '--result-cache', RESULT_CACHE, ...(QUERY_THREAD ? ['--query-port', '0'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout.on('data', (d) => {
    out += d;
    if (flags.length > NODE_FLAGS.length) process.stderr.write(d); // what the flags print (--trace-gc, ...)
  });
  while (!/tallydb ready/.test(out)) await new Promise((r) => setTimeout(r, 20));
  const url = /listening on (http:\/\/\S+)/.exec(out)![1]!;
  const queryUrl = QUERY_THREAD ? /queries on (http:\/\/\S+)/.exec(out)![1]! : url;
  return { url, queryUrl, stop: () => new Promise((resolve) => { proc.on('exit', () => resolve()); proc.kill('SIGTERM'); }) };
}

async function queryLoop(url: string, stopAt: () => boolean): Promise<hdr.Histogram> {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const client = new HttpClient(url, 1);
  while (!stopAt()) {
    const t = performance.now();
    const res = await client.request('POST', '/v1/sql', SEED, { 'content-type': 'text/plain' });
    if (res.status !== 200) throw new Error(`query answered ${res.status}: ${res.text}`);
    h.recordValue(Math.max(1, Math.round((performance.now() - t) * 1000)));
    // --query-every MS: a query starts every MS milliseconds at most (0: back to back — each reply starts the next).
    const wait = QUERY_EVERY_MS - (performance.now() - t);
    if (QUERY_EVERY_MS > 0 && wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  client.close();
  return h;
}

/**
 * The query loop in a process of its own (`--query-client process`, the default): a dashboard is not the producer,
 * and in the ingest clients' process every query's reply also waits for that event loop's turn between the
 * clients' 400 KB request bodies. `--query-client same` keeps the loop beside the ingest clients, as every run before
 * 2026-12-01's third session measured it.
 */
function queryLoopElsewhere(url: string, count = 0): { stop: () => Promise<hdr.Histogram>; done: Promise<hdr.Histogram> } {
  const args = ['--query-loop', url, '--query-every', String(QUERY_EVERY_MS), '--query-count', String(count)];
  const child = fork(fileURLToPath(import.meta.url), args, { execArgv: process.execArgv });
  const result = new Promise<string>((resolve, reject) => {
    child.once('message', (m) => resolve(m as string));
    child.once('exit', (code) => reject(new Error(`query client exited with ${code}`)));
  });
  const done = result.then((m) => hdr.decodeFromCompressedBase64(m));
  return {
    stop: async () => {
      child.send('stop');
      return done;
    },
    done,
  };
}

/** The `--query-target constant` server: its own process, a constant seed-query reply to every request. */
async function constantServer(): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = fork(fileURLToPath(import.meta.url), ['--constant-server'], { execArgv: process.execArgv });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('message', (m) => resolve(m as string));
    child.once('exit', (code) => reject(new Error(`constant server exited with ${code}`)));
  });
  return { url, stop: () => new Promise((resolve) => { child.once('exit', () => resolve()); child.kill('SIGTERM'); }) };
}

const ms = (h: hdr.Histogram, p: number): string => (Math.min(h.getValueAtPercentile(p), h.maxValue) / 1000).toFixed(2);

interface Measured {
  rates: number[];
  busy: hdr.Histogram;
  idle: hdr.Histogram;
}

/** RUNS daemon runs taking the same ingest, the seed queries sent to `target` (the daemon, or the constant server). */
async function measure(bodies: Buffer[], target: 'daemon' | 'constant'): Promise<Measured> {
  const constant = target === 'constant' ? await constantServer() : null;
  const rates: number[] = [];
  let busy: hdr.Histogram | null = null;
  let idle: hdr.Histogram | null = null;
  for (let r = 0; r < RUNS; r++) {
    const dir = mkdtempSync(path.join(tmpdir(), 'tallydb-http-'));
    const d = await daemon(dir);
    // node:http, not fetch: fetch cost the clients ~a third of a core (cli/http-client.ts), taken from the daemon.
    const client = new HttpClient(d.url, CLIENTS);
    await client.request('PUT', '/v1/datasources/events', JSON.stringify({ ...AD_DATASOURCE, lateness: '2h' }), { 'content-type': 'application/json' });
    let next = 0;
    let done = false;
    const t = performance.now();
    const queryUrl = constant?.url ?? d.queryUrl;
    const q = QUERY_CLIENT === 'same' ? queryLoop(queryUrl, () => done) : null;
    const remote = QUERY_CLIENT === 'same' ? null : queryLoopElsewhere(queryUrl);
    await Promise.all(Array.from({ length: CLIENTS }, async () => {
      while (next < bodies.length) {
        const i = next++;
        // --rate: batch i goes out no earlier than its place in a steady stream of RATE events/s.
        const due = t + (i * 10_000 * 1000) / RATE;
        if (RATE > 0 && performance.now() < due) await new Promise((resolve) => setTimeout(resolve, due - performance.now()));
        const res = await client.request('POST', '/v1/datasources/events/events', bodies[i]!, { 'content-type': 'application/msgpack' });
        if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${res.text}`);
      }
    }));
    const seconds = (performance.now() - t) / 1000;
    done = true;
    const h = q !== null ? await q : await remote!.stop();
    // The latencies of every run pooled (until 2026-12-01's third session the report kept one run's, the lower p99
    // of the middle and the last run — an optimistic pick).
    if (busy === null) busy = h;
    else busy.add(h);
    rates.push(EVENTS / seconds);
    if (r === 0) {
      // The same query on the same data with no ingest running: the baseline, from the same kind of client (until
      // 2026-12-01's fourth session always from this process, which holds the run's bodies and its garbage).
      let n = 0;
      idle = QUERY_CLIENT === 'same' ? await queryLoop(queryUrl, () => ++n > 300) : await queryLoopElsewhere(queryUrl, 300).done;
    }
    client.close();
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  await constant?.stop();
  return { rates, busy: busy!, idle: idle! };
}

function report(m: Measured, label: string): void {
  console.log(`${label}ingest: ${(median(m.rates) / 1e6).toFixed(2)} M events/s (runs: ${m.rates.map((x) => (x / 1e6).toFixed(2)).join(', ')})`);
  console.log(`${label}seed query while ingesting: p50 ${ms(m.busy, 50)} ms, p99 ${ms(m.busy, 99)} ms (${m.busy.totalCount} queries, all runs)`);
  console.log(`${label}seed query idle:            p50 ${ms(m.idle, 50)} ms, p99 ${ms(m.idle, 99)} ms`);
}

async function main(): Promise<void> {
  const end = Date.now();
  const bodies = batches({ count: EVENTS, end, spanMs: 3_600_000 }, 10_000).map((b) => pack(b));
  console.log(`tallydb HTTP ingest — ${EVENTS.toLocaleString()} events, MessagePack batches of 10k, ${CLIENTS} clients${RATE > 0 ? ` paced at ${RATE.toLocaleString()} events/s` : ''}, fsync ${FSYNC}, result cache ${RESULT_CACHE}, seed queries to the ${QUERY_TARGET === 'constant' ? 'constant server (not the daemon)' : QUERY_THREAD ? 'query thread' : 'main listener'}, median of ${RUNS} runs`);
  const m = await measure(bodies, QUERY_TARGET);
  report(m, '');
  if (FLOOR && QUERY_TARGET === 'daemon') {
    // The peer of the latency figures, measured in the same invocation: the same load, the queries answered at once.
    const f = await measure(bodies, 'constant');
    report(f, 'floor (constant server): ');
    const p99 = (h: hdr.Histogram): number => Math.min(h.getValueAtPercentile(99), h.maxValue);
    console.log(`seed query p99 while ingesting: ${(p99(m.busy) / p99(f.busy)).toFixed(2)}× the floor's`);
  }
}

if (process.argv.includes('--constant-server')) {
  // The child of constantServer: read each request to its end, answer with the seed query's reply shape.
  const body = JSON.stringify({ columns: [{ name: 'count(*)', type: 'number' }], rows: [[0]], stats: { elapsedMs: 0 } });
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body));
  });
  server.listen(0, '127.0.0.1', () => {
    const a = server.address() as { port: number };
    process.send!(`http://127.0.0.1:${a.port}`);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
} else if (process.argv.includes('--query-loop')) {
  // The child of queryLoopElsewhere: query until told to stop (or `--query-count` queries), then send the
  // latencies (µs) back.
  let stop = false;
  let n = 0;
  const count = Number(arg('query-count', '0'));
  process.on('message', () => (stop = true));
  const h = await queryLoop(arg('query-loop', ''), () => stop || (count > 0 && ++n > count));
  process.send!(hdr.encodeIntoCompressedBase64(h), () => process.exit(0));
} else {
  await main();
}
