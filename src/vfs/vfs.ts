import { constants } from 'node:fs';
import PQueue from 'p-queue';
import type { MountConfig } from '../config.js';
import { FsError } from '../errors.js';
import type { DirEntry, FileStat, FuseOperations, OpenResult, StatFs, TimeUpdate, Timespec } from '../fs-types.js';
import { RENAME_EXCHANGE, RENAME_NOREPLACE } from '../fs-types.js';
import type { Logger } from '../log.js';
import type { Bucket } from '../s3/bucket.js';
import type { StagedFile, StagingArea } from '../upload/staging.js';
import { AttrStore, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type AttrDefaults, type NodeAttrs } from './attrs.js';
import { HandleTable, type OpenFile } from './handles.js';
import { encodeMeta, type PosixMeta } from './metadata.js';
import { Namespace, assertCreatableName, baseName, joinPath, parentOf } from './namespace.js';

export type VfsOptions = Pick<MountConfig, 'prefix' | 'readOnly' | 'uid' | 'gid' | 'fileMode' | 'dirMode' | 'statTtlSeconds'>;

/** O_ACCMODE: Node's fs.constants lacks it. */
const O_ACCMODE = 3;
/** Smallest ranged GET for reads: sequential readers get this much per request. */
const READ_WINDOW = 4 * 1024 * 1024;
/** Largest ranged GET when a file is downloaded to its staging file. */
const DOWNLOAD_RANGE = 8 * 1024 * 1024;
/** Parallel copies and deletes of a directory rename. */
const TREE_CONCURRENCY = 16;

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

/** The handle's staged copy, which the caller has just made sure of (stage/resize). */
function localCopy(file: OpenFile): StagedFile {
  if (!file.staged) throw new Error(`no local copy of ${file.path}`);
  return file.staged;
}

function metaOf(a: NodeAttrs): Required<PosixMeta> {
  return { mtime: a.mtime, mode: a.mode, uid: a.uid, gid: a.gid };
}

/**
 * The filesystem model: POSIX operations on paths, carried out on the bucket.
 * Independent of FUSE (it throws FsError; src/fuse turns that into errnos).
 */
export class Vfs implements FuseOperations {
  private readonly ns: Namespace;
  private readonly attrs: AttrStore;
  private readonly handles = new HandleTable();
  private readonly symlinkTargets = new Map<string, string>();

