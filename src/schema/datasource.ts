/**
 * schema/datasource.ts — datasource definitions.
 *
 * Invariant: a `Datasource` that exists inside the engine is valid — names are identifiers, the time field,
 * dimensions, metrics and dedup key are pairwise distinct, durations parsed — so nothing downstream re-checks it.
 * `DatasourceSpec` is what a user writes; `Datasource` is the resolved, frozen form (durations in ms).
 */
import { TallyError } from '../errors.js';
import type { Limits } from '../limits.js';
import { parseDuration, HOUR_MS, MINUTE_MS } from '../time.js';

export type MetricType = 'int' | 'float';

export interface MetricSpec {
  name: string;
  type: MetricType;
}

/** What a user passes to `createDatasource`. */
export interface DatasourceSpec {
  name: string;
  /** Name of the timestamp field in events; default `'ts'`. */
  timeField?: string;
  /** String dimensions, dictionary-encoded and bitmap-indexed. */
  dimensions: string[];
  /** Numeric metrics. */
  metrics?: MetricSpec[];
  /** Field whose value identifies an event for idempotent retries (not stored unless also a dimension). */
  dedupKey?: string;
  /** How long (event time, behind the watermark) a dedup key is remembered; default `'1h'`. */
  dedupWindow?: string | number;
  /** How far behind the watermark an event may be and still be accepted; default `'1h'`. */
  lateness?: string | number;
  /**
   * Rollup during compaction (docs/compaction.md): rows with the same dimension values in the same `granularity`
   * bucket merge into one row carrying the event count and each metric's sum/min/max. Default: no rollup.
   */
  rollup?: { granularity: RollupGranularity } | null;
  /** Drop data older than this (engine clock) — whole segments, by compaction; default: keep forever. */
  retention?: string | number | null;
}

export type RollupGranularity = 'minute' | 'hour';

/** The resolved, validated definition. */
export interface Datasource {
  readonly name: string;
  readonly timeField: string;
  readonly dimensions: readonly string[];
  readonly metrics: readonly MetricSpec[];
  readonly dedupKey: string | null;
  readonly dedupWindowMs: number;
  readonly latenessMs: number;
  /** Rollup bucket in ms (MINUTE_MS or HOUR_MS), or null without rollup. */
  readonly rollupMs: number | null;
  /** Retention in ms, or null to keep forever. */
  readonly retentionMs: number | null;
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

function invalid(message: string): never {
  throw new TallyError('DATASOURCE_INVALID', message);
}

function checkName(what: string, value: unknown): string {
  if (typeof value !== 'string' || !NAME_RE.test(value)) {
    invalid(`${what}: got ${JSON.stringify(value)}; want an identifier of 1..64 letters, digits or _ not starting with a digit`);
  }
  return value;
}

function checkDuration(what: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const ms = parseDuration(value);
  if (ms === undefined) invalid(`${what}: got ${JSON.stringify(value)}; want a duration like '1h', '30m' or '2 days'`);
  return ms;
}

/** Validate a spec and resolve it into a frozen `Datasource`. */
export function resolveDatasource(spec: unknown, limits: Limits): Datasource {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) invalid('the datasource definition must be an object');
  const s = spec as Record<string, unknown>;
  const known = new Set(['name', 'timeField', 'dimensions', 'metrics', 'dedupKey', 'dedupWindow', 'lateness', 'rollup', 'retention']);
  for (const key of Object.keys(s)) if (!known.has(key)) invalid(`unknown property '${key}'; want one of ${[...known].join(', ')}`);

  const name = checkName('name', s.name);
  const timeField = s.timeField === undefined ? 'ts' : checkName('timeField', s.timeField);
  if (!Array.isArray(s.dimensions)) invalid(`dimensions: got ${JSON.stringify(s.dimensions)}; want an array of names`);
  if (s.dimensions.length > limits.maxDimensions) invalid(`dimensions: got ${s.dimensions.length}; want at most ${limits.maxDimensions}`);
  const dimensions = s.dimensions.map((d, i) => checkName(`dimensions[${i}]`, d));

