import { constants } from 'node:fs';
import { LRUCache } from 'lru-cache';
import PQueue from 'p-queue';
import type { MountConfig } from '../config.js';
import { FsError } from '../errors.js';
import type { DirEntry, FileStat, FuseOperations, OpenResult, StatFs, TimeUpdate, Timespec } from '../fs-types.js';
import { RENAME_EXCHANGE, RENAME_NOREPLACE } from '../fs-types.js';
import type { Logger } from '../log.js';
import type { Bucket } from '../s3/bucket.js';
import { encodeMeta, type PosixMeta } from '../s3/metadata.js';
import type { Journal } from '../upload/journal.js';
import type { ObjectWriter } from '../upload/object-writer.js';
import type { ObjectVersion } from '../cache/chunk-cache.js';
import { FilesReadInOrder } from '../cache/files-in-order.js';
import type { ObjectReader } from '../cache/object-reader.js';
import type { StagedObject } from '../upload/staged-object.js';
import type { DrainProgress } from '../upload/uploader.js';
import { AttrStore, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type AttrDefaults, type NodeAttrs } from './attrs.js';
import { HandleTable, type OpenFile } from './handles.js';
import { Namespace, assertCreatableName, baseName, joinPath, parentOf } from './namespace.js';
import { StagedFiles, stagedAttrs } from './staged-files.js';

export type VfsOptions = Pick<
  MountConfig,
  'prefix' | 'readOnly' | 'uid' | 'gid' | 'fileMode' | 'dirMode' | 'statTtlSeconds' | 'ignoreMetadata' | 'writeMode' | 'uploadConcurrency' | 'cacheSize' | 'partSize'
>;

/** The parts of the read and write paths the Vfs works with (src/cache, src/upload). */
export interface VfsParts {
  journal: Journal;
  writer: ObjectWriter;
  reader: ObjectReader;
}

/** O_ACCMODE: Node's fs.constants lacks it. */
const O_ACCMODE = 3;
/** Parallel copies and deletes of a directory rename. */
const TREE_CONCURRENCY = 16;
/**
 * Files of a directory fetched ahead of a reader going through it in listing order:
 * twice the GETs of files ahead in flight (ObjectReader), so that the next ones start
 * as soon as one ends.
 */
const FILES_AHEAD = 32;

function now(): Timespec {
  const ms = Date.now();
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1_000_000 };
}

function toStat(a: NodeAttrs): FileStat {
  return {
    mode: a.mode,
    size: a.size,
    uid: a.uid,
    gid: a.gid,
    atime: a.mtime,
    mtime: a.mtime,
    ctime: a.mtime,
    nlink: a.kind === 'dir' ? 2 : 1,
  };
}

function metaOf(a: NodeAttrs): Required<PosixMeta> {
  return { mtime: a.mtime, mode: a.mode, uid: a.uid, gid: a.gid };
}

/**
 * libfuse keeps a file that is unlinked or replaced while open under a name like
 * `.fuse_hidden0000000a00000003` until its last release. Such names live only in this
 * mount's memory: they are never looked up in, listed from or written to the bucket.
 */
const HIDDEN_NAME = /^\.fuse_hidden[0-9a-f]{16}$/;

function isHidden(path: string): boolean {
  return HIDDEN_NAME.test(baseName(path));
}

/** The staged object of a writable handle (every writable handle has one). */
function stagedOf(file: OpenFile): StagedObject {
  if (!file.object) throw new FsError('EBADF');
  return file.object;
}

/**
 * The filesystem model: POSIX operations on paths, carried out on the bucket.
 * Independent of FUSE (it throws FsError; src/fuse turns that into errnos).
 */
