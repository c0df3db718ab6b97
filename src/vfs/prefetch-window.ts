// The entries of one listed directory whose attributes are fetched ahead of the lookups
// that walk it: those up to a window's size past the last one looked up.
//
// Fetching all of them at once ran far ahead of `ls -l` on Ceph RGW: the HEAD answers
// kept the event loop busy, the kernel's lookups waited behind them, and entries
// fetched early expired (--stat-ttl) before ls reached them, to be fetched again
// (5000 entries: 10.9k HEADs and 20 s; 5002 and 8.6 s with a TTL long enough).
//
// The window starts small and doubles each time a lookup has to wait for an entry it
// fetched: `ls -l` asks faster than a round trip and has it at its full size within a
// few lookups, while a tool that reads each file it looks up (`md5sum -c`, `tar c`)
// keeps it small, so that the GETs fetching its files ahead (which tell what a HEAD
// would) get to the entries first and spare their HEADs.

export type EntryKind = 'file' | 'dir';

export class PrefetchWindow {
  /** Index in `entries` of the next one to consider. */
  private next = 0;
  /** Index in `entries` of the last one looked up; -1 before the first lookup. */
  private position = -1;
  private size: number;
  /** Entries this window fetched that no lookup has asked for yet. */
  private readonly fetched = new Set<string>();

  constructor(
    /** Paths in listing order, the order in which `ls` and `find` look them up. */
    private readonly entries: ReadonlyArray<readonly [path: string, kind: EntryKind]>,
    /** Where a path of this directory is in `entries`; undefined if it is not there. */
    private readonly indexOf: (path: string) => number | undefined,
    private readonly initialSize: number,
    private readonly maxSize: number,
  ) {
    this.size = initialSize;
  }

  /**
   * A lookup of `path` began; `waits` tells whether it has to wait for attributes under
   * way. The window moves on to it, and grows if it was too small to have them in time.
   */
  lookedUp(path: string, waits: boolean): void {
    const at = this.indexOf(path);
    if (at === undefined) return;
    if (waits && this.fetched.has(path)) this.size = Math.min(this.maxSize, this.size * 2);
    this.fetched.delete(path);
    this.position = Math.max(this.position, at);
  }

  /**
   * The attributes of entries in this directory are on their way another way (GETs of
   * files fetched ahead of a reader): the window is back to its first size, so as not to
   * fetch ahead of them.
   */
  narrow(): void {
    this.size = this.initialSize;
  }

  /**
   * The entries to fetch now: those within the window's size past the last lookup that
   * it has not considered yet, except those `held(path)` says are fresh or under way.
   * Before the first lookup, none.
   */
  refill(held: (path: string) => boolean): Array<readonly [path: string, kind: EntryKind]> {
    const due: Array<readonly [string, EntryKind]> = [];
    if (this.position < 0) return due;
    this.next = Math.max(this.next, this.position + 1);
    const end = Math.min(this.entries.length, this.position + 1 + this.size);
    while (this.next < end) {
      const entry = this.entries[this.next++] as readonly [string, EntryKind];
      if (held(entry[0])) continue;
      this.fetched.add(entry[0]);
      due.push(entry);
    }
    return due;
  }

  /** Whether every entry has been considered: the window has nothing more to do. */
  get done(): boolean {
    return this.next >= this.entries.length;
  }
}
