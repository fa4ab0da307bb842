/**
 * cli/config.ts — the daemon's configuration: flags, then environment (TALLYDB_*), then a JSON config file
 * (--config), then defaults. Invariant: a configuration that reaches `serve` is complete and checked; anything
 * wrong is an OPTIONS_INVALID error that names the setting and where it came from.
 */
import { readFileSync } from 'node:fs';
import { TallyError } from '../errors.js';
import { DEFAULT_LIMITS, resolveLimits, type Limits } from '../limits.js';
import type { FsyncMode } from '../wal/wal.js';
import type { Scope } from '../http/app.js';

export interface ServeConfig {
  dir: string;
  host: string;
  port: number;
  fsync: FsyncMode;
  headBytes: number;
  cacheBytes: number;
  tokens: Record<string, Scope[]>;
  logLevel: string;
  repair: boolean;
  limits: Limits;
  /** Worker threads decoding event batches off the main thread. */
  decodeWorkers: number;
  /** Worker threads for compaction merges (0: no merging; retention still runs). */
  compactionWorkers: number;
  /** Keep per-reader results of queries without group-by (query/result-cache.ts). */
  resultCache: boolean;
  /** Port of the query thread's listener (replica/query-thread.ts; 0: any free port), or null for no query thread. */
  queryPort: number | null;
}

export const SERVE_DEFAULTS = { dir: './data', host: '127.0.0.1', port: 8080, fsync: 'always', headBytes: 512 * 1024 * 1024, cacheBytes: 1024 * 1024 * 1024, logLevel: 'info', decodeWorkers: 1, compactionWorkers: 1, resultCache: true } as const;

const ENV: Record<string, string> = {
  dir: 'TALLYDB_DIR', host: 'TALLYDB_HOST', port: 'TALLYDB_PORT', fsync: 'TALLYDB_FSYNC', headBytes: 'TALLYDB_HEAD_BYTES',
  cacheBytes: 'TALLYDB_CACHE_BYTES', tokens: 'TALLYDB_TOKENS', logLevel: 'TALLYDB_LOG_LEVEL', decodeWorkers: 'TALLYDB_DECODE_WORKERS',
  compactionWorkers: 'TALLYDB_COMPACTION_WORKERS', resultCache: 'TALLYDB_RESULT_CACHE',
  queryPort: 'TALLYDB_QUERY_PORT',
};

function fail(message: string): never {
  throw new TallyError('OPTIONS_INVALID', message);
}

/** `write:SECRET`, `read:SECRET`, `read+write:SECRET` or a bare `SECRET` (both scopes). */
export function parseTokens(specs: string[], where: string): Record<string, Scope[]> {
  const out: Record<string, Scope[]> = {};
  for (const spec of specs) {
    const m = /^(?:(read|write|read\+write|write\+read):)?(.{16,})$/.exec(spec);
    if (m === null) fail(`${where}: token ${JSON.stringify(spec.slice(0, 12))}…: want [read|write|read+write:]SECRET with a secret of at least 16 characters`);
    out[m![2]!] = m![1] === undefined ? ['read', 'write'] : (m![1]!.split('+') as Scope[]);
  }
  return out;
}

export function resolveServeConfig(flags: Record<string, string | string[] | boolean | undefined>, env: NodeJS.ProcessEnv): ServeConfig {
  let file: Record<string, unknown> = {};
  const configPath = (flags.config as string | undefined) ?? env.TALLYDB_CONFIG;
  if (configPath !== undefined) {
    try {
      file = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      fail(`--config ${configPath}: ${(e as Error).message}`);
    }
  }
  const pick = (key: string): { value: unknown; from: string } | undefined => {
    if (flags[key] !== undefined) return { value: flags[key], from: `--${key}` };
    if (env[ENV[key]!] !== undefined) return { value: env[ENV[key]!], from: ENV[key]! };
    if (file[key] !== undefined) return { value: file[key], from: `${configPath}: ${key}` };
    return undefined;
  };
  const str = (key: string, fallback: string): string => {
    const v = pick(key);
    if (v === undefined) return fallback;
    if (typeof v.value !== 'string' || v.value.length === 0) fail(`${v.from}: want a non-empty string`);
    return v.value as string;
  };
  const int = (key: string, fallback: number, min: number): number => {
    const v = pick(key);
    if (v === undefined) return fallback;
    const n = typeof v.value === 'number' ? v.value : Number(v.value);
    if (!Number.isSafeInteger(n) || n < min) fail(`${v.from}: got ${JSON.stringify(v.value)}; want an integer ≥ ${min}`);
    return n;
  };
  const onOff = (key: string, fallback: boolean): boolean => {
    const v = pick(key);
    if (v === undefined) return fallback;
    if (v.value === true || v.value === 'on') return true;
    if (v.value === false || v.value === 'off') return false;
    return fail(`${v.from}: got ${JSON.stringify(v.value)}; want on or off`);
  };
  const fsync = str('fsync', SERVE_DEFAULTS.fsync);
  if (!['always', 'interval', 'none'].includes(fsync)) fail(`fsync: got ${JSON.stringify(fsync)}; want always, interval or none`);
  const tokenSpec = pick('tokens') ?? (flags.token !== undefined ? { value: flags.token, from: '--token' } : undefined);
  let tokens: Record<string, Scope[]> = {};
  if (tokenSpec !== undefined) {
    const list = Array.isArray(tokenSpec.value) ? (tokenSpec.value as string[]) : String(tokenSpec.value).split(',').map((s) => s.trim()).filter(Boolean);
    tokens = parseTokens(list, tokenSpec.from);
  }
  const port = int('port', SERVE_DEFAULTS.port, 0);
  if (port > 65535) fail(`port: got ${port}; want 0..65535`);
  const queryPort = pick('queryPort') === undefined ? null : int('queryPort', 0, 0);
  if (queryPort !== null && queryPort > 65535) fail(`queryPort: got ${queryPort}; want 0..65535`);
  if (queryPort !== null && queryPort === port && port !== 0) fail(`queryPort: ${queryPort} is the port of the main listener; want another`);
  return {
    dir: str('dir', SERVE_DEFAULTS.dir),
    host: str('host', SERVE_DEFAULTS.host),
    port,
    fsync: fsync as FsyncMode,
    headBytes: int('headBytes', SERVE_DEFAULTS.headBytes, 1),
    cacheBytes: int('cacheBytes', SERVE_DEFAULTS.cacheBytes, 1),
    tokens,
    logLevel: str('logLevel', SERVE_DEFAULTS.logLevel),
    repair: flags.repair === true,
    limits: resolveLimits((file.limits as Partial<Limits> | undefined) ?? {}, fail),
    decodeWorkers: int('decodeWorkers', SERVE_DEFAULTS.decodeWorkers, 0),
    compactionWorkers: int('compactionWorkers', SERVE_DEFAULTS.compactionWorkers, 0),
    resultCache: onOff('resultCache', SERVE_DEFAULTS.resultCache),
    queryPort,
  };
}

export { DEFAULT_LIMITS };
