/**
 * tallydb — public API. Everything a user imports comes from here; nothing else is a stable interface.
 */
export { open, Tally, type OpenOptions, type DatasourceStats } from './db.js';
export { TallyError, ERROR_CODES, type ErrorCode } from './errors.js';
export { DEFAULT_LIMITS, type Limits } from './limits.js';
export type { DatasourceSpec, MetricSpec, MetricType } from './schema/datasource.js';
export type { IngestResult, RejectedEvent } from './ingest/pipeline.js';
export type {
  Query, QueryResult, QueryStats, Filter, Aggregation, AggregationType, PostAggregation, Expr, Having, OrderBy,
} from './query/shape.js';
