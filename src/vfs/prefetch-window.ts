// The entries of one listed directory whose attributes are fetched ahead of the lookups
// that walk it, a window at a time.
//
// Fetching all of them at once ran far ahead of `ls -l` on Ceph RGW: the HEAD answers
// kept the event loop busy, the kernel's lookups waited behind them, and entries
// fetched early expired (--stat-ttl) before ls reached them, to be fetched again
// (5000 entries: 10.9k HEADs and 20 s; 5002 and 8.6 s with a TTL long enough).

export type EntryKind = 'file' | 'dir';

export class PrefetchWindow {
  /** Index in `entries` of the next one to consider. */
  private next = 0;
  /** Entries fetched ahead (or under way) that no lookup has asked for yet. */
  private readonly ahead = new Set<string>();

  constructor(
    /** Paths in listing order, the order in which `ls` and `find` look them up. */
    private readonly entries: ReadonlyArray<readonly [path: string, kind: EntryKind]>,
    /** Most entries ahead at once. */
    private readonly size: number,
  ) {}

  /** A lookup asked for `path`: it no longer counts as ahead. */
  served(path: string): void {
    this.ahead.delete(path);
  }

  /**
   * The entries to fetch now so that the window is full again. `held(path)` tells
   * whether an entry's attributes are fresh or under way: an entry ahead that no longer
   * is (expired unasked, or dropped) leaves the window, and one that already is needs
   * no fetch.
   */
  refill(held: (path: string) => boolean): Array<readonly [path: string, kind: EntryKind]> {
    for (const path of this.ahead) if (!held(path)) this.ahead.delete(path);
    const due: Array<readonly [string, EntryKind]> = [];
    while (this.ahead.size < this.size && this.next < this.entries.length) {
      const entry = this.entries[this.next++] as readonly [string, EntryKind];
      if (held(entry[0])) continue;
      this.ahead.add(entry[0]);
      due.push(entry);
    }
    return due;
  }

  /** Whether nothing is ahead and nothing is left to fetch. */
  get done(): boolean {
    return this.ahead.size === 0 && this.next >= this.entries.length;
  }
}
