// Cached attributes and listings, and the notes on directories (recent lookups and
// misses, too big to list), are good for the stat TTL, and a walk through a big tree
// (tar c, rsync, find) leaves one entry per path behind: without a sweep they stayed
// for the life of the mount (a million files: some 200 MB of attributes alone).

/**
 * Drops the expired entries of one map once it has grown past twice its size after the
 * last sweep (and past `floor`): O(1) per insertion, amortized.
 */
export class ExpirySweep<V> {
  private limit: number;

  constructor(
    private readonly map: Map<string, V>,
    /** Date.now() after which an entry is no longer used. */
    private readonly deadline: (value: V) => number,
    private readonly floor: number,
  ) {
    this.limit = floor;
  }

  /** Call after adding an entry to the map. */
  added(): void {
    if (this.map.size <= this.limit) return;
    const now = Date.now();
    for (const [key, value] of this.map) if (this.deadline(value) <= now) this.map.delete(key);
    this.limit = Math.max(this.floor, this.map.size * 2);
  }
}
