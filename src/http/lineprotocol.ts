/**
 * http/lineprotocol.ts — InfluxDB 1.x line protocol, parsed into tallydb events.
 *
 * Invariant: each line parses into one event or one per-line error; a bad line never affects the others.
 *
 *   measurement[,tag=value…] field=value[,field=value…] [timestamp]
 *
 * Escapes as in InfluxDB: `\,` and `\ ` in the measurement; `\,` `\=` `\ ` in tag keys, tag values and field keys;
 * `\"` and `\\` inside double-quoted string field values. Field values: floats (`1.5`, `-3e2`), integers (`12i`),
 * unsigned (`12u`), booleans (`t T true True TRUE f F false False FALSE`), strings (`"…"`). The timestamp is an
 * integer in `precision` units (ns by default; nanoseconds exceed 2^53, so they are read as BigInt) and defaults
 * to the server clock. Lines that are empty or start with `#` are skipped.
 */

export type FieldValue = number | string | boolean;

export interface ParsedLine {
  measurement: string;
  tags: Record<string, string>;
  fields: Record<string, FieldValue>;
  /** Epoch ms, or null when the line has no timestamp. */
  ts: number | null;
}

export type Precision = 'ns' | 'us' | 'ms' | 's' | 'm' | 'h';

const PRECISION_NS: Record<string, bigint> = {
  n: 1n, ns: 1n, u: 1_000n, us: 1_000n, ms: 1_000_000n, s: 1_000_000_000n, m: 60_000_000_000n, h: 3_600_000_000_000n,
};

export function parsePrecision(p: unknown): bigint | undefined {
  if (p === undefined || p === null || p === '') return PRECISION_NS.ns;
  return typeof p === 'string' ? PRECISION_NS[p] : undefined;
}

class LineError extends Error {}

/** Parse one line (without its newline); throws LineError with a message naming the column. */
function parseLine(line: string, unitNs: bigint): ParsedLine {
  let i = 0;
  const n = line.length;
  const fail = (why: string): never => {
    throw new LineError(`column ${i + 1}: ${why}`);
  };
  /** Read up to an unescaped stop character; `escapable` are the characters a backslash escapes. */
  const readToken = (stops: string, escapable: string): string => {
    let out = '';
    while (i < n) {
      const c = line[i]!;
      if (c === '\\' && i + 1 < n && escapable.includes(line[i + 1]!)) {
        out += line[i + 1];
        i += 2;
        continue;
      }
      if (stops.includes(c)) break;
      out += c;
      i++;
    }
    return out;
  };

  const measurement = readToken(', ', ', \\');
  if (measurement.length === 0) fail('missing measurement');
  const tags: Record<string, string> = {};
  while (line[i] === ',') {
    i++;
    const key = readToken('=, ', ',= \\');
    if (line[i] !== '=' || key.length === 0) fail('want tag=value');
    i++;
    const value = readToken(', ', ',= \\');
    if (value.length === 0) fail(`tag '${key}' has no value`);
    tags[key] = value;
  }
  if (line[i] !== ' ') fail('want a space before the fields');
  while (line[i] === ' ') i++;
  const fields: Record<string, FieldValue> = {};
  for (;;) {
    const key = readToken('=, ', ',= \\');
    if (line[i] !== '=' || key.length === 0) fail('want field=value');
    i++;
    if (line[i] === '"') {
      i++;
      let s = '';
      for (;;) {
        if (i >= n) fail(`unterminated string in field '${key}'`);
        const c = line[i]!;
        if (c === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) {
          s += line[i + 1];
          i += 2;
          continue;
        }
        if (c === '"') {
          i++;
          break;
        }
        s += c;
        i++;
      }
      fields[key] = s;
    } else {
      const start = i;
      while (i < n && line[i] !== ',' && line[i] !== ' ') i++;
      const raw = line.slice(start, i);
      fields[key] = fieldValue(raw, key, fail);
    }
    if (line[i] === ',') {
      i++;
      continue;
    }
    break;
  }
  while (line[i] === ' ') i++;
  let ts: number | null = null;
  if (i < n) {
    const raw = line.slice(i).trim();
    if (!/^-?\d+$/.test(raw)) fail(`timestamp ${JSON.stringify(raw.slice(0, 30))} is not an integer`);
    const ns = BigInt(raw) * unitNs;
    const ms = ns / 1_000_000n;
    if (ms < 0n || ms > 253_402_300_799_999n) fail('timestamp out of range');
    ts = Number(ms);
  }
  return { measurement, tags, fields, ts };
}

function fieldValue(raw: string, key: string, fail: (why: string) => never): FieldValue {
  if (raw.length === 0) return fail(`field '${key}' has no value`);
  switch (raw) {
    case 't': case 'T': case 'true': case 'True': case 'TRUE': return true;
    case 'f': case 'F': case 'false': case 'False': case 'FALSE': return false;
  }
  const last = raw[raw.length - 1];
  if (last === 'i' || last === 'u') {
    const digits = raw.slice(0, -1);
    if (!(last === 'i' ? /^-?\d+$/ : /^\d+$/).test(digits)) return fail(`field '${key}': ${JSON.stringify(raw)} is not an integer`);
    const v = Number(digits);
    if (!Number.isSafeInteger(v)) return fail(`field '${key}': ${raw} is beyond ±2^53`);
    return v;
  }
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw)) return fail(`field '${key}': ${JSON.stringify(raw)} is not a number, boolean or quoted string`);
  return Number(raw);
}

export interface LineBatch {
  lines: { index: number; parsed: ParsedLine }[];
  errors: { index: number; message: string }[];
}

/** Split a body into lines and parse each; `index` counts lines that are not blank or comments. */
export function parseLineProtocol(body: string, unitNs: bigint): LineBatch {
  const out: LineBatch = { lines: [], errors: [] };
  let index = 0;
  for (const rawLine of body.split('\n')) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line.trim().length === 0 || line.trimStart().startsWith('#')) continue;
    try {
      out.lines.push({ index, parsed: parseLine(line, unitNs) });
    } catch (e) {
      if (!(e instanceof LineError)) throw e;
      out.errors.push({ index, message: `line ${index + 1}: ${e.message}` });
    }
    index++;
  }
  return out;
}

/**
 * Map a parsed line onto an event of a datasource: tags are dimensions; fields are metrics (booleans as 1/0) or,
 * when a dimension of that name exists, dimension values (strings as they are, others as text); the measurement
 * goes to a dimension named `measurement` when the datasource has one.
 */
export function lineToEvent(p: ParsedLine, timeField: string, dimensions: ReadonlySet<string>, now: number): Record<string, unknown> {
  const e: Record<string, unknown> = { [timeField]: p.ts ?? now };
  if (dimensions.has('measurement')) e.measurement = p.measurement;
  for (const [k, v] of Object.entries(p.tags)) e[k] = v;
  for (const [k, v] of Object.entries(p.fields)) {
    if (dimensions.has(k)) e[k] = typeof v === 'string' ? v : String(v);
    else e[k] = typeof v === 'boolean' ? (v ? 1 : 0) : v;
  }
  return e;
}
