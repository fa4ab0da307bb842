/**
 * replica/replica.ts — the query thread's copy of the engine's readable state: per datasource, the head's buckets
 * (rebuilt from the feed's messages into MinuteBuckets of its own) and the segment list (DiskSegments over the
 * same files, through a cache of its own). Answers JSON and SQL queries as the engine does (query/run.ts).
 *
 * Invariants:
 *  - After applying the messages posted so far (protocol.ts), every datasource holds the rows the engine held when
 *    it posted the last of them, in buckets of the same serials and segments of the same ids — so an answer here
 *    equals the engine's as of that instant. Messages are applied synchronously; a query reads a reader from start
 *    to end without yielding, and its readers are taken in one synchronous step.
 *  - A segment removed by the feed is released back (`released`) once no query here reads it any more.
 *  - The copy never writes: no WAL, no sealing, no file changes; a damaged segment fails the query with its code
 *    (the engine, which owns the file, quarantines it when it meets the damage itself).
 */
import { TallyError } from '../errors.js';
import type { Limits } from '../limits.js';
import { Dictionary } from '../head/dictionary.js';
import { MinuteBucket } from '../head/bucket.js';
import { GlobalIdSpace } from '../query/global-ids.js';
import type { SegmentReader } from '../query/reader.js';
import { runQuery, runSql, type QuerySource } from '../query/run.js';
import type { Query, QueryResult } from '../query/shape.js';
import { datasourceToSpec, resolveDatasource, type Datasource, type DatasourceSpec } from '../schema/datasource.js';
import { BlockCache } from '../segment/cache.js';
import { acquireRange, DiskSegment, packsTimestamps } from '../segment/reader.js';
import type { FileSystem } from '../storage/fs.js';
import type { LoggedDimension } from '../wal/record.js';
import type { FeedMessage, SegmentRef } from './protocol.js';

interface Copy {
  ds: Datasource;
  dictionaries: Dictionary[];
  /** Buckets by serial (live and frozen alike: the copy appends by serial, and reads both until released). */
  buckets: Map<number, MinuteBucket>;
  /** Serials the engine froze: they sort after the live bucket of their minute, as the engine's head lists them. */
  frozen: Set<number>;
  segments: DiskSegment[];
  /** Rows of `segments`, summed when the list changes (the packed-timestamps rule asks per reader). */
  segmentRows: number;
  globals: GlobalIdSpace;
}

export class Replica {
  private readonly copies = new Map<string, Copy>();
  private readonly cache: BlockCache;
  private readonly source: QuerySource;

  constructor(
    private readonly limits: Limits,
    private readonly fsys: FileSystem,
    cacheBytes: number,
    /** Segments no longer listed and no longer read here (the feed lets go of their files). */
    private readonly onReleased: (ids: number[]) => void,
    clock: () => number = Date.now,
    resultCache = true,
  ) {
    this.cache = new BlockCache(cacheBytes);
    this.source = {
      limits, clock, resultCache,
      datasource: (name) => this.copy(name).ds,
      globals: (name) => this.copy(name).globals,
      withReaders: (name, from, to, run) => this.withReaders(name, from, to, run),
    };
  }

  private copy(name: string): Copy {
    const c = this.copies.get(name);
    if (c === undefined) {
      throw new TallyError('DATASOURCE_NOT_FOUND', `datasource '${String(name)}' does not exist; create it first (have: ${[...this.copies.keys()].join(', ') || 'none'})`, { datasource: name });
    }
    return c;
  }

  private segment(c: Copy, r: SegmentRef): DiskSegment {
    // Timestamps are read packed on the engine's rule, against this cache.
    return new DiskSegment(r.id, r.file, r.footer, r.bytes, this.fsys, this.cache, () => {}, () => packsTimestamps(c.segmentRows, this.cache.budgetBytes));
  }

  private setSegments(c: Copy, segments: DiskSegment[]): void {
    c.segments = segments.sort((a, b) => a.minTs - b.minTs || a.id - b.id);
    c.segmentRows = 0;
    for (const s of c.segments) c.segmentRows += s.rowCount;
  }

