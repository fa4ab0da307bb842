/**
 * query/shape.ts — the JSON query language: its types, and its validation into a resolved `Plan`.
 *
 * Invariant: a `Plan` is valid against its datasource and within limits — every name resolves to a dimension,
 * metric or earlier output column, the time range and bucketing are parsed, filter trees are bounded in size and
 * depth — so execution never meets a malformed query. Every rejection is a TallyError with a code and a path
 * into the query (`aggregations[2].metric`). docs/query.md is the reference for this shape.
 */
import { TallyError } from '../errors.js';
import type { Limits } from '../limits.js';
import type { Datasource } from '../schema/datasource.js';
import { checkTimeZone, makeBucketing, parseTimestamp, MAX_TIMESTAMP_MS, type Bucketing } from '../time.js';

// ---- the user-facing shape ----------------------------------------------------------------------------------

export type Filter =
  | { dimension: string; eq: string | null }
  | { dimension: string; in: (string | null)[] }
  | { and: Filter[] }
  | { or: Filter[] }
  | { not: Filter };

export type AggregationType = 'count' | 'sum' | 'min' | 'max' | 'avg' | 'distinctCount';

export interface Aggregation {
  name: string;
  type: AggregationType;
  /** The metric of sum/min/max/avg; for count, count only rows where this metric is not null. */
  metric?: string;
  /** The dimension of distinctCount. */
  dimension?: string;
  /** Only rows matching this filter feed the aggregation (ClickHouse `countIf`, Druid filtered aggregator). */
  filter?: Filter;
}

export type Expr = number | { ref: string } | { op: '+' | '-' | '*' | '/'; left: Expr; right: Expr };

export interface PostAggregation {
  name: string;
  expr: Expr;
}

export type Having =
  | { column: string; op: '=' | '!=' | '<' | '<=' | '>' | '>='; value: number | string | null }
  | { and: Having[] }
  | { or: Having[] }
  | { not: Having };

export interface OrderBy {
  column: string;
  direction?: 'asc' | 'desc';
}

export interface Query {
  datasource: string;
  /** Inclusive start of the time range (epoch ms or ISO-8601); default: the beginning of time. */
  from?: number | string;
  /** Exclusive end of the time range; default: the end of time. */
  to?: number | string;
  /** 'all' (default), 'minute', 'hour', 'day' or a fixed duration such as '5 minutes'. */
  granularity?: string;
  /** IANA zone for 'hour' and 'day' buckets; default 'UTC'. */
  timeZone?: string;
  /** Name of the time-bucket output column; default: the datasource's time field. */
  timeColumn?: string;
  filter?: Filter;
  groupBy?: string[];
  aggregations?: Aggregation[];
  postAggregations?: PostAggregation[];
  having?: Having;
  orderBy?: OrderBy[];
  limit?: number;
  offset?: number;
}

export interface QueryResult {
  columns: string[];
  rows: (string | number | null)[][];
  stats: QueryStats;
}

export interface QueryStats {
  elapsedMs: number;
  /** Readers (head minute buckets and segments) that overlapped the time range. */
  readers: number;
  /** Rows visited one by one; rows counted from bitmap cardinalities are not visited. */
  rowsScanned: number;
  /** Readers answered from bitmap cardinalities alone. */
  bitmapReaders: number;
  /** Readers whose part of the answer was kept from an earlier query over the same rows (query/result-cache.ts). */
  cachedReaders: number;
  /** Readers whose kept count was brought up to date by testing only the rows appended since (a growing minute). */
  extendedReaders: number;
  groups: number;
}

// ---- the resolved plan --------------------------------------------------------------------------------------

export type ResolvedFilter =
  | { kind: 'eq'; dim: number; value: string | null }
  | { kind: 'in'; dim: number; values: (string | null)[] }
  | { kind: 'and' | 'or'; children: ResolvedFilter[] }
  | { kind: 'not'; child: ResolvedFilter };

