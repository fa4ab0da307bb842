/**
 * The head dictionary gives each distinct string one dense id and never gives two strings the same id — for short
 * values packed into the table and for long ones found by hash, also when long values' hashes collide. A batch-local
 * dictionary reused across batches gives each batch exactly its own values.
 */
import fc from 'fast-check';
import { describe, expect, it, onTestFinished } from 'vitest';
import { Dictionary, StringTable, setLongHashForTests } from '../src/head/dictionary.js';
import { BatchDictionary } from '../src/ingest/batch-dictionary.js';
import { setKernelsForTests } from '../src/native/index.js';

/** Strings of every kind the table distinguishes: short one-byte, long, non-Latin-1, empty, NUL, near the 11-char edge. */
const valueArb = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ minLength: 10, maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 14 }),
  fc.constantFrom('', '\0', 'a\0', 'abcdefghijk', 'abcdefghijkl', 'ÿÿÿÿÿÿÿÿÿÿÿ', 'Ā', 'bangalore'),
);

function agreesWithMap(ops: (string | null)[], dict = new Dictionary()): void {
  const model = new Map<string, number>();
  for (const v of ops) {
    const before = dict.idOf(v);
    const id = dict.intern(v);
    if (v === null) {
      expect([before, id]).toEqual([0, 0]);
      continue;
    }
    const known = model.get(v);
    expect(before).toBe(known);
    const want = known ?? model.size + 1;
    model.set(v, want);
    expect(id).toBe(want);
    expect(dict.value(id)).toBe(v);
  }
  expect(dict.size).toBe(model.size + 1);
  for (const [v, id] of model) expect(dict.idOf(v)).toBe(id);
}

/** A dictionary that takes a value and its upper-case form for one (a stand-in for a table that confuses keys). */
class CaseBlindDictionary extends Dictionary {
  override idOf(value: string | null): number | undefined {
    return super.idOf(value === null ? null : value.toUpperCase());
  }
  override intern(value: string | null): number {
    return super.intern(value === null ? null : value.toUpperCase());
  }
}

