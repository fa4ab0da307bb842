/**
 * query/execute.ts — runs a resolved `Plan` over a set of readers (head buckets and segments alike).
 *
 * Invariant: the answer depends only on the rows the readers hold, never on how rows are split among readers,
 * which dictionary ids they use, or which strategy (bitmap or scan) answers a reader. The property test compares
 * every answer against a plain reference model to hold this.
 *
 * Algorithm, per reader:
 *  1. The base row set = time-range rows ∧ filter, as bitmap algebra (filter.ts).
 *  2. If every aggregation is a (possibly filtered) row count, the reader lies in one time bucket, and the
 *     group-by dimensions have few value combinations in this reader, counts come from bitmap cardinalities:
 *     |base ∧ value bitmaps ∧ aggregation filter| — no row is visited (the *bitmap* strategy).
 *  3. Row counts per fixed time bucket with no group-by (clicks per minute): a counter per bucket (bucketCounts).
 *  4. Row counts grouped by one dimension within one time bucket (top images): a counter per dictionary id
 *     (countByKey, or countFirstMet when the rows are few), folded into the groups. When every count is over the
 *     base rows and the dimension has too many values for step 2, the base rows stay the time range's row list
 *     (filter.ts `timeRangeSelection`) instead of becoming a bitmap.
 *  5. Otherwise rows of the base set are visited once to find their group, and once per aggregation over that
 *     aggregation's row set (the *scan* strategy).
 * Groups are global across readers: a group id comes from (time bucket, value of each group-by dimension), with
 * reader-local dictionary ids translated to query ids through the datasource's GlobalIds (global-ids.ts, memoized
 * across queries), so no per-reader partial results are merged by string keys.
 */
import { TallyError, assert } from '../errors.js';
import type { Limits } from '../limits.js';
import { bucketStart, HOUR_MS } from '../time.js';
import { kernels } from '../native/index.js';
import { cardinality, evalFilter, selection, timeRangeRows, timeRangeSelection, intersect, releaseScratch, resetScratch, rowsOf, scratchMark, testRange, type RowSet } from './filter.js';
import type { DictionaryView, SegmentReader, Selection } from './reader.js';
import type { GlobalIds, GlobalIdSpace } from './global-ids.js';
import type { Plan, QueryResult, QueryStats, ResolvedExpr, ResolvedHaving } from './shape.js';
import { lookupAny, planKey, remember, type Contribution } from './result-cache.js';

type Cell = string | number | null;

/**
 * Query ids for one dimension: dense from 0 in the order the query meets values, so group keys keep one radix
 * (the sum of the readers' dictionary sizes bounds them). Reader-local ids go through the datasource's GlobalIds,
 * whose memoized translations make a repeated query's lookups array reads instead of string hashing.
 */
class QueryDictionary {
  /** Upper bound of query ids, fixed before execution so composite group keys keep one radix. */
  radix = 0;
  /** Global id → query id + 1 (0: not met yet). */
  private local = new Int32Array(64);
  private readonly globalOf: number[] = [];

  constructor(readonly globals: GlobalIds) {}

  plan(dicts: Iterable<DictionaryView>): void {
    for (const d of dicts) this.radix += d.size;
    if (this.radix === 0) this.radix = 1;
  }

  /** Local id → global id for readers using `dict` (−1 until first looked up). */
  translation(dict: DictionaryView): Int32Array {
    return this.globals.translation(dict);
  }

  /** The global id of local `id` of `dict`, under its translation `t`. */
  global(dict: DictionaryView, t: Int32Array, id: number): number {
    const g = t[id]!;
    return g >= 0 ? g : this.globals.resolve(dict, t, id);
  }

  /** The query id of local `id` of `dict`, under its translation `t`. */
  id(dict: DictionaryView, t: Int32Array, id: number): number {
    let g = t[id]!;
    if (g < 0) g = this.globals.resolve(dict, t, id);
    if (g >= this.local.length) {
      const grown = new Int32Array(Math.max(g + 1, this.local.length * 2));
      grown.set(this.local);
      this.local = grown;
    }
    const q = this.local[g]!;
    if (q !== 0) return q - 1;
    this.globalOf.push(g);
    this.local[g] = this.globalOf.length;
    return this.globalOf.length - 1;
  }

  value(q: number): string | null {
    return this.globals.value(this.globalOf[q]!);
  }
}

const DENSE_GROUP_TABLE_MAX = 1 << 20;
/** Counters per dictionary id reused by the counts-by-one-dimension strategy, all zero between uses. */
const idCounterScratch: Float64Array[] = [];
/** Dictionaries above this many values get counters of their own (not kept: 8 bytes an id each). */
const ID_COUNTERS_KEPT_MAX = 1 << 20;

/** `k` zeroed counter arrays of at least `size` entries (the caller leaves them zeroed again). */
function idCounters(k: number, size: number): Float64Array[] {
  if (size > ID_COUNTERS_KEPT_MAX) return Array.from({ length: k }, () => new Float64Array(size));
  for (let i = 0; i < k; i++) {
    if (i === idCounterScratch.length) idCounterScratch.push(new Float64Array(0));
    if (idCounterScratch[i]!.length < size) idCounterScratch[i] = new Float64Array(Math.min(ID_COUNTERS_KEPT_MAX, Math.max(size, 2 * idCounterScratch[i]!.length)));
  }
  return idCounterScratch.slice(0, k);
}
/**
 * Count the rows of `sel` per id of `ids` into `counts` (each adds its weight, or 1; weights are ≥ 1, so a
 * counter at 0 marks an id not yet met) and list the ids in the order they are first met (kernels.countFirstMet):
 * a scratch view, valid until the next call.
 */