export interface ResolvedAggregation {
  name: string;
  type: AggregationType;
  /** Metric index (sum/min/max/avg, or count of non-null), -1 when none. */
  metric: number;
  /** Dimension index of distinctCount, -1 otherwise. */
  dim: number;
  filter: ResolvedFilter | null;
  /** Canonical text of `filter`, so aggregations with equal filters share one evaluation. */
  filterKey: string;
}

export type ResolvedExpr = { kind: 'num'; value: number } | { kind: 'ref'; column: number } | { kind: 'op'; op: '+' | '-' | '*' | '/'; left: ResolvedExpr; right: ResolvedExpr };

export type ResolvedHaving =
  | { kind: 'cmp'; column: number; op: '=' | '!=' | '<' | '<=' | '>' | '>='; value: number | string | null }
  | { kind: 'and' | 'or'; children: ResolvedHaving[] }
  | { kind: 'not'; child: ResolvedHaving };

export interface Plan {
  ds: Datasource;
  from: number;
  /** Exclusive. */
  to: number;
  bucketing: Bucketing;
  filter: ResolvedFilter | null;
  groupDims: number[];
  aggregations: ResolvedAggregation[];
  postAggregations: { name: string; expr: ResolvedExpr }[];
  /** Output column names: [time column if bucketed] + group dims + aggregations + post-aggregations. */
  columns: string[];
  having: ResolvedHaving | null;
  /** Output column index and direction; a complete tie-break on the group key follows implicitly. */
  orderBy: { column: number; desc: boolean }[];
  limit: number | null;
  offset: number;
}

function bad(path: string, message: string): never {
  throw new TallyError('QUERY_INVALID', `${path}: ${message}`, { path });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function onlyKeys(path: string, o: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) bad(path, `unknown property '${k}'; want one of ${allowed.join(', ')}`);
}

type BoolTree<L> = { kind: 'and' | 'or'; children: BoolTree<L>[] } | { kind: 'not'; child: BoolTree<L> } | L;

/**
 * Parse an and/or/not tree whose leaves `leaf` parses, bounded by limits.maxFilterNodes and maxFilterDepth (both
 * the WHERE-like filters and HAVING use it). `what` names the tree in messages.
 */
function boolTree<L>(what: string, limits: Limits, leaf: (path: string, o: Record<string, unknown>) => L, leafShape: string): (path: string, node: unknown) => BoolTree<L> {
  let nodes = 0;
  const parse = (path: string, f: unknown, depth: number): BoolTree<L> => {
    if (++nodes > limits.maxFilterNodes) {
      throw new TallyError('QUERY_TOO_COMPLEX', `${path}: the ${what} has more than ${limits.maxFilterNodes} nodes`, { path });
    }
    if (depth > limits.maxFilterDepth) {
      throw new TallyError('QUERY_TOO_COMPLEX', `${path}: the ${what} nests deeper than ${limits.maxFilterDepth}`, { path });
    }
    if (!isObject(f)) bad(path, `want ${leafShape} | { and } | { or } | { not }`);
    if ('and' in f || 'or' in f) {
      const kind = 'and' in f ? 'and' : 'or';
      onlyKeys(path, f, [kind]);
      const list = f[kind];
      if (!Array.isArray(list) || list.length === 0) bad(`${path}.${kind}`, `want a non-empty array`);
      return { kind, children: list.map((c, i) => parse(`${path}.${kind}[${i}]`, c, depth + 1)) };
    }
    if ('not' in f) {
      onlyKeys(path, f, ['not']);
      return { kind: 'not', child: parse(`${path}.not`, f.not, depth + 1) };
    }
    return leaf(path, f);
  };
  return (path, node) => parse(path, node, 1);
}

const QUERY_KEYS = ['datasource', 'from', 'to', 'granularity', 'timeZone', 'timeColumn', 'filter', 'groupBy', 'aggregations',
  'postAggregations', 'having', 'orderBy', 'limit', 'offset'] as const;
const AGG_TYPES: readonly AggregationType[] = ['count', 'sum', 'min', 'max', 'avg', 'distinctCount'];

