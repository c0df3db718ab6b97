// Cached attributes and listings are good for the stat TTL, and a walk through a big tree
// (tar c, rsync, find) leaves one entry per path behind: without a sweep they stayed for
// the life of the mount (a million files: some 200 MB of attributes alone).

export interface Expiring {
  /** Date.now() after which the entry is no longer used. */
  expires: number;
}

/**
 * Drops the expired entries of a map once it has grown past twice its size after the
 * last sweep (and past `floor`): O(1) per insertion, amortized.
 */
export class ExpirySweep {
  private limit: number;

  constructor(private readonly floor: number) {
    this.limit = floor;
  }

  /** Call after adding an entry to `map`. */
  added(map: Map<string, Expiring>): void {
    if (map.size <= this.limit) return;
    const now = Date.now();
    for (const [key, value] of map) if (value.expires <= now) map.delete(key);
    this.limit = Math.max(this.floor, map.size * 2);
  }
}
