/**
 * DedupIndex invariants: a key is remembered while its event time is within the window of the watermark; memory
 * is bounded by limits.maxDedupKeys, and early forgetting is reported rather than hidden.
 */
import { describe, expect, it } from 'vitest';
import { DedupIndex as Index, hashKeyInto } from '../src/ingest/dedup.js';

/** String-keyed view of the hash-keyed index, as the pipeline uses it. */
class DedupIndex extends Index {
  private readonly h = new Uint32Array(2);
  hasKey(key: string): boolean {
    hashKeyInto(key, this.h, 0);
    return super.has(this.h[0]!, this.h[1]!);
  }
  addKey(key: string, ts: number): void {
    hashKeyInto(key, this.h, 0);
    super.add(this.h[0]!, this.h[1]!, ts);
  }
}

const H = 3_600_000;

describe('DedupIndex', () => {
  it('remembers every added key while the watermark stays within the window', () => {
    const d = new DedupIndex(H, 1_000_000);
    for (let i = 0; i < 100_000; i++) d.addKey(`id-${i}`, i * 10);
    d.advance(100_000 * 10);
    for (let i = 0; i < 100_000; i++) expect(d.hasKey(`id-${i}`)).toBe(true);
    expect(d.hasKey('id-100000')).toBe(false);
    expect(d.hasKey('')).toBe(false);
    expect(d.stats().keys).toBe(100_000);
  });

  it('forgets a key once its sub-window is wholly behind watermark − window, and not before', () => {
    const d = new DedupIndex(H, 1_000_000);
    d.addKey('k', 0);
    d.advance(H + H / 8 - 1); // sub-window [0, H/8) ends after the horizon (watermark − H)
    expect(d.hasKey('k')).toBe(true);
    d.advance(H + H / 8);
    expect(d.hasKey('k')).toBe(false);
  });

  it('does not remember events that are already older than the window', () => {
    const d = new DedupIndex(H, 1_000_000);
    d.advance(10 * H);
    d.addKey('old', 5 * H);
    expect(d.hasKey('old')).toBe(false);
    expect(d.remembers(5 * H)).toBe(false);
    expect(d.remembers(9 * H)).toBe(true);
  });

  it('bounds memory by maxKeys: the oldest sub-windows go first, counted in stats', () => {
    const d = new DedupIndex(H, 1000);
    for (let i = 0; i < 3000; i++) d.addKey(`k${i}`, Math.floor((i / 3000) * H));
    const s = d.stats();
    expect(s.keys).toBeLessThanOrEqual(1000);
    expect(s.evictedEarly).toBeGreaterThan(0);
    expect(d.hasKey('k2999')).toBe(true);
    expect(d.hasKey('k0')).toBe(false);
    d.advance(H);
    expect(d.stats().effectiveWindowMs).toBeLessThan(H);
    // Keys for the forgotten sub-windows are not re-remembered (they would be evicted out of order).
    d.addKey('late', 0);
    expect(d.hasKey('late')).toBe(false);
  });

  it('costs at most 32 bytes per remembered key', () => {
    const d = new DedupIndex(H, 10_000_000);
    for (let i = 0; i < 1_000_000; i++) d.addKey(`impression-${i}`, i % H);
    const s = d.stats();
    expect(s.keys).toBe(1_000_000);
    expect(s.bytes / s.keys).toBeLessThanOrEqual(32);
  });
});
