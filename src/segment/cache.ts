/**
 * segment/cache.ts — the bounded cache of decoded segment sections.
 *
 * Invariant: decoded data held for segments never exceeds `budgetBytes` by more than the one entry being added;
 * the least recently used entries go first. Segments keep no decoded columns of their own — everything goes
 * through here — so data larger than RAM still queries, at the price of re-reading from disk (and the OS page
 * cache) what was evicted.
 */
export class BlockCache {
  private readonly entries = new Map<string, { value: unknown; bytes: number }>();
  private usedBytes = 0;
  hits = 0;
  misses = 0;

  constructor(readonly budgetBytes: number) {}

  get<T>(key: string, load: () => { value: T; bytes: number }): T {
    const e = this.entries.get(key);
    if (e !== undefined) {
      this.hits++;
      this.entries.delete(key);
      this.entries.set(key, e);
      return e.value as T;
    }
    this.misses++;
    const loaded = load();
    this.entries.set(key, loaded);
    this.usedBytes += loaded.bytes;
    this.evict(key);
    return loaded.value;
  }

  /** Whether `key` is cached (without counting a hit or touching its recency). */
  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** Account for growth of an entry in place (lazily deserialized bitmaps). */
  grow(key: string, bytes: number): void {
    const e = this.entries.get(key);
    if (e === undefined) return;
    e.bytes += bytes;
    this.usedBytes += bytes;
    this.evict(key);
  }

  /** Drop every entry whose key starts with `prefix` (a segment that was deleted or quarantined). */
  drop(prefix: string): void {
    for (const [k, e] of this.entries) {
      if (k.startsWith(prefix)) {
        this.entries.delete(k);
        this.usedBytes -= e.bytes;
      }
    }
  }

  get bytes(): number {
    return this.usedBytes;
  }

  private evict(keep: string): void {
    for (const [k, e] of this.entries) {
      if (this.usedBytes <= this.budgetBytes) return;
      if (k === keep) continue;
      this.entries.delete(k);
      this.usedBytes -= e.bytes;
    }
  }
}
