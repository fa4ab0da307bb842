/**
 * cli/bench.ts — `tallydb bench ingest`: drive synthetic ad events into a daemon or an embedded engine and report
 * throughput and acknowledgement latency (p50/p99/max, hdr-histogram-js), with a live progress bar (cli-progress).
 */
import cliProgress from 'cli-progress';
import * as hdr from 'hdr-histogram-js';
import { AD_DATASOURCE, generate } from './generate.js';
import { encodeEvents, type Target } from './target.js';

export interface BenchOptions {
  events: number;
  durationS: number;
  batch: number;
  concurrency: number;
  images: number;
  zipf: number;
  locations: number;
  progress: boolean;
}

export interface BenchReport {
  events: number;
  seconds: number;
  eventsPerSecond: number;
  ackMs: { p50: number; p99: number; max: number };
  bytesPerEvent: number | null;
}

export async function benchIngest(target: Target, o: BenchOptions, remote: boolean, log: (s: string) => void): Promise<BenchReport> {
  const end = Date.now();
  await target.ensureDatasource({ ...AD_DATASOURCE, lateness: '1d', dedupWindow: '1d' });
  log(`generating ${o.events.toLocaleString()} events (${o.images.toLocaleString()} images, zipf ${o.zipf}, ${o.locations} locations)…`);
  const batches: (unknown[] | Buffer)[] = [];
  let cur: unknown[] = [];
  const idPrefix = `b${end.toString(36)}-`;
  for (const e of generate({ count: o.events, end, spanMs: 3_600_000, images: o.images, zipf: o.zipf, locations: o.locations, idPrefix })) {
    cur.push(e);
    if (cur.length === o.batch) {
      batches.push(remote ? encodeEvents(cur) : cur);
      cur = [];
    }
  }
  if (cur.length > 0) batches.push(remote ? encodeEvents(cur) : cur);

  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });
  const bar = o.progress ? new cliProgress.SingleBar({ format: 'ingest |{bar}| {percentage}% | {value}/{total} events | {rate} events/s', hideCursor: true }, cliProgress.Presets.shades_classic) : null;
  bar?.start(o.events, 0, { rate: 0 });
  let next = 0;
  let done = 0;
  const started = performance.now();
  const deadline = started + o.durationS * 1000;
  await Promise.all(Array.from({ length: o.concurrency }, async () => {
    while (next < batches.length && performance.now() < deadline) {
      const b = batches[next++]!;
      const t = performance.now();
      const r = await target.ingest('events', b);
      histogram.recordValue(Math.max(1, Math.round((performance.now() - t) * 1000)));
      done += r.accepted + r.duplicates + r.rejected.length;
      bar?.update(done, { rate: Math.round(done / ((performance.now() - started) / 1000)) });
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  bar?.stop();
  const bytes = await target.bytesOnDisk('events');
  const report: BenchReport = {
    events: done, seconds, eventsPerSecond: done / seconds,
    // HDR percentiles report the top of their bucket; never above the true maximum.
    ackMs: {
      p50: Math.min(histogram.getValueAtPercentile(50), histogram.maxValue) / 1000,
      p99: Math.min(histogram.getValueAtPercentile(99), histogram.maxValue) / 1000,
      max: histogram.maxValue / 1000,
    },
    bytesPerEvent: bytes === null ? null : bytes / done,
  };
  return report;
}

export function formatBenchReport(r: BenchReport, target: string): string {
  return [
    `target:            ${target}`,
    `events:            ${r.events.toLocaleString()} in ${r.seconds.toFixed(2)} s`,
    `throughput:        ${Math.round(r.eventsPerSecond).toLocaleString()} events/s`,
    `ack latency (ms):  p50 ${r.ackMs.p50.toFixed(2)}  p99 ${r.ackMs.p99.toFixed(2)}  max ${r.ackMs.max.toFixed(2)}`,
    `bytes on disk:     ${r.bytesPerEvent === null ? 'n/a (in memory)' : `${r.bytesPerEvent.toFixed(1)} per event`}`,
  ].join('\n');
}
