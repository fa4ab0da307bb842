/**
 * compact/planner.ts — which segments to merge next, and which retention drops. Pure functions of the segment set
 * and the datasource's clocks; no I/O. docs/compaction.md states the rules; test/compaction/planner.test.ts proves
 * the bounds below on random histories.
 *
 * Levels: minute segments (from sealing) → hour segments → day segments, buckets aligned to the Unix epoch (UTC).
 * A bucket is *settled* when no event can reach it any more: its end is at or before watermark − lateness (later
 * events for it are refused as EVENT_TOO_LATE) and the head holds no unsealed minute of it.
 *
 * Rules, first match wins, oldest bucket first:
 *  1. settled day: all its segments → one day segment (unless it is one already);
 *  2. settled hour: all its minute and hour segments → one hour segment (unless it is one already);
 *  3. unsettled hour with ≥ HOUR_FAN_IN minute segments: those → one (partial) hour segment;
 *  4. unsettled day with ≥ DAY_FAN_IN hour segments of settled hours: those → one (partial) day segment.
 * Day merges (rules 1 and 4) are planned only when their inputs hold at most `maxSegmentRows` rows; a settled day
 * too big for one segment is instead finished hour by hour by rule 2 (a *big* day: at most 24 hour segments and
 * the partial days rule 4 made while they fitted).
 *
 * Bounds (each row, after its seal): rewritten at most 4 times — once each by rules 3, 2, 4, 1 — since a rule never
 * takes the output of a rule at its own or an earlier position of that chain as input again, and a settled bucket
 * never receives new segments. A settled day is one segment; an unsettled day holds at most ⌊23/DAY_FAN_IN⌋
 * partial-day segments, DAY_FAN_IN − 1 hour segments, and for each unsettled hour ⌊59/HOUR_FAN_IN⌋ partial hours and
 * HOUR_FAN_IN − 1 minute segments. A settled big day is at most 24 hour segments plus ⌊23/DAY_FAN_IN⌋ partial days.
 */
import type { SegmentEntry } from '../storage/manifest.js';
import { DAY_MS, HOUR_MS, MINUTE_MS } from '../time.js';

export const HOUR_FAN_IN = 8;
export const DAY_FAN_IN = 5;

export type Level = SegmentEntry['level'];
export type PlanSegment = Pick<SegmentEntry, 'id' | 'minTs' | 'maxTs' | 'rows' | 'level'>;

export interface PlanContext {
  /** Newest accepted event time, or null before the first. */
  watermark: number | null;
  latenessMs: number;
  /** Start of each minute the head still holds rows of (not yet sealed). */
  pendingMinutes: ReadonlySet<number>;
  /** Segment ids not to plan now (a failed merge's inputs during its back-off). */
  skip?: ReadonlySet<number>;
  /** Most rows a day merge may write (Limits.maxSegmentRows); unbounded when absent. */
  maxSegmentRows?: number;
}

export interface MergePlan {
  level: 'hour' | 'day';
  /** Start of the hour or day bucket. */
  bucket: number;
  /** True when the bucket is settled (the final merge of it). */
  settled: boolean;
  inputs: PlanSegment[];
}

const SPAN: Record<Level, number> = { minute: MINUTE_MS, hour: HOUR_MS, day: DAY_MS };
const RANK: Record<Level, number> = { minute: 0, hour: 1, day: 2 };

function floorTo(ts: number, span: number): number {
  return ts - (ts % span);
}

/** The bucket of `level` a segment of level ≤ `level` belongs to: the one holding its first row. */
function bucketOf(s: PlanSegment, level: 'hour' | 'day'): number {
  return floorTo(s.minTs, SPAN[level]);
}

/** Is the bucket [start, start + span) closed to new rows? */
export function settled(start: number, span: number, ctx: PlanContext): boolean {
  if (ctx.watermark === null || start + span > ctx.watermark - ctx.latenessMs) return false;
  for (const m of ctx.pendingMinutes) if (m >= start && m < start + span) return false;
  return true;
}