  constructor(
    private readonly bucket: Bucket,
    private readonly staging: StagingArea,
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
    };
    this.attrs = new AttrStore(bucket, this.ns, defaults, options.statTtlSeconds * 1000, log);
  }

  // --- attributes and directories -------------------------------------------------

  /** Attributes as this mount sees them: an open writer's local state wins over S3. */
  private async current(path: string): Promise<NodeAttrs> {
    const writer = this.handles.writersOf(path).at(-1);
    if (writer) return this.handleAttrs(writer);
    return this.attrs.stat(path);
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
    return { kind: 'file', size: file.size, mtime: file.meta.mtime, mode: file.meta.mode, uid: file.meta.uid, gid: file.meta.gid, etag: file.etag };
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
    const entries: DirEntry[] = [
      { name: '.', stat: toStat(self) },
      { name: '..', stat: toStat(path === '/' ? self : (this.attrs.peek(parentOf(path)) ?? self)) },
    ];
    for (const name of children.keys()) {
      const child = joinPath(path, name);
      const writer = this.handles.writersOf(child).at(-1);
      const known = writer ? this.handleAttrs(writer) : this.attrs.peek(child);
      entries.push({ name, stat: known && toStat(known) });
    }
    // A file created here and not uploaded yet is in no listing that S3 gives.
    for (const file of this.handles.all()) {
      const name = baseName(file.path);
      if (!file.writable || file.unlinked || parentOf(file.path) !== path || children.has(name)) continue;
      if (entries.some((e) => e.name === name)) continue;
      entries.push({ name, stat: toStat(this.handleAttrs(this.handles.writersOf(file.path).at(-1) ?? file)) });
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
    const file = this.handles.add({
      path,
      writable: true,
      staged: await this.staging.newFile(),
      size: 0,
      meta: { mtime: now(), mode: S_IFREG | (mode & 0o7777), uid: this.options.uid, gid: this.options.gid },
      dataDirty: true,
      metaDirty: false,
      unlinked: false,
    });
    this.attrs.set(path, this.handleAttrs(file));
    return { fh: file.fh };
  }

  async open(path: string, flags: number): Promise<OpenResult> {
    const attrs = await this.current(path);
    if (attrs.kind === 'dir') throw new FsError('EISDIR');
    const writable = (flags & O_ACCMODE) !== constants.O_RDONLY;
    if (writable) this.assertWritable();
    const file = this.handles.add({
      path,
      writable,
      size: attrs.size,
      etag: attrs.etag,
      meta: metaOf(attrs),
      dataDirty: false,
      metaDirty: false,
      unlinked: false,
    });
    // atomic_o_trunc: O_TRUNC comes here, not as a separate truncate.
    if (writable && flags & constants.O_TRUNC) await this.resize(file, 0);
    return { fh: file.fh };
  }

  async read(_path: string | null, fh: number, target: Buffer, position: number): Promise<number> {
    const file = this.handles.get(fh);
    if (file.staged && !file.loading) return file.staged.read(target, position);
    // Another open file description that is writing this path has the newest bytes.
    const writer = file.writable ? undefined : this.handles.writersOf(file.path).find((w) => w.staged && !w.loading);
    if (writer?.staged) return writer.staged.read(target, position);
    if (file.loading) {
      await file.loading;
      return localCopy(file).read(target, position);
    }
    if (position >= file.size) return 0;
    const end = Math.min(file.size, position + target.length);
    let window = file.window;
    if (!window || position < window.start || end > window.end) {
      const windowEnd = Math.min(file.size, position + Math.max(target.length, READ_WINDOW));
      const data = this.bucket.getRange(this.ns.key(file.path), position, windowEnd, file.etag);
      window = { start: position, end: windowEnd, data };
      file.window = window;
      data.catch(() => {
        if (file.window === window) file.window = undefined;
      });
    }
    const data = await window.data;
    return data.copy(target, 0, position - window.start, end - window.start);
  }

  async write(_path: string | null, fh: number, data: Buffer, position: number): Promise<number> {
    const file = this.handles.get(fh);
    await this.stage(file);
    await localCopy(file).write(data, position);
    file.size = Math.max(file.size, position + data.length);
    file.dataDirty = true;
    file.meta = { ...file.meta, mtime: now() };
    return data.length;
  }

  /** Makes sure the handle has a local copy of the whole current content. */
  private stage(file: OpenFile): Promise<void> {
    if (file.loading) return file.loading;
    if (file.staged) return Promise.resolve();
    file.loading = this.download(file).finally(() => {
      file.loading = undefined;
    });
    return file.loading;
  }

  private async download(file: OpenFile): Promise<void> {
    const staged = await this.staging.newFile();
    try {
      // In ranges: one GET of the whole object would hold all of it in memory.
      for (let start = 0; start < file.size; start += DOWNLOAD_RANGE) {
        const end = Math.min(file.size, start + DOWNLOAD_RANGE);
        const content = await this.bucket.getRange(this.ns.key(file.path), start, end, file.etag);
        await staged.write(content, start);
        if (content.length < end - start) break; // the object is shorter than the handle thought
      }
    } catch (err) {
      await staged.discard();
      throw err;
    }
    file.staged = staged;
  }

  async flush(_path: string | null, fh: number): Promise<void> {
    await this.commit(this.handles.get(fh));
  }

  async fsync(_path: string | null, _datasync: boolean, fh: number): Promise<void> {
    await this.commit(this.handles.get(fh));
  }

  async release(_path: string | null, fh: number): Promise<void> {
    const file = this.handles.get(fh);
    try {
      // The handle stays in the table while its upload runs: a chmod or utimens of the
      // path meanwhile lands on it, after the upload took its metadata. Upload that too
      // (no await between the last check and the delete below).
      do await this.commit(file);
      while (!file.unlinked && (file.dataDirty || file.metaDirty));
    } catch (err) {
      // Nobody hears release's answer: flush already reported this error to close().
      this.log.error(`upload of ${file.path} failed at close: ${String(err)}`);
    } finally {
      this.handles.delete(fh);
      await file.staged?.discard();
    }
  }

  /** Uploads what this handle changed; one upload at a time per handle. */
  private commit(file: OpenFile): Promise<void> {
    const run = file.committing.then(() => this.upload(file));
    file.committing = run.catch(() => undefined);
    return run;
  }

  private async upload(file: OpenFile): Promise<void> {
    if (file.unlinked || (!file.dataDirty && !file.metaDirty)) return;
    const key = this.ns.key(file.path);
    const metadata = encodeMeta(file.meta);
    const wasData = file.dataDirty;
    // Cleared before the upload: a write that lands meanwhile sets it again.
    file.dataDirty = file.metaDirty = false;
    try {
      if (wasData) {
        await this.stage(file);
        const size = file.size;
        const { etag } = await this.bucket.uploadFile(key, localCopy(file).path, size, metadata);
        file.etag = etag;
      } else {
        const { etag } = await this.bucket.copy(key, key, { size: file.size, metadata });
        file.etag = etag;
      }
    } catch (err) {
      if (wasData) file.dataDirty = true;
      else file.metaDirty = true;
      throw err;
    }
    if (!file.unlinked) this.attrs.set(file.path, this.handleAttrs(file));
  }

  private async resize(file: OpenFile, size: number): Promise<void> {
    if (size === 0 && !file.staged) {
      file.staged = await this.staging.newFile();
    } else {
      await this.stage(file);
    }
    await localCopy(file).truncate(size);
    file.size = size;
    file.dataDirty = true;
    file.meta = { ...file.meta, mtime: now() };
  }

  async ftruncate(_path: string | null, fh: number, size: number): Promise<void> {
    await this.resize(this.handles.get(fh), size);
  }

  async truncate(path: string, size: number): Promise<void> {
    this.assertWritable();
    const writer = this.handles.writersOf(path).at(-1);
    if (writer) return this.resize(writer, size);
    const { fh } = await this.open(path, constants.O_WRONLY);
    const file = this.handles.get(fh);
    try {
      await this.resize(file, size);
      await this.commit(file);
    } finally {
      await this.release(path, fh);
    }
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
   * Metadata of an open file is uploaded with its data (or copied onto the object at
   * its next flush); otherwise the object is copied onto itself with the new metadata.
   */
  private async changeMeta(path: string, change: (meta: Required<PosixMeta>) => Required<PosixMeta>): Promise<void> {
    this.assertWritable();
    const writers = this.handles.writersOf(path);
    if (writers.length > 0) {
      for (const file of writers) {
        file.meta = change(file.meta);
        file.metaDirty = true;
      }
      this.attrs.set(path, this.handleAttrs(writers[writers.length - 1] as OpenFile));
      return;
    }
    const attrs = await this.attrs.stat(path);
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
    if (this.handles.all().some((f) => f.writable && !f.unlinked && f.path.startsWith(`${path}/`))) throw new FsError('ENOTEMPTY');
    for await (const object of this.bucket.listAll(marker)) {
      if (object.key !== marker) throw new FsError('ENOTEMPTY');
    }
    await this.bucket.delete(marker);
    this.attrs.remove(path);
    await this.keepDirectory(parentOf(path));
  }

  async unlink(path: string): Promise<void> {
    this.assertWritable();
    const attrs = await this.current(path);
    if (attrs.kind === 'dir') throw new FsError('EISDIR');
    // Open descriptors keep working once the object is gone: each gets its local copy first.
    await Promise.all(this.handles.all().filter((f) => f.path === path && !f.unlinked).map((f) => this.stage(f)));
    await this.bucket.delete(this.ns.key(path));
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
    // Descriptors open on the replaced file keep its content: each gets its local copy first.
    if (target) await Promise.all(this.handles.all().filter((f) => f.path === to && !f.unlinked).map((f) => this.stage(f)));
    const stored = this.attrs.peek(from) ?? (await this.attrs.stat(from).catch(() => undefined));
    // A file created here and not uploaded yet has nothing to copy: its handle follows the name.
    let moved = source;
    if (stored?.etag) {
      const { etag } = await this.bucket.copy(this.ns.key(from), this.ns.key(to), { size: stored.size });
      await this.bucket.delete(this.ns.key(from));
      // A copy may get another ETag (AWS gives a copied multipart object a plain MD5 one):
      // handles and lookups of the new name must expect the copy's, or reads fail with ESTALE.
      for (const file of this.handles.all()) if (file.path === from && file.etag === stored.etag) file.etag = etag;
      if (source.etag === stored.etag) moved = { ...source, etag };
    }
    if (target) this.handles.markUnlinked(to);
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

  /** Waits for every open file's pending upload (used before unmounting). */
  async drain(): Promise<void> {
    await Promise.all(this.handles.all().map((file) => this.commit(file).catch((err: unknown) => {
      this.log.error(`upload of ${file.path} failed while unmounting: ${String(err)}`);
    })));
  }
}