function countFirstMet(ids: Uint32Array, sel: Selection, weights: Float64Array | null, counts: Float64Array): Uint32Array {
  const rows = sel.end - sel.start;
  if (firstMetScratch.length < rows) firstMetScratch = new Uint32Array(Math.max(rows, 2 * firstMetScratch.length));
  return firstMetScratch.subarray(0, kernels.countFirstMet(ids, sel.rows, sel.start, sel.end, weights, counts, firstMetScratch));
}
let firstMetScratch = new Uint32Array(1024);
let groupScratch = new Int32Array(1024);
/**
 * The group of each dictionary id of a reader's one group-by dimension, valid where `idStamp[id]` equals the
 * reader's stamp: a scan then translates each distinct id and looks its group up once, not once per row.
 */
let idGroup = new Int32Array(1024);
let idStamp = new Uint32Array(1024);
let stamp = 0;
const BITMAP_COMBINATIONS_MAX = 4096;
/** How often counts by one dimension kept their base rows as a list (tests check that the path runs). */
export const countPaths = { baseList: 0 };
/** A running query yields to the event loop at least this often. */
const YIELD_EVERY_MS = 8;
/**
 * One bitmap intersection or cardinality (an N-API call on a small bitmap) costs about as much as visiting this
 * many rows in the scan loop (measured: ~1 µs against ~30 ns per row on this machine). The bitmap strategy is
 * chosen when its calls, weighed by this, cost less than visiting the base rows.
 */
const BITMAP_CALL_COST_ROWS = 32;

/** Where groups live: accumulators per aggregation, grown as groups appear. */
class Groups {
  count = 0;
  private capacity = 64;
  bucket: number[] = [];
  gids: number[][];
  /** acc[a]: count, or sum/min/max; n[a]: non-null values seen (sum/min/max/avg). */
  acc: Float64Array[];
  n: Float64Array[];
  distinct: Set<number>[][];
  /** The aggregations that are distinct counts (a set per group each). */
  private readonly distinctAggs: number[];
  /** Composite key → group + 1 (0: no group yet), when the key space is small enough for a table. */
  private readonly dense: Int32Array | null;
  private readonly numeric: Map<number, number> | null;
  private readonly text: Map<string, number> | null;

  constructor(private readonly plan: Plan, readonly radices: number[], private readonly maxGroups: number) {
    this.gids = plan.groupDims.map(() => []);
    this.acc = plan.aggregations.map((a) => this.initial(a.type, 64));
    this.n = plan.aggregations.map(() => new Float64Array(64));
    this.distinct = plan.aggregations.map(() => []);
    this.distinctAggs = plan.aggregations.flatMap((a, i) => (a.type === 'distinctCount' ? [i] : []));
    let product = 1;
    for (const r of radices) product *= r;
    // Group + 1 per composite key, 0 for none yet: a new typed array is zeroed already (no fill pass).
    this.dense = product <= DENSE_GROUP_TABLE_MAX ? new Int32Array(product) : null;
    this.numeric = this.dense === null && product <= Number.MAX_SAFE_INTEGER ? new Map() : null;
    this.text = this.dense === null && this.numeric === null ? new Map() : null;
  }

  /** Forget every group (the arrays stay allocated), as a new Groups of the same plan would start. */
  clear(): void {
    for (let i = 0; i < this.plan.aggregations.length; i++) {
      const type = this.plan.aggregations[i]!.type;
      this.acc[i]!.fill(type === 'min' ? Infinity : type === 'max' ? -Infinity : 0, 0, this.count);
      this.n[i]!.fill(0, 0, this.count);
    }
    for (const d of this.distinct) d.length = 0;
    for (const g of this.gids) g.length = 0;
    this.bucket.length = 0;
    this.dense?.fill(0);
    this.numeric?.clear();
    this.text?.clear();
    this.count = 0;
  }

  private initial(type: string, size: number): Float64Array {
    const a = new Float64Array(size);
    if (type === 'min') a.fill(Infinity);
    if (type === 'max') a.fill(-Infinity);
    return a;
  }

  /** The group of (bucket index, query-wide ids); `key` is the composite numeric key when one fits. */
  find(bucketIdx: number, bucket: number, ids: ArrayLike<number>): number {
    let g: number | undefined;
    if (this.text !== null) {
      let k = String(bucketIdx);
      for (let i = 0; i < ids.length; i++) k += `,${ids[i]}`;
      g = this.text.get(k);
      if (g === undefined) this.text.set(k, (g = this.create(bucket, ids)));
      return g;
    }
    let key = bucketIdx;
    for (let i = 0; i < ids.length; i++) key = key * this.radices[i + 1]! + ids[i]!;
    if (this.dense !== null) {
      g = this.dense[key]! - 1;
      if (g < 0) this.dense[key] = (g = this.create(bucket, ids)) + 1;
      return g;
    }
    g = this.numeric!.get(key);
    if (g === undefined) this.numeric!.set(key, (g = this.create(bucket, ids)));
    return g;
  }

