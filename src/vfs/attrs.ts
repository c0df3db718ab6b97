import PQueue from 'p-queue';
import { FsError } from '../errors.js';
import type { Timespec } from '../fs-types.js';
import type { Logger } from '../log.js';
import { cameFromHead, type Bucket, type ListedObject, type ObjectInfo } from '../s3/bucket.js';
import { decodeMeta, type PosixMeta } from '../s3/metadata.js';
import { Namespace, baseName, isPosixName, joinPath, parentOf } from './namespace.js';
import type { ListingOrder } from '../cache/files-in-order.js';
import { ExpirySweep } from './expiry-sweep.js';
import { PrefetchWindow, type EntryKind } from './prefetch-window.js';

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

export type NodeKind = 'file' | 'dir' | 'symlink';

/** What the mount knows of one path. */
export interface NodeAttrs {
  kind: NodeKind;
  size: number;
  mtime: Timespec;
  /** Full st_mode, type bits included. */
  mode: number;
  uid: number;
  gid: number;
  /** Files and symlinks: the object's ETag. Directories: the marker's, if there is one. */
  etag?: string;
}

export interface AttrDefaults {
  uid: number;
  gid: number;
  /** Permission bits for objects and directories without metadata. */
  fileMode: number;
  dirMode: number;
  /** mtime of directories that have no marker object. */
  implicitDirMtime: Timespec;
  /**
   * Per-object metadata (mode, uid, gid, mtime, symlinks) is not read: every attribute
   * comes from listings (size, LastModified) and these defaults, so a listed directory
   * needs no HEAD per entry.
   */
  ignoreMetadata?: boolean;
}

interface Listing {
  /** Child name -> kind as the listing shows it (a prefix is a directory). */
  children: Map<string, 'file' | 'dir'>;
  /** File children as listed (up to KEEP_LISTED_FILES), until a change made here supersedes them. */
  files: Map<string, ListedObject>;
  expires: number;
  /** `children`'s names in order with their positions, made when first asked for. */
  order?: ListingOrder;
}

type Cached = { attrs: NodeAttrs | undefined; expires: number };

/** The deadline of a map whose values are deadlines. */
const until = (deadline: number): number => deadline;

/** How many entries of one listing get their attributes fetched ahead of lookups. */
const PREFETCH_LIMIT = 10_000;
/**
 * Listings of at most this many files keep the listed objects (ETag, size) for the
 * files fetched ahead of a reader; a bigger one would hold some 200 bytes more per file
 * for as long as it is cached (a million-object directory: 200 MB).
 */
const KEEP_LISTED_FILES = 10_000;
/**
 * HEADs in flight at once: as many as the client keeps connections (src/s3/client.ts).
 * `ls -l` of 5000 objects on Ceph RGW behind 20 ms took 5.9-6.2 s with 32, 4.5-5.5 s
 * with 64 (no gain with 128: the connections are the limit).
 */
const HEADS_IN_FLIGHT = 64;
/**
 * Most entries of a directory fetched ahead of its lookups at once: 2 rounds of HEADs
 * in flight, and ahead by less than the stat TTL of a walk as slow as `md5sum -c`
 * (about 30 files a second against a 20 ms region).
 */
const PREFETCH_WINDOW = 128;
/**
 * The window's first size: well under the files a reader going through a directory has
 * fetched ahead (Vfs.FILES_AHEAD), whose GETs tell their attributes.
 */
const FIRST_PREFETCH_WINDOW = 8;
/**
 * A directory where a name was just found missing gets listed, at most this many pages,
 * to answer the next missing names (tar, cp -r, rsync creating files) without a probe.
 */
const NEGATIVE_LISTING_PAGES = 2;

/**
 * A second lookup in a directory without a listing (stat of many files, find, a tool
 * walking it) lists it, at most this many pages, and fetches its entries' attributes
 * in parallel: the kernel sends a directory's lookups one at a time, and would
 * otherwise wait a full probe for each.
 */
const SCAN_LISTING_PAGES = 10;

/**
 * Attributes and directory listings, cached for the stat TTL. A listing triggers HEADs
 * of its entries in parallel (user metadata is not in listings), so that the lookups
 * that follow, which the kernel sends one at a time per directory, find them ready.
 */
