/**
 * ingest/batch-dictionary.ts — the record-local dictionary of one dimension of one batch: distinct values in order
 * of first use, and each value's index among them (the form the WAL logs and `decide` interns).
 *
 * Invariant: after `reset`, `idOf(v)` gives each distinct value (null included) the next index the first time it is
 * met and the same index after; `values[id]` is that value. `idOfAscii` is `idOf` of the ASCII string in a byte
 * range, without making the string unless the value is new. One instance is reused across batches (its table keeps
 * its size); the `values` array is new for each batch and becomes the batch's.
 */
import { StringTable, keyOfAscii, SHORT_KEY_CHARS } from '../head/dictionary.js';

const latin1 = new TextDecoder('latin1');
/** Up to this many distinct values, a string is looked up by comparison with each (the table still gets them all). */
const SCAN_VALUES = 8;

export class BatchDictionary {
  values: (string | null)[] = [];
  /** Tags are local id + 1. */
  private readonly table = new StringTable(this.values, 1);
  private nullId = -1;

  /** Start a batch: forget every value; returns the batch's (new, empty) values array. */
  reset(): (string | null)[] {
    this.values = [];
    this.table.reset(this.values);
    this.nullId = -1;
    return this.values;
  }

  idOf(v: string | null): number {
    if (v === null) {
      if (this.nullId < 0) {
        this.nullId = this.values.length;
        this.values.push(null);
      }
      return this.nullId;
    }
    const values = this.values;
    if (values.length <= SCAN_VALUES) {
      // A handful of values so far (gender, device, event type): comparing is cheaper than hashing.
      for (let j = 0; j < values.length; j++) if (values[j] === v) return j;
    } else {
      const tag = this.table.get(v);
      if (tag !== 0) return tag - 1;
    }
    this.values.push(v);
    this.table.set(v, this.values.length);
    return this.values.length - 1;
  }

  /** `idOf` of the ASCII string in `bytes[off, off + len)` (every byte < 0x80). */
  idOfAscii(bytes: Uint8Array, off: number, len: number): number {
    if (len > SHORT_KEY_CHARS) return this.idOf(latin1.decode(bytes.subarray(off, off + len)));
    keyOfAscii(bytes, off, len);
    const tag = this.table.getShortKey();
    if (tag !== 0) return tag - 1;
    this.values.push(latin1.decode(bytes.subarray(off, off + len)));
    this.table.setShortKey(this.values.length);
    return this.values.length - 1;
  }
}
