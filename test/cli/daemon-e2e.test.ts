/**
 * End to end, as a user runs it: the daemon started as a child process the way `npm start` does (build, then
 * `node <NODE_FLAGS> dist/cli/main.js serve`), events ingested over a real socket, queried through SQL, SIGTERM (exit 0),
 * restart, and every acknowledged event is there. A second signal exits at once. With --query-port, the query
 * thread's listener answers the same and SIGTERM still exits 0.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pack } from 'msgpackr';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { workerNice } from '../../src/priority.js';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const work = mkdtempSync(path.join(tmpdir(), 'tallydb-e2e-'));
const dir = path.join(work, 'data');

beforeAll(() => {
  // What `npm start` runs first.
  execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json')], { cwd: root });
}, 120_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function start(...flags: string[]): Promise<{ proc: ChildProcess; url: string; output: () => string; exited: Promise<number | null>; how: () => string }> {
  const proc = spawn(process.execPath, [...NODE_FLAGS, path.join(root, 'dist/cli/main.js'), 'serve', '--dir', dir, '--port', '0', '--log-level', 'silent', ...flags], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  let how = 'running';
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code, signal) => {
    how = `exit code ${code}, signal ${signal}`;
    resolve(code);
  }));
  const deadline = Date.now() + 20_000;
  while (!/tallydb ready/.test(out)) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`daemon did not get ready: ${out}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  const url = /listening on (http:\/\/[^ ]+)/.exec(out)![1]!;
  // Started the way the README says, the daemon runs the C++ kernels that npm install built.
  if (process.env['TALLYDB_NATIVE'] !== '0') expect(out).toMatch(/kernels: native\)/);
  // `how` and the output go into failure messages: a daemon that died of a signal says which, and what it printed.
  return { proc, url, output: () => out, exited, how: () => `${how}; output: ${out}` };
}

const call = async (url: string, method: string, body?: unknown, type = 'application/json') => {
  const res = await fetch(url, { method, ...(body !== undefined ? { body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body), headers: { 'content-type': type } } : {}) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
};

it('ingests over a socket, answers SQL, stops on SIGTERM with exit 0, and restarts with every acknowledged event', async () => {
  const a = await start();
  expect((await call(`${a.url}/healthz`, 'GET')).json).toEqual({ status: 'ok' });
  expect((await call(`${a.url}/v1/datasources/events`, 'PUT', { dimensions: ['event', 'image_id'], dedupKey: 'id', lateness: '1d' })).status).toBe(201);
  const now = Date.now();
  const events0 = () => Array.from({ length: 50 }, (_, i) => ({ ts: now, id: `z${i}`, event: 'impression' }));
  let acked = 0;
  for (let b = 0; b < 20; b++) {
    const events = Array.from({ length: 500 }, (_, i) => ({ ts: now - 60_000 + b * 1000 + i, id: `${b}-${i}`, event: i % 10 ? 'impression' : 'click', image_id: `img${i % 7}` }));
    const r = await call(`${a.url}/v1/datasources/events/events`, 'POST', pack(events), 'application/msgpack');
    expect(r.status).toBe(200);
    acked += r.json.accepted;
  }
  // The daemon decodes event batches in a worker thread: its failures keep their codes, bad events their indexes.
  const broken = await call(`${a.url}/v1/datasources/events/events`, 'POST', pack(events0()).subarray(0, 30), 'application/msgpack');
  expect([broken.status, broken.json.code]).toEqual([400, 'BODY_MALFORMED']);
  const notArray = await call(`${a.url}/v1/datasources/events/events`, 'POST', '{"ts": 1}');
  expect([notArray.status, notArray.json.code]).toEqual([400, 'BATCH_NOT_ARRAY']);
  const partial = await call(`${a.url}/v1/datasources/events/events`, 'POST', pack([{ ts: now, id: 'p1', event: 'click' }, { ts: 'soon', id: 'p2' }, { ts: now, id: 'p3', colour: 'red' }]), 'application/msgpack');
  expect(partial.status).toBe(207);
  expect(partial.json.rejected.map((r: { index: number; code: string }) => [r.index, r.code])).toEqual([[1, 'TIMESTAMP_INVALID'], [2, 'FIELD_UNKNOWN']]);
  acked += partial.json.accepted;
  const q = await call(`${a.url}/v1/sql`, 'POST', "SELECT countIf(event = 'click') AS clicks, count(*) FROM events", 'text/plain');
  expect(q.json.rows).toEqual([[1001, acked]]);
  if (process.platform === 'linux') {
    // The decode and compaction threads yield the CPU to the main thread (src/priority.ts); the main thread keeps its.
    const nice = (tid: string): number => Number(readFileSync(`/proc/${a.proc.pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]);
    const threads = readdirSync(`/proc/${a.proc.pid}/task`);
    const main = nice(String(a.proc.pid));
    expect(main).toBe(getPriority()); // as this process started it
    expect(threads.filter((t) => nice(t) === workerNice(main))).toHaveLength(1); // the decode thread (no merge ran)
  }

  a.proc.kill('SIGTERM');
  expect(await a.exited, a.how()).toBe(0);
  expect(a.output()).toMatch(/tallydb stopped/);

  const b = await start();
  const again = await call(`${b.url}/v1/sql`, 'POST', { sql: "SELECT countIf(event = 'click') AS clicks, count(*) FROM events" });
  expect(again.json.rows).toEqual([[1001, acked]]);
  // Two signals back to back (two kinds: the kernel merges a repeated pending signal into one): the second
  // arrives while the graceful stop is still closing, and exits at once.
  b.proc.kill('SIGTERM');
  b.proc.kill('SIGINT');
  expect(await b.exited, b.how()).toBe(130);
  expect(b.output()).toMatch(/again: exiting now/);

  // The data is still all there: the WAL had it. Through the query thread's listener too, also for what is
  // ingested after it started.
  const c = await start('--query-port', '0');
  expect((await call(`${c.url}/v1/sql`, 'POST', { sql: 'SELECT count(*) FROM events' })).json.rows).toEqual([[acked]]);
  const queryUrl = /queries on (http:\/\/[^ ]+)/.exec(c.output())![1]!;
  expect((await call(`${queryUrl}/v1/sql`, 'POST', { sql: 'SELECT count(*) FROM events' })).json.rows).toEqual([[acked]]);
  const more = await call(`${c.url}/v1/datasources/events/events`, 'POST', pack([{ ts: now, id: 'q1', event: 'click' }]), 'application/msgpack');
  expect(more.json.accepted).toBe(1);
  expect((await call(`${queryUrl}/v1/sql`, 'POST', { sql: "SELECT countIf(event = 'click'), count(*) FROM events" })).json.rows).toEqual([[1002, acked + 1]]);
  c.proc.kill('SIGTERM');
  expect(await c.exited, c.how()).toBe(0);
}, 60_000);
