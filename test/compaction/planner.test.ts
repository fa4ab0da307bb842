/**
 * The compaction planner: its rules on hand-made segment sets, and its bounds on random histories — every row is
 * rewritten at most 4 times after its seal, the planner reaches a fixpoint, and at the fixpoint a 24-hour query
 * touches at most the documented number of segments. The bound is tight: some history reaches 4 rewrites, so
 * the property would fail with a bound of 3.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DAY_FAN_IN, HOUR_FAN_IN, compactionBacklog, expiredSegments, planMerge, type PlanContext, type PlanSegment } from '../../src/compact/planner.js';

const M = 60_000;
const H = 3_600_000;
const D = 86_400_000;
const DAY0 = Date.parse('2026-11-23T00:00:00Z');

let ids = 0;
function seg(level: PlanSegment['level'], minTs: number, maxTs = minTs + M - 1, rows = 10): PlanSegment {
  return { id: ++ids, level, minTs, maxTs, rows };
}
function ctx(watermark: number | null, pending: number[] = [], latenessMs = 10 * M): PlanContext {
  return { watermark, latenessMs, pendingMinutes: new Set(pending) };
}

describe('planner rules', () => {
  it('merges the minutes of a settled hour into one hour segment', () => {
    const segs = [seg('minute', DAY0), seg('minute', DAY0 + 5 * M), seg('minute', DAY0 + 59 * M)];
    const p = planMerge(segs, ctx(DAY0 + H + 10 * M))!;
    expect(p).toMatchObject({ level: 'hour', bucket: DAY0, settled: true });
    expect(p.inputs.map((s) => s.id)).toEqual(segs.map((s) => s.id));
  });

  it('waits while the hour is within lateness of the watermark or the head still holds one of its minutes', () => {
    const segs = [seg('minute', DAY0), seg('minute', DAY0 + 5 * M)];
    expect(planMerge(segs, ctx(DAY0 + H + 10 * M - 1))).toBeNull();
    expect(planMerge(segs, ctx(DAY0 + 2 * H, [DAY0 + 30 * M]))).toBeNull();
    expect(planMerge(segs, ctx(null))).toBeNull();
  });

  it(`merges ${HOUR_FAN_IN} minute segments of an unsettled hour into a partial hour segment, not fewer`, () => {
    const minutes = Array.from({ length: HOUR_FAN_IN }, (_, i) => seg('minute', DAY0 + i * M));
    expect(planMerge(minutes.slice(1), ctx(DAY0 + 30 * M))).toBeNull();
    const p = planMerge([seg('hour', DAY0, DAY0 + 20 * M), ...minutes], ctx(DAY0 + 30 * M))!;
    expect(p).toMatchObject({ level: 'hour', settled: false });
    expect(p.inputs.every((s) => s.level === 'minute')).toBe(true);
  });

  it('leaves a settled hour alone once it is one hour segment; merges again when late data added one', () => {
    const hour = seg('hour', DAY0, DAY0 + H - 1);
    expect(planMerge([hour], ctx(DAY0 + 3 * H))).toBeNull();
    expect(planMerge([hour, seg('minute', DAY0 + 7 * M)], ctx(DAY0 + 3 * H))!.inputs).toHaveLength(2);
  });

  it(`merges ${DAY_FAN_IN} settled hours of an unsettled day into a partial day segment`, () => {
    const hours = Array.from({ length: DAY_FAN_IN }, (_, i) => seg('hour', DAY0 + i * H, DAY0 + (i + 1) * H - 1));
    expect(planMerge(hours.slice(1), ctx(DAY0 + 8 * H))).toBeNull();
    expect(planMerge(hours, ctx(DAY0 + 8 * H))).toMatchObject({ level: 'day', settled: false });
  });

  it('takes a settled day whole, whatever levels it holds', () => {
    const segs = [seg('day', DAY0, DAY0 + 5 * H), seg('hour', DAY0 + 7 * H, DAY0 + 8 * H - 1), seg('minute', DAY0 + 23 * H)];
    const p = planMerge(segs, ctx(DAY0 + D + H))!;
    expect(p).toMatchObject({ level: 'day', bucket: DAY0, settled: true });
    expect(p.inputs).toHaveLength(3);
    expect(planMerge([seg('day', DAY0, DAY0 + D - 1)], ctx(DAY0 + 3 * D))).toBeNull();
  });

  it('never writes a day segment above maxSegmentRows: a big settled day is finished hour by hour instead', () => {
    const cap = { maxSegmentRows: 100 };
    // 24 hours of 10 rows fit 240 but not 100: no day merge; the hour with two segments is merged on its own.
    const hours = Array.from({ length: 24 }, (_, i) => seg('hour', DAY0 + i * H, DAY0 + (i + 1) * H - 1));
    const late = seg('minute', DAY0 + 3 * H + 5 * M);
    const p = planMerge([...hours, late], { ...ctx(DAY0 + D + H), ...cap })!;
    expect(p).toMatchObject({ level: 'hour', bucket: DAY0 + 3 * H, settled: true });
    expect(p.inputs.map((s) => s.id).sort()).toEqual([hours[3]!.id, late.id].sort());
    expect(planMerge(hours, { ...ctx(DAY0 + D + H), ...cap })).toBeNull();
    // Without the cap the same day is one merge; a partial day is planned only while its hours fit.
    expect(planMerge(hours, ctx(DAY0 + D + H))).toMatchObject({ level: 'day', settled: true });
    const five = hours.slice(0, DAY_FAN_IN);
    expect(planMerge(five, { ...ctx(DAY0 + 8 * H), maxSegmentRows: 10 * DAY_FAN_IN })).toMatchObject({ level: 'day', settled: false });
    expect(planMerge(five, { ...ctx(DAY0 + 8 * H), maxSegmentRows: 10 * DAY_FAN_IN - 1 })).toBeNull();
  });

  it('skips segments in back-off', () => {
    const segs = [seg('minute', DAY0), seg('minute', DAY0 + M)];
    expect(planMerge(segs, { ...ctx(DAY0 + 2 * H), skip: new Set([segs[0]!.id]) })!.inputs).toEqual([segs[1]]);
  });

  it('retention drops only segments wholly older than the cutoff', () => {
    const old = seg('day', DAY0 - 40 * D, DAY0 - 39 * D - 1);
    const straddling = seg('day', DAY0 - 31 * D, DAY0 - 30 * D + 5);
    const fresh = seg('hour', DAY0, DAY0 + H - 1);
    expect(expiredSegments([old, straddling, fresh], DAY0, 30 * D)).toEqual([old]);
    expect(expiredSegments([old], DAY0, null)).toEqual([]);
  });

  it('counts the backlog as the merges it would run one after another', () => {
    const segs = [...Array.from({ length: 3 }, (_, i) => seg('minute', DAY0 + i * M)), ...Array.from({ length: 2 }, (_, i) => seg('minute', DAY0 + H + i * M))];
    expect(compactionBacklog(segs, ctx(DAY0 + 2 * H + 10 * M))).toBe(2);
    expect(compactionBacklog(segs, ctx(DAY0 + D + 2 * H))).toBe(1); // the settled day takes all at once
  });
});

// ---- random histories ------------------------------------------------------------------------------------------

interface SimSegment extends PlanSegment {
  /** Most times any row of this segment was written by a merge. */
  rewrites: number;
}