export class Vfs implements FuseOperations {
  private readonly ns: Namespace;
  private readonly attrs: AttrStore;
  private readonly handles = new HandleTable();
  private readonly staged: StagedFiles;
  private readonly symlinkTargets = new Map<string, string>();
  /** Hidden names (see HIDDEN_NAME) -> what the file was when it went away. */
  private readonly hidden = new Map<string, NodeAttrs>();
  private readonly reader: ObjectReader;
  /** The ETag each path had when last opened for reading: the kernel's cache of it is good while it stays. */
  private readonly openedVersions = new LRUCache<string, string>({ max: 100_000 });
  private readonly filesInOrder = new FilesReadInOrder(FILES_AHEAD);

  constructor(
    private readonly bucket: Bucket,
    parts: VfsParts,
    private readonly options: VfsOptions,
    private readonly log: Logger,
  ) {
    this.ns = new Namespace(options.prefix);
    const defaults: AttrDefaults = {
      uid: options.uid,
      gid: options.gid,
      fileMode: options.fileMode,
      dirMode: options.dirMode,
      implicitDirMtime: now(),
      ignoreMetadata: options.ignoreMetadata,
    };
    this.attrs = new AttrStore(bucket, this.ns, defaults, options.statTtlSeconds * 1000, log);
    this.staged = new StagedFiles(bucket, parts.journal, parts.writer, this.handles, this.attrs, this.ns, options, log);
    this.reader = parts.reader;
  }

  // --- attributes and directories -------------------------------------------------

  /** Attributes as this mount sees them: a staged file's local state wins over S3. */
  private async current(path: string): Promise<NodeAttrs> {
    if (isHidden(path)) return this.hiddenAttrs(path);
    const object = this.staged.get(path);
    if (object) return stagedAttrs(object);
    return this.attrs.stat(path);
  }

  private hiddenAttrs(path: string): NodeAttrs {
    const kept = this.hidden.get(path);
    if (!kept) throw new FsError('ENOENT');
    const file = this.handles.all().find((f) => f.path === path);
    return file ? this.handleAttrs(file) : kept;
  }

  /** unlink or rename-over of an open file, as libfuse does it: a rename to a hidden name. */
  private async hide(path: string, hiddenPath: string): Promise<void> {
    const attrs = await this.current(path);
    if (attrs.kind === 'dir') throw new FsError('EISDIR');
    await this.remove(path);
    this.handles.rename(path, hiddenPath);
    this.hidden.set(hiddenPath, attrs);
  }

  private async exists(path: string): Promise<NodeAttrs | undefined> {
    try {
      return await this.current(path);
    } catch (err) {
      if (err instanceof FsError && err.code === 'ENOENT') return undefined;
      throw err;
    }
  }

  private handleAttrs(file: OpenFile): NodeAttrs {
    if (file.object) return stagedAttrs(file.object);
    return { kind: 'file', size: file.size, etag: file.etag, ...file.meta };
  }

  async getattr(path: string): Promise<FileStat> {
    return toStat(await this.current(path));
  }

  async fgetattr(_path: string | null, fh: number): Promise<FileStat> {
    return toStat(this.handleAttrs(this.handles.get(fh)));
  }

  async readdir(path: string): Promise<DirEntry[]> {
    const self = await this.current(path);
    if (self.kind !== 'dir') throw new FsError('ENOTDIR');
    const children = await this.attrs.list(path);
    if (this.attrs.isListedLeaf(path)) this.fetchFilesAhead(path, this.filesInOrder.listedLeaf(path, () => this.attrs.listingOrder(path)));
    const entries: DirEntry[] = [
      { name: '.', stat: toStat(self) },
      { name: '..', stat: toStat(path === '/' ? self : (this.attrs.peek(parentOf(path)) ?? self)) },
    ];
    for (const name of children.keys()) {
      const child = joinPath(path, name);
      const object = this.staged.get(child);
      const known = object ? stagedAttrs(object) : this.attrs.peek(child);
      entries.push({ name, stat: known && toStat(known) });
    }
    // A file written here and not uploaded yet is in no listing that S3 gives.
    for (const [child, object] of this.staged.childrenOf(path)) {
      if (!children.has(baseName(child))) entries.push({ name: baseName(child), stat: toStat(stagedAttrs(object)) });
    }
    return entries;
  }

