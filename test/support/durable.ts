/** Helpers for durability tests: an engine on a MemFs, numbered batches, and counting what survived. */
import { open, type OpenOptions, type Tally } from 'tallydb';
import type { MemFs } from './memfs.js';

export const T0 = Date.parse('2026-11-23T10:00:00Z');
export const DIR = '/db';

export const SPEC = {
  name: 'ev', dimensions: ['batch', 'kind'], metrics: [{ name: 'v', type: 'int' as const }],
  dedupKey: 'id', dedupWindow: '1d', lateness: '1d',
};

export async function openOn(fs: MemFs, extra: Partial<OpenOptions> = {}): Promise<Tally> {
  const db = await open({ dir: DIR, fileSystem: fs, clock: () => T0 + 10 * 86_400_000, ...extra });
  await db.createDatasource(SPEC);
  return db;
}

/** Batch `b`: `k` events with ids b-0..b-(k-1), all tagged batch=b, one second apart per batch. */
export function batch(b: number, k: number, spacingMs = 1000): object[] {
  return Array.from({ length: k }, (_, i) => ({ ts: T0 + b * spacingMs + i, id: `${b}-${i}`, batch: String(b), kind: i % 2 ? 'x' : 'y', v: i }));
}

/** Events per batch id, as the engine answers. */
export async function countsByBatch(db: Tally): Promise<Map<number, number>> {
  const r = await db.query({ datasource: 'ev', groupBy: ['batch'], aggregations: [{ name: 'n', type: 'count' }] });
  return new Map(r.rows.map(([b, n]) => [Number(b), n as number]));
}

export async function total(db: Tally): Promise<number> {
  return (await db.query({ datasource: 'ev', aggregations: [{ name: 'n', type: 'count' }] })).rows[0]![0] as number;
}

export class Crash extends Error {
  constructor(step: string) {
    super(`simulated crash at ${step}`);
  }
}

/** The two ways a process stops without closing: killed (the OS keeps what it was given) or a power loss. */
export const CRASH_KINDS: [string, (fs: MemFs) => MemFs][] = [
  ['a killed process', (fs) => fs.clone()],
  ['a power loss', (fs) => fs.powerLossCopy()],
];

/** Step hooks that throw a Crash at the `nth` time `step` is reached once armed (once); `seen` lists every step reached. */
export function crashAt(step: string, nth = 1): { seen: string[]; arm(): void; step(name: string): void } {
  let armed = false;
  let left = nth;
  const seen: string[] = [];
  return {
    seen,
    arm: () => {
      armed = true;
    },
    step: (name) => {
      seen.push(name);
      if (armed && name === step && --left === 0) {
        armed = false;
        throw new Crash(name);
      }
    },
  };
}
