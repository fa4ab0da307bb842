/**
 * cli/import.ts — `tallydb import FILE`: stream NDJSON or CSV into a datasource in batches, with a progress bar.
 * Invariant: every line or row is either sent in a batch or reported; the summary adds up to the input.
 * CSV: the first row names the columns; values of metric columns and numeric timestamps become numbers, empty
 * cells are null.
 */
import { createReadStream, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import cliProgress from 'cli-progress';
import { parse } from 'csv-parse';
import type { IngestResult } from '../ingest/pipeline.js';
import type { Target } from './target.js';

export interface ImportSummary {
  read: number;
  accepted: number;
  duplicates: number;
  rejected: number;
  unparsable: number;
  firstErrors: string[];
}

export async function importFile(target: Target, file: string, ds: string, o: { format?: string; batch: number; progress: boolean }): Promise<ImportSummary> {
  const format = o.format ?? (/\.csv$/i.test(file) ? 'csv' : 'ndjson');
  const spec = await target.datasource(ds);
  const metrics = new Set((spec.metrics ?? []).map((m) => m.name));
  const timeField = spec.timeField ?? 'ts';
  const summary: ImportSummary = { read: 0, accepted: 0, duplicates: 0, rejected: 0, unparsable: 0, firstErrors: [] };
  const size = statSync(file).size;
  const bar = o.progress ? new cliProgress.SingleBar({ format: 'import |{bar}| {percentage}% | {read} rows', hideCursor: true }, cliProgress.Presets.shades_classic) : null;
  bar?.start(size, 0, { read: 0 });
  const stream = createReadStream(file);
  let batch: unknown[] = [];
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const r: IngestResult = await target.ingest(ds, batch);
    summary.accepted += r.accepted;
    summary.duplicates += r.duplicates;
    summary.rejected += r.rejected.length;
    for (const x of r.rejected) if (summary.firstErrors.length < 5) summary.firstErrors.push(`${x.code}: ${x.message}`);
    batch = [];
    bar?.update(stream.bytesRead, { read: summary.read });
  };
  if (format === 'csv') {
    const parser = stream.pipe(parse({ columns: true, skip_empty_lines: true, relax_column_count: false }));
    for await (const row of parser as AsyncIterable<Record<string, string>>) {
      summary.read++;
      const e: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(row)) {
        if (v === '') continue;
        e[k] = metrics.has(k) || (k === timeField && /^\d+$/.test(v)) ? Number(v) : v;
      }
      batch.push(e);
      if (batch.length >= o.batch) await flush();
    }
  } else {
    for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
      if (line.trim().length === 0) continue;
      summary.read++;
      try {
        batch.push(JSON.parse(line));
      } catch (e) {
        summary.unparsable++;
        if (summary.firstErrors.length < 5) summary.firstErrors.push(`line ${summary.read}: not JSON: ${(e as Error).message}`);
        continue;
      }
      if (batch.length >= o.batch) await flush();
    }
  }
  await flush();
  bar?.update(size, { read: summary.read });
  bar?.stop();
  return summary;
}
