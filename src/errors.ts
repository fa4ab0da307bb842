/**
 * errors.ts — the one registry of tallydb's error codes.
 *
 * Invariant: every operating error that tallydb reports carries a code from `ERROR_CODES`, and a code's meaning
 * never changes once released (codes are retired, never reused). Each code maps to an HTTP status so the daemon
 * answers consistently, and docs/errors.md lists the same codes (test/errors-docs.test.ts keeps the two in sync).
 *
 * Two kinds of failure exist, as in TigerBeetle: *operating errors* (bad input, a full disk, an unknown
 * datasource) are `TallyError`s that callers handle and report; *programmer errors* (a broken internal invariant)
 * are plain assertions (`assert()` below) that crash, because continuing would risk wrong answers or lost data.
 *
 * Messages follow one pattern: what was wrong, where, what was found and what was wanted —
 * "event field 'clicks': got string; want a number".
 */

export const ERROR_CODES = {
  // --- ingest: the batch as a whole -------------------------------------------------------------------------
  BATCH_NOT_ARRAY: { status: 400, text: 'The batch of events is not an array.' },
  BATCH_TOO_LARGE: { status: 413, text: 'The batch holds more events than limits.maxBatchEvents.' },
  // --- ingest: one event (reported per event in `rejected`, never failing the rest of the batch) -------------
  EVENT_NOT_OBJECT: { status: 400, text: 'An event is not a JSON object.' },
  TIMESTAMP_MISSING: { status: 400, text: 'The event has no value for the time field.' },
  TIMESTAMP_INVALID: { status: 400, text: 'The time field is neither integer epoch milliseconds nor an ISO-8601 string with a zone.' },
  TIMESTAMP_OUT_OF_RANGE: { status: 400, text: 'The timestamp is before 1970 or after 9999.' },
  TIMESTAMP_IN_FUTURE: { status: 400, text: 'The timestamp is further ahead of the engine clock than limits.futureToleranceMs.' },
  EVENT_TOO_LATE: { status: 400, text: 'The timestamp is older than the watermark minus the datasource lateness.' },
  EVENT_BEYOND_RETENTION: { status: 400, text: 'The timestamp is older than the engine clock minus the datasource retention.' },
  FIELD_UNKNOWN: { status: 400, text: 'The event has a field that is neither the time field, a dimension, a metric nor the dedup key.' },
  DIMENSION_NOT_STRING: { status: 400, text: 'A dimension value is not a string (or null).' },
  DIMENSION_MALFORMED: { status: 400, text: 'A dimension value is not well-formed Unicode (it holds a lone surrogate).' },
  DIMENSION_TOO_LONG: { status: 400, text: 'A dimension value is longer than limits.maxDimensionValueBytes.' },
  DIMENSION_CARDINALITY: { status: 400, text: 'A new dimension value would exceed limits.maxDimensionCardinality distinct values.' },
  METRIC_NOT_NUMBER: { status: 400, text: 'A metric value is not a number (or null).' },
  METRIC_NOT_FINITE: { status: 400, text: 'A metric value is NaN or infinite.' },
  METRIC_NOT_INTEGER: { status: 400, text: "A value of an 'int' metric is not a safe integer." },
  DEDUP_KEY_MISSING: { status: 400, text: 'The datasource deduplicates by a key and the event has none.' },
  DEDUP_KEY_INVALID: { status: 400, text: 'The dedup key is not a non-empty string or integer, or is too long.' },
  // --- datasources ------------------------------------------------------------------------------------------
  DATASOURCE_INVALID: { status: 400, text: 'The datasource definition is not valid.' },
  DATASOURCE_EXISTS: { status: 409, text: 'A datasource of that name exists with a different definition.' },
  DATASOURCE_NOT_FOUND: { status: 404, text: 'No datasource of that name.' },
  TOO_MANY_DATASOURCES: { status: 400, text: 'The engine holds limits.maxDatasources datasources already.' },
  // --- queries ----------------------------------------------------------------------------------------------
  QUERY_INVALID: { status: 400, text: 'The JSON query is not of the documented shape.' },
  QUERY_UNKNOWN_COLUMN: { status: 400, text: 'The query names a dimension, metric or output column the datasource does not have.' },
  QUERY_TOO_COMPLEX: { status: 400, text: 'The query exceeds a limit on its size (filter depth or size, aggregations, group-by dimensions).' },
  QUERY_TOO_MANY_GROUPS: { status: 422, text: 'The query produced more groups than limits.maxGroups.' },
  QUERY_TIMEOUT: { status: 504, text: 'The query ran longer than limits.queryTimeoutMs and was cancelled.' },
  TOO_MANY_QUERIES: { status: 429, text: 'limits.maxConcurrentQueries queries are running already; retry after the time in Retry-After.' },
  SQL_TOO_LONG: { status: 413, text: 'The SQL text is longer than limits.maxSqlLength.' },
  SQL_PARSE_ERROR: { status: 400, text: 'The SQL text does not parse.' },
  SQL_UNSUPPORTED: { status: 400, text: 'The SQL parses but uses something outside the supported subset.' },
  // --- storage ----------------------------------------------------------------------------------------------
  DISK_FULL: { status: 507, text: 'The disk is full: the batch was not written and not acknowledged; earlier data is intact.' },
  STORAGE_IO_ERROR: { status: 503, text: 'A write failed: the batch was not acknowledged; earlier data is intact and later writes may succeed.' },
  STORAGE_FAILED: { status: 503, text: 'An fsync failed: the engine refuses writes until it is restarted and recovers from its WAL (fail-stop).' },
  WAL_CORRUPT: { status: 500, text: 'A WAL record in the middle of the log is damaged; open stops (see docs/durability.md for the repair).' },
  SEGMENT_CORRUPT: { status: 500, text: 'A segment file failed its checksum; it was quarantined and is no longer served.' },
  SEGMENT_MISSING: { status: 500, text: 'The manifest lists a segment file that does not exist; open stops (see docs/durability.md).' },
  TOO_MANY_BROKEN_SEGMENTS: { status: 500, text: 'More segments failed their checks at open than limits.maxBrokenSegments; open stops.' },
  MANIFEST_CORRUPT: { status: 500, text: 'The manifest failed its checksum or does not parse; open stops.' },
  DIR_LOCKED: { status: 409, text: 'Another live process has the data directory open.' },
  COMPACTION_FAILED: { status: 500, text: 'A compaction merge failed; its inputs are intact and still served, and the range is retried after a back-off.' },
  INGEST_OVERLOADED: { status: 503, text: 'Sealing or the WAL is behind its memory budget: the batch was refused (not accepted); retry after Retry-After seconds.' },
  // --- HTTP -------------------------------------------------------------------------------------------------
  UNAUTHORIZED: { status: 401, text: 'The request has no valid bearer token, and the daemon requires one.' },
  FORBIDDEN: { status: 403, text: 'The bearer token lacks the scope (read or write) this endpoint needs.' },
  NOT_FOUND: { status: 404, text: 'No such endpoint.' },
  NOT_READY: { status: 503, text: 'The daemon is still recovering its data directory.' },
  BODY_TOO_LARGE: { status: 413, text: 'The request body is larger than limits.maxBodyBytes.' },
  BODY_MALFORMED: { status: 400, text: 'The request body does not parse as its content type says (or is not UTF-8).' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, text: 'The Content-Type is not one this endpoint takes.' },
  LINE_PROTOCOL_INVALID: { status: 400, text: 'A line of InfluxDB line protocol does not parse (reported per line).' },
  EVENT_MALFORMED: { status: 400, text: 'A line of an NDJSON body is not a JSON value (reported per line).' },
  REQUEST_INVALID: { status: 400, text: 'A request parameter is missing or not valid.' },
  INTERNAL: { status: 500, text: 'An unexpected failure inside tallydb: a bug. The message says what failed.' },
  // --- engine -----------------------------------------------------------------------------------------------
  ENGINE_CLOSED: { status: 503, text: 'The engine is closed.' },
  OPTIONS_INVALID: { status: 400, text: 'The options passed to open() are not valid.' },
} as const satisfies Record<string, { status: number; text: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An operating error with a stable code. `details` carries machine-readable context (field, position, ...). */
export class TallyError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'TallyError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.details = details;
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

/** Programmer-error check: a failed assertion is a bug in tallydb, never a user's mistake. */
export function assert(condition: unknown, what: string): asserts condition {
  if (!condition) throw new Error(`tallydb internal assertion failed: ${what}`);
}

/** Short, safe rendering of a user-supplied value for an error message. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') {
    const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
    return `string ${JSON.stringify(shown)}`;
  }
  if (typeof value === 'number') return `number ${String(value)}`;
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}
