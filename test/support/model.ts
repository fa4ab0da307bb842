/**
 * A plain reference model of tallydb's documented semantics: an array of accepted events, filter and reduce.
 * No bitmaps, no dictionaries, no buckets of rows: if the engine and this model disagree, one of them is wrong.
 * Written from docs/ingest.md and docs/query.md, not from the engine's code.
 */
import type { DatasourceSpec, Filter, Having, IngestResult, Query } from 'tallydb';

type Row = { ts: number; dims: Record<string, string | null>; metrics: Record<string, number | null> };
type Cell = string | number | null;

const MAX_TS = 253_402_300_799_999;
const DURATIONS: Record<string, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

function parseTs(v: unknown): number | 'invalid' | 'range' {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) return 'invalid';
    return v < 0 || v > MAX_TS ? 'range' : v;
  }
  if (typeof v === 'string') {
    if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/.test(v)) return 'invalid';
    const ms = Date.parse(v);
    return Number.isNaN(ms) ? 'invalid' : ms;
  }
  return 'invalid';
}

export interface ModelOptions {
  now: number;
  futureToleranceMs: number;
  maxCardinality: number;
  /** Canary switch: a deliberately wrong model, to prove the property can fail. */
  broken?: boolean;
}

export class Model {
  rows: Row[] = [];
  private watermark = -Infinity;
  private keys = new Set<string>();
  private values: Record<string, Set<string>> = {};

  constructor(private readonly spec: DatasourceSpec & { latenessMs: number }, private readonly opts: ModelOptions) {
    for (const d of spec.dimensions) this.values[d] = new Set();
  }

  ingest(events: unknown[]): IngestResult {
    const s = this.spec;
    const timeField = s.timeField ?? 'ts';
    const metricNames = (s.metrics ?? []).map((m) => m.name);
    const result: IngestResult = { accepted: 0, duplicates: 0, rejected: [] };
    const before = this.watermark;
    let newest = before;
    events.forEach((e, index) => {
      const reject = (code: IngestResult['rejected'][number]['code']): void => {
        result.rejected.push({ index, code, message: '' });
      };
      if (typeof e !== 'object' || e === null || Array.isArray(e)) return reject('EVENT_NOT_OBJECT');
      const ev = e as Record<string, unknown>;
      const row: Row = { ts: 0, dims: {}, metrics: {} };
      for (const d of s.dimensions) row.dims[d] = null;
      for (const m of metricNames) row.metrics[m] = null;
      let key: string | null = null;
      let ts: number | null = null;
      for (const [field, value] of Object.entries(ev)) {
        if (field === timeField) {
          if (value === null || value === undefined) continue;
          const t = parseTs(value);
          if (t === 'invalid') return reject('TIMESTAMP_INVALID');
          if (t === 'range') return reject('TIMESTAMP_OUT_OF_RANGE');
          ts = t;
        } else if (s.dimensions.includes(field)) {
          if (value === null || value === undefined) continue;
          if (typeof value !== 'string') return reject('DIMENSION_NOT_STRING');
          row.dims[field] = value;
          if (field === s.dedupKey) key = value;
        } else if (metricNames.includes(field)) {
          if (value === null || value === undefined) continue;
          if (typeof value !== 'number') return reject('METRIC_NOT_NUMBER');
          if (!Number.isFinite(value)) return reject('METRIC_NOT_FINITE');
          const type = s.metrics!.find((m) => m.name === field)!.type;
          if (type === 'int' && !Number.isSafeInteger(value)) return reject('METRIC_NOT_INTEGER');
          row.metrics[field] = value;
        } else if (field === s.dedupKey) {
          if (value === null || value === undefined) continue;
          if (typeof value === 'string' && value.length > 0) key = value;
          else if (typeof value === 'number' && Number.isSafeInteger(value)) key = String(value);
          else return reject('DEDUP_KEY_INVALID');
        } else {
          return reject('FIELD_UNKNOWN');
        }
      }
      if (ts === null) return reject('TIMESTAMP_MISSING');
      if (s.dedupKey !== undefined && key === null) return reject('DEDUP_KEY_MISSING');
      if (ts > this.opts.now + this.opts.futureToleranceMs) return reject('TIMESTAMP_IN_FUTURE');
      if (key !== null && this.keys.has(key)) {
        result.duplicates++;
        return;
      }
      if (ts < before - this.spec.latenessMs) return reject('EVENT_TOO_LATE');
      for (const d of s.dimensions) {
        const v = row.dims[d];
        if (v !== null && !this.values[d]!.has(v) && this.values[d]!.size >= this.opts.maxCardinality) return reject('DIMENSION_CARDINALITY');
      }
      for (const d of s.dimensions) if (row.dims[d] !== null) this.values[d]!.add(row.dims[d]!);
      if (key !== null) this.keys.add(key);
      row.ts = ts;
      this.rows.push(row);
      result.accepted++;
      if (this.opts.broken && result.accepted === 3) this.rows.push(row); // canary: count one event twice
      newest = Math.max(newest, ts);
    });
    this.watermark = newest;
    return result;
  }