export class AttrStore {
  private readonly attrs = new Map<string, Cached>();
  private readonly attrsSweep = new ExpirySweep(this.attrs, (cached) => cached.expires, 10_000);
  private readonly pending = new Map<string, Promise<NodeAttrs | undefined>>();
  private readonly listings = new Map<string, Listing>();
  private readonly listingsSweep = new ExpirySweep(this.listings, (listing) => listing.expires, 1000);
  private readonly heads: PQueue;
  private readonly warned = new Set<string>();
  /** Directories where a probe found a name missing, until when that counts as recent. */
  private readonly recentMisses = new Map<string, number>();
  private readonly recentMissesSweep = new ExpirySweep(this.recentMisses, until, 1000);
  /** Directories where a name was looked up, until when that counts as recent. */
  private readonly recentLookups = new Map<string, number>();
  private readonly recentLookupsSweep = new ExpirySweep(this.recentLookups, until, 1000);
  /** Directories with more entries than a lookup lists, until when that counts as known. */
  private readonly tooBig = new Map<string, number>();
  private readonly tooBigSweep = new ExpirySweep(this.tooBig, until, 1000);
  private readonly listingsInFlight = new Map<string, Promise<Listing | undefined>>();
  /** Directories whose entries are being fetched ahead of their lookups. */
  private readonly prefetches = new Map<string, PrefetchWindow>();
  /** Answers of GETs fetching files ahead of a reader, until a lookup takes them (see arriving()). */
  private readonly arrivals = new Map<string, Promise<ObjectInfo | undefined>>();

  constructor(
    private readonly bucket: Bucket,
    private readonly ns: Namespace,
    private readonly defaults: AttrDefaults,
    private readonly ttlMs: number,
    private readonly log: Logger,
  ) {
    this.heads = new PQueue({ concurrency: HEADS_IN_FLIGHT });
  }

  rootAttrs(): NodeAttrs {
    return this.implicitDir();
  }

  /** Attributes of `path`, or ENOENT. */
  async stat(path: string): Promise<NodeAttrs> {
    if (path === '/') return this.rootAttrs();
    const waits = !this.isFresh(path) && this.pending.has(path);
    const lookup = this.lookup(path);
    this.prefetchAfter(path, waits);
    const attrs = await lookup;
    if (!attrs) throw new FsError('ENOENT');
    return attrs;
  }

  private async lookup(path: string): Promise<NodeAttrs | undefined> {
    const cached = this.attrs.get(path);
    if (cached && cached.expires > Date.now()) return cached.attrs;
    const inFlight = this.pending.get(path);
    if (inFlight) return inFlight;

    const parent = parentOf(path);
    const listing = this.freshListing(parent);
    if (!listing && !this.tooBigToList(parent)) {
      if ((this.recentMisses.get(parent) ?? 0) > Date.now()) return this.track(path, this.lookUpInListing(path, false));
      // A listing under way (a walk listed the directory ahead of its lookups) answers this one too.
      if (this.listingsInFlight.has(parent) || this.lookedUpBefore(parent)) return this.track(path, this.lookUpInListing(path, true));
    }
    const kind = listing?.children.get(baseName(path));
    if (listing && !kind) {
      this.remember(path, undefined);
      return undefined;
    }
    return this.track(path, kind === 'dir' ? this.fetchDir(path) : kind === 'file' ? this.fetchFile(path) : this.probe(path));
  }

  /**
   * Answers a lookup from one listing of its directory, which the lookups that come
   * while it runs share:
   * - after a missing name (not `scan`): up to NEGATIVE_LISTING_PAGES; a name the
   *   listing lacks is missing (tar, cp -r, rsync creating files);
   * - in a directory being walked (`scan`): up to SCAN_LISTING_PAGES, and its entries'
   *   HEADs start at once; a name the listing lacks is probed all the same, as it may
   *   have been put since.
   */
  private async lookUpInListing(path: string, scan: boolean): Promise<NodeAttrs | undefined> {
    const parent = parentOf(path);
    const children = (await this.sharedListing(parent, scan, baseName(path)))?.children;
    if (!children) return this.probe(path);
    // This name's own HEAD is not among the prefetched ones: its lookup is under way.
    const kind = children.get(baseName(path));
    if (kind === 'dir') return this.fetchDir(path);
    if (kind === 'file') return this.fetchFile(path);
    return scan ? this.probe(path) : undefined;
  }