  async statfs(): Promise<StatFs> {
    // S3 has no capacity: report a large, constant one so that df and free-space checks pass.
    const blocks = 1n << 40n;
    return { bsize: 4096, frsize: 4096, blocks, bfree: blocks, bavail: blocks, files: 1n << 32n, ffree: 1n << 32n, favail: 1n << 32n, namemax: 255 };
  }

  // --- open files ----------------------------------------------------------------------

  private assertWritable(): void {
    if (this.options.readOnly) throw new FsError('EROFS');
  }

  private async assertParentDir(path: string): Promise<void> {
    const parent = await this.current(parentOf(path));
    if (parent.kind !== 'dir') throw new FsError('ENOTDIR');
  }

  async create(path: string, mode: number, _flags: number): Promise<OpenResult> {
    this.assertWritable();
    assertCreatableName(path);
    await this.assertParentDir(path);
    const meta = { mtime: now(), mode: S_IFREG | (mode & 0o7777), uid: this.options.uid, gid: this.options.gid };
    const object = await this.staged.create(path, meta);
    const file = this.handles.add({ path, writable: true, object, size: 0, meta, unlinked: false });
    this.attrs.set(path, stagedAttrs(object));
    return { fh: file.fh };
  }

  async open(path: string, flags: number): Promise<OpenResult> {
    const attrs = await this.current(path);
    if (attrs.kind === 'dir') throw new FsError('EISDIR');
    const writable = (flags & O_ACCMODE) !== constants.O_RDONLY;
    if (writable) this.assertWritable();
    const object = writable ? await this.staged.stage(path, attrs) : this.staged.forReading(path);
    const readAhead = object ? undefined : this.reader.newReadAhead();
    const file = this.handles.add({ path, writable, object, size: attrs.size, etag: attrs.etag, meta: metaOf(attrs), unlinked: false, readAhead });
    // atomic_o_trunc: O_TRUNC comes here, not as a separate truncate.
    if (object && writable && flags & constants.O_TRUNC) await this.resize(object, 0);
    return { fh: file.fh, keepCache: this.kernelCacheHolds(path, object ? undefined : attrs.etag) };
  }

  /**
   * Whether the kernel's page cache of the file may stay (keep_cache) rather than be
   * dropped at this open: only while the object is the version read at the last open.
   * Re-reading an unchanged file then costs no FUSE request at all.
   */
  private kernelCacheHolds(path: string, etag: string | undefined): boolean {
    const before = this.openedVersions.get(path);
    if (etag === undefined) this.openedVersions.delete(path);
    else this.openedVersions.set(path, etag);
    return etag !== undefined && before === etag;
  }

  async read(_path: string | null, fh: number, target: Buffer, position: number): Promise<number> {
    const file = this.handles.get(fh);
    if (file.object) return file.object.read(target, position);
    if (!file.etag || !file.readAhead) {
      const end = Math.min(file.size, position + target.length);
      if (position >= end) return 0;
      return (await this.bucket.getRange(this.ns.key(file.path), position, end)).copy(target);
    }
    const version = { key: this.ns.key(file.path), etag: file.etag, size: file.size };
    try {
      const filled = await this.reader.read(version, file.readAhead, target, position);
      if (file.readAhead.readWholeNow(file.size)) this.readNextFilesAhead(file.path);
      return filled;
    } catch (err) {
      if (!(err instanceof FsError && err.code === 'ESTALE')) throw err;
    }
    // The object was replaced (or renamed to a copy with another ETag): read the new one.
    this.reader.cache.forget(version.key);
    this.attrs.invalidate(file.path);
    const attrs = await this.current(file.path);
    if (attrs.kind !== 'file' || !attrs.etag) throw new FsError('ESTALE');
    file.size = attrs.size;
    file.etag = attrs.etag;
    return this.reader.read({ key: version.key, etag: attrs.etag, size: attrs.size }, file.readAhead, target, position);
  }