  const metricsIn = s.metrics === undefined ? [] : s.metrics;
  if (!Array.isArray(metricsIn)) invalid(`metrics: got ${JSON.stringify(metricsIn)}; want an array of { name, type }`);
  if (metricsIn.length > limits.maxMetrics) invalid(`metrics: got ${metricsIn.length}; want at most ${limits.maxMetrics}`);
  const metrics: MetricSpec[] = metricsIn.map((m: unknown, i) => {
    if (typeof m !== 'object' || m === null) invalid(`metrics[${i}]: want an object { name, type }`);
    const mm = m as Record<string, unknown>;
    for (const key of Object.keys(mm)) if (key !== 'name' && key !== 'type') invalid(`metrics[${i}]: unknown property '${key}'`);
    const metricName = checkName(`metrics[${i}].name`, mm.name);
    if (mm.type !== 'int' && mm.type !== 'float') invalid(`metrics[${i}].type: got ${JSON.stringify(mm.type)}; want 'int' or 'float'`);
    return Object.freeze({ name: metricName, type: mm.type });
  });

  const dedupKey = s.dedupKey === undefined || s.dedupKey === null ? null : checkName('dedupKey', s.dedupKey);
  const seen = new Set<string>([timeField]);
  for (const field of [...dimensions, ...metrics.map((m) => m.name)]) {
    if (seen.has(field)) invalid(`field '${field}' is defined twice (time field, dimensions and metrics must have distinct names)`);
    seen.add(field);
  }
  if (dedupKey === timeField || metrics.some((m) => m.name === dedupKey)) {
    invalid(`dedupKey '${dedupKey}' must not be the time field or a metric`);
  }
  const dedupWindowMs = checkDuration('dedupWindow', s.dedupWindow, HOUR_MS);
  const latenessMs = checkDuration('lateness', s.lateness, HOUR_MS);
  let rollupMs: number | null = null;
  if (s.rollup !== undefined && s.rollup !== null) {
    const r = s.rollup as Record<string, unknown>;
    if (typeof r !== 'object' || Array.isArray(r) || Object.keys(r).some((k) => k !== 'granularity') || (r.granularity !== 'minute' && r.granularity !== 'hour')) {
      invalid(`rollup: got ${JSON.stringify(s.rollup)}; want { granularity: 'minute' } or { granularity: 'hour' }`);
    }
    rollupMs = r.granularity === 'minute' ? MINUTE_MS : HOUR_MS;
  }
  const retentionMs = s.retention === undefined || s.retention === null ? null : checkDuration('retention', s.retention, 0);
  if (retentionMs !== null && retentionMs < HOUR_MS) invalid(`retention: got ${JSON.stringify(s.retention)}; want at least '1h'`);
  if (retentionMs !== null && retentionMs <= latenessMs) invalid(`retention (${retentionMs} ms) must exceed lateness (${latenessMs} ms): an event accepted as late must not already be past retention`);
  return Object.freeze({
    name, timeField, dimensions: Object.freeze(dimensions), metrics: Object.freeze(metrics),
    dedupKey, dedupWindowMs, latenessMs, rollupMs, retentionMs,
  });
}

/** Two definitions are the same datasource (so re-creating it is a no-op). */
export function sameDatasource(a: Datasource, b: Datasource): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The definition as a user would write it back (durations in ms). */
export function datasourceToSpec(ds: Datasource): DatasourceSpec {
  const spec: DatasourceSpec = {
    name: ds.name, timeField: ds.timeField, dimensions: [...ds.dimensions],
    metrics: ds.metrics.map((m) => ({ ...m })), dedupWindow: ds.dedupWindowMs, lateness: ds.latenessMs,
  };
  if (ds.dedupKey !== null) spec.dedupKey = ds.dedupKey;
  if (ds.rollupMs !== null) spec.rollup = { granularity: ds.rollupMs === MINUTE_MS ? 'minute' : 'hour' };
  if (ds.retentionMs !== null) spec.retention = ds.retentionMs;
  return spec;
}