/** The next merge to run, or null when the set is as compact as the rules make it. */
export function planMerge(segments: readonly PlanSegment[], ctx: PlanContext): MergePlan | null {
  const live = segments.filter((s) => !ctx.skip?.has(s.id));
  const group = (level: 'hour' | 'day', maxRank: number): Map<number, PlanSegment[]> => {
    const out = new Map<number, PlanSegment[]>();
    for (const s of live) {
      if (RANK[s.level] > maxRank) continue;
      const b = bucketOf(s, level);
      let list = out.get(b);
      if (list === undefined) out.set(b, (list = []));
      list.push(s);
    }
    return new Map([...out].sort((a, b) => a[0] - b[0]));
  };
  const plan = (level: 'hour' | 'day', bucket: number, isSettled: boolean, inputs: PlanSegment[]): MergePlan => ({
    level, bucket, settled: isSettled, inputs: [...inputs].sort((a, b) => a.minTs - b.minTs || a.id - b.id),
  });

  const days = group('day', RANK.day);
  const hours = group('hour', RANK.hour);
  const maxRows = ctx.maxSegmentRows ?? Infinity;
  const fits = (segs: PlanSegment[]): boolean => segs.reduce((a, s) => a + s.rows, 0) <= maxRows;
  // 1. settled days that fit one segment
  const bigDays = new Set<number>();
  for (const [day, segs] of days) {
    if (!settled(day, DAY_MS, ctx)) continue;
    if (!fits(segs)) {
      bigDays.add(day);
      continue;
    }
    if (segs.length > 1 || segs[0]!.level !== 'day') return plan('day', day, true, segs);
  }
  // 2. settled hours (of unsettled or big days: a settled day that fits is taken whole by rule 1)
  for (const [hour, segs] of hours) {
    const day = floorTo(hour, DAY_MS);
    if (!settled(hour, HOUR_MS, ctx) || (settled(day, DAY_MS, ctx) && !bigDays.has(day))) continue;
    if (segs.length > 1 || segs[0]!.level !== 'hour') return plan('hour', hour, true, segs);
  }
  // 3. partial hours
  for (const [hour, segs] of hours) {
    if (settled(hour, HOUR_MS, ctx)) continue;
    const minutes = segs.filter((s) => s.level === 'minute');
    if (minutes.length >= HOUR_FAN_IN) return plan('hour', hour, false, minutes);
  }
  // 4. partial days
  for (const [day, segs] of days) {
    if (settled(day, DAY_MS, ctx)) continue;
    const done = segs.filter((s) => s.level === 'hour' && settled(bucketOf(s, 'hour'), HOUR_MS, ctx));
    if (done.length >= DAY_FAN_IN && fits(done)) return plan('day', day, false, done);
  }
  return null;
}

/** Segments wholly older than the retention cutoff (engine clock − retention): dropped whole. */
export function expiredSegments<S extends { maxTs: number }>(segments: readonly S[], now: number, retentionMs: number | null): S[] {
  if (retentionMs === null) return [];
  const cutoff = now - retentionMs;
  return segments.filter((s) => s.maxTs < cutoff);
}

/** How many merges the planner would run now, one after another (each output standing in for its inputs). */
export function compactionBacklog(segments: readonly PlanSegment[], ctx: PlanContext): number {
  let set = [...segments];
  let nextId = -1;
  for (let n = 0; n < 10_000; n++) {
    const p = planMerge(set, ctx);
    if (p === null) return n;
    const ids = new Set(p.inputs.map((s) => s.id));
    set = set.filter((s) => !ids.has(s.id));
    set.push({
      id: nextId--, level: p.level, rows: p.inputs.reduce((a, s) => a + s.rows, 0),
      minTs: Math.min(...p.inputs.map((s) => s.minTs)), maxTs: Math.max(...p.inputs.map((s) => s.maxTs)),
    });
  }
  return 10_000;
}
