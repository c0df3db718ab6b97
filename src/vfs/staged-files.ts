import type { WriteMode } from '../config.js';
import { FsError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Bucket } from '../s3/bucket.js';
import type { PosixMeta } from '../s3/metadata.js';
import type { Journal } from '../upload/journal.js';
import type { ObjectWriter } from '../upload/object-writer.js';
import { StagedObject } from '../upload/staged-object.js';
import { Uploader, type DrainProgress } from '../upload/uploader.js';
import type { AttrStore, NodeAttrs } from './attrs.js';
import type { HandleTable, OpenFile } from './handles.js';
import { parentOf, type Namespace } from './namespace.js';

export interface StagedFilesOptions {
  writeMode: WriteMode;
  uploadConcurrency: number;
  cacheSize: number;
  partSize: number;
}

/** The attributes of a file as this mount is writing it. */
export function stagedAttrs(object: StagedObject): NodeAttrs {
  const { meta } = object;
  return { kind: 'file', size: object.size, mtime: meta.mtime, mode: meta.mode, uid: meta.uid, gid: meta.gid, etag: object.dirty ? undefined : object.base?.etag };
}

/**
 * Files of this mount whose content is staged locally: being written, or closed and
 * waiting for their upload. One staged object per path, shared by all its handles.
 * Decides when a change is accepted into the journal and when it is uploaded.
 */
export class StagedFiles {
  private readonly byPath = new Map<string, StagedObject>();
  private readonly uploader: Uploader;

  constructor(
    private readonly bucket: Bucket,
    private readonly journal: Journal,
    private readonly writer: ObjectWriter,
    private readonly handles: HandleTable,
    private readonly attrs: AttrStore,
    private readonly ns: Namespace,
    private readonly options: StagedFilesOptions,
    private readonly log: Logger,
  ) {
    this.uploader = new Uploader(writer, journal, log, {
      concurrency: options.uploadConcurrency,
      cacheSize: options.cacheSize,
      uploaded: (object) => this.uploaded(object),
      settled: (object) => this.settleLater(object),
    });
  }

  get(path: string): StagedObject | undefined {
    return this.byPath.get(path);
  }

  /**
   * What a reader opening `path` reads: the staged content while it differs from the
   * bucket (read-your-writes); once uploaded, the bucket's object, like any reader.
   */
  forReading(path: string): StagedObject | undefined {
    const object = this.byPath.get(path);
    return object?.dirty ? object : undefined;
  }

  /** Staged files directly in `dir`. */
  *childrenOf(dir: string): Generator<[string, StagedObject]> {
    for (const entry of this.byPath) if (parentOf(entry[0]) === dir) yield entry;
  }

  hasAnyUnder(dir: string): boolean {
    const below = `${dir}/`;
    for (const path of this.byPath.keys()) if (path.startsWith(below)) return true;
    return false;
  }

  /** A new, empty file. */
  async create(path: string, meta: Required<PosixMeta>): Promise<StagedObject> {
    await this.detach(path);
    const { id, file } = await this.journal.newDataFile();
    const object = new StagedObject({ id, file, key: this.ns.key(path), size: 0, meta, partSize: this.options.partSize }, this.bucket);
    this.byPath.set(path, object);
    return object;
  }

  /** The staged object of an existing file, made on first need; no byte is fetched yet. */
  async stage(path: string, attrs: NodeAttrs): Promise<StagedObject> {
    const existing = this.byPath.get(path);
    if (existing) return existing;
    const object = await this.fromStored(path, attrs);
    // Another call may have staged it while the data file was made.
    const raced = this.byPath.get(path);
    if (raced) {
      await object.file.discard();
      return raced;
    }
    this.byPath.set(path, object);
    return object;
  }

  private async fromStored(path: string, attrs: NodeAttrs): Promise<StagedObject> {
    const { id, file } = await this.journal.newDataFile();
    // Sparse: bytes not fetched read as holes and take no space.
    await file.truncate(attrs.size);
    const key = this.ns.key(path);
    const base = attrs.etag ? { key, etag: attrs.etag, size: attrs.size, validBytes: attrs.size } : undefined;
    return new StagedObject(
      { id, file, key, size: attrs.size, meta: { mtime: attrs.mtime, mode: attrs.mode, uid: attrs.uid, gid: attrs.gid }, partSize: this.options.partSize, base, clean: base !== undefined },
      this.bucket,
    );
  }