  private create(bucket: number, ids: ArrayLike<number>): number {
    const g = this.count;
    if (g >= this.maxGroups) {
      throw new TallyError('QUERY_TOO_MANY_GROUPS', `the query builds more than ${this.maxGroups} groups; narrow the time range or filter, or group by fewer dimensions`, { limit: this.maxGroups });
    }
    if (g === this.capacity) this.grow();
    this.bucket.push(bucket);
    for (let i = 0; i < ids.length; i++) this.gids[i]!.push(ids[i]!);
    for (const i of this.distinctAggs) this.distinct[i]!.push(new Set());
    this.count = g + 1;
    return g;
  }

  private grow(): void {
    const cap = this.capacity * 2;
    this.acc = this.acc.map((old, i) => {
      const a = this.initial(this.plan.aggregations[i]!.type, cap);
      a.set(old);
      return a;
    });
    this.n = this.n.map((old) => {
      const a = new Float64Array(cap);
      a.set(old);
      return a;
    });
    this.capacity = cap;
  }
}

/**
 * Run `plan` over `readers`. With `resultCache`, what a reader wholly inside the time range contributes to a query
 * without group-by is kept and reused while the reader's rows are unchanged (result-cache.ts); the answer is the
 * same either way.
 */
export async function execute(plan: Plan, readers: readonly SegmentReader[], limits: Limits, startedAt: number, globals: GlobalIdSpace, resultCache = true): Promise<QueryResult> {
  const stats: QueryStats = { elapsedMs: 0, readers: readers.length, rowsScanned: 0, bitmapReaders: 0, cachedReaders: 0, extendedReaders: 0, groups: 0 };
  const b = plan.bucketing;
  const groupDims = plan.groupDims;

  // Query-wide dictionaries for group-by and distinct dimensions, and the radix of each group-key component.
  const qdicts = new Map<number, QueryDictionary>();
  const dimsNeedingIds = new Set<number>(groupDims);
  for (const a of plan.aggregations) if (a.dim >= 0) dimsNeedingIds.add(a.dim);
  for (const dim of dimsNeedingIds) {
    const qd = new QueryDictionary(globals.of(dim));
    qd.plan(new Set(readers.map((r) => r.dictionary(dim))));
    qdicts.set(dim, qd);
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const r of readers) {
    lo = Math.min(lo, Math.max(r.minTs, plan.from));
    hi = Math.max(hi, Math.min(r.maxTs, plan.to - 1));
  }
  let bucketRadix = 1;
  if (b.kind === 'fixed' && hi >= lo) bucketRadix = Math.floor(hi / b.sizeMs) - Math.floor(lo / b.sizeMs) + 1;
  if (b.kind === 'calendar' && hi >= lo) bucketRadix = Math.ceil((hi - lo + 1) / (b.unitMs === HOUR_MS ? HOUR_MS / 4 : b.unitMs / 2)) + 3;
  const answer = new Groups(plan, [bucketRadix, ...groupDims.map((d) => qdicts.get(d)!.radix)], limits.maxGroups);
  // Where runReader puts what it finds: the query's groups, or a reader's own group (see runContributing).
  let groups = answer;
  const bucketIndex = new Map<number, number>();
  const queryBucketIdx = (start: number): number => {
    let i = bucketIndex.get(start);
    if (i === undefined) {
      i = bucketIndex.size;
      assert(i < bucketRadix, 'bucket count within its radix');
      bucketIndex.set(start, i);
    }
    return i;
  };
  let bucketIdxOf = queryBucketIdx;

  const allCounts = plan.aggregations.every((a) => a.type === 'count' && a.metric < 0);
  // Fast path for "row counts per fixed time bucket" (clicks per minute): a dense counter per bucket, folded into
  // the groups at the end, instead of a group lookup per row.
  const bucketCounter = allCounts && groupDims.length === 0 && b.kind === 'fixed' && hi >= lo && plan.aggregations.every((a) => a.filter === null)
    ? { size: b.sizeMs, first: Math.floor(lo / b.sizeMs), counts: new Float64Array(Math.floor(hi / b.sizeMs) - Math.floor(lo / b.sizeMs) + 1) }
    : null;
  const gidScratch = new Array<number>(groupDims.length).fill(0);

  /**
   * Counts by one dimension within one time bucket: a counter per dictionary id of `reader` for each aggregation's
   * rows (`sets[i]`, null for none; each a subset of `base`), folded into the groups at the end. `presentAt` names
   * the counter that says which ids the base rows hold: 0 when every set is the base, else a counter of its own
   * (aggregations.length).
   */
  const countByOneDimension = (reader: SegmentReader, base: Selection, sets: (Selection | null)[], presentAt: number, firstBucket: number, groupDicts: DictionaryView[], groupQds: QueryDictionary[], translations: Int32Array[]): void => {
    const ids = reader.dimensionIds(groupDims[0]!);
    const size = groupDicts[0]!.size;
    let rows = 0;
    for (const set of sets) if (set !== null) rows += set.end - set.start;
    // With fewer rows than a quarter of the dictionary, the fold goes over the ids the base rows hold, listed as
    // the base rows' counting first meets them (the groups then come in the order a scan makes them), rather than
    // over the whole dictionary.
    const sparse = rows < size / 4;
    stats.rowsScanned += rows;
    const A = plan.aggregations.length;
    // Counters per id: zeroed scratch, reused (the fold below zeroes every counter it reads, and no counter is
    // nonzero that it does not read).
    const local = idCounters(A + 1, size);
    // Rolled-up rows each stand for several events: counts read the rollup's count column.
    const ru = reader.rollup();
    const weights = ru === null ? null : ru.counts;
    let folded = false;
    try {
      const found = sparse ? countFirstMet(ids, base, presentAt === 0 ? weights : null, local[presentAt]!) : null;
      sets.forEach((sel, i) => {
        if (sel === null || (found !== null && i === presentAt)) return;
        kernels.countByKey(ids, sel.rows, sel.start, sel.end, weights, local[i]!);
      });
      const present = local[presentAt]!;
      if (found === null && presentAt === A) kernels.countByKey(ids, base.rows, base.start, base.end, null, present);
      const bIdx = bucketIdxOf(firstBucket);
      const t = translations[0]!;
      const qd0 = groupQds[0]!;
      const dict0 = groupDicts[0]!;
      // One loop for both orders (the ids met, or every id present): a fold closure called from two loops measured
      // 5–8% slower on the CTR question at the 100M density.
      const many = found === null ? size : found.length;
      for (let j = 0; j < many; j++) {
        const id = found === null ? j : found[j]!;
        if (present[id] === 0) continue;
        gidScratch[0] = qd0.id(dict0, t, id);
        const g = groups.find(bIdx, firstBucket, gidScratch);
        for (let i = 0; i < A; i++) {
          groups.acc[i]![g]! += local[i]![id]!;
          local[i]![id] = 0;
        }
        present[id] = 0;
      }
      folded = true;
    } finally {
      // A failure part-way (too many groups) leaves counts behind: clear them for the next use.
      if (!folded) for (const c of local) c.fill(0, 0, size);
    }
  };
  // Every aggregation a count over the base rows, grouped by one dimension (see runReader).
  const countsOverBase = allCounts && groupDims.length === 1 && plan.aggregations.every((a) => a.filter === null);

  const runReader = (reader: SegmentReader): void => {
    const n = reader.rowCount;
    if (n === 0) return;
    // Row sets of the reader before are void from here (filter.ts's scratch arena).
    resetScratch();
    // The filter first, then the time range over just the rows it kept (a reader straddling a range end).
    const within = plan.filter === null ? 'all' : evalFilter(plan.filter, reader);
    if (within === 'none') return;
    const firstBucket = bucketStart(Math.max(reader.minTs, plan.from), b);
    const oneBucket = b.kind === 'all' || firstBucket === bucketStart(Math.min(reader.maxTs, plan.to - 1), b);
    const groupDicts = groupDims.map((d) => reader.dictionary(d));
    const groupQds = groupDims.map((d) => qdicts.get(d)!);
    // Counts by one dimension too large for the bitmap strategy, every count over the base rows (top images by
    // clicks): the base rows are only listed, so they stay a row list (no bitmap built from them and listed again).
    if (countsOverBase && oneBucket && groupDicts[0]!.size > BITMAP_COMBINATIONS_MAX) {
      const base = timeRangeSelection(reader, plan.from, plan.to, within);
      if (base === 'none') return;
      countPaths.baseList++;
      const translations = [groupQds[0]!.translation(groupDicts[0]!)];
      countByOneDimension(reader, base, plan.aggregations.map(() => base), 0, firstBucket, groupDicts, groupQds, translations);
      return;
    }
    const base = timeRangeRows(reader, plan.from, plan.to, within);
    if (base === 'none') return;
    const translations = groupDims.map((d, k) => groupQds[k]!.translation(groupDicts[k]!));
    const aggFilterSets = new Map<string, RowSet>();
    const aggFilterSet = (key: string, f: Plan['aggregations'][number]['filter']): RowSet => {
      if (f === null) return 'all';
      let s = aggFilterSets.get(key);
      if (s === undefined) aggFilterSets.set(key, (s = evalFilter(f, reader)));
      return s;
    };

    // Rolled-up rows each stand for several events: counts and metric folds read the rollup columns.
    const ru = reader.rollup();

    // ---- bitmap strategy: counts from cardinalities, no row visited ----------------------------------------
    if (allCounts && oneBucket && ru === null) {
      let combinations = 1;
      for (const d of groupDims) combinations *= reader.dictionary(d).size;
      const calls = groupDims.length === 0 ? plan.aggregations.length : combinations * (plan.aggregations.length + 1);
      if (combinations <= BITMAP_COMBINATIONS_MAX && (groupDims.length === 0 || calls * BITMAP_CALL_COST_ROWS <= cardinality(base, n))) {
        stats.bitmapReaders++;
        const bIdx = bucketIdxOf(firstBucket);
        const addCounts = (set: RowSet): void => {
          const g = groups.find(bIdx, firstBucket, gidScratch);
          plan.aggregations.forEach((a, i) => {
            const f = aggFilterSet(a.filterKey, a.filter);
            let c: number;
            if (f === 'none' || set === 'none') c = 0;
            else if (f === 'all') c = cardinality(set, n);
            else if (set === 'all') c = f.size;
            else c = set.andCardinality(f);
            groups.acc[i]![g]! += c;
          });
        };
        const level = (depth: number, set: RowSet): void => {
          if (depth === groupDims.length) {
            addCounts(set);
            return;
          }
          const dim = groupDims[depth]!;
          const size = reader.dictionary(dim).size;
          const t = translations[depth]!;
          const mark = scratchMark();
          for (let id = 0; id < size; id++) {
            const bm = reader.bitmap(dim, id);
            if (bm === null) continue;
            const sub = intersect(set, bm);
            if (sub !== 'none' && (sub === 'all' || sub.size > 0)) {
              gidScratch[depth] = groupQds[depth]!.id(groupDicts[depth]!, t, id);
              level(depth + 1, sub);
            }
            releaseScratch(mark); // `sub` and what the levels below built are done with
          }
        };
        // Aggregation filters are evaluated before the levels below release their scratch sets step by step.
        for (const a of plan.aggregations) aggFilterSet(a.filterKey, a.filter);
        level(0, base);
        return;
      }
    }

    // ---- counts per fixed bucket: one counter increment per row ----------------------------------------------
    if (bucketCounter !== null && ru === null && !oneBucket) {
      const sel = selection(base, n);
      stats.rowsScanned += sel.end - sel.start;
      const { size, first, counts } = bucketCounter;
      reader.bucketCounts(sel, size, first, counts);
      return;
    }

    // ---- counts by one dimension (top images): a counter per dictionary id, folded into groups at the end ------
    if (allCounts && oneBucket && groupDims.length === 1) {
      const sets = plan.aggregations.map((a) => {
        const f = aggFilterSet(a.filterKey, a.filter);
        return f === 'all' ? base : intersect(base, f);
      });
      // A group exists for every value of a base row, also when a filtered count of it is 0 (as in the scan): the
      // base rows' own counts say which ids are present — the first aggregation's counter when every count is over
      // the base rows, else one of their own. Every set is a subset of the base rows, so an id absent there has
      // all counts 0.
      const presentAt = sets.every((set) => set === base) ? 0 : plan.aggregations.length;
      countByOneDimension(reader, selection(base, n), sets.map((set) => (set === 'none' ? null : selection(set, n))), presentAt, firstBucket, groupDicts, groupQds, translations);
      return;
    }

    // ---- scan strategy ------------------------------------------------------------------------------------
    const baseRows = base === 'all' ? null : rowsOf(base);
    const baseCount = baseRows === null ? n : baseRows.length;
    stats.rowsScanned += baseCount;
    // The group of each base row; only base rows are written and read, so the scratch is reused across readers
    // and queries (runReader is synchronous) without clearing it.
    if (groupScratch.length < n) groupScratch = new Int32Array(Math.max(n, groupScratch.length * 2));
    const groupOf = groupScratch;
    const dimIds = groupDims.map((d) => reader.dimensionIds(d));
    // The timestamps of base row i are ts[tsRows === null ? tsStart + i : tsRows[tsStart + i]].
    const view = oneBucket ? null : reader.timestampsFor({ rows: baseRows, start: 0, end: baseCount });
    const ts = view === null ? null : view.ts;
    const tsRows = view === null ? null : view.sel.rows;
    const tsStart = view === null ? 0 : view.sel.start;
    const constIdx = oneBucket ? bucketIdxOf(firstBucket) : 0;
    let lastStart = NaN;
    let lastIdx = 0;
    if (ts === null && groupDims.length === 1) {
      // One bucket, one group-by dimension (top images over a few minutes): a group per distinct id, found once.
      const size = groupDicts[0]!.size;
      if (idStamp.length < size || stamp === 0xffffffff) {
        idStamp = new Uint32Array(Math.max(size, idStamp.length));
        idGroup = new Int32Array(idStamp.length);
        stamp = 0;
      }
      const s = ++stamp;
      const ids = dimIds[0]!;
      const qd0 = groupQds[0]!;
      const dict0 = groupDicts[0]!;
      const t0 = translations[0]!;
      for (let i = 0; i < baseCount; i++) {
        const r = baseRows === null ? i : baseRows[i]!;
        const id = ids[r]!;
        if (idStamp[id] !== s) {
          idStamp[id] = s;
          gidScratch[0] = qd0.id(dict0, t0, id);
          idGroup[id] = groups.find(constIdx, firstBucket, gidScratch);
        }
        groupOf[r] = idGroup[id]!;
      }
    } else {
      for (let i = 0; i < baseCount; i++) {
        const r = baseRows === null ? i : baseRows[i]!;
        let bIdx = constIdx;
        let start = firstBucket;
        if (ts !== null) {
          start = bucketStart(ts[tsRows === null ? tsStart + i : tsRows[tsStart + i]!]!, b);
          if (start !== lastStart) {
            lastStart = start;
            lastIdx = bucketIdxOf(start);
          }
          bIdx = lastIdx;
        }
        for (let k = 0; k < groupDims.length; k++) gidScratch[k] = groupQds[k]!.id(groupDicts[k]!, translations[k]!, dimIds[k]![r]!);
        groupOf[r] = groups.find(bIdx, start, gidScratch);
      }
    }

    plan.aggregations.forEach((a, i) => {
      const f = aggFilterSet(a.filterKey, a.filter);
      const set = f === 'all' ? base : intersect(base, f);
      if (set === 'none') return;
      const rows = set === 'all' ? null : set === base ? baseRows : rowsOf(set);
      const count = rows === null ? n : rows.length;
      if (f !== 'all') stats.rowsScanned += count;
      const acc = groups.acc[i]!;
      const nn = groups.n[i]!;
      if (a.type === 'count' && a.metric < 0) {
        if (ru !== null) {
          const w = ru.counts;
          for (let j = 0; j < count; j++) {
            const r = rows === null ? j : rows[j]!;
            acc[groupOf[r]!]! += w[r]!;
          }
          return;
        }
        for (let j = 0; j < count; j++) acc[groupOf[rows === null ? j : rows[j]!]!]!++;
        return;
      }
      if (a.type === 'distinctCount') {
        const ids = reader.dimensionIds(a.dim);
        const qd = qdicts.get(a.dim)!;
        const dict = reader.dictionary(a.dim);
        const t = qd.translation(dict);
        const sets = groups.distinct[i]!;
        for (let j = 0; j < count; j++) {
          const r = rows === null ? j : rows[j]!;
          const id = ids[r]!;
          if (id !== 0) sets[groupOf[r]!]!.add(qd.global(dict, t, id));
        }
        return;
      }
      const values = reader.metricValues(a.metric);
      if (ru !== null) {
        // values holds each row's sum; the rollup columns its non-null count, min and max.
        const m = ru.metrics[a.metric]!;
        for (let j = 0; j < count; j++) {
          const r = rows === null ? j : rows[j]!;
          const c = m.count[r]!;
          if (c === 0) continue;
          const g = groupOf[r]!;
          switch (a.type) {
            case 'count': acc[g]! += c; break;
            case 'sum': case 'avg': acc[g]! += values[r]!; nn[g]! += c; break;
            case 'min': if (m.min[r]! < acc[g]!) acc[g] = m.min[r]!; nn[g]! += c; break;
            case 'max': if (m.max[r]! > acc[g]!) acc[g] = m.max[r]!; nn[g]! += c; break;
          }
        }
        return;
      }
      for (let j = 0; j < count; j++) {
        const r = rows === null ? j : rows[j]!;
        const v = values[r]!;
        if (v !== v) continue; // NaN: null
        const g = groupOf[r]!;
        switch (a.type) {
          case 'count': acc[g]!++; break;
          case 'sum': case 'avg': acc[g]! += v; nn[g]!++; break;
          case 'min': if (v < acc[g]!) acc[g] = v; nn[g]!++; break;
          case 'max': if (v > acc[g]!) acc[g] = v; nn[g]!++; break;
        }
      }
    });
  };

  // A reader wholly inside the range of a query without group-by, in one time bucket, runs into a group of its own
  // that is then merged into the answer: that contribution can be kept and reused while the reader's rows are
  // unchanged (result-cache.ts). Such readers take this path with the cache off too, so the answer is the same.
  const key = planKey(plan);
  const own = key === null ? null : new Groups(plan, [1], limits.maxGroups);
  const ownBucketIdx = (): number => 0;
  const A = plan.aggregations.length;
  const contributes = (r: SegmentReader): boolean =>
    own !== null && r.minTs >= plan.from && r.maxTs < plan.to && (b.kind === 'all' || bucketStart(r.minTs, b) === bucketStart(r.maxTs, b));
  /** `prev` (computed at `from` rows) brought to the reader's `to` rows by testing rows from..to−1 alone. */
  const extendCounts = (reader: SegmentReader, prev: Contribution, from: number, to: number): Contribution => {
    const n = to - from;
    const base = new Uint8Array(n);
    if (plan.filter === null) base.fill(1);
    else testRange(plan.filter, reader, from, to, base);
    let matched = 0;
    for (let i = 0; i < n; i++) matched += base[i]!;
    // As runReader would at `to` rows: a group when some row matches the filter, holding each aggregation's count.
    const had = prev.bucket !== null;
    const c: Contribution = {
      bucket: had ? prev.bucket : matched > 0 ? bucketStart(Math.max(reader.minTs, plan.from), b) : null,
      acc: had ? Float64Array.from(prev.acc) : new Float64Array(A),
      n: had ? Float64Array.from(prev.n) : new Float64Array(A),
    };
    if (matched === 0) return c;
    let mask: Uint8Array | null = null;
    plan.aggregations.forEach((a, i) => {
      if (a.filter === null) {
        c.acc[i]! += matched;
        return;
      }
      mask ??= new Uint8Array(n);
      testRange(a.filter, reader, from, to, mask);
      let k = 0;
      for (let r = 0; r < n; r++) k += base[r]! & mask[r]!;
      c.acc[i]! += k;
    });
    return c;
  };
  const runContributing = (reader: SegmentReader): void => {
    const rows = reader.rowCount;
    const kept = resultCache ? lookupAny(reader, key!) : undefined;
    let c: Contribution | undefined;
    if (kept !== undefined && kept.rows === rows) {
      c = kept.c;
      stats.cachedReaders++;
    } else if (kept !== undefined && kept.rows < rows && allCounts && reader.rollup() === null) {
      // Row counts only (the bitmap strategy's domain for a reader in one bucket): a kept count extends exactly.
      c = extendCounts(reader, kept.c, kept.rows, rows);
      stats.extendedReaders++;
      remember(reader, rows, key!, c);
    } else {
      own!.clear();
      groups = own!;
      bucketIdxOf = ownBucketIdx;
      try {
        runReader(reader);
      } finally {
        groups = answer;
        bucketIdxOf = queryBucketIdx;
      }
      assert(own!.count <= 1, 'a reader in one time bucket makes at most one group');
      c = { bucket: own!.count === 1 ? own!.bucket[0]! : null, acc: new Float64Array(A), n: new Float64Array(A) } satisfies Contribution;
      for (let i = 0; i < A; i++) {
        c.acc[i] = own!.acc[i]![0]!;
        c.n[i] = own!.n[i]![0]!;
      }
      if (resultCache && rows > 0) remember(reader, rows, key!, c);
    }
    if (c.bucket === null) return;
    const g = answer.find(queryBucketIdx(c.bucket), c.bucket, gidScratch);
    for (let i = 0; i < A; i++) {
      const acc = answer.acc[i]!;
      switch (plan.aggregations[i]!.type) {
        case 'min': if (c.acc[i]! < acc[g]!) acc[g] = c.acc[i]!; break;
        case 'max': if (c.acc[i]! > acc[g]!) acc[g] = c.acc[i]!; break;
        default: acc[g]! += c.acc[i]!;
      }
      answer.n[i]![g]! += c.n[i]!;
    }
  };

  // Readers run one at a time; between them the query checks its deadline and, every few milliseconds, yields
  // to the event loop so that ingest and other requests are served while a long query runs.
  let lastYield = performance.now();
  for (const reader of readers) {
    if (contributes(reader)) runContributing(reader);
    else runReader(reader);
    const now = performance.now();
    if (now - startedAt > limits.queryTimeoutMs) {
      throw new TallyError('QUERY_TIMEOUT', `the query ran longer than ${limits.queryTimeoutMs} ms and was cancelled; narrow its time range or filter`, { limit: limits.queryTimeoutMs });
    }
    if (now - lastYield > YIELD_EVERY_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      lastYield = performance.now();
    }
  }

  // A query with neither time buckets nor group-by answers one row even when nothing matched (as SQL does).
  if (bucketCounter !== null) {
    const { size, first, counts } = bucketCounter;
    for (let i = 0; i < counts.length; i++) {
      if (counts[i] === 0) continue;
      const start = (first + i) * size;
      const g = answer.find(queryBucketIdx(start), start, gidScratch);
      for (let a = 0; a < plan.aggregations.length; a++) answer.acc[a]![g]! += counts[i]!;
    }
  }
  resetScratch(); // the last reader's scratch sets go back (their memory at once)
  if (answer.count === 0 && groupDims.length === 0 && b.kind === 'all') answer.find(0, 0, gidScratch);
  stats.groups = answer.count;
  const result = finish(plan, answer, qdicts);
  stats.elapsedMs = performance.now() - startedAt;
  return { columns: [...plan.columns], rows: result, stats };
}

