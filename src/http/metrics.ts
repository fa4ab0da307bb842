/**
 * http/metrics.ts — the daemon's self-metrics in Prometheus exposition (prom-client), one registry per app.
 *
 * Invariant: counters only grow, and gauges are read from the engine at scrape time, so /metrics never shows a
 * value the engine does not hold.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Tally } from '../db.js';

export class Metrics {
  readonly registry = new Registry();
  readonly ingestEvents: Counter<'datasource' | 'outcome'>;
  readonly rejections: Counter<'code'>;
  readonly walFsync: Histogram;
  readonly queryLatency: Histogram<'kind'>;
  readonly requests: Counter<'route' | 'status'>;

  constructor(engine: () => Tally | null) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'tallydb_process_' });
    this.ingestEvents = new Counter({ name: 'tallydb_ingest_events_total', help: 'Events by outcome: accepted, duplicate, rejected.', labelNames: ['datasource', 'outcome'], registers });
    this.rejections = new Counter({ name: 'tallydb_ingest_rejections_total', help: 'Rejected events by error code.', labelNames: ['code'], registers });
    this.walFsync = new Histogram({ name: 'tallydb_wal_fsync_seconds', help: 'Duration of WAL fsyncs.', buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1], registers });
    this.queryLatency = new Histogram({ name: 'tallydb_query_seconds', help: 'Query latency by kind (json, sql).', labelNames: ['kind'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30], registers });
    this.requests = new Counter({ name: 'tallydb_http_requests_total', help: 'HTTP requests by route and status.', labelNames: ['route', 'status'], registers });
    const perDatasource = (name: string, help: string, read: (s: ReturnType<Tally['stats']>) => number): void => {
      new Gauge({
        name, help, labelNames: ['datasource'], registers,
        collect() {
          const db = engine();
          if (db === null) return;
          for (const ds of db.listDatasources()) this.set({ datasource: ds.name }, read(db.stats(ds.name)));
        },
      });
    };
    perDatasource('tallydb_head_bytes', 'Memory held by the head (unsealed minutes), estimated.', (s) => s.head.bytes);
    perDatasource('tallydb_head_rows', 'Rows in the head.', (s) => s.head.rows);
    perDatasource('tallydb_segments', 'Sealed segment files.', (s) => s.storage?.segments ?? 0);
    perDatasource('tallydb_segment_bytes', 'Bytes of sealed segment files on disk.', (s) => s.storage?.segmentBytes ?? 0);
    perDatasource('tallydb_seal_backlog_minutes', 'Minutes waiting to be sealed into segments.', (s) => s.sealBacklogMinutes);
    perDatasource('tallydb_dedup_keys', 'Dedup keys remembered.', (s) => s.dedup?.keys ?? 0);
    perDatasource('tallydb_compaction_backlog', 'Compaction merges the planner would run now.', (s) => s.storage?.compaction.backlog ?? 0);
    perDatasource('tallydb_compaction_merges', 'Compaction merges done since the engine opened.', (s) => s.storage?.compaction.merges ?? 0);
    perDatasource('tallydb_compaction_failures', 'Compaction merges that failed since the engine opened.', (s) => s.storage?.compaction.failures ?? 0);
    perDatasource('tallydb_compaction_last_merge_timestamp_seconds', 'When the last compaction merge finished (0: none yet).', (s) => (s.storage?.compaction.lastMerge?.at ?? 0) / 1000);
    perDatasource('tallydb_compaction_reclaimed_bytes', 'Bytes of segment files deleted after merges and retention since the engine opened.', (s) => s.storage?.compaction.bytesReclaimed ?? 0);
    perDatasource('tallydb_retention_dropped_rows', 'Rows dropped by retention since the engine opened.', (s) => s.storage?.compaction.retentionDroppedRows ?? 0);
  }
}
