import { FsError } from '../errors.js';
import type { BaseObject, JournalRecord, RecordedMeta } from './journal.js';
import { blockAt, blocksIn, type Part } from './part-size.js';
import type { StagedFile } from './staged-file.js';

/** Where bytes that are not staged locally are read from (a Bucket). */
export interface RangeSource {
  getRange(key: string, start: number, endExclusive: number, ifMatch?: string): Promise<Buffer>;
}

export interface StagedObjectInit {
  /** Journal entry id of the data file. */
  id: string;
  file: StagedFile;
  key: string;
  size: number;
  meta: RecordedMeta;
  partSize: number;
  base?: BaseObject;
  localBlocks?: number[];
  dirtyBlocks?: number[];
  /** Whether what the init describes is already in the bucket (a file opened, not yet changed). */
  clean?: boolean;
}

/**
 * The content of one object as this mount is writing it: a local data file in the
 * journal, where only the blocks that were written or needed are present; the rest
 * still comes from the base object in the bucket. Blocks are the parts of the size
 * schedule (part-size.ts), so that unchanged parts can be copied server-side.
 *
 * Every change bumps `version`; the uploader records which version is in the bucket.
 */
export class StagedObject {
  readonly id: string;
  readonly file: StagedFile;
  readonly partSize: number;
  key: string;
  size: number;
  meta: RecordedMeta;
  base?: BaseObject;
  version: number;
  /** The version that is in the bucket (0: none yet). */
  uploadedVersion: number;
  /** The version the journal's record describes (0: no record). */
  journaledVersion = 0;

  private readonly local: Set<number>;
  /** Block -> version of its last change. */
  private readonly changed = new Map<number, number>();
  /** Blocks changed at or before this version are as in `base`. */
  private baseVersion: number;
  private readonly fetching = new Map<number, Promise<void>>();
  /**
   * Bytes written into each block since the content was last new (created, or truncated
   * to 0), and the end of the furthest write: tell when a block of a file being written
   * is probably complete, so that it can go up before close. The kernel's writeback
   * sends pages roughly, not strictly, in order.
   */
  private readonly filled = new Map<number, number>();
  private writtenEnd = 0;
  /** Lowest size since the running commit began (see commitStarted). */
  private lowWater = Infinity;
  /** Resolves when the running commit ends, either way. */
  private commitEnd?: { done: Promise<void>; resolve: () => void };

  constructor(
    init: StagedObjectInit,
    private readonly source: RangeSource,
  ) {
    this.id = init.id;
    this.file = init.file;
    this.partSize = init.partSize;
    this.key = init.key;
    this.size = init.size;
    this.meta = init.meta;
    this.base = init.base;
    this.local = new Set(init.localBlocks);
    this.version = init.clean ? 1 : 2;
    this.uploadedVersion = init.clean ? 1 : 0;
    this.baseVersion = 1;
    for (const block of init.dirtyBlocks ?? []) this.changed.set(block, this.version);
  }

  get dirty(): boolean {
    return this.version > this.uploadedVersion;
  }

  /** Whether the block differs from the base object (or there is no base to copy from). */
  blockChanged(block: Part): boolean {
    return !this.base || block.start + block.size > this.base.validBytes || (this.changed.get(block.partNumber) ?? 0) > this.baseVersion;
  }

  /**
   * Whether the block of a file written from scratch looks complete: as many bytes
   * written into it as it holds, and writes beyond it. (If not quite, the upload sees
   * the block changed after it was sent, and sends it again.)
   */
  looksComplete(block: Part): boolean {
    const fresh = !this.base || this.base.validBytes === 0;
    return fresh && block.start + block.size <= this.writtenEnd && (this.filled.get(block.partNumber) ?? 0) >= block.size;
  }

  /** Whether the block changed after `version` (a part read at `version` is out of date). */
  changedSince(block: Part, version: number): boolean {
    return (this.changed.get(block.partNumber) ?? 0) > version;
  }

  /** Whether only the metadata differs from the base object, which is at this key. */
  get onlyMetaChanged(): boolean {
    if (!this.base || this.base.key !== this.key || this.base.validBytes !== this.size) return false;
    for (const version of this.changed.values()) if (version > this.baseVersion) return false;
    return true;
  }

  // --- content ------------------------------------------------------------------------

  async read(target: Buffer, position: number): Promise<number> {
    const end = Math.min(this.size, position + target.length);
    if (position >= end) return 0;
    const base = this.base;
    if (!base || blocksIn(position, end, this.partSize).every((b) => this.isLocal(b))) {
      return this.file.read(target.subarray(0, end - position), position);
    }
    // Pieces: local blocks from the file, the others from the base object up to its valid end.
    for (const block of blocksIn(position, end, this.partSize)) {
      const from = Math.max(position, block.start);
      const to = Math.min(end, block.start + block.size);
      const into = target.subarray(from - position, to - position);
      if (this.isLocal(block) || from >= base.validBytes) {
        into.fill(0);
        await this.file.read(into, from);
        continue;
      }
      const remoteEnd = Math.min(to, base.validBytes);
      const remote = await this.fetchBase(from, remoteEnd);
      remote.copy(into, 0);
      if (remoteEnd < to) {
        const rest = into.subarray(remoteEnd - from);
        rest.fill(0);
        await this.file.read(rest, remoteEnd);
      }
    }
    return end - position;
  }