  /**
   * `path` has been read whole: if that continues a run through its directory in
   * listing order, the files after it are fetched ahead, as their attributes or the
   * directory's listing know them.
   */
  private readNextFilesAhead(path: string, listed = false): void {
    const dir = parentOf(path);
    if (!listed && this.filesInOrder.walkingInto(dir) && !this.attrs.listingOrder(dir)) {
      // A walk that lists nothing (md5sum -c) came into this directory: it is listed now,
      // not at the walk's next lookup here, so that the next files are fetched a round
      // trip sooner.
      this.attrs.listWalkedInto(dir, baseName(path)).then(
        () => this.readNextFilesAhead(path, true),
        () => undefined, // the walk's next lookup lists it, or tells the error
      );
      return;
    }
    this.fetchFilesAhead(dir, this.filesInOrder.readWhole(dir, baseName(path), () => this.attrs.listingOrder(dir)));
    if (this.filesInOrder.nearingEnd(dir)) this.fetchNextDirectoryAhead(dir);
  }

  /**
   * A run through `dir` nears its end: a walk goes on to the next directory in its
   * parent's listing order (`md5sum -c` of sorted paths, `tar c`, `cp -r`). That one is
   * listed now and, if it has no subdirectories, its first files are fetched ahead while
   * the walk reads the last files here. They otherwise cost it four round trips in a row
   * once there (the probe of its first file, that file's GET, the listing, the next
   * file's GET), with no GET in flight meanwhile.
   */
  private fetchNextDirectoryAhead(dir: string): void {
    const next = dir === '/' ? undefined : this.attrs.nextDirectoryAfter(dir);
    if (next === undefined) return;
    this.attrs.listWalkedInto(next).then(
      () => {
        if (this.attrs.isListedLeaf(next)) this.fetchFilesAhead(next, this.filesInOrder.goOnInto(next, () => this.attrs.listingOrder(next)));
      },
      () => undefined, // the walk's lookups there list it again, or tell the error
    );
  }

  /**
   * Fetches the files `names` of `dir` ahead of a reader, those not pending upload. Their
   * GETs' answers give their attributes, so their lookups need no HEAD.
   */
  private fetchFilesAhead(dir: string, names: readonly string[]): void {
    const paths = new Map<ObjectVersion, string>();
    for (const name of names) {
      const next = joinPath(dir, name);
      const known = this.staged.get(next) ? undefined : this.attrs.knownVersion(next);
      if (known) paths.set({ key: this.ns.key(next), ...known }, next);
    }
    for (const [version, answer] of this.reader.readFilesAhead([...paths.keys()])) this.attrs.arriving(paths.get(version) as string, answer);
  }

  async write(_path: string | null, fh: number, data: Buffer, position: number): Promise<number> {
    const object = stagedOf(this.handles.get(fh));
    await this.staged.roomFor(object, position + data.length);
    await object.write(data, position);
    object.meta = { ...object.meta, mtime: now() };
    this.staged.written(object);
    return data.length;
  }

  async flush(_path: string | null, fh: number): Promise<void> {
    const file = this.handles.get(fh);
    if (file.writable && file.object && !file.unlinked) await this.staged.closed(file.object);
  }

  async fsync(_path: string | null, _datasync: boolean, fh: number): Promise<void> {
    const file = this.handles.get(fh);
    const object = file.object ?? this.staged.get(file.path);
    if (object && !file.unlinked) await this.staged.fsync(object);
  }

  async release(_path: string | null, fh: number): Promise<void> {
    const file = this.handles.get(fh);
    this.handles.delete(fh);
    file.readAhead?.close();
    if (!file.object) return;
    try {
      await this.staged.settle(file.object);
    } catch (err) {
      // Nobody hears release's answer: flush already reported errors to close().
      this.log.error(`after closing ${file.path}: ${String(err)}`);
    }
  }

  private async resize(object: StagedObject, size: number): Promise<void> {
    await this.staged.roomFor(object, size);
    await object.truncate(size);
    object.meta = { ...object.meta, mtime: now() };
  }

