#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=131072 node --initial-old-space-size=256
/**
 * cli/main.ts — the `tallydb` command: serve, sql, import, bench ingest. docs/cli.md is its reference.
 * Invariant: every failure ends with a one-line message carrying its error code on stderr and a non-zero exit.
 */
import { parseArgs } from 'node:util';
import { TallyError } from '../errors.js';
import { resolveServeConfig } from './config.js';
import { handleSignals, serve } from './serve.js';
import { openTarget } from './target.js';
import { benchIngest, formatBenchReport } from './bench.js';
import { importFile } from './import.js';
import type { QueryResult } from '../query/shape.js';

const HELP = `tallydb — time-series storage for event metrics

  tallydb serve   [--dir ./data] [--host 127.0.0.1] [--port 8080] [--config FILE] [--fsync always|interval|none]
                  [--head-bytes N] [--cache-bytes N] [--token [read|write:]SECRET]… [--log-level info] [--repair]
                  [--decode-workers 1] [--compaction-workers 1] [--result-cache on|off] [--query-port N]
  tallydb sql     "SELECT …" (--url URL | --dir DIR) [--token T] [--format table|json|csv]
  tallydb import  FILE --datasource NAME (--url URL | --dir DIR) [--format ndjson|csv] [--batch 10000] [--token T]
  tallydb bench ingest [--url URL | --dir DIR | --memory] [--events 1000000] [--duration 60] [--batch 10000]
                  [--concurrency 4] [--images 100000] [--zipf 1] [--locations 50] [--fsync always] [--token T]

Environment: TALLYDB_DIR, TALLYDB_HOST, TALLYDB_PORT, TALLYDB_FSYNC, TALLYDB_HEAD_BYTES, TALLYDB_CACHE_BYTES,
TALLYDB_TOKENS (comma-separated), TALLYDB_LOG_LEVEL, TALLYDB_CONFIG. Flags win over environment over the config file.
Docs: docs/cli.md, docs/http.md.`;

const out = (s: string): void => void process.stdout.write(`${s}\n`);
const err = (s: string): void => void process.stderr.write(`${s}\n`);

function table(r: QueryResult): string {
  const cells = [r.columns, ...r.rows.map((row) => row.map((v) => (v === null ? 'NULL' : String(v))))];
  const widths = r.columns.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  const line = (row: string[]): string => row.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line), `(${r.rows.length} rows, ${r.stats.elapsedMs.toFixed(1)} ms)`].join('\n');
}