  /**
   * The listing of `dir` that lookups share, under way or started now: for a walk
   * (`scan`, its entries fetched ahead of lookups from `from` on) or after a missing name.
   * Undefined if the directory has more pages than that.
   */
  private sharedListing(dir: string, scan: boolean, from: string | undefined): Promise<Listing | undefined> {
    let listing = this.listingsInFlight.get(dir);
    if (!listing) {
      listing = this.fetchListing(dir, scan ? SCAN_LISTING_PAGES : NEGATIVE_LISTING_PAGES, scan && { from })
        .then((listed) => {
          if (!listed) {
            // Too big to list for this: lookups probe at once, and walks do not list it again.
            this.tooBig.set(dir, Date.now() + this.ttlMs);
            this.tooBigSweep.added();
          }
          return listed;
        })
        .finally(() => this.listingsInFlight.delete(dir));
      this.listingsInFlight.set(dir, listing);
    }
    return listing;
  }

  /**
   * Lists `dir`, which a walk has come into (at `from`, a file read whole there) or is
   * expected to come into next, as the walk's next lookup there would; lookups there
   * share this listing, and resume after what the caller chains on the promise now.
   * Resolves once the listing is cached (or found too big).
   */
  listWalkedInto(dir: string, from?: string): Promise<unknown> {
    if (this.freshListing(dir) || this.tooBigToList(dir)) return Promise.resolve();
    return this.sharedListing(dir, true, from);
  }

  /**
   * The entry after `dir` in its parent's listing, if that is a directory. A guess of
   * where a walk goes next, so an expired listing will do: a walk through a tree takes
   * longer than the stat TTL.
   */
  nextDirectoryAfter(dir: string): string | undefined {
    const parent = parentOf(dir);
    const listing = this.listings.get(parent);
    const order = listing && orderOf(listing);
    const at = order?.indexOf(baseName(dir));
    const next = at === undefined ? undefined : order?.names[at + 1];
    return next !== undefined && listing?.children.get(next) === 'dir' ? joinPath(parent, next) : undefined;
  }

  /** Whether a fresh listing of `dir` shows no subdirectory. */
  isListedLeaf(dir: string): boolean {
    const children = this.freshListing(dir)?.children;
    if (!children) return false;
    for (const kind of children.values()) if (kind === 'dir') return false;
    return true;
  }

  private tooBigToList(dir: string): boolean {
    return (this.tooBig.get(dir) ?? 0) > Date.now();
  }

  /** Whether another name in `dir` was looked up within the stat TTL; notes this one. */
  private lookedUpBefore(dir: string): boolean {
    const now = Date.now();
    const before = (this.recentLookups.get(dir) ?? 0) > now;
    this.recentLookups.set(dir, now + this.ttlMs);
    this.recentLookupsSweep.added();
    return before;
  }

  private track(path: string, fetch: Promise<NodeAttrs | undefined>): Promise<NodeAttrs | undefined> {
    const promise = fetch.then(
      (attrs) => {
        if (this.pending.get(path) === promise) {
          this.pending.delete(path);
          this.remember(path, attrs);
        }
        return attrs;
      },
      (err: unknown) => {
        if (this.pending.get(path) === promise) this.pending.delete(path);
        throw err;
      },
    );
    this.pending.set(path, promise);
    return promise;
  }

  /** Neither the path nor its parent's listing is known: ask for all three forms at once. */
  private async probe(path: string): Promise<NodeAttrs | undefined> {
    const key = this.ns.key(path);
    const dirPrefix = this.ns.dirPrefix(path);
    const [file, marker, hasChildren] = await Promise.all([
      this.bucket.head(key),
      this.bucket.head(dirPrefix),
      this.bucket.hasAnyUnder(dirPrefix),
    ]);
    if (marker || hasChildren) {
      // The directory wins, whether a marker or children make it (as in list()).
      if (file) this.warnShadowed(key);
      return marker ? this.fromMarker(marker) : this.implicitDir();
    }
    if (!file) {
      this.recentMisses.set(parentOf(path), Date.now() + this.ttlMs);
      this.recentMissesSweep.added();
    }
    return file ? this.fromObject(file) : undefined;
  }