  private bucket(c: Copy, serial: number, minute: number): MinuteBucket {
    let b = c.buckets.get(serial);
    if (b === undefined) {
      b = new MinuteBucket(minute, c.dictionaries, c.ds.metrics.length, false);
      b.serial = serial;
      c.buckets.set(serial, b);
    }
    return b;
  }

  /** Apply one message of the feed. */
  apply(m: FeedMessage): void {
    switch (m.t) {
      case 'datasource': {
        const ds = resolveDatasource(m.spec, this.limits);
        const c: Copy = { ds, dictionaries: ds.dimensions.map(() => new Dictionary()), buckets: new Map(), frozen: new Set(), segments: [], segmentRows: 0, globals: new GlobalIdSpace() };
        m.dictionaries.forEach((values, d) => {
          for (let id = 1; id < values.length; id++) c.dictionaries[d]!.intern(values[id]!);
        });
        // The buckets' ids are head ids already: each maps to itself.
        const identity = c.dictionaries.map((d) => Int32Array.from({ length: d.size }, (_, i) => i));
        for (const b of m.buckets) {
          const dims: LoggedDimension[] = b.ids.map((ids) => ({ values: [], ids }));
          this.bucket(c, b.serial, b.minute).appendRows(b.ts, dims, identity, b.metrics, null, 0, b.ts.length);
          if (b.frozen) c.frozen.add(b.serial);
        }
        this.setSegments(c, m.segments.map((r) => this.segment(c, r)));
        this.copies.set(ds.name, c);
        return;
      }
      case 'append': {
        const c = this.copy(m.ds);
        m.newValues.forEach((values, d) => {
          for (const v of values) c.dictionaries[d]!.intern(v);
        });
        const dims: LoggedDimension[] = m.ids.map((ids) => ({ values: [], ids }));
        for (const run of m.runs) this.bucket(c, run.serial, run.minute).appendRows(m.ts, dims, m.toHead, m.metrics, null, run.from, run.to);
        return;
      }
      case 'freeze':
        // Still read until released; later rows of its minute come under a new serial, as in the engine.
        this.copy(m.ds).frozen.add(m.serial);
        return;
      case 'release': {
        const c = this.copy(m.ds);
        c.buckets.get(m.serial)?.retire();
        c.buckets.delete(m.serial);
        c.frozen.delete(m.serial);
        return;
      }
      case 'segments': {
        const c = this.copy(m.ds);
        const removed = new Set(m.removed);
        const gone = c.segments.filter((s) => removed.has(s.id));
        this.setSegments(c, [...c.segments.filter((s) => !removed.has(s.id)), ...m.added.map((r) => this.segment(c, r))]);
        for (const seg of gone) {
          seg.retire(() => {
            this.cache.drop(seg.cachePrefix);
            this.onReleased([seg.id]);
          });
        }
        return;
      }
    }
  }

  private async withReaders<T>(name: string, from: number, to: number, run: (readers: SegmentReader[]) => Promise<T>): Promise<T> {
    const c = this.copy(name);
    const { held, release } = acquireRange(c.segments, from, to);
    // In the engine's order (head.ts readers: by minute, a minute's live bucket before its frozen ones), so that
    // floating-point sums add up in the same order.
    const rank = (b: MinuteBucket): number => (c.frozen.has(b.serial) ? 1 : 0);
    const buckets = [...c.buckets.values()].filter((b) => b.maxTs >= from && b.minTs < to && b.rowCount > 0)
      .sort((a, b) => a.minTs - b.minTs || rank(a) - rank(b) || a.serial - b.serial);
    try {
      return await run([...held, ...buckets]);
    } finally {
      release();
    }
  }

  async query(q: Query): Promise<QueryResult> {
    return runQuery(this.source, q);
  }

  async sql(text: string): Promise<QueryResult> {
    return runSql(this.source, text);
  }

  listDatasources(): DatasourceSpec[] {
    return [...this.copies.values()].map((c) => datasourceToSpec(c.ds));
  }

  getDatasource(name: string): DatasourceSpec {
    return datasourceToSpec(this.copy(name).ds);
  }
}