/** Output values, HAVING, ORDER BY with the implicit tie-break, OFFSET/LIMIT. */
function finish(plan: Plan, groups: Groups, qdicts: Map<number, QueryDictionary>): Cell[][] {
  const timeCols = plan.bucketing.kind === 'all' ? 0 : 1;
  const dimCols = plan.groupDims.length;
  const aggCols = plan.aggregations.length;
  const width = plan.columns.length;
  const G = groups.count;

  const aggValue = (g: number, i: number): number | null => {
    const a = plan.aggregations[i]!;
    const acc = groups.acc[i]![g]!;
    const n = groups.n[i]![g]!;
    switch (a.type) {
      case 'count': return acc;
      case 'distinctCount': return groups.distinct[i]![g]!.size;
      case 'avg': return n === 0 ? null : acc / n;
      default: return n === 0 ? null : acc;
    }
  };
  const row = (g: number): Cell[] => {
    const out = new Array<Cell>(width);
    let c = 0;
    if (timeCols) out[c++] = groups.bucket[g]!;
    for (let k = 0; k < dimCols; k++) out[c++] = qdicts.get(plan.groupDims[k]!)!.value(groups.gids[k]![g]!);
    for (let i = 0; i < aggCols; i++) out[c++] = aggValue(g, i);
    for (const p of plan.postAggregations) out[c++] = evalExpr(p.expr, out);
    return out;
  };

  let rows: Cell[][];
  const pre = preselect(plan, G, timeCols + dimCols, aggValue);
  if (pre !== null) {
    rows = new Array(pre.length);
    for (let i = 0; i < pre.length; i++) rows[i] = row(pre[i]!);
  } else {
    rows = new Array(G);
    for (let g = 0; g < G; g++) rows[g] = row(g);
  }
  if (plan.having !== null) {
    const h = plan.having;
    rows = rows.filter((r) => evalHaving(h, r));
  }
  const keyCols = timeCols + dimCols;
  const cmp = (x: Cell[], y: Cell[]): number => {
    for (const o of plan.orderBy) {
      const c = compareCells(x[o.column]!, y[o.column]!, o.desc);
      if (c !== 0) return c;
    }
    for (let c = 0; c < keyCols; c++) {
      const d = compareCells(x[c]!, y[c]!, false);
      if (d !== 0) return d;
    }
    return 0;
  };
  const end = plan.limit === null ? rows.length : Math.min(rows.length, plan.offset + plan.limit);
  return topK(rows, end, cmp).slice(plan.offset, end);
}