  /** Waits, before a write grows `object`, while the staging area is full. */
  async roomFor(object: StagedObject, end: number): Promise<void> {
    const growth = end - object.size;
    if (growth > 0) await this.uploader.waitForRoom(() => this.usedBytes(), growth);
  }

  private usedBytes(): number {
    let used = 0;
    for (const object of this.byPath.values()) used += object.localBytes();
    return used;
  }

  /** After a write: full parts of a file written front to back start uploading. */
  written(object: StagedObject): void {
    this.writer.streamParts(object);
  }

  /** close() of a writer: the file is accepted into the journal (and uploaded, in sync mode). */
  async closed(object: StagedObject): Promise<void> {
    if (!object.dirty) return;
    await this.acceptOrEio(object);
    if (this.options.writeMode === 'sync') await this.uploadOrEio(object);
  }

  /** fsync(): returns once the file is in the bucket, in both modes. */
  async fsync(object: StagedObject): Promise<void> {
    if (!object.dirty) return;
    await this.acceptOrEio(object);
    await this.uploadOrEio(object);
  }

  /**
   * A change made by path (chmod, utimens, truncate), with no descriptor to close: it is
   * journaled at once (a killed mount keeps tar's modes and times), then uploaded, in
   * the background unless --write-mode=sync.
   */
  async changedByPath(object: StagedObject, dataChanged: boolean): Promise<void> {
    if (this.hasWriters(object)) return; // the writers' close takes care of it
    // New bytes (a truncate) are fsync'ed; new attributes alone need not be.
    if (dataChanged) await this.acceptOrEio(object);
    else await this.uploader.note(object);
    if (this.options.writeMode === 'sync') {
      try {
        await this.uploader.uploadNow(object);
      } catch (err) {
        this.uploader.schedule(object); // this mount shows the change: the bucket must follow
        throw err;
      }
      await this.settle(object);
    } else {
      this.uploader.schedule(object);
    }
  }

  private async acceptOrEio(object: StagedObject): Promise<void> {
    try {
      await this.uploader.accept(object);
    } catch (err) {
      this.log.error(`could not save ${object.key} to the journal in ${this.journal.dir}: ${String(err)}`);
      throw new FsError('EIO');
    }
  }

  private async uploadOrEio(object: StagedObject): Promise<void> {
    try {
      await this.uploader.uploadNow(object);
    } catch (err) {
      this.log.error(`upload of ${object.key} failed: ${String(err)}; it stays in the journal and is retried`);
      this.uploader.schedule(object);
      throw new FsError('EIO');
    }
  }

  private hasWriters(object: StagedObject): boolean {
    return this.handles.usersOf(object).some((f) => f.writable);
  }

  /** Where the object is in this mount; undefined once unlinked or replaced. */
  private pathOf(object: StagedObject): string | undefined {
    const path = this.ns.pathOf(object.key);
    return this.byPath.get(path) === object ? path : undefined;
  }

  /** What the attribute cache keeps of an uploaded file once it is no longer staged. */
  private rememberUploaded(path: string, object: StagedObject): void {
    if (object.base) this.attrs.set(path, { ...stagedAttrs(object), etag: object.base.etag });
  }

  private uploaded(object: StagedObject): void {
    const path = this.pathOf(object);
    if (path) this.rememberUploaded(path, object);
  }

  private settleLater(object: StagedObject): void {
    this.settle(object).catch((err: unknown) => this.log.error(`cleaning up after ${object.key}: ${String(err)}`));
  }

  /**
   * A handle of the object was released, or its upload ended: uploads it once its last
   * writer is gone, and drops it once nothing needs it any more.
   */
  async settle(object: StagedObject): Promise<void> {
    const users = this.handles.usersOf(object);
    const path = this.pathOf(object);
    if (path === undefined) {
      // Unlinked or replaced: kept only for its open descriptors.
      if (users.length === 0) await this.journal.forget(object.id, object.file);
      return;
    }
    if (users.some((f) => f.writable)) return;
    if (object.dirty) {
      await this.uploader.accept(object);
      this.uploader.schedule(object);
      return;
    }
    if (users.length > 0 || this.uploader.isPending(object)) return;
    this.byPath.delete(path);
    this.rememberUploaded(path, object);
    await this.journal.forget(object.id, object.file);
  }