  async ftruncate(_path: string | null, fh: number, size: number): Promise<void> {
    await this.resize(stagedOf(this.handles.get(fh)), size);
  }

  async truncate(path: string, size: number): Promise<void> {
    this.assertWritable();
    if (isHidden(path)) {
      const object = this.handles.all().find((f) => f.path === path && f.object)?.object;
      if (!object) throw new FsError('ENOENT');
      return this.resize(object, size);
    }
    const attrs = await this.current(path);
    if (attrs.kind === 'dir') throw new FsError('EISDIR');
    const object = await this.staged.stage(path, attrs);
    await this.resize(object, size);
    await this.staged.changedByPath(object, true);
  }

  // --- attributes kept as object metadata -----------------------------------------------

  async utimens(path: string, _atime: TimeUpdate, mtime: TimeUpdate): Promise<void> {
    // A read-only filesystem refuses any time update (utimensat: EROFS), even one that would change nothing.
    this.assertWritable();
    // Only mtime is kept (atime is reported equal to it): an atime-only update changes nothing.
    if (mtime === 'omit') {
      await this.current(path);
      return;
    }
    const time = mtime === 'now' ? now() : mtime;
    await this.changeMeta(path, (meta) => ({ ...meta, mtime: time }));
  }

  async chmod(path: string, mode: number): Promise<void> {
    await this.changeMeta(path, (meta) => ({ ...meta, mode: (meta.mode & S_IFMT) | (mode & 0o7777) }));
  }

  async chown(path: string, uid: number, gid: number): Promise<void> {
    await this.changeMeta(path, (meta) => ({ ...meta, uid: uid === -1 ? meta.uid : uid, gid: gid === -1 ? meta.gid : gid }));
  }

  /**
   * A file's new attributes go up with its data (tar's chmod and utimens after close
   * cost nothing extra while the file is pending); a file already in the bucket is
   * copied onto itself, in the background unless --write-mode=sync. Directories and
   * symlinks are copied at once.
   */
  private async changeMeta(path: string, change: (meta: Required<PosixMeta>) => Required<PosixMeta>): Promise<void> {
    this.assertWritable();
    if (isHidden(path)) return this.changeHiddenMeta(path, change);
    const attrs = await this.current(path);
    if (attrs.kind === 'file') {
      const object = await this.staged.stage(path, attrs);
      object.setMeta(change(object.meta));
      this.attrs.set(path, stagedAttrs(object));
      await this.staged.changedByPath(object, false);
      return;
    }
    const meta = change(metaOf(attrs));
    const metadata = encodeMeta(meta);
    let etag: string;
    if (attrs.kind === 'dir') {
      const marker = path === '/' ? undefined : this.ns.dirPrefix(path);
      if (!marker) return; // the mount root has no object to carry attributes
      ({ etag } = attrs.etag
        ? await this.bucket.copy(marker, marker, { size: 0, metadata })
        : await this.bucket.put(marker, Buffer.alloc(0), metadata));
    } else {
      const key = this.ns.key(path);
      ({ etag } = await this.bucket.copy(key, key, { size: attrs.size, metadata }));
    }
    this.attrs.set(path, { ...attrs, ...meta, etag });
  }

  /** A hidden (unlinked, still open) file keeps attribute changes for its descriptors only. */
  private changeHiddenMeta(path: string, change: (meta: Required<PosixMeta>) => Required<PosixMeta>): void {
    const kept = this.hiddenAttrs(path);
    this.hidden.set(path, { ...kept, ...change(metaOf(kept)) });
    for (const file of this.handles.all()) {
      if (file.path !== path) continue;
      if (file.object) file.object.setMeta(change(file.object.meta));
      else file.meta = change(file.meta);
    }
  }

  // --- names ---------------------------------------------------------------------------

  async mkdir(path: string, mode: number): Promise<void> {
    this.assertWritable();
    assertCreatableName(path);
    await this.assertParentDir(path);
    const attrs: NodeAttrs = { kind: 'dir', size: 4096, mtime: now(), mode: S_IFDIR | (mode & 0o7777), uid: this.options.uid, gid: this.options.gid };
    const { etag } = await this.bucket.put(this.ns.dirPrefix(path), Buffer.alloc(0), encodeMeta(metaOf(attrs)));
    this.attrs.setEmptyDir(path, { ...attrs, etag });
  }

