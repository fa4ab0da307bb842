/**
 * query/global-ids.ts — ids for one dimension's values that outlive a query, and memoized translations into them.
 *
 * Invariant: within one `GlobalIds`, a value's id never changes; `translation(dict)[local]` is either −1 (not looked
 * up yet) or the id of the value `dict.value(local)` — so a translation stays valid for as long as `dict` gives its
 * ids the same values, which every reader dictionary does (segment dictionaries are immutable, the head's only
 * append).
 *
 * Why: a query merges groups across readers whose dictionaries number the same value differently. Looking each
 * (reader, id) up by its string costs a hash lookup per value per query — a top-10 over an hour of ~20k images and
 * 8 segments spent a third of its time there. Memoized, a repeated query translates with array lookups only.
 * Bounded: a datasource starts a fresh `GlobalIds` for a dimension once it holds GLOBAL_IDS_MAX values
 * (GlobalIdSpace), and translations live as long as their dictionaries (a WeakMap; evicted segment dictionaries
 * take theirs along).
 */
import type { DictionaryView } from './reader.js';

/** Values one GlobalIds may hold before its datasource replaces it with an empty one. */
export const GLOBAL_IDS_MAX = 4_000_000;

export class GlobalIds {
  private readonly values: (string | null)[] = [null];
  private readonly ids = new Map<string, number>();
  private readonly memo = new WeakMap<DictionaryView, Int32Array>();

  get size(): number {
    return this.values.length;
  }

  value(id: number): string | null {
    return this.values[id] ?? null;
  }

  /** Local id → global id for `dict` (−1: not looked up yet), covering at least dict.size ids. */
  translation(dict: DictionaryView): Int32Array {
    let t = this.memo.get(dict);
    if (t === undefined || t.length < dict.size) {
      // A head dictionary grows: a longer table, the known prefix kept.
      const grown = new Int32Array(Math.max(dict.size, t === undefined ? 0 : Math.ceil(t.length * 1.5))).fill(-1);
      if (t !== undefined) grown.set(t);
      this.memo.set(dict, (t = grown));
    }
    return t;
  }

  /** The global id of local `id` of `dict`, recorded in its translation `t`. */
  resolve(dict: DictionaryView, t: Int32Array, id: number): number {
    const value = dict.value(id);
    let g = 0;
    if (value !== null) {
      const known = this.ids.get(value);
      if (known !== undefined) {
        g = known;
      } else {
        g = this.values.length;
        this.values.push(value);
        this.ids.set(value, g);
      }
    }
    t[id] = g;
    return g;
  }
}

/** The GlobalIds of each dimension of one datasource. */
export class GlobalIdSpace {
  private readonly dims = new Map<number, GlobalIds>();

  of(dim: number): GlobalIds {
    let g = this.dims.get(dim);
    if (g === undefined || g.size >= GLOBAL_IDS_MAX) this.dims.set(dim, (g = new GlobalIds()));
    return g;
  }
}