  /**
   * The path is unlinked or replaced: its upload stops, and descriptors open on it keep
   * reading what it held (fetched locally, since the object is about to go).
   * Answers whether the bucket may hold an object at the path's key.
   */
  async detach(path: string): Promise<boolean> {
    const object = this.byPath.get(path);
    let stored = !object;
    if (object) {
      this.byPath.delete(path);
      await this.uploader.cancel(object);
      stored = object.base?.key === object.key || object.uploadedVersion > 0;
      if (this.handles.usersOf(object).length > 0) {
        // Kept for its descriptors only: a crash must not bring it back.
        await this.journal.forgetRecord(object.id);
        object.journaledVersion = 0;
        await object.detachFromBase();
      } else {
        await this.journal.forget(object.id, object.file);
      }
    }
    const readers = this.handles.all().filter((f) => f.path === path && !f.unlinked && !f.object);
    if (readers.length > 0) await this.keepForReaders(path, readers);
    return stored;
  }

  private async keepForReaders(path: string, readers: OpenFile[]): Promise<void> {
    const copies = new Map<string | undefined, StagedObject>();
    for (const reader of readers) {
      let copy = copies.get(reader.etag);
      if (!copy) {
        copy = await this.fromStored(path, { kind: 'file', size: reader.size, etag: reader.etag, ...reader.meta });
        await copy.detachFromBase();
        copies.set(reader.etag, copy);
      }
      reader.object = copy;
    }
  }

  /**
   * A file rename: the staged object follows the name without being uploaded first.
   * Its base object, if any, is copied to the new key server-side (the copy is what
   * unchanged parts will be taken from) and the old key deleted.
   */
  async move(from: string, to: string, object: StagedObject): Promise<void> {
    // A big file whose parts went up while it was written (rsync's temporary file, say):
    // finishing that upload and copying it server-side beats sending it all again.
    if (object.dirty && this.writer.isStreaming(object)) {
      await this.uploader.uploadNow(object).catch((err: unknown) => {
        this.log.warn(`upload of ${object.key} before its rename failed (${String(err)}); it is sent again under the new name`);
      });
    }
    await this.uploader.cancel(object);
    const fromKey = this.ns.key(from);
    const toKey = this.ns.key(to);
    const base = object.base;
    let moved: { key: string; etag: string } | undefined;
    if (base && base.key === fromKey) {
      if (base.validBytes > 0) moved = { key: toKey, ...(await this.bucket.copy(fromKey, toKey, { size: base.size })) };
      await this.bucket.delete(fromKey);
    }
    object.moveTo(toKey, moved);
    this.byPath.delete(from);
    this.byPath.set(to, object);
    this.handles.rename(from, to);
    await this.rejournal(object);
    await this.settle(object);
  }

  /** Before a directory is copied away: staged files below it stop depending on their keys. */
  async detachTree(dir: string): Promise<void> {
    for (const [path, object] of this.byPath) {
      if (!path.startsWith(`${dir}/`)) continue;
      await this.uploader.cancel(object);
      await object.detachFromBase();
    }
  }

  /** After a directory rename: staged files below it follow, and are uploaded under their new keys. */
  async renameTree(from: string, to: string): Promise<void> {
    const moved = [...this.byPath].filter(([path]) => path.startsWith(`${from}/`));
    for (const [path, object] of moved) {
      const newPath = to + path.slice(from.length);
      object.moveTo(this.ns.key(newPath), undefined);
      this.byPath.delete(path);
      this.byPath.set(newPath, object);
    }
    for (const [, object] of moved) {
      await this.rejournal(object);
      await this.settle(object);
    }
  }

  /** After a move: a record naming the old key must not survive a crash. */
  private async rejournal(object: StagedObject): Promise<void> {
    object.journaledVersion = 0;
    await this.uploader.accept(object);
  }

  /** Takes files that recovery could not upload yet: pending here, retried in the background. */
  adopt(objects: StagedObject[]): void {
    for (const object of objects) {
      this.byPath.set(this.ns.pathOf(object.key), object);
      this.uploader.schedule(object);
    }
  }

  /** Uploads everything staged (used at unmount, when no handle can close any more). */
  async drain(progress?: (left: DrainProgress) => void): Promise<void> {
    for (const object of this.byPath.values()) {
      if (!object.dirty) continue;
      await this.uploader.accept(object);
      this.uploader.schedule(object);
    }
    await this.uploader.drain(progress);
  }

  /** Stops uploading: what is pending stays in the journal for the next mount. */
  abandon(): void {
    this.uploader.abandon();
  }

  pendingCount(): DrainProgress {
    return this.uploader.left();
  }
}
