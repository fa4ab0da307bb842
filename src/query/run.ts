/**
 * query/run.ts — a JSON or SQL query from its text to its answer, over any source of readers: the engine (db.ts)
 * and the daemon's query thread (replica/replica.ts) answer through these two functions, so they answer alike.
 *
 * Invariant: the readers of a query are held (`withReaders`) from before the first is read until the answer is
 * built, so no segment file they need is deleted meanwhile.
 */
import type { Limits } from '../limits.js';
import type { Datasource } from '../schema/datasource.js';
import { execute } from './execute.js';
import type { GlobalIdSpace } from './global-ids.js';
import type { SegmentReader } from './reader.js';
import { queryDatasourceName, resolveQuery, type Query, type QueryResult } from './shape.js';
import { compileSql } from './sql.js';

export interface QuerySource {
  readonly limits: Limits;
  /** The clock of `now()` in SQL. */
  readonly clock: () => number;
  readonly resultCache: boolean;
  /** A datasource's definition; throws DATASOURCE_NOT_FOUND. */
  datasource(name: string): Datasource;
  /** The query-wide value ids of a datasource, kept across queries. */
  globals(name: string): GlobalIdSpace;
  /** Run `run` over the readers of [from, to) of a datasource, held until it settles. */
  withReaders<T>(name: string, from: number, to: number, run: (readers: SegmentReader[]) => Promise<T>): Promise<T>;
}

/** Run a JSON query (docs/query.md). */
export async function runQuery(src: QuerySource, q: Query): Promise<QueryResult> {
  const startedAt = performance.now();
  const ds = src.datasource(queryDatasourceName(q));
  const plan = resolveQuery(q, ds, src.limits);
  return await src.withReaders(ds.name, plan.from, plan.to, (readers) => execute(plan, readers, src.limits, startedAt, src.globals(ds.name), src.resultCache));
}

/** Run a SQL query (docs/query.md#sql); columns come in SELECT order under their SQL names. */
export async function runSql(src: QuerySource, text: string): Promise<QueryResult> {
  const startedAt = performance.now();
  const compiled = compileSql(text, { now: src.clock(), limits: src.limits, datasource: (name) => src.datasource(name) });
  const ds = src.datasource(compiled.query.datasource);
  const plan = resolveQuery(compiled.query, ds, src.limits);
  const result = await src.withReaders(ds.name, plan.from, plan.to, (readers) => execute(plan, readers, src.limits, startedAt, src.globals(ds.name), src.resultCache));
  const picks = compiled.select.map((s) => result.columns.indexOf(s.source));
  return {
    columns: compiled.select.map((s) => s.name),
    rows: result.rows.map((row) => picks.map((i) => row[i]!)),
    stats: { ...result.stats, elapsedMs: performance.now() - startedAt },
  };
}
