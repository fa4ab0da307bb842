/**
 * time.ts — timestamps, durations and time buckets.
 *
 * Invariant: every instant inside tallydb is an integer count of milliseconds since the Unix epoch (UTC), in
 * [0, MAX_TIMESTAMP_MS]. Input is accepted as such a number or as an ISO-8601 string that names its zone (a string
 * without a zone is ambiguous and refused). A time bucket is identified by the instant it starts at.
 *
 * Buckets: `minute` and fixed durations (`'5 minutes'`, `'15m'`) are aligned to the Unix epoch; `hour` and `day`
 * follow the calendar of an IANA time zone (UTC by default), so a day in Asia/Kolkata starts at 18:30 UTC and a day
 * in America/New_York is 23 or 25 hours long across a DST change. Zone offsets come from `Intl` and are cached per
 * 15-minute slot: every zone transition in the tz database falls on a 15-minute boundary.
 */

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
/** 9999-12-31T23:59:59.999Z */
export const MAX_TIMESTAMP_MS = 253_402_300_799_999;

const ISO_RE = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2})?)(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?)?$/;

export type ParsedTime = { ok: true; ms: number } | { ok: false; reason: 'invalid' | 'range'; message: string };

/** Parse an epoch-ms number or a zoned ISO-8601 string. */
export function parseTimestamp(value: unknown): ParsedTime {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || !Number.isInteger(value)) {
      return { ok: false, reason: 'invalid', message: `got number ${String(value)}; want integer epoch milliseconds` };
    }
    if (value < 0 || value > MAX_TIMESTAMP_MS) {
      return { ok: false, reason: 'range', message: `got ${value}; want epoch milliseconds in [0, ${MAX_TIMESTAMP_MS}]` };
    }
    return { ok: true, ms: value };
  }
  if (typeof value === 'string') {
    const m = ISO_RE.exec(value);
    if (m === null) {
      return { ok: false, reason: 'invalid', message: `got string ${JSON.stringify(value.slice(0, 40))}; want epoch ms or ISO-8601 like 2026-11-23T10:15:00Z` };
    }
    const [, date, clock, fraction, zone] = m;
    if (clock !== undefined && zone === undefined) {
      return { ok: false, reason: 'invalid', message: `got ${JSON.stringify(value)} without a zone; add Z or an offset like +05:30` };
    }
    const ms3 = fraction === undefined ? '' : `.${fraction.padEnd(3, '0').slice(0, 3)}`;
    const z = zone === undefined ? 'Z' : zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone;
    const text = clock === undefined ? `${date}T00:00:00Z` : `${date}T${clock.length === 5 ? `${clock}:00` : clock}${ms3}${z}`;
    const ms = Date.parse(text);
    // Date.parse rolls 2026-02-31 over to March; refuse that by checking the date part survived unchanged.
    if (Number.isNaN(ms) || !sameCalendarDate(text, date)) {
      return { ok: false, reason: 'invalid', message: `got ${JSON.stringify(value)}; not a real date and time` };
    }
    if (ms < 0 || ms > MAX_TIMESTAMP_MS) {
      return { ok: false, reason: 'range', message: `got ${JSON.stringify(value)}; want a time in 1970..9999` };
    }
    return { ok: true, ms };
  }
  return { ok: false, reason: 'invalid', message: `got ${typeof value}; want epoch milliseconds or an ISO-8601 string` };
}

function sameCalendarDate(text: string, date: string): boolean {
  const [y, mo, d] = date.split('-').map(Number) as [number, number, number];
  const probe = new Date(Date.UTC(y, mo - 1, d));
  return probe.getUTCFullYear() === y && probe.getUTCMonth() === mo - 1 && probe.getUTCDate() === d && text.length > 0;
}

const UNIT_MS: Record<string, number> = {
  ms: 1, millisecond: 1, milliseconds: 1,
  s: 1000, sec: 1000, secs: 1000, second: 1000, seconds: 1000,
  m: MINUTE_MS, min: MINUTE_MS, mins: MINUTE_MS, minute: MINUTE_MS, minutes: MINUTE_MS,
  h: HOUR_MS, hr: HOUR_MS, hrs: HOUR_MS, hour: HOUR_MS, hours: HOUR_MS,
  d: DAY_MS, day: DAY_MS, days: DAY_MS,
  w: 7 * DAY_MS, week: 7 * DAY_MS, weeks: 7 * DAY_MS,
};

