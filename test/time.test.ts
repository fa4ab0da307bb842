/** time.ts invariants: instants are integer epoch ms in range; zoned ISO only; buckets start where calendars say. */
import { describe, expect, it } from 'vitest';
import { bucketStart, makeBucketing, parseDuration, parseTimestamp, zoneOffsetMs } from '../src/time.js';

describe('parseTimestamp', () => {
  it.each([
    [1795392000000, 1795392000000],
    ['2026-11-23T00:00:00Z', 1795392000000],
    ['2026-11-23T05:30:00+05:30', 1795392000000],
    ['2026-11-23T05:30:00+0530', 1795392000000],
    ['2026-11-23 00:00:00Z', 1795392000000],
    ['2026-11-23T00:00Z', 1795392000000],
    ['2026-11-23', 1795392000000],
    ['2026-11-23T00:00:00.5Z', 1795392000500],
    ['2026-11-23T00:00:00.123456789Z', 1795392000123],
  ])('accepts %j', (input, ms) => {
    expect(parseTimestamp(input)).toEqual({ ok: true, ms });
  });
  it.each([
    ['2026-11-23T00:00:00', 'invalid'], ['2026-13-01', 'invalid'], ['2026-02-29', 'invalid'], ['23/11/2026', 'invalid'],
    [1.5, 'invalid'], [Number.NaN, 'invalid'], [true, 'invalid'], [-1, 'range'], [253_402_300_800_000, 'range'],
  ])('refuses %j as %s', (input, reason) => {
    expect(parseTimestamp(input)).toMatchObject({ ok: false, reason });
  });
});

describe('parseDuration', () => {
  it('reads compact and spelled-out units', () => {
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('5 minutes')).toBe(300_000);
    expect(parseDuration('30d')).toBe(30 * 86_400_000);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration(250)).toBe(250);
  });
  it('refuses what is not a positive whole duration', () => {
    for (const bad of ['1 month', '1.5h', '-1h', '0m', 'soon', '', 0, -5, 1.5, null]) expect(parseDuration(bad)).toBeUndefined();
  });
});

describe('buckets', () => {
  it('calendar days in a DST zone start at local midnight, also on the 23- and 25-hour days', () => {
    const day = makeBucketing('day', 'Europe/Berlin')!;
    // 2026-03-29: clocks go 02:00 → 03:00 (a 23 h day); 2026-10-25: 03:00 → 02:00 (a 25 h day).
    expect(bucketStart(Date.parse('2026-03-29T21:59:59Z'), day)).toBe(Date.parse('2026-03-28T23:00:00Z'));
    expect(bucketStart(Date.parse('2026-03-29T22:00:00Z'), day)).toBe(Date.parse('2026-03-29T22:00:00Z'));
    expect(bucketStart(Date.parse('2026-10-25T22:59:59Z'), day)).toBe(Date.parse('2026-10-24T22:00:00Z'));
    expect(bucketStart(Date.parse('2026-10-25T23:00:00Z'), day)).toBe(Date.parse('2026-10-25T23:00:00Z'));
  });
  it('hours in a half-hour zone, and the offset helper', () => {
    const hour = makeBucketing('hour', 'Asia/Kolkata')!;
    expect(bucketStart(Date.parse('2026-11-23T10:29:59Z'), hour)).toBe(Date.parse('2026-11-23T09:30:00Z'));
    expect(zoneOffsetMs('Asia/Kolkata', 0)).toBe(5.5 * 3_600_000);
    expect(zoneOffsetMs('America/New_York', Date.parse('2026-07-01T00:00:00Z'))).toBe(-4 * 3_600_000);
  });
  it('UTC hours and days are fixed buckets; unknown granularities are refused', () => {
    expect(makeBucketing('hour', 'UTC')).toEqual({ kind: 'fixed', sizeMs: 3_600_000 });
    expect(makeBucketing('fortnightly', 'UTC')).toBeUndefined();
  });
});
