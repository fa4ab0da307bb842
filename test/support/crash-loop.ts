/**
 * The kill -9 loop, shared by the test (100 cycles) and the longer script (npm run crash-loop): start the child,
 * let it ingest, SIGKILL it at a random moment, then open the directory here and check that every acknowledged
 * batch is present exactly once and every batch is all-or-nothing.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { open } from '../../src/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * Bundle the child once into plain JS, so each of the many starts costs a bare `node`. It is written inside the
 * project (node_modules/.cache) so that its package imports resolve like the project's own.
 */
function bundleChild(): string {
  const outfile = path.resolve(here, '../../node_modules/.cache/tallydb-test', `crash-child-${process.pid}.mjs`);
  buildSync({
    entryPoints: [path.join(here, 'crash-child.ts')], bundle: true, platform: 'node', format: 'esm', outfile,
    external: ['roaring', 'lz4-napi', '@node-rs/crc32', 'msgpackr', 'node-sql-parser'], logLevel: 'silent',
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  });
  return outfile;
}

export interface LoopReport {
  cycles: number;
  acked: number;
  presentUnacked: number;
  segments: number;
}

export async function crashLoop(cycles: number, opts: { k?: number; mode?: string; log?: (s: string) => void } = {}): Promise<LoopReport> {
  const k = opts.k ?? 50;
  const work = mkdtempSync(path.join(tmpdir(), 'tallydb-kill9-'));
  const dir = path.join(work, 'data');
  const child = bundleChild();
  const acked = new Set<number>();
  let next = 0;
  const presentUnacked = new Set<number>();
  let segments = 0;
  try {
    for (let c = 0; c < cycles; c++) {
      const first = next;
      const proc = spawn(process.execPath, [child, dir, String(first), String(k), opts.mode ?? 'always'], {
        stdio: ['ignore', 'pipe', 'pipe'], cwd: path.resolve(here, '../..'),
      });
      let stderr = '';
      proc.stderr.on('data', (d) => (stderr += d));
      let buf = '';
      let ready = false;
      let acksThisCycle = 0;
      const killAfter = 1 + Math.floor(Math.random() * 30);
      const exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => resolve(), 15_000);
        proc.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          let nl;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line === 'ready') ready = true;
            else if (line.startsWith('ack ')) {
              acked.add(Number(line.slice(4)));
              if (++acksThisCycle >= killAfter) {
                clearTimeout(timer);
                resolve();
              }
            }
          }
        });
        proc.on('exit', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      // A random extra delay, so the kill lands anywhere: mid-write, mid-fsync, mid-seal, mid-manifest swap.
      await new Promise((r) => setTimeout(r, Math.random() * 15));
      proc.kill('SIGKILL');
      await exited;
      if (!ready && acksThisCycle === 0 && stderr.trim()) throw new Error(`child failed: ${stderr}`);
      next = first + 2 * (killAfter + 40);

      const db = await open({ dir, clock: () => Date.parse('2026-11-23T10:00:00Z') + 1000 * 86_400_000 });
      const r = await db.query({ datasource: 'ev', groupBy: ['batch'], aggregations: [{ name: 'n', type: 'count' }] });
      const counts = new Map(r.rows.map(([b, n]) => [Number(b), n as number]));
      for (const b of acked) {
        if (counts.get(b) !== k) throw new Error(`cycle ${c}: acknowledged batch ${b} has ${counts.get(b) ?? 0} of ${k} events`);
      }
      for (const [b, n] of counts) {
        if (n !== k) throw new Error(`cycle ${c}: batch ${b} is partial: ${n} of ${k} events`);
        if (!acked.has(b)) presentUnacked.add(b);
        else presentUnacked.delete(b);
      }
      segments = db.stats('ev').storage!.segments;
      await db.close();
      opts.log?.(`cycle ${c + 1}/${cycles}: ${acked.size} acknowledged batches intact, ${segments} segments`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(child, { force: true });
  }
  return { cycles, acked: acked.size, presentUnacked: presentUnacked.size, segments };
}