function csv(r: QueryResult): string {
  const cell = (v: unknown): string => (v === null ? '' : /[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
  return [r.columns.map(cell).join(','), ...r.rows.map((row) => row.map(cell).join(','))].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const common = {
    url: { type: 'string' }, dir: { type: 'string' }, memory: { type: 'boolean' }, token: { type: 'string', multiple: true },
    format: { type: 'string' }, help: { type: 'boolean', short: 'h' }, fsync: { type: 'string' },
  } as const;
  switch (command) {
    case undefined: case 'help': case '--help': case '-h':
      out(HELP);
      return 0;
    case 'serve': {
      const { values } = parseArgs({
        args: rest, strict: true,
        options: {
          ...common, host: { type: 'string' }, port: { type: 'string' }, config: { type: 'string' }, 'head-bytes': { type: 'string' },
          'cache-bytes': { type: 'string' }, 'log-level': { type: 'string' }, repair: { type: 'boolean' }, 'decode-workers': { type: 'string' }, 'compaction-workers': { type: 'string' },
          'result-cache': { type: 'string' }, 'query-port': { type: 'string' },
        },
      });
      const cfg = resolveServeConfig({
        dir: values.dir, host: values.host, port: values.port, config: values.config, fsync: values.fsync, headBytes: values['head-bytes'],
        cacheBytes: values['cache-bytes'], logLevel: values['log-level'], token: values.token, repair: values.repair, decodeWorkers: values['decode-workers'], compactionWorkers: values['compaction-workers'],
        resultCache: values['result-cache'], queryPort: values['query-port'],
      }, process.env);
      const running = await serve(cfg, out);
      handleSignals(running, out);
      await running.ready.catch((e) => {
        err(`tallydb: cannot open ${cfg.dir}: ${e instanceof TallyError ? `${e.code}: ` : ''}${(e as Error).message}`);
        process.exit(1);
      });
      return -1; // keep running
    }
    case 'sql': {
      const { values, positionals } = parseArgs({ args: rest, strict: true, allowPositionals: true, options: common });
      if (positionals.length !== 1) throw new TallyError('OPTIONS_INVALID', 'tallydb sql "SELECT …" (--url URL | --dir DIR)');
      const target = await openTarget({ ...values, token: values.token?.[0] });
      try {
        const r = await target.sql(positionals[0]!);
        out(values.format === 'json' ? JSON.stringify(r) : values.format === 'csv' ? csv(r) : table(r));
      } finally {
        await target.close();
      }
      return 0;
    }
    case 'import': {
      const { values, positionals } = parseArgs({ args: rest, strict: true, allowPositionals: true, options: { ...common, datasource: { type: 'string' }, batch: { type: 'string' } } });
      if (positionals.length !== 1 || values.datasource === undefined) throw new TallyError('OPTIONS_INVALID', 'tallydb import FILE --datasource NAME (--url URL | --dir DIR)');
      const target = await openTarget({ ...values, token: values.token?.[0] });
      try {
        const s = await importFile(target, positionals[0]!, values.datasource, { ...(values.format ? { format: values.format } : {}), batch: Number(values.batch ?? 10_000), progress: process.stderr.isTTY === true });
        out(`read ${s.read}: accepted ${s.accepted}, duplicates ${s.duplicates}, rejected ${s.rejected}, unparsable ${s.unparsable}`);
        for (const e of s.firstErrors) out(`  ${e}`);
        return s.rejected + s.unparsable > 0 ? 2 : 0;
      } finally {
        await target.close();
      }
    }
    case 'bench': {
      const [what, ...args] = rest;
      if (what !== 'ingest') throw new TallyError('OPTIONS_INVALID', 'tallydb bench ingest [options]; see tallydb help');
      const { values } = parseArgs({
        args, strict: true,
        options: {
          ...common, events: { type: 'string' }, duration: { type: 'string' }, batch: { type: 'string' }, concurrency: { type: 'string' },
          images: { type: 'string' }, zipf: { type: 'string' }, locations: { type: 'string' },
        },
      });
      const num = (v: string | undefined, d: number, name: string): number => {
        const n = v === undefined ? d : Number(v);
        if (!Number.isFinite(n) || n <= 0) throw new TallyError('OPTIONS_INVALID', `--${name}: got ${JSON.stringify(v)}; want a positive number`);
        return n;
      };
      const target = await openTarget({ ...values, memory: values.url === undefined && values.dir === undefined ? true : values.memory, token: values.token?.[0] });
      try {
        const report = await benchIngest(target, {
          events: num(values.events, 1_000_000, 'events'), durationS: num(values.duration, 600, 'duration'), batch: num(values.batch, 10_000, 'batch'),
          concurrency: num(values.concurrency, 4, 'concurrency'), images: num(values.images, 100_000, 'images'), zipf: num(values.zipf, 1, 'zipf'),
          locations: num(values.locations, 50, 'locations'), progress: process.stderr.isTTY === true,
        }, values.url !== undefined, err);
        out(values.format === 'json' ? JSON.stringify(report) : formatBenchReport(report, target.description));
      } finally {
        await target.close();
      }
      return 0;
    }
    default:
      throw new TallyError('OPTIONS_INVALID', `unknown command ${JSON.stringify(command)}; want serve, sql, import or bench (tallydb help)`);
  }
}

main(process.argv.slice(2)).then((code) => {
  if (code >= 0) process.exit(code);
}, (e) => {
  err(`tallydb: ${e instanceof TallyError ? `${e.code}: ` : ''}${(e as Error).message}`);
  process.exit(1);
});