  async write(data: Buffer, position: number): Promise<void> {
    const end = position + data.length;
    const blocks = blocksIn(position, end, this.partSize);
    // A block only partly overwritten needs its other bytes: they are part of what is uploaded.
    await Promise.all(blocks.filter((b) => !this.coveredBy(b, position, end)).map((b) => this.makeLocal(b)));
    await this.file.write(data, position);
    this.size = Math.max(this.size, end);
    this.writtenEnd = Math.max(this.writtenEnd, end);
    this.version++;
    for (const block of blocks) {
      this.local.add(block.partNumber);
      this.changed.set(block.partNumber, this.version);
      const overlap = Math.min(end, block.start + block.size) - Math.max(position, block.start);
      this.filled.set(block.partNumber, (this.filled.get(block.partNumber) ?? 0) + overlap);
    }
  }

  async truncate(size: number): Promise<void> {
    // A fetch landing after the truncate would write old bytes past the new end.
    await Promise.all(this.fetching.values());
    const oldSize = this.size;
    if (this.base && size < this.base.validBytes) this.base = { ...this.base, validBytes: size };
    await this.file.truncate(size);
    this.size = size;
    this.lowWater = Math.min(this.lowWater, size);
    if (size === 0) {
      this.filled.clear();
      this.writtenEnd = 0;
    }
    this.version++;
    for (const block of blocksIn(Math.min(oldSize, size), Math.max(oldSize, size), this.partSize)) {
      this.changed.set(block.partNumber, this.version);
    }
  }

  setMeta(meta: RecordedMeta): void {
    this.meta = meta;
    this.version++;
  }

  private isLocal(block: Part): boolean {
    return !this.base || this.local.has(block.partNumber) || block.start >= this.base.validBytes;
  }

  private coveredBy(block: Part, start: number, end: number): boolean {
    const needed = Math.min(block.start + block.size, this.base?.validBytes ?? 0);
    return start <= block.start && end >= needed;
  }

  /** Fetches the block's bytes from the base object into the data file, once. */
  makeLocal(block: Part): Promise<void> {
    const base = this.base;
    if (!base || this.isLocal(block)) return Promise.resolve();
    const pending = this.fetching.get(block.partNumber);
    if (pending) return pending;
    const end = Math.min(block.start + block.size, base.validBytes);
    const fetch = this.fetchBase(block.start, end)
      .then((bytes) => this.file.write(bytes, block.start))
      .then(() => {
        this.local.add(block.partNumber);
      })
      .finally(() => this.fetching.delete(block.partNumber));
    this.fetching.set(block.partNumber, fetch);
    return fetch;
  }

  /**
   * Bytes of the base object. Our own upload may replace it meanwhile (412: ESTALE); the
   * bytes are then those of the new base, which holds the same content there.
   */
  private async fetchBase(start: number, end: number): Promise<Buffer> {
    for (;;) {
      const base = this.base;
      if (!base) throw new FsError('EIO', `no base object to read ${this.key} from`);
      try {
        return await this.source.getRange(base.key, start, end, base.etag);
      } catch (err) {
        if (!(err instanceof FsError && err.code === 'ESTALE')) throw err;
        // The server may have taken our upload before its answer reached us.
        await this.commitEnd?.done;
        if (this.base === base || this.base === undefined) throw err;
      }
    }
  }

  /** Makes every block local: what a single PUT, or a move away from the base, needs. */
  async makeAllLocal(): Promise<void> {
    if (!this.base) return;
    const blocks = blocksIn(0, Math.min(this.size, this.base.validBytes), this.partSize);
    for (const block of blocks) await this.makeLocal(block);
  }

  /**
   * Stops depending on the base object (about to be deleted or moved): fetches what is
   * not local, and makes the whole content count as changed, to be uploaded again.
   */
  async detachFromBase(): Promise<void> {
    await this.makeAllLocal();
    this.base = undefined;
    this.version++;
  }

  /**
   * The object moves to `key`. `base` is where its base object went (a server-side copy),
   * or undefined when there was nothing to carry (everything is local).
   */
  moveTo(key: string, base: { key: string; etag: string } | undefined): void {
    this.key = key;
    if (this.base && base) this.base = { ...this.base, ...base };
    else if (this.base) {
      this.base = undefined;
      this.version++;
    }
  }

  /** Local disk space the data file takes, about (sparse where bytes come from the base). */
  localBytes(): number {
    if (!this.base) return this.size;
    return Math.max(0, this.size - this.base.validBytes) + this.local.size * this.partSize;
  }

  /** The block that holds byte `offset`. */
  blockAt(offset: number): Part {
    return blockAt(offset, this.partSize);
  }

  // --- the uploader's bookkeeping -----------------------------------------------------

  /** A commit reads the content now: answers the version it uploads. */
  commitStarted(): number {
    this.lowWater = this.size;
    let resolve = (): void => {};
    const done = new Promise<void>((r) => (resolve = r));
    this.commitEnd = { done, resolve };
    return this.version;
  }

  /** The commit begun by commitStarted() is over, whether it succeeded or not. */
  commitEnded(): void {
    this.commitEnd?.resolve();
    this.commitEnd = undefined;
  }

  /**
   * The commit of `version` put an object of `size` bytes and this ETag at `key`: it is
   * the new base. Bytes truncated away meanwhile must not come back from it.
   */
  committed(version: number, key: string, etag: string, size: number): void {
    this.uploadedVersion = Math.max(this.uploadedVersion, version);
    if (key !== this.key) return; // renamed meanwhile: the new key's object is still to come
    this.base = { key, etag, size, validBytes: Math.min(size, this.lowWater, this.size) };
    this.baseVersion = version;
  }

  /** Data, metadata and where missing bytes come from: what the journal keeps. */
  toRecord(): JournalRecord {
    const dirty = [...this.changed].filter(([, v]) => v > this.baseVersion).map(([block]) => block);
    return {
      key: this.key,
      size: this.size,
      meta: this.meta,
      partSize: this.partSize,
      base: this.base,
      localBlocks: [...this.local],
      dirtyBlocks: dirty,
    };
  }
}