/** Validate the datasource-independent outer shape and return the datasource name. */
export function queryDatasourceName(q: unknown): string {
  if (!isObject(q)) bad('query', 'want an object');
  if (typeof q.datasource !== 'string' || q.datasource.length === 0) bad('datasource', `got ${JSON.stringify(q.datasource)}; want a datasource name`);
  return q.datasource;
}

export function resolveQuery(q: Query, ds: Datasource, limits: Limits): Plan {
  if (!isObject(q)) bad('query', 'want an object');
  onlyKeys('query', q as unknown as Record<string, unknown>, QUERY_KEYS);
  const dimIndex = new Map(ds.dimensions.map((d, i) => [d, i]));
  const metricIndex = new Map(ds.metrics.map((m, i) => [m.name, i]));
  const unknownColumn = (path: string, what: string, name: unknown, choices: Iterable<string>): never => {
    throw new TallyError('QUERY_UNKNOWN_COLUMN', `${path}: ${what} ${JSON.stringify(name)} is not in datasource '${ds.name}'; want one of ${[...choices].join(', ') || '(none)'}`, { path });
  };
  const dimOf = (path: string, name: unknown): number => {
    if (typeof name !== 'string') bad(path, `got ${JSON.stringify(name)}; want a dimension name`);
    const i = dimIndex.get(name);
    return i === undefined ? unknownColumn(path, 'dimension', name, ds.dimensions) : i;
  };

  // Time range
  const time = (path: string, v: unknown, fallback: number): number => {
    if (v === undefined || v === null || v === fallback) return fallback;
    const t = parseTimestamp(v);
    if (!t.ok) bad(path, t.message);
    return t.ms;
  };
  const from = time('from', q.from, 0);
  const to = time('to', q.to, MAX_TIMESTAMP_MS + 1);
  if (to < from) bad('to', `got ${to}, before from ${from}; want to >= from`);

  const timeZoneIn = q.timeZone ?? 'UTC';
  if (typeof timeZoneIn !== 'string') bad('timeZone', 'want an IANA zone name such as Asia/Kolkata');
  const timeZone = checkTimeZone(timeZoneIn) ?? bad('timeZone', `got ${JSON.stringify(timeZoneIn)}; want an IANA zone name such as Asia/Kolkata`);
  const granularity = q.granularity ?? 'all';
  if (typeof granularity !== 'string') bad('granularity', `got ${JSON.stringify(granularity)}; want 'all', 'minute', 'hour', 'day' or a duration like '5 minutes'`);
  const bucketing = makeBucketing(granularity, timeZone)
    ?? bad('granularity', `got ${JSON.stringify(granularity)}; want 'all', 'minute', 'hour', 'day' or a duration like '5 minutes'`);

  // Filters
  const filter = boolTree<ResolvedFilter>('filter', limits, (path, f) => {
    const dim = dimOf(`${path}.dimension`, f.dimension);
    if ('eq' in f) {
      onlyKeys(path, f, ['dimension', 'eq']);
      if (f.eq !== null && typeof f.eq !== 'string') bad(`${path}.eq`, `got ${JSON.stringify(f.eq)}; want a string or null (dimensions are strings)`);
      return { kind: 'eq', dim, value: f.eq };
    }
    if ('in' in f) {
      onlyKeys(path, f, ['dimension', 'in']);
      if (!Array.isArray(f.in)) bad(`${path}.in`, 'want an array of strings');
      if (f.in.length > limits.maxInValues) {
        throw new TallyError('QUERY_TOO_COMPLEX', `${path}.in: got ${f.in.length} values; want at most ${limits.maxInValues}`, { path });
      }
      f.in.forEach((v, i) => {
        if (v !== null && typeof v !== 'string') bad(`${path}.in[${i}]`, `got ${JSON.stringify(v)}; want a string or null`);
      });
      return { kind: 'in', dim, values: [...new Set(f.in as (string | null)[])] };
    }
    return bad(path, "want 'eq' or 'in' beside 'dimension'");
  }, 'a filter object: { dimension, eq } | { dimension, in }') as (path: string, node: unknown) => ResolvedFilter;
  const where = q.filter === undefined || q.filter === null ? null : filter('filter', q.filter);

  // Group by
  const groupByIn = q.groupBy ?? [];
  if (!Array.isArray(groupByIn)) bad('groupBy', 'want an array of dimension names');
  if (groupByIn.length > limits.maxGroupByDimensions) {
    throw new TallyError('QUERY_TOO_COMPLEX', `groupBy: got ${groupByIn.length} dimensions; want at most ${limits.maxGroupByDimensions}`, { path: 'groupBy' });
  }
  const groupDims = groupByIn.map((d, i) => dimOf(`groupBy[${i}]`, d));
  if (new Set(groupDims).size !== groupDims.length) bad('groupBy', 'a dimension is listed twice');

  // Output columns so far
  const columns: string[] = [];
  const addColumn = (path: string, name: unknown): void => {
    if (typeof name !== 'string' || name.length === 0 || name.length > 256) bad(path, `got ${JSON.stringify(name)}; want a non-empty name of at most 256 characters`);
    if (columns.includes(name)) bad(path, `output column '${name}' is defined twice`);
    columns.push(name);
  };
  const timeColumn = q.timeColumn ?? ds.timeField;
  if (bucketing.kind !== 'all') addColumn('timeColumn', timeColumn);
  groupDims.forEach((d, i) => addColumn(`groupBy[${i}]`, ds.dimensions[d]));

  // Aggregations
  const aggsIn = q.aggregations ?? [];
  const postIn = q.postAggregations ?? [];
  if (!Array.isArray(aggsIn)) bad('aggregations', 'want an array');
  if (!Array.isArray(postIn)) bad('postAggregations', 'want an array');
  if (aggsIn.length + postIn.length > limits.maxAggregations) {
    throw new TallyError('QUERY_TOO_COMPLEX', `aggregations: got ${aggsIn.length + postIn.length} with post-aggregations; want at most ${limits.maxAggregations}`, { path: 'aggregations' });
  }
  const aggregations = aggsIn.map((a: unknown, i): ResolvedAggregation => {
    const path = `aggregations[${i}]`;
    if (!isObject(a)) bad(path, 'want an object { name, type, metric?, dimension?, filter? }');
    onlyKeys(path, a, ['name', 'type', 'metric', 'dimension', 'filter']);
    addColumn(`${path}.name`, a.name);
    const type = a.type as AggregationType;
    if (!AGG_TYPES.includes(type)) bad(`${path}.type`, `got ${JSON.stringify(a.type)}; want one of ${AGG_TYPES.join(', ')}`);
    let metric = -1;
    let dim = -1;
    if (type === 'distinctCount') {
      if (a.metric !== undefined) bad(`${path}.metric`, 'distinctCount counts a dimension; use dimension');
      dim = dimOf(`${path}.dimension`, a.dimension);
    } else {
      if (a.dimension !== undefined) bad(`${path}.dimension`, `${type} takes a metric, not a dimension`);
      if (a.metric === undefined) {
        if (type !== 'count') bad(`${path}.metric`, `${type} needs a metric`);
      } else {
        if (typeof a.metric !== 'string') bad(`${path}.metric`, 'want a metric name');
        metric = metricIndex.get(a.metric) ?? unknownColumn(`${path}.metric`, 'metric', a.metric, metricIndex.keys());
      }
    }
    const f = a.filter === undefined || a.filter === null ? null : filter(`${path}.filter`, a.filter);
    return { name: a.name as string, type, metric, dim, filter: f, filterKey: f === null ? '' : JSON.stringify(f) };
  });

  const firstPost = columns.length;
  const postAggregations = postIn.map((p: unknown, i) => {
    const path = `postAggregations[${i}]`;
    if (!isObject(p)) bad(path, 'want an object { name, expr }');
    onlyKeys(path, p, ['name', 'expr']);
    let exprNodes = 0;
    const expr = (epath: string, e: unknown, depth: number): ResolvedExpr => {
      if (++exprNodes > limits.maxFilterNodes || depth > limits.maxFilterDepth) {
        throw new TallyError('QUERY_TOO_COMPLEX', `${epath}: the expression is too large`, { path: epath });
      }
      if (typeof e === 'number') {
        if (!Number.isFinite(e)) bad(epath, 'want a finite number');
        return { kind: 'num', value: e };
      }
      if (!isObject(e)) bad(epath, "want a number, { ref } or { op, left, right }");
      if ('ref' in e) {
        onlyKeys(epath, e, ['ref']);
        const col = columns.indexOf(e.ref as string);
        // Only aggregations and earlier post-aggregations are numeric inputs.
        if (col < firstPost - aggregations.length || col < 0) {
          throw new TallyError('QUERY_UNKNOWN_COLUMN', `${epath}.ref: got ${JSON.stringify(e.ref)}; want the name of an aggregation or an earlier post-aggregation`, { path: epath });
        }
        return { kind: 'ref', column: col };
      }
      onlyKeys(epath, e, ['op', 'left', 'right']);
      if (e.op !== '+' && e.op !== '-' && e.op !== '*' && e.op !== '/') bad(`${epath}.op`, `got ${JSON.stringify(e.op)}; want one of + - * /`);
      return { kind: 'op', op: e.op, left: expr(`${epath}.left`, e.left, depth + 1), right: expr(`${epath}.right`, e.right, depth + 1) };
    };
    const resolved = expr(`${path}.expr`, p.expr, 1);
    addColumn(`${path}.name`, p.name);
    return { name: p.name as string, expr: resolved };
  });

  const columnOf = (path: string, name: unknown): number => {
    const i = typeof name === 'string' ? columns.indexOf(name) : -1;
    if (i < 0) {
      throw new TallyError('QUERY_UNKNOWN_COLUMN', `${path}: got ${JSON.stringify(name)}; want an output column: ${columns.join(', ')}`, { path });
    }
    return i;
  };

  // Having
  const having = boolTree<ResolvedHaving>('having clause', limits, (path, h) => {
    onlyKeys(path, h, ['column', 'op', 'value']);
    const ops = ['=', '!=', '<', '<=', '>', '>='] as const;
    if (!ops.includes(h.op as (typeof ops)[number])) bad(`${path}.op`, `got ${JSON.stringify(h.op)}; want one of ${ops.join(' ')}`);
    if (h.value !== null && typeof h.value !== 'number' && typeof h.value !== 'string') bad(`${path}.value`, 'want a number, string or null');
    return { kind: 'cmp', column: columnOf(`${path}.column`, h.column), op: h.op as (typeof ops)[number], value: h.value as number | string | null };
  }, '{ column, op, value }') as (path: string, node: unknown) => ResolvedHaving;
  const havingResolved = q.having === undefined || q.having === null ? null : having('having', q.having);

  // Order, limit, offset
  const orderIn = q.orderBy ?? [];
  if (!Array.isArray(orderIn)) bad('orderBy', 'want an array of { column, direction }');
  const orderBy = orderIn.map((o: unknown, i) => {
    const path = `orderBy[${i}]`;
    if (!isObject(o)) bad(path, "want { column, direction: 'asc' | 'desc' }");
    onlyKeys(path, o, ['column', 'direction']);
    if (o.direction !== undefined && o.direction !== 'asc' && o.direction !== 'desc') bad(`${path}.direction`, "want 'asc' or 'desc'");
    return { column: columnOf(`${path}.column`, o.column), desc: o.direction === 'desc' };
  });
  const count = (path: string, v: unknown): number | null => {
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad(path, `got ${JSON.stringify(v)}; want a non-negative integer`);
    return v;
  };

  return {
    ds, from, to, bucketing, filter: where, groupDims, aggregations, postAggregations, columns,
    having: havingResolved, orderBy, limit: count('limit', q.limit), offset: count('offset', q.offset) ?? 0,
  };
}