/** Parse `'1h'`, `'30d'`, `'5 minutes'`, `'90s'` (or a number of ms) into milliseconds; undefined if not a duration. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*(\d+)\s*([a-zA-Z]+)\s*$/.exec(value);
  if (m === null) return undefined;
  const unit = UNIT_MS[m[2]!.toLowerCase()];
  const n = Number(m[1]);
  if (unit === undefined || n <= 0) return undefined;
  const ms = n * unit;
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** How rows are put into time buckets. `all` means one bucket for the whole query. */
export type Bucketing =
  | { kind: 'all' }
  | { kind: 'fixed'; sizeMs: number }
  | { kind: 'calendar'; unitMs: typeof HOUR_MS | typeof DAY_MS; timeZone: string };

const zoneNames = new Map<string, string | undefined>();

/** Check an IANA zone name; returns the canonical name or undefined. Cached: Intl formatters are costly to make. */
export function checkTimeZone(timeZone: string): string | undefined {
  if (zoneNames.has(timeZone)) return zoneNames.get(timeZone);
  let canonical: string | undefined;
  try {
    canonical = new Intl.DateTimeFormat('en-US', { timeZone }).resolvedOptions().timeZone;
  } catch {
    canonical = undefined;
  }
  if (zoneNames.size < 1000) zoneNames.set(timeZone, canonical);
  return canonical;
}

/** Build the bucketing for a granularity name or duration (`'minute'|'hour'|'day'|'all'|'5 minutes'`). */
export function makeBucketing(granularity: string, timeZone: string): Bucketing | undefined {
  switch (granularity) {
    case 'all': return { kind: 'all' };
    case 'minute': return { kind: 'fixed', sizeMs: MINUTE_MS };
    case 'hour': return isUtc(timeZone) ? { kind: 'fixed', sizeMs: HOUR_MS } : { kind: 'calendar', unitMs: HOUR_MS, timeZone };
    case 'day': return isUtc(timeZone) ? { kind: 'fixed', sizeMs: DAY_MS } : { kind: 'calendar', unitMs: DAY_MS, timeZone };
    default: {
      const sizeMs = parseDuration(granularity);
      return sizeMs === undefined ? undefined : { kind: 'fixed', sizeMs };
    }
  }
}

function isUtc(timeZone: string): boolean {
  return timeZone === 'UTC' || timeZone === 'Etc/UTC' || timeZone === 'GMT' || timeZone === 'Etc/GMT';
}

/** Start of the bucket holding `ts`. For `all` this is 0 (callers do not emit it). */
export function bucketStart(ts: number, b: Bucketing): number {
  if (b.kind === 'fixed') return ts - (ts % b.sizeMs);
  if (b.kind === 'all') return 0;
  const off = zoneOffsetMs(b.timeZone, ts);
  const local = ts + off;
  const startLocal = local - (((local % b.unitMs) + b.unitMs) % b.unitMs);
  let start = startLocal - off;
  const off2 = zoneOffsetMs(b.timeZone, start);
  if (off2 !== off) {
    const other = startLocal - off2;
    if (other <= ts) start = other;
  }
  return start;
}

const SLOT_MS = 15 * MINUTE_MS;
const formatters = new Map<string, Intl.DateTimeFormat>();
const offsetCache = new Map<string, number>();

/** Offset of `timeZone` from UTC at instant `ts`, in ms (positive east of Greenwich). */
export function zoneOffsetMs(timeZone: string, ts: number): number {
  const slot = Math.floor(ts / SLOT_MS);
  const key = `${timeZone}|${slot}`;
  const cached = offsetCache.get(key);
  if (cached !== undefined) return cached;
  let fmt = formatters.get(timeZone);
  if (fmt === undefined) {
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric',
      hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    formatters.set(timeZone, fmt);
  }
  const at = slot * SLOT_MS;
  const p: Record<string, number> = {};
  for (const part of fmt.formatToParts(new Date(at))) if (part.type !== 'literal') p[part.type] = Number(part.value);
  const asUtc = Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!);
  const offset = asUtc - at;
  if (offsetCache.size > 100_000) offsetCache.clear();
  offsetCache.set(key, offset);
  return offset;
}