  async rmdir(path: string): Promise<void> {
    this.assertWritable();
    const attrs = await this.current(path);
    if (attrs.kind !== 'dir') throw new FsError('ENOTDIR');
    const marker = this.ns.dirPrefix(path);
    // A file created here and not uploaded yet is in no listing, but it is in the directory.
    if (this.staged.hasAnyUnder(path)) throw new FsError('ENOTEMPTY');
    for await (const object of this.bucket.listAll(marker)) {
      if (object.key !== marker) throw new FsError('ENOTEMPTY');
    }
    await this.bucket.delete(marker);
    this.attrs.remove(path);
    await this.keepDirectory(parentOf(path));
  }

  async unlink(path: string): Promise<void> {
    this.assertWritable();
    if (isHidden(path)) {
      // Its last descriptor was released: the staged copies went with the handles.
      if (!this.hidden.delete(path)) throw new FsError('ENOENT');
      return;
    }
    const attrs = await this.current(path);
    if (attrs.kind === 'dir') throw new FsError('EISDIR');
    await this.remove(path);
  }

  /** The file goes from the bucket and the namespace; open descriptors keep working. */
  private async remove(path: string): Promise<void> {
    // A file that never reached the bucket needs no DELETE.
    const stored = await this.staged.detach(path);
    if (stored) await this.bucket.delete(this.ns.key(path));
    this.handles.markUnlinked(path);
    this.attrs.remove(path);
    await this.keepDirectory(parentOf(path));
  }

  /**
   * A directory with no marker exists only through its children: when its last child
   * goes, write a marker so that it stays, as a POSIX directory would.
   */
  private async keepDirectory(dir: string): Promise<void> {
    if (dir === '/') return;
    const attrs = this.attrs.peek(dir);
    if (attrs?.etag) return;
    const prefix = this.ns.dirPrefix(dir);
    const empty = this.attrs.knownEmpty(dir) ?? !(await this.bucket.hasAnyUnder(prefix));
    if (!empty) return;
    // S3 may no longer show the directory at all (no marker, no keys left), yet it held
    // the child just removed: it then has the attributes of a directory without marker.
    const base = attrs ?? (await this.attrs.stat(dir).catch(() => undefined)) ?? this.attrs.rootAttrs();
    const { etag } = await this.bucket.put(prefix, Buffer.alloc(0), encodeMeta(metaOf(base)));
    this.attrs.set(dir, { ...base, etag });
  }

  async rename(from: string, to: string, flags: number): Promise<void> {
    this.assertWritable();
    if (flags & RENAME_EXCHANGE) throw new FsError('EINVAL');
    if (isHidden(to)) return this.hide(from, to);
    if (isHidden(from)) throw new FsError('EPERM'); // libfuse never renames one back
    assertCreatableName(to);
    const source = await this.current(from);
    const target = await this.exists(to);
    if (target && flags & RENAME_NOREPLACE) throw new FsError('EEXIST');
    // rename(2) onto the same name does nothing; copying a key onto itself would fail,
    // and a directory would lose its marker to the rmdir of the "target".
    if (from === to) return;
    await this.assertParentDir(to);
    if (source.kind === 'dir') await this.renameDir(from, to, source, target);
    else await this.renameFile(from, to, source, target);
    await this.keepDirectory(parentOf(from));
  }