interface Step {
  /** Minutes the watermark moves forward. */
  advance: number;
  /** Minutes (behind the watermark, within lateness) sealed as segments in this step. */
  seal: number[];
  /** How many of the newest minutes are still in the head (pending). */
  pending: number;
}

const LATENESS = 60 * M;
const stepArb: fc.Arbitrary<Step> = fc.record({
  advance: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 200 })),
  seal: fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 6 }),
  pending: fc.integer({ min: 0, max: 3 }),
});

/**
 * Run a history; returns the most rewrites of any segment and, at each fixpoint, the 24 h segment count. Each
 * minute segment holds 1 row, so `maxSegmentRows` below 1440 makes busy days big (finished hour by hour).
 */
function simulate(steps: Step[], maxSegmentRows?: number): { maxRewrites: number; worst24h: number; worstSettled24h: number } {
  let segs: SimSegment[] = [];
  let nextId = 1;
  let wm = DAY0 + 3 * H;
  let maxRewrites = 0;
  let worst24h = 0;
  let worstSettled24h = 0;
  for (const st of steps) {
    wm += st.advance * M;
    const head = wm - (wm % M);
    const pending = Array.from({ length: st.pending }, (_, i) => head - i * M);
    // Seal minutes an event may still reach (within lateness), never a pending one.
    for (const back of st.seal) {
      const m = head - back * M;
      if (m < wm - LATENESS - M || pending.includes(m)) continue;
      segs.push({ id: nextId++, level: 'minute', minTs: m, maxTs: m + M - 1, rows: 1, rewrites: 0 });
    }
    const c = { ...ctx(wm, pending, LATENESS), maxSegmentRows };
    for (let n = 0; ; n++) {
      expect(n).toBeLessThan(10_000); // reaches a fixpoint
      const p = planMerge(segs, c);
      if (p === null) break;
      const inIds = new Set(p.inputs.map((s) => s.id));
      const inputs = segs.filter((s) => inIds.has(s.id));
      expect(inputs.length).toBe(p.inputs.length);
      // A merge stays inside its bucket.
      const span = p.level === 'hour' ? H : D;
      for (const s of inputs) expect(Math.floor(s.minTs / span)).toBe(Math.floor(p.bucket / span));
      const out: SimSegment = {
        id: nextId++, level: p.level, rows: inputs.reduce((a, s) => a + s.rows, 0),
        minTs: Math.min(...inputs.map((s) => s.minTs)), maxTs: Math.max(...inputs.map((s) => s.maxTs)),
        rewrites: Math.max(...inputs.map((s) => s.rewrites)) + 1,
      };
      maxRewrites = Math.max(maxRewrites, out.rewrites);
      if (p.level === 'day' && maxSegmentRows !== undefined) expect(out.rows).toBeLessThanOrEqual(maxSegmentRows);
      segs = [...segs.filter((s) => !inIds.has(s.id)), out];
    }
    const touched = segs.filter((s) => s.maxTs >= wm - D && s.minTs <= wm).length;
    worst24h = Math.max(worst24h, touched);
    const yesterday = wm - (wm % D) - D;
    if (yesterday + D <= wm - LATENESS && pending.every((m) => m >= yesterday + D)) worstSettled24h = Math.max(worstSettled24h, touched);
  }
  return { maxRewrites, worst24h, worstSettled24h };
}

