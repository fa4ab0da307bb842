/**
 * segment/radix.ts — the row order of a segment, by stable LSD radix sort over small integer keys.
 *
 * Invariant: `rowOrder` returns the permutation that sorts rows by its keys, most significant first, ties kept in
 * row order — the same order as a stable comparison sort, in O(passes × (n + key size)) instead of O(n log n)
 * closure calls (shared/NOTES.md: a JS comparator took ~7 s for 10M rows). Sealing runs on the ingest thread, so
 * this is on the ingest path.
 */

export interface SortKey {
  /** One value per row, in [0, size). */
  values: ArrayLike<number>;
  size: number;
}

/** Split non-negative integers below 2^32 into 16-bit digit keys, most significant first. */
export function digitKeys(values: ArrayLike<number>, n: number, min: number, max: number): SortKey[] {
  const range = max - min;
  if (n === 0 || range < 0x10000) {
    const v = new Uint32Array(n);
    for (let r = 0; r < n; r++) v[r] = values[r]! - min;
    return [{ values: v, size: Math.max(1, range + 1) }];
  }
  if (range >= 2 ** 32) throw new Error(`sort key range ${range} exceeds 2^32`);
  const hi = new Uint32Array(n);
  const lo = new Uint32Array(n);
  for (let r = 0; r < n; r++) {
    const d = values[r]! - min;
    hi[r] = Math.floor(d / 0x10000);
    lo[r] = d % 0x10000;
  }
  return [{ values: hi, size: Math.floor(range / 0x10000) + 1 }, { values: lo, size: 0x10000 }];
}

export function rowOrder(n: number, keys: readonly SortKey[]): Uint32Array {
  let order = new Uint32Array(n);
  for (let r = 0; r < n; r++) order[r] = r;
  let next = new Uint32Array(n);
  for (let k = keys.length - 1; k >= 0; k--) {
    const { values, size } = keys[k]!;
    if (size <= 1) continue;
    const count = new Uint32Array(size + 1);
    for (let i = 0; i < n; i++) count[values[order[i]!]! + 1]!++;
    for (let v = 0; v < size; v++) count[v + 1]! += count[v]!;
    for (let i = 0; i < n; i++) {
      const r = order[i]!;
      next[count[values[r]!]!++] = r;
    }
    [order, next] = [next, order];
  }
  return order;
}