  /** A file's attributes: from the answer of a GET fetching it ahead if one is under way, else a HEAD. */
  private async fetchFile(path: string): Promise<NodeAttrs | undefined> {
    const arriving = this.arrivals.get(path);
    this.arrivals.delete(path);
    const info = (await arriving) ?? (await this.bucket.head(this.ns.key(path)));
    return info ? this.fromObject(info) : undefined;
  }

  private async fetchDir(path: string): Promise<NodeAttrs> {
    const marker = await this.bucket.head(this.ns.dirPrefix(path));
    return marker ? this.fromMarker(marker) : this.implicitDir();
  }

  fromObject(info: ObjectInfo | ListedObject): NodeAttrs {
    const meta = this.metadataOf(info);
    const isLink = meta.mode !== undefined && (meta.mode & S_IFMT) === S_IFLNK;
    const type = isLink ? S_IFLNK : S_IFREG;
    const perms = meta.mode !== undefined ? meta.mode & 0o7777 : this.defaults.fileMode;
    // HEAD's Last-Modified has whole seconds, a listing's may have milliseconds (Ceph
    // RGW): one object must show one mtime, whichever of the two answered.
    const ms = cameFromHead(info) ? info.lastModified.getTime() : Math.floor(info.lastModified.getTime() / 1000) * 1000;
    return {
      kind: isLink ? 'symlink' : 'file',
      size: info.size,
      mtime: meta.mtime ?? { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1_000_000 },
      mode: type | perms,
      uid: meta.uid ?? this.defaults.uid,
      gid: meta.gid ?? this.defaults.gid,
      etag: info.etag,
    };
  }

  private fromMarker(info: ObjectInfo): NodeAttrs {
    const meta = this.metadataOf(info);
    const base = this.implicitDir();
    return {
      ...base,
      mtime: meta.mtime ?? base.mtime,
      mode: S_IFDIR | (meta.mode !== undefined ? meta.mode & 0o7777 : this.defaults.dirMode),
      uid: meta.uid ?? base.uid,
      gid: meta.gid ?? base.gid,
      etag: info.etag,
    };
  }

  private metadataOf(info: ObjectInfo | ListedObject): PosixMeta {
    return !this.defaults.ignoreMetadata && cameFromHead(info) ? decodeMeta(info.metadata) : {};
  }

  private implicitDir(): NodeAttrs {
    const d = this.defaults;
    return { kind: 'dir', size: 4096, mtime: d.implicitDirMtime, mode: S_IFDIR | d.dirMode, uid: d.uid, gid: d.gid };
  }

  /** The names in a directory, fetched (all pages) unless a fresh listing is cached. */
  async list(path: string): Promise<Map<string, 'file' | 'dir'>> {
    const fresh = this.freshListing(path);
    if (fresh) return fresh.children;
    // One under way for lookups (or for a walk ahead of them) is all of it if it has all its pages.
    const underWay = await this.listingsInFlight.get(path)?.catch(() => undefined);
    if (underWay) return underWay.children;
    return (await this.fetchListing(path, Infinity, {}))?.children ?? new Map();
  }

  /**
   * Lists a directory and caches the result; undefined if it has more than `maxPages`
   * pages. With `prefetch`, its entries' attributes are fetched ahead of their lookups,
   * from the entry named `from` on (a walk under way has looked up those before it).
   */
  private async fetchListing(path: string, maxPages: number, prefetch: false | { from?: string }): Promise<Listing | undefined> {
    const dirPrefix = this.ns.dirPrefix(path);
    const { objects, prefixes, complete } = await this.bucket.list(dirPrefix, '/', maxPages);
    if (!complete) return undefined;
    const children = new Map<string, 'file' | 'dir'>();
    for (const p of prefixes) {
      const name = p.slice(dirPrefix.length, -1);
      if (this.acceptName(name, p)) children.set(name, 'dir');
    }
    const listed = new Map<string, ListedObject>();
    for (const o of objects) {
      if (o.key === dirPrefix) continue; // the directory's own marker
      const name = o.key.slice(dirPrefix.length);
      if (!this.acceptName(name, o.key)) continue;
      if (children.has(name)) this.warnShadowed(o.key);
      else {
        children.set(name, 'file');
        listed.set(name, o);
      }
    }
    const files = listed.size <= KEEP_LISTED_FILES ? listed : new Map<string, ListedObject>();
    const listing = { children, files, expires: Date.now() + this.ttlMs };
    this.listings.set(path, listing);
    this.listingsSweep.added();
    if (this.defaults.ignoreMetadata) this.rememberListed(path, children, listed);
    else if (prefetch) this.openWindow(path, listing, prefetch.from);
    return listing;
  }