  private async renameFile(from: string, to: string, source: NodeAttrs, target: NodeAttrs | undefined): Promise<void> {
    if (target?.kind === 'dir') throw new FsError('EISDIR');
    // Descriptors open on the replaced file keep its content.
    if (target) {
      await this.staged.detach(to);
      this.handles.markUnlinked(to);
    }
    const object = this.staged.get(from);
    if (object) {
      // A staged file follows the name without being uploaded first.
      await this.staged.move(from, to, object);
      this.attrs.remove(from);
      this.attrs.set(to, stagedAttrs(object));
      return;
    }
    const stored = this.attrs.peek(from) ?? (await this.attrs.stat(from).catch(() => undefined));
    let moved = source;
    if (stored?.etag) {
      const { etag } = await this.bucket.copy(this.ns.key(from), this.ns.key(to), { size: stored.size });
      await this.bucket.delete(this.ns.key(from));
      // A copy may get another ETag (AWS gives a copied multipart object a plain MD5 one):
      // handles and lookups of the new name must expect the copy's, or reads fail with ESTALE.
      for (const file of this.handles.all()) if (file.path === from && file.etag === stored.etag) file.etag = etag;
      if (source.etag === stored.etag) moved = { ...source, etag };
    }
    this.handles.rename(from, to);
    this.attrs.remove(from);
    this.attrs.set(to, moved);
  }

  /** Not atomic: every key under the prefix is copied, then the old ones deleted. */
  private async renameDir(from: string, to: string, source: NodeAttrs, target: NodeAttrs | undefined): Promise<void> {
    if (to.startsWith(`${from}/`)) throw new FsError('EINVAL');
    if (target) {
      if (target.kind !== 'dir') throw new FsError('ENOTDIR');
      await this.rmdir(to);
    }
    await this.staged.detachTree(from);
    const oldPrefix = this.ns.dirPrefix(from);
    const newPrefix = this.ns.dirPrefix(to);
    const queue = new PQueue({ concurrency: TREE_CONCURRENCY });
    const moved: string[] = [];
    const copies: Promise<unknown>[] = [];
    for await (const object of this.bucket.listAll(oldPrefix)) {
      moved.push(object.key);
      const newKey = newPrefix + object.key.slice(oldPrefix.length);
      copies.push(queue.add(() => this.bucket.copy(object.key, newKey, { size: object.size })));
    }
    await Promise.all(copies);
    await this.bucket.deleteMany(moved);
    await this.staged.renameTree(from, to);
    this.handles.rename(from, to);
    this.attrs.forgetTree(from);
    this.attrs.forgetTree(to);
    this.attrs.remove(from);
    this.attrs.set(to, source);
  }

  async symlink(target: string, path: string): Promise<void> {
    this.assertWritable();
    assertCreatableName(path);
    await this.assertParentDir(path);
    const body = Buffer.from(target);
    const attrs: NodeAttrs = { kind: 'symlink', size: body.length, mtime: now(), mode: S_IFLNK | 0o777, uid: this.options.uid, gid: this.options.gid };
    const { etag } = await this.bucket.put(this.ns.key(path), body, encodeMeta(metaOf(attrs)));
    this.attrs.set(path, { ...attrs, etag });
    this.symlinkTargets.set(etag, target);
  }

  async readlink(path: string): Promise<string> {
    const attrs = await this.current(path);
    if (attrs.kind !== 'symlink') throw new FsError('EINVAL');
    const known = attrs.etag && this.symlinkTargets.get(attrs.etag);
    if (known) return known;
    const target = (await this.bucket.getObject(this.ns.key(path))).toString();
    if (attrs.etag) this.symlinkTargets.set(attrs.etag, target);
    return target;
  }

  async link(_existing: string, _path: string): Promise<void> {
    // As Linux does, a read-only mount answers EROFS before the filesystem's own refusal.
    this.assertWritable();
    // S3 has no hard links.
    throw new FsError('EPERM');
  }

  /** Files recovery could not upload yet: pending here. */
  adopt(objects: StagedObject[]): void {
    this.staged.adopt(objects);
  }

  /** Uploads every staged file (at unmount); `progress` hears what is left about every second. */
  drain(progress?: (left: DrainProgress) => void): Promise<void> {
    return this.staged.drain(progress);
  }

  /** Stops uploading: what is pending stays in the journal for the next mount. */
  abandonUploads(): void {
    this.staged.abandon();
  }
}