describe('head dictionary', () => {
  it('ids equal a Map model: dense, stable, one per distinct string, across table growth', () => {
    fc.assert(fc.property(fc.array(fc.option(valueArb, { nil: null, freq: 10 }), { maxLength: 400 }), (ops) => agreesWithMap(ops)), { numRuns: 300 });
  });

  it('long values whose 64-bit hashes collide still get distinct ids (a hash match is confirmed by the string)', () => {
    const previous = setLongHashForTests((_v, out, i) => {
      out[2 * i] = 7;
      out[2 * i + 1] = 7;
    });
    try {
      fc.assert(fc.property(fc.array(fc.string({ minLength: 12, maxLength: 20 }), { maxLength: 150 }), (ops) => agreesWithMap(ops)), { numRuns: 50 });
      const dict = new Dictionary();
      expect([dict.intern('long-value-number-1'), dict.intern('long-value-number-2'), dict.idOf('long-value-number-1')]).toEqual([1, 2, 1]);
    } finally {
      setLongHashForTests(previous);
    }
  });

  it('a string table reset between batches answers each batch like a fresh Map (batch-local dictionaries)', () => {
    const table = new StringTable([], 1);
    fc.assert(fc.property(fc.array(fc.array(valueArb, { maxLength: 300 }), { maxLength: 6 }), (batches) => {
      for (const batch of batches) {
        const values: string[] = [];
        const model = new Map<string, number>();
        table.reset(values);
        for (const v of batch) {
          const tag = table.get(v);
          expect(tag === 0 ? undefined : tag - 1).toBe(model.get(v));
          if (tag === 0) {
            model.set(v, values.length);
            values.push(v);
            table.set(v, values.length);
          }
        }
      }
    }), { numRuns: 200 });
  });

  it('a batch dictionary reused from batch to batch gives each batch its own values in order of first use (a Map model), whether found by comparison, in its Map or in its table, also past stale values of bigger batches and when long hashes collide', () => {
    const ascii = new TextEncoder();
    const run = (batches: (string | null)[][]): void => {
      const dict = new BatchDictionary();
      const taken: { values: (string | null)[]; want: (string | null)[] }[] = [];
      for (const batch of batches) {
        dict.reset();
        const model = new Map<string | null, number>();
        for (const v of batch) {
          // One-byte short strings also go through the byte-range path the MessagePack decoder takes.
          const bytes = v !== null && /^[\x00-\x7f]{0,11}$/.test(v) ? ascii.encode(`#${v}#`) : null;
          const id = bytes !== null && model.size % 2 === 0 ? dict.idOfAscii(bytes, 1, bytes.length - 2) : dict.idOf(v);
          if (!model.has(v)) model.set(v, model.size);
          expect(id).toBe(model.get(v));
          expect(dict.value(id)).toBe(v);
        }
        taken.push({ values: dict.take(), want: [...model.keys()] });
      }
      // Each batch's array is its own: later batches, written over the same kept array, did not change it.
      for (const t of taken) expect(t.values).toEqual(t.want);
    };
    const batchArb = fc.array(fc.array(fc.option(valueArb, { nil: null, freq: 20 }), { maxLength: 300 }), { maxLength: 6 });
    fc.assert(fc.property(batchArb, run), { numRuns: 200 });
    // Values drawn from a pool of 40, so that values first met after the first few (past the scan, in the table)
    // come again: a table that files a new value under the wrong key gives its repeat a new id.
    const pool = Array.from({ length: 40 }, (_, i) => [`v${i}`, `a-longer-value-number-${i}`, `ünï-${i}`, `値${i}`][i % 4]!);
    const pooledArb = fc.array(fc.array(fc.option(fc.constantFrom(...pool), { nil: null, freq: 20 }), { minLength: 1, maxLength: 200 }), { minLength: 1, maxLength: 4 });
    fc.assert(fc.property(pooledArb, run), { numRuns: 100 });
    // And from a pool of 400, in batches of hundreds: past the Map's 128 values into the table alone, with values
    // first met by comparison, in the Map and in the table all coming again in the same batch and the next.
    const big = Array.from({ length: 400 }, (_, i) => (i % 3 === 0 ? `long-pooled-value-${i}` : `p${i}`));
    const bigArb = fc.array(fc.array(fc.constantFrom(...big), { minLength: 300, maxLength: 700 }), { minLength: 1, maxLength: 3 });
    fc.assert(fc.property(bigArb, run), { numRuns: 30 });
    const previous = setLongHashForTests((_v, out, i) => {
      out[2 * i] = 7;
      out[2 * i + 1] = 7;
    });
    try {
      fc.assert(fc.property(fc.array(fc.array(fc.string({ minLength: 12, maxLength: 20 }), { maxLength: 60 }), { maxLength: 5 }), run), { numRuns: 50 });
      // A big batch, then a small one whose values differ: the stale slots past the small batch are not its values.
      run([Array.from({ length: 500 }, (_, i) => `long-value-number-${i}`), ['long-value-number-x', 'long-value-number-1', 'long-value-number-x']]);
    } finally {
      setLongHashForTests(previous);
    }
  });

  it('a string table shrinks after a large batch and still answers exactly', () => {
    const table = new StringTable([], 1);
    for (const size of [5000, 3, 5000, 10]) {
      const values: string[] = [];
      table.reset(values);
      for (let i = 0; i < size; i++) {
        const v = `v${i % (size - 1 || 1)}`;
        const tag = table.get(v);
        if (i < (size - 1 || 1)) expect(tag).toBe(0);
        else expect(tag).toBe(1);
        if (tag === 0) {
          values.push(v);
          table.set(v, values.length);
        }
      }
      expect(table.get('absent-value')).toBe(0);
    }
  });

  it.each(['loaded', 'typescript'] as const)('idsOf of many values at once equals idOf of each: −1 where absent, 0 for null (also when long hashes collide, and from the key words of a batch dictionary; %s kernels)', (which) => {
    const kernelsBefore = setKernelsForTests(which);
    onTestFinished(() => {
      setKernelsForTests(kernelsBefore);
    });
    const check = (interned: (string | null)[], asked: (string | null)[]): void => {
      const dict = new Dictionary();
      for (const v of interned) dict.intern(v);
      const out = new Int32Array(asked.length).fill(123);
      dict.idsOf(asked, out);
      expect([...out]).toEqual(asked.map((v) => dict.idOf(v) ?? -1));
      // The same with the key words a batch dictionary computed as it met the values (as ingest passes them).
      const batch = new BatchDictionary();
      batch.reset();
      for (const v of asked) batch.idOf(v);
      const distinct = batch.take();
      const keyed = new Int32Array(distinct.length).fill(123);
      dict.idsOf(distinct, keyed, batch.takeKeys());
      expect([...keyed]).toEqual(distinct.map((v) => dict.idOf(v) ?? -1));
    };
    const values = fc.array(fc.option(valueArb, { nil: null, freq: 10 }), { maxLength: 300 });
    fc.assert(fc.property(values, values, (interned, absentOrNot) => check(interned, [...absentOrNot, ...interned.slice(0, 50)])), { numRuns: 200 });
    const previous = setLongHashForTests((_v, out, i) => {
      out[2 * i] = 7;
      out[2 * i + 1] = 7;
    });
    try {
      const long = fc.array(fc.string({ minLength: 12, maxLength: 20 }), { maxLength: 100 });
      fc.assert(fc.property(long, long, (interned, other) => check(interned, [...other, ...interned])), { numRuns: 50 });
    } finally {
      setLongHashForTests(previous);
    }
  });

  it('canary: the same property finds a dictionary that confuses two values', () => {
    const outcome = fc.check(fc.property(fc.array(fc.option(valueArb, { nil: null, freq: 10 }), { maxLength: 400 }), (ops) => agreesWithMap(ops, new CaseBlindDictionary())), { numRuns: 300 });
    expect(outcome.failed).toBe(true);
  });
});