/**
 * Groups that can be in the first offset + limit rows, when the first ORDER BY column is an aggregation with no
 * nulls and no HAVING applies: those whose value is at least as good as the k-th best (ties kept, so the full
 * comparison decides among them). A top-10 of thousands of groups then builds a few rows instead of all. Null when
 * it does not apply (every group is a candidate).
 */
function preselect(plan: Plan, G: number, firstAggCol: number, aggValue: (g: number, i: number) => number | null): number[] | null {
  if (plan.having !== null || plan.limit === null || plan.orderBy.length === 0) return null;
  const k = plan.offset + plan.limit;
  const agg = plan.orderBy[0]!.column - firstAggCol;
  if (k * 8 >= G || agg < 0 || agg >= plan.aggregations.length) return null;
  if (k === 0) return [];
  const values = new Float64Array(G);
  for (let g = 0; g < G; g++) {
    const v = aggValue(g, agg);
    if (v === null || v !== v) return null;
    values[g] = v;
  }
  const desc = plan.orderBy[0]!.desc;
  const threshold = kthBest(values, k, desc);
  const out: number[] = [];
  for (let g = 0; g < G; g++) if (desc ? values[g]! >= threshold : values[g]! <= threshold) out.push(g);
  return out;
}

/**
 * The k-th best of `values` (1 ≤ k ≤ length; the k-th largest when `desc`, else the k-th smallest), by a bounded
 * heap of the best k: a top-10 of thousands of groups costs a comparison per group, not a sort.
 */