/** Segments of an unsettled day at a fixpoint (module header of planner.ts), for the last 24 hours. */
const UNSETTLED_DAY = Math.floor(23 / DAY_FAN_IN) + (DAY_FAN_IN - 1) + Math.floor(59 / HOUR_FAN_IN) + (HOUR_FAN_IN - 1);
/** Segments of a settled day too big for one segment: its hours, and the partial days made while they fitted. */
const BIG_DAY = 24 + Math.floor(23 / DAY_FAN_IN);

describe('planner bounds on random histories', () => {
  const stats = { maxRewrites: 0 };
  it('every row is rewritten at most 4 times, and a 24 h query touches few segments', () => {
    fc.assert(fc.property(fc.array(stepArb, { minLength: 1, maxLength: 120 }), (steps) => {
      const r = simulate(steps);
      stats.maxRewrites = Math.max(stats.maxRewrites, r.maxRewrites);
      expect(r.maxRewrites).toBeLessThanOrEqual(4);
      // Yesterday settled: one day segment + today's. Otherwise yesterday's last hour is open too.
      expect(r.worstSettled24h).toBeLessThanOrEqual(1 + UNSETTLED_DAY);
      expect(r.worst24h).toBeLessThanOrEqual(UNSETTLED_DAY + UNSETTLED_DAY + 1);
    }), { numRuns: Number(process.env.PROPERTY_RUNS ?? 300) });
    expect(1 + UNSETTLED_DAY).toBeLessThanOrEqual(30);
  });

  it('with maxSegmentRows, no day merge writes more rows, rewrites stay ≤ 4, and a big day stays within its bound', () => {
    fc.assert(fc.property(fc.array(stepArb, { minLength: 1, maxLength: 120 }), fc.integer({ min: 1, max: 400 }), (steps, cap) => {
      const r = simulate(steps, cap);
      expect(r.maxRewrites).toBeLessThanOrEqual(4);
      expect(r.worstSettled24h).toBeLessThanOrEqual(BIG_DAY + UNSETTLED_DAY);
      expect(r.worst24h).toBeLessThanOrEqual(BIG_DAY + UNSETTLED_DAY + 1);
    }), { numRuns: Number(process.env.PROPERTY_RUNS ?? 200) });
    expect(BIG_DAY).toBeLessThanOrEqual(30);
  });

  it('canary: the rewrite bound is tight — a history reaches 4 rewrites, so a bound of 3 fails', () => {
    // Many minutes of one hour sealed one by one (partial hours), the hour settles, five hours settle (partial
    // day), the day settles: each row goes through all four merges.
    const steps: Step[] = [];
    for (let i = 0; i < 60 * (DAY_FAN_IN + 1); i++) steps.push({ advance: 1, seal: [0], pending: 0 });
    for (let i = 0; i < 60 * 30; i += 30) steps.push({ advance: 30, seal: [], pending: 0 });
    expect(simulate(steps).maxRewrites).toBe(4);
    expect(() => fc.assert(fc.property(fc.constant(steps), (s) => {
      expect(simulate(s).maxRewrites).toBeLessThanOrEqual(3);
    }), { numRuns: 1 })).toThrow();
  });
});