  /** Without metadata a listing tells all there is to know of its entries. */
  private rememberListed(dir: string, children: Map<string, 'file' | 'dir'>, listed: Map<string, ListedObject>): void {
    for (const name of children.keys()) {
      const path = joinPath(dir, name);
      // Fresh attributes may be a change made here (chmod, a new file) that this listing predates.
      if (this.pending.has(path) || this.peek(path)) continue;
      // Every file child is in `listed`; a directory is not (its key is a prefix).
      const object = listed.get(name);
      this.remember(path, object ? this.fromObject(object) : this.implicitDir());
    }
  }

  /**
   * The entries of a listed directory will have their attributes fetched ahead of the
   * lookups that walk it, from the entry named `from` on (a walk under way has looked
   * up that one and those before it). The window opens at the next lookup, so that a
   * listing nobody looks into (`ls`, `find`) costs no HEAD.
   */
  private openWindow(dir: string, listing: Listing, from: string | undefined): void {
    const order = orderOf(listing);
    const start = (from === undefined ? undefined : order.indexOf(from)) ?? 0;
    const names = order.names.slice(start, start + PREFETCH_LIMIT);
    const entries = names.map((name) => [joinPath(dir, name), listing.children.get(name) as EntryKind] as const);
    // Where a path looked up is among the entries: by the listing's own positions.
    const indexOf = (path: string): number | undefined => {
      const at = order.indexOf(baseName(path));
      return at === undefined || at < start || at >= start + names.length ? undefined : at - start;
    };
    if (this.prefetches.size >= 1000) this.prefetches.clear(); // a bound, not a policy
    const window = new PrefetchWindow(entries, indexOf, FIRST_PREFETCH_WINDOW, PREFETCH_WINDOW);
    if (from !== undefined) window.lookedUp(joinPath(dir, from), false);
    this.prefetches.set(dir, window);
  }

  /** A lookup of `path` began (`waits`: on attributes under way): a window ahead of it moves on. */
  private prefetchAfter(path: string, waits: boolean): void {
    const dir = parentOf(path);
    const window = this.prefetches.get(dir);
    if (!window) return;
    window.lookedUp(path, waits);
    for (const [entry, kind] of window.refill((p) => this.pending.has(p) || this.isFresh(p))) {
      const fetch = this.heads.add(() => (kind === 'dir' ? this.fetchDir(entry) : this.fetchFile(entry)));
      // A failed prefetch is not an error: the lookup that needs it will ask again.
      this.track(entry, fetch).catch(() => undefined);
    }
    if (window.done && this.prefetches.get(dir) === window) this.prefetches.delete(dir);
  }

  /**
   * The attributes of `path`, a file, are on their way in `answer` (the GET of a reader's
   * file fetched ahead, which tells what a HEAD would): its lookup waits for them
   * rather than send a HEAD, and the window of its directory does not fetch ahead of
   * such GETs. If the answer tells nothing (the GET failed, or was not needed), a HEAD
   * asks.
   */
  arriving(path: string, answer: Promise<ObjectInfo | undefined>): void {
    if (this.isFresh(path)) return;
    this.prefetches.get(parentOf(path))?.narrow();
    this.arrivals.set(path, answer);
    if (!this.pending.has(path)) {
      this.track(path, this.fetchFile(path)).catch(() => undefined); // as a failed prefetch
      return;
    }
    // A lookup under way that is still to ask (waiting for a listing) takes the answer;
    // one that has asked already (a HEAD, a probe) leaves it.
    const drop = (): void => {
      if (this.arrivals.get(path) === answer) this.arrivals.delete(path);
    };
    answer.then(drop, drop);
  }

  private isFresh(path: string): boolean {
    return (this.attrs.get(path)?.expires ?? 0) > Date.now();
  }