export function kthBest(values: Float64Array, k: number, desc: boolean): number {
  // heap[0] is the worst of the best k so far: the smallest when desc (a min-heap), the largest otherwise.
  const sign = desc ? 1 : -1;
  const heap = new Float64Array(k);
  let size = 0;
  const down = (): void => {
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < size && sign * heap[l]! < sign * heap[m]!) m = l;
      if (r < size && sign * heap[r]! < sign * heap[m]!) m = r;
      if (m === i) return;
      const tmp = heap[i]!;
      heap[i] = heap[m]!;
      heap[m] = tmp;
      i = m;
    }
  };
  for (let g = 0; g < values.length; g++) {
    const v = values[g]!;
    if (size < k) {
      // Sift up.
      let i = size++;
      heap[i] = v;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (sign * heap[p]! <= sign * heap[i]!) break;
        const tmp = heap[i]!;
        heap[i] = heap[p]!;
        heap[p] = tmp;
        i = p;
      }
    } else if (sign * v > sign * heap[0]!) {
      heap[0] = v;
      down();
    }
  }
  return heap[0]!;
}

/** The first `k` rows in `cmp` order: a bounded heap when k is small against the input, a sort otherwise. */
function topK(rows: Cell[][], k: number, cmp: (a: Cell[], b: Cell[]) => number): Cell[][] {
  if (k <= 0) return [];
  if (k * 8 >= rows.length) return rows.sort(cmp).slice(0, k);
  // Max-heap (by cmp) of the best k seen so far; the root is the worst of them.
  const heap: Cell[][] = [];
  const up = (i: number): void => {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (cmp(heap[i]!, heap[p]!) <= 0) break;
      [heap[i], heap[p]] = [heap[p]!, heap[i]!];
      i = p;
    }
  };
  const down = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && cmp(heap[l]!, heap[m]!) > 0) m = l;
      if (r < heap.length && cmp(heap[r]!, heap[m]!) > 0) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  };
  for (const row of rows) {
    if (heap.length < k) {
      heap.push(row);
      up(heap.length - 1);
    } else if (cmp(row, heap[0]!) < 0) {
      heap[0] = row;
      down(0);
    }
  }
  return heap.sort(cmp);
}

