/**
 * head/dictionary.ts — string ↔ id dictionary of one dimension in the head.
 *
 * Invariant: ids are dense and stable for the head's lifetime; id 0 is null and is never given to a string.
 * Growth is bounded by limits.maxDimensionCardinality, checked by the ingest pipeline before `intern`.
 */
import type { DictionaryView } from '../query/reader.js';

export class Dictionary implements DictionaryView {
  private readonly values: (string | null)[] = [null];
  private readonly ids = new Map<string, number>();

  get size(): number {
    return this.values.length;
  }

  value(id: number): string | null {
    return this.values[id] ?? null;
  }

  idOf(value: string | null): number | undefined {
    return value === null ? 0 : this.ids.get(value);
  }

  /** The id of `value`, adding it when new. */
  intern(value: string | null): number {
    if (value === null) return 0;
    let id = this.ids.get(value);
    if (id === undefined) {
      id = this.values.length;
      this.values.push(value);
      this.ids.set(value, id);
    }
    return id;
  }

  /** Approximate heap bytes: the strings, the array and the map entries. */
  estimateBytes(): number {
    let chars = 0;
    for (let i = 1; i < this.values.length; i++) chars += this.values[i]!.length;
    return chars * 2 + this.values.length * 8 + this.ids.size * 48;
  }
}