  query(q: Query): { columns: string[]; rows: Cell[][] } {
    const from = q.from === undefined ? 0 : (parseTs(q.from) as number);
    const to = q.to === undefined ? MAX_TS + 1 : (parseTs(q.to) as number);
    const gran = q.granularity ?? 'all';
    const offsetMs = q.timeZone === 'Asia/Kolkata' ? 5.5 * 3_600_000 : 0;
    const bucketOf = (ts: number): number => {
      if (gran === 'all') return 0;
      if (gran === 'hour' || gran === 'day') {
        const u = DURATIONS[gran]!;
        return Math.floor((ts + offsetMs) / u) * u - offsetMs;
      }
      const fixed = /^(\d+) (minutes|seconds)$/.exec(gran);
      const size = gran === 'minute' ? 60_000 : Number(fixed![1]) * (fixed![2] === 'minutes' ? 60_000 : 1000);
      return Math.floor(ts / size) * size;
    };
    const groupBy = q.groupBy ?? [];
    const aggs = q.aggregations ?? [];
    const matches = (f: Filter | undefined, r: Row): boolean => {
      if (f === undefined) return true;
      if ('and' in f) return f.and.every((c) => matches(c, r));
      if ('or' in f) return f.or.some((c) => matches(c, r));
      if ('not' in f) return !matches(f.not, r);
      if ('eq' in f) return r.dims[f.dimension] === f.eq;
      return f.in.includes(r.dims[f.dimension]!);
    };
    const groups = new Map<string, { bucket: number; dims: (string | null)[]; rows: Row[] }>();
    for (const r of this.rows) {
      if (r.ts < from || r.ts >= to || !matches(q.filter, r)) continue;
      const bucket = bucketOf(r.ts);
      const dims = groupBy.map((d) => r.dims[d]!);
      const key = JSON.stringify([bucket, dims]);
      let g = groups.get(key);
      if (g === undefined) groups.set(key, (g = { bucket, dims, rows: [] }));
      g.rows.push(r);
    }
    if (groups.size === 0 && groupBy.length === 0 && gran === 'all') groups.set('', { bucket: 0, dims: [], rows: [] });
    const columns = [...(gran === 'all' ? [] : [q.timeColumn ?? 'ts']), ...groupBy, ...aggs.map((a) => a.name), ...(q.postAggregations ?? []).map((p) => p.name)];
    let out: Cell[][] = [];
    for (const g of groups.values()) {
      const row: Cell[] = [];
      if (gran !== 'all') row.push(g.bucket);
      row.push(...g.dims);
      for (const a of aggs) {
        const rs = g.rows.filter((r) => matches(a.filter, r));
        const vals = a.metric === undefined ? [] : rs.map((r) => r.metrics[a.metric!]).filter((v): v is number => v !== null);
        switch (a.type) {
          case 'count': row.push(a.metric === undefined ? rs.length : vals.length); break;
          case 'sum': row.push(vals.length === 0 ? null : vals.reduce((x, y) => x + y, 0)); break;
          case 'min': row.push(vals.length === 0 ? null : Math.min(...vals)); break;
          case 'max': row.push(vals.length === 0 ? null : Math.max(...vals)); break;
          case 'avg': row.push(vals.length === 0 ? null : vals.reduce((x, y) => x + y, 0) / vals.length); break;
          case 'distinctCount': row.push(new Set(rs.map((r) => r.dims[a.dimension!]).filter((v) => v !== null)).size); break;
        }
      }
      for (const p of q.postAggregations ?? []) {
        const ev = (e: unknown): number | null => {
          if (typeof e === 'number') return e;
          const o = e as { ref?: string; op?: string; left?: unknown; right?: unknown };
          if (o.ref !== undefined) return row[columns.indexOf(o.ref)] as number | null;
          const l = ev(o.left);
          const r = ev(o.right);
          if (l === null || r === null) return null;
          if (o.op === '+') return l + r;
          if (o.op === '-') return l - r;
          if (o.op === '*') return l * r;
          return r === 0 ? null : l / r;
        };
        row.push(ev(p.expr));
      }
      out.push(row);
    }
    if (q.having !== undefined) {
      const test = (h: Having, row: Cell[]): boolean => {
        if ('and' in h) return h.and.every((c) => test(c, row));
        if ('or' in h) return h.or.some((c) => test(c, row));
        if ('not' in h) return !test(h.not, row);
        const v = row[columns.indexOf(h.column)];
        if (v === null || v === undefined || h.value === null || typeof v !== typeof h.value) return false;
        switch (h.op) {
          case '=': return v === h.value;
          case '!=': return v !== h.value;
          case '<': return v < h.value;
          case '<=': return v <= h.value;
          case '>': return v > h.value;
          default: return v >= h.value;
        }
      };
      out = out.filter((row) => test(q.having!, row));
    }
    const cmp = (a: Cell, b: Cell): number => (a === b ? 0 : a === null ? 1 : b === null ? -1 : a < b ? -1 : 1);
    const keyCols = (gran === 'all' ? 0 : 1) + groupBy.length;
    out.sort((x, y) => {
      for (const o of q.orderBy ?? []) {
        const i = columns.indexOf(o.column);
        const c = cmp(x[i]!, y[i]!);
        if (c !== 0) return x[i] === null || y[i] === null ? c : o.direction === 'desc' ? -c : c;
      }
      for (let i = 0; i < keyCols; i++) {
        const c = cmp(x[i]!, y[i]!);
        if (c !== 0) return c;
      }
      return 0;
    });
    const offset = q.offset ?? 0;
    return { columns, rows: out.slice(offset, q.limit === undefined ? undefined : offset + q.limit) };
  }
}