/** Order of two output cells: nulls last in either direction, numbers numerically, strings by code unit. */
export function compareCells(a: Cell, b: Cell, desc: boolean): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  const c = a < b ? -1 : a > b ? 1 : 0;
  return desc ? -c : c;
}

function evalExpr(e: ResolvedExpr, row: Cell[]): number | null {
  switch (e.kind) {
    case 'num': return e.value;
    case 'ref': {
      const v = row[e.column];
      return typeof v === 'number' ? v : null;
    }
    case 'op': {
      const l = evalExpr(e.left, row);
      const r = evalExpr(e.right, row);
      if (l === null || r === null) return null;
      switch (e.op) {
        case '+': return l + r;
        case '-': return l - r;
        case '*': return l * r;
        case '/': return r === 0 ? null : l / r;
      }
    }
  }
}

function evalHaving(h: ResolvedHaving, row: Cell[]): boolean {
  switch (h.kind) {
    case 'and': return h.children.every((c) => evalHaving(c, row));
    case 'or': return h.children.some((c) => evalHaving(c, row));
    case 'not': return !evalHaving(h.child, row);
    case 'cmp': {
      const v = row[h.column]!;
      // SQL semantics: any comparison with null is not true.
      if (v === null || h.value === null) return false;
      if (typeof v !== typeof h.value) return false;
      switch (h.op) {
        case '=': return v === h.value;
        case '!=': return v !== h.value;
        case '<': return v < h.value;
        case '<=': return v <= h.value;
        case '>': return v > h.value;
        case '>=': return v >= h.value;
      }
    }
  }
}
