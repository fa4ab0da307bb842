/**
 * ingest/batch-dictionary.ts — the record-local dictionary of one dimension of one batch: distinct values in order
 * of first use, and each value's index among them (the form the WAL logs and `decide` interns).
 *
 * Invariant: after `reset`, `idOf(v)` gives each distinct value (null included) the next index the first time it is
 * met and the same index after; `take()` then returns the batch's values, `values[id]` being that value. `idOfAscii`
 * is `idOf` of the ASCII string in a byte range, without making the string unless the value is new. One instance is
 * reused across batches: its table keeps its size, and the values are written into one array it keeps too (a batch's
 * own array, grown push by push, was ~10 bytes an event of garbage in a batch of 4k distinct image ids), copied out
 * at `take` into an array of their exact number that becomes the batch's. The kept array holds up to a batch's
 * distinct values beyond the current batch's (strings of earlier batches) until they are overwritten.
 */
import { StringTable, keyOfAscii, SHORT_KEY_CHARS } from '../head/dictionary.js';

const latin1 = new TextDecoder('latin1');
/** Up to this many distinct values, a string is looked up by comparison with each (the table still gets them all). */
const SCAN_VALUES = 8;
/**
 * Up to this many, in a `Map` (the table still gets them all): V8 keeps a string's hash in the string, so a `Map`
 * finds a value it has hashed before (a literal, a JSON value of up to 10 characters, any string already looked up)
 * without reading its characters, where the table's key is made from them. Beyond, the table alone: a `Map` of a
 * batch's thousands of distinct values (image ids) grows by rehashing and was slower than the table.
 */
const MAP_VALUES = 128;

export class BatchDictionary {
  /** The batch's values are `values[0..count)`; the slots after them hold stale values of earlier batches. */
  private readonly values: (string | null)[] = [];
  /** Each value's key words as `StringTable.lastKeyInto` writes them (3 a value), for the head dictionary's lookups. */
  private keys = new Int32Array(3 * 64);
  private count = 0;
  /** Tags are local id + 1. */
  private readonly table = new StringTable(this.values, 1);
  /**
   * Every string value of the batch, by id, while there are at most MAP_VALUES values (both `idOf` and `idOfAscii`
   * add to it); unused after.
   */
  private readonly map = new Map<string, number>();
  private nullId = -1;

  /** Start a batch: forget every value. */
  reset(): void {
    this.count = 0;
    this.table.reset(this.values);
    if (this.map.size > 0) this.map.clear();
    this.nullId = -1;
  }

  /** The values met since `reset`, by id, in a new array of their number. */
  take(): (string | null)[] {
    return this.values.slice(0, this.count);
  }

  /** The key words of the values `take` returns, 3 a value (zeros for null), in a new array. */
  takeKeys(): Int32Array {
    return this.keys.slice(0, 3 * this.count);
  }

  /** Record the key the table computed last as that of value `id` (just added), or zeros for null. */
  private keepKey(id: number, isNull = false): void {
    if (this.keys.length < 3 * (id + 1)) {
      const grown = new Int32Array(2 * this.keys.length);
      grown.set(this.keys);
      this.keys = grown;
    }
    if (isNull) this.keys.fill(0, 3 * id, 3 * id + 3);
    else this.table.lastKeyInto(this.keys, 3 * id);
  }

  /** The value of local id `id` (< the number of values met since `reset`). */
  value(id: number): string | null {
    return this.values[id]!;
  }

  /** Append a new value; returns its id. */
  private add(v: string | null): number {
    const id = this.count++;
    if (id < this.values.length) this.values[id] = v;
    else this.values.push(v);
    return id;
  }

  idOf(v: string | null): number {
    if (v === null) {
      if (this.nullId < 0) {
        this.nullId = this.add(null);
        this.keepKey(this.nullId, true);
      }
      return this.nullId;
    }
    const values = this.values;
    const count = this.count;
    if (count <= MAP_VALUES) {
      if (count <= SCAN_VALUES) {
        // A handful of values so far (gender, device, event type): comparing is cheaper than hashing.
        for (let j = 0; j < count; j++) if (values[j] === v) return j;
      } else {
        const known = this.map.get(v);
        if (known !== undefined) return known;
      }
      const id = this.add(v);
      this.table.set(v, id + 1);
      this.keepKey(id);
      this.map.set(v, id);
      return id;
    }
    const tag = this.table.get(v);
    if (tag !== 0) return tag - 1;
    const id = this.add(v);
    // The key the missed `get` computed is still the last one.
    this.table.setLastKey(id + 1);
    this.keepKey(id);
    return id;
  }

  /** `idOf` of the ASCII string in `bytes[off, off + len)` (every byte < 0x80). */
  idOfAscii(bytes: Uint8Array, off: number, len: number): number {
    if (len > SHORT_KEY_CHARS) return this.idOf(latin1.decode(bytes.subarray(off, off + len)));
    keyOfAscii(bytes, off, len);
    const tag = this.table.getShortKey();
    if (tag !== 0) return tag - 1;
    const mapped = this.count <= MAP_VALUES;
    const v = latin1.decode(bytes.subarray(off, off + len));
    const id = this.add(v);
    this.table.setLastKey(id + 1);
    this.keepKey(id);
    if (mapped) this.map.set(v, id);
    return id;
  }
}