  /** Cached attributes, without asking S3 (for readdirplus). */
  peek(path: string): NodeAttrs | undefined {
    const cached = this.attrs.get(path);
    return cached && cached.expires > Date.now() ? cached.attrs : undefined;
  }

  /**
   * The names in a directory in listing order, if a fresh listing of it is cached: made
   * once per listing, so that a reader going through a big directory in random order
   * does not copy and search all of its names for each file.
   */
  listingOrder(path: string): ListingOrder | undefined {
    const listing = this.freshListing(path);
    return listing && orderOf(listing);
  }

  /**
   * The ETag and size of a file without asking S3: its cached attributes, or else its
   * directory's fresh listing (while a HEAD is under way, say). Undefined for what is
   * not known to be a file.
   */
  knownVersion(path: string): { etag: string; size: number } | undefined {
    const attrs = this.peek(path);
    if (attrs) return attrs.kind === 'file' && attrs.etag ? { etag: attrs.etag, size: attrs.size } : undefined;
    const listed = this.freshListing(parentOf(path))?.files.get(baseName(path));
    return listed?.etag ? { etag: listed.etag, size: listed.size } : undefined;
  }

  private freshListing(path: string): Listing | undefined {
    const listing = this.listings.get(path);
    return listing && listing.expires > Date.now() ? listing : undefined;
  }

  private acceptName(name: string, key: string): boolean {
    if (isPosixName(name)) return true;
    this.warnOnce(key, `skipping object "${key}": its name cannot be a file name here`);
    return false;
  }

  private warnShadowed(key: string): void {
    this.warnOnce(key, `object "${key}" is hidden by the directory of the same name (the directory wins)`);
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.log.warn(message);
  }

  private remember(path: string, attrs: NodeAttrs | undefined): void {
    this.attrs.set(path, { attrs, expires: Date.now() + this.ttlMs });
    this.attrsSweep.added();
  }

  /** Records a change made through this mount (close-to-open consistency). */
  set(path: string, attrs: NodeAttrs): void {
    this.pending.delete(path);
    this.remember(path, attrs);
    const listing = this.listings.get(parentOf(path));
    listing?.children.set(baseName(path), attrs.kind === 'dir' ? 'dir' : 'file');
    listing?.files.delete(baseName(path));
    if (listing) listing.order = undefined;
  }

  /** A directory just made here is empty: its first lookups need not ask S3. */
  setEmptyDir(path: string, attrs: NodeAttrs): void {
    this.set(path, attrs);
    this.listings.set(path, { children: new Map(), files: new Map(), expires: Date.now() + this.ttlMs });
    this.listingsSweep.added();
  }

  /** Records that `path` is gone. */
  remove(path: string): void {
    this.pending.delete(path);
    this.arrivals.delete(path);
    this.remember(path, undefined);
    const listing = this.listings.get(parentOf(path));
    listing?.children.delete(baseName(path));
    listing?.files.delete(baseName(path));
    if (listing) listing.order = undefined;
    this.listings.delete(path);
  }

  /** Forgets the attributes of `path`: the next stat asks S3 (its object changed there). */
  invalidate(path: string): void {
    this.pending.delete(path);
    this.arrivals.delete(path);
    this.attrs.delete(path);
  }

  /** Forgets everything at and below `path` (after a directory rename). */
  forgetTree(path: string): void {
    const below = path === '/' ? '/' : `${path}/`;
    for (const map of [this.attrs, this.pending, this.arrivals, this.listings] as Map<string, unknown>[]) {
      for (const p of map.keys()) if (p === path || p.startsWith(below)) map.delete(p);
    }
  }

  /** Whether a fresh listing says the directory is empty; undefined when not known. */
  knownEmpty(path: string): boolean | undefined {
    const listing = this.freshListing(path);
    return listing ? listing.children.size === 0 : undefined;
  }
}

/** The names of a listing in order with their positions, made once per listing. */
function orderOf(listing: Listing): ListingOrder {
  if (!listing.order) {
    const names = [...listing.children.keys()];
    const positions = new Map(names.map((name, i) => [name, i]));
    listing.order = { names, indexOf: (name) => positions.get(name) };
  }
  return listing.order;
}
