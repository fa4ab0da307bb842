/**
 * segment/radix.ts — the orders a segment is built in, by radix sorts: rows by small integer keys (stable LSD),
 * and dictionary values by their strings (MSD over UTF-16 code units).
 *
 * Invariants: `rowOrder` returns the permutation that sorts rows by its keys, most significant first, ties kept in
 * row order — the same order as a stable comparison sort, in O(passes × (n + key size)) instead of O(n log n)
 * closure calls (shared/NOTES.md: a JS comparator took ~7 s for 10M rows). `stringOrder` returns the permutation
 * that sorts strings as JavaScript's `<` does (code unit by code unit, a prefix first), ties in index order — the
 * order of `Array.prototype.sort` with that comparator, at about half its cost (25k image ids: 4.0 against 8.0 ms).
 * Both run at every seal and merge.
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

/** Ranges at most this long are finished by insertion sort. */
const INSERTION_MAX = 16;
/** Code units from here up share the last bucket of a pass, which a comparison sort finishes (rare: non-Latin-1). */
const WIDE = 256;

/** True when strings[a] sorts before strings[b] (ties by index, so that the order is stable). */
function before(strings: readonly string[], a: number, b: number): boolean {
  const x = strings[a]!;
  const y = strings[b]!;
  return x < y || (x === y && a < b);
}

/** Indices of `strings`, ordered as `a < b` orders JavaScript strings; equal strings keep their index order. */
export function stringOrder(strings: readonly string[]): Uint32Array {
  const n = strings.length;
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  const tmp = new Uint32Array(n);
  const bucketOf = new Uint16Array(n);
  // Bucket 0: the string ends before `depth`; 1 + c: code unit c < WIDE; WIDE + 1: every wider code unit.
  const count = new Int32Array(WIDE + 3);
  const stack: number[] = [0, n, 0];
  while (stack.length > 0) {
    const depth = stack.pop()!;
    const hi = stack.pop()!;
    const lo = stack.pop()!;
    if (hi - lo <= INSERTION_MAX) {
      for (let i = lo + 1; i < hi; i++) {
        const v = idx[i]!;
        let j = i;
        while (j > lo && before(strings, v, idx[j - 1]!)) {
          idx[j] = idx[j - 1]!;
          j--;
        }
        idx[j] = v;
      }
      continue;
    }
    count.fill(0);
    for (let i = lo; i < hi; i++) {
      const s = strings[idx[i]!]!;
      const b = depth < s.length ? Math.min(s.charCodeAt(depth), WIDE) + 1 : 0;
      bucketOf[i] = b;
      count[b + 1]!++;
    }
    if (count[1] === hi - lo) continue; // every string ended: all equal, already in index order
    let single = -1;
    for (let b = 1; b <= WIDE + 1; b++) if (count[b + 1] === hi - lo) single = b;
    if (single > 0 && single <= WIDE) {
      // One code unit at this depth for the whole range (a shared prefix): nothing moves.
      stack.push(lo, hi, depth + 1);
      continue;
    }
    for (let b = 0; b <= WIDE + 1; b++) count[b + 1]! += count[b]!;
    // count[b] is now bucket b's start (relative to lo); distribute in index order (stable).
    const starts = count.slice(0, WIDE + 2);
    for (let i = lo; i < hi; i++) tmp[lo + count[bucketOf[i]!]!++] = idx[i]!;
    idx.set(tmp.subarray(lo, hi), lo);
    for (let b = 1; b <= WIDE; b++) {
      const s = lo + starts[b]!;
      const e = lo + starts[b + 1]!;
      if (e - s > 1) stack.push(s, e, depth + 1);
    }
    const ws = lo + starts[WIDE + 1]!;
    if (hi - ws > 1) {
      // Wide code units at this depth: a comparison sort of the (rare) range, stable by index.
      const part = Array.from(idx.subarray(ws, hi));
      part.sort((a, b) => (before(strings, a, b) ? -1 : before(strings, b, a) ? 1 : 0));
      idx.set(part, ws);
    }
  }
  return idx;
}
