// The disk tier of the chunk cache: CACHE_DIR/chunks/<bucket identity>/<ab>/<hash>, one
// file per chunk, named by a hash of (key, ETag, chunk size, index), so a later mount finds
// the chunks of objects that did not change and never those of an older version.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { unlinkIfPresent } from '../upload/staged-file.js';

export interface DiskChunksOptions {
  /** Bytes the chunk files may take; least recently used ones go beyond it. */
  maxBytes: number;
  /** Free space the cache leaves on the file system, whatever maxBytes says. */
  minFreeBytes: number;
}

/** How often the free space of the file system is looked at again, in writes. */
const FREE_SPACE_EVERY = 16;

export class DiskChunks {
  /** Chunk files by name, least recently used first, with their sizes. */
  private readonly files = new Map<string, number>();
  /** Bytes of the files above plus those being written. */
  private usedBytes = 0;
  /** Chunk files being written: counted, but not yet readable. */
  private readonly writing = new Set<string>();
  private writingBytes = 0;
  private readonly subdirectories = new Set<string>();
  private writes = 0;
  private lowOnSpace = false;

  private constructor(
    readonly dir: string,
    private readonly options: DiskChunksOptions,
    private readonly log: Logger,
  ) {}

  /** Opens the folder and learns what an earlier mount left in it (oldest first). */
  static async open(dir: string, options: DiskChunksOptions, log: Logger): Promise<DiskChunks> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const store = new DiskChunks(dir, options, log);
    const found: { name: string; size: number; used: number }[] = [];
    for (const sub of await readdir(dir).catch(() => [] as string[])) {
      for (const file of await readdir(join(dir, sub)).catch(() => [] as string[])) {
        const name = `${sub}/${file}`;
        if (file.includes('.tmp')) {
          await unlinkIfPresent(join(dir, name)); // a write cut short
          continue;
        }
        const st = await stat(join(dir, name)).catch(() => undefined);
        if (st?.isFile()) found.push({ name, size: st.size, used: st.mtimeMs });
      }
    }
    found.sort((a, b) => a.used - b.used);
    for (const f of found) store.remember(f.name, f.size);
    await store.makeRoom(0);
    return store;
  }

  static nameOf(key: string, etag: string, chunkSize: number, index: number): string {
    const hash = createHash('sha256').update(`${key}\0${etag}\0${chunkSize}\0${index}`).digest('hex');
    return `${hash.slice(0, 2)}/${hash.slice(2)}`;
  }

  /** Whether the chunk has a file here (it may still prove unreadable). */
  has(name: string): boolean {
    return this.files.has(name);
  }

  /** The chunk's bytes if they are here with the expected length; undefined otherwise. */
  async get(name: string, length: number): Promise<Buffer | undefined> {
    if (!this.files.has(name)) return undefined;
    const bytes = await readFile(join(this.dir, name)).catch(() => undefined);
    if (!bytes || bytes.length !== length) {
      this.forget(name);
      await unlinkIfPresent(join(this.dir, name));
      return undefined;
    }
    this.remember(name, bytes.length); // now the most recently used
    return bytes;
  }

  /**
   * Keeps a copy of the chunk; a failure only costs the copy. Its size counts from the
   * call on, so that writes under way together cannot take the cache over its limit.
   */
  async put(name: string, pieces: readonly Buffer[]): Promise<void> {
    const length = pieces.reduce((sum, piece) => sum + piece.length, 0);
    if (this.files.has(name) || this.writing.has(name)) return;
    // Files being written cannot be evicted: beyond the limit together, this one waits out.
    if (this.writingBytes + length > this.options.maxBytes) return;
    this.writing.add(name);
    this.writingBytes += length;
    this.usedBytes += length;
    const path = join(this.dir, name);
    const tmp = `${path}.tmp${randomBytes(4).toString('hex')}`;
    let kept = false;
    try {
      if (!(await this.makeRoom(length))) return;
      await this.subdirectoryOf(name);
      await writeAll(tmp, pieces);
      await rename(tmp, path);
      kept = true;
    } catch (err) {
      this.log.debug(`read cache: could not keep a chunk in ${this.dir}: ${String(err)}`);
      await unlinkIfPresent(tmp).catch(() => undefined);
    } finally {
      this.writing.delete(name);
      this.writingBytes -= length;
      this.usedBytes -= length;
      if (kept) this.remember(name, length);
    }
  }

  /** Makes the chunk's folder once per mount: a mkdir per chunk showed in cold reads. */
  private async subdirectoryOf(name: string): Promise<void> {
    const sub = name.slice(0, 2);
    if (this.subdirectories.has(sub)) return;
    await mkdir(join(this.dir, sub), { recursive: true, mode: 0o700 });
    this.subdirectories.add(sub);
  }

  get bytes(): number {
    return this.usedBytes;
  }

  private remember(name: string, size: number): void {
    this.forget(name);
    this.files.set(name, size);
    this.usedBytes += size;
  }

  private forget(name: string): void {
    const size = this.files.get(name);
    if (size === undefined) return;
    this.files.delete(name);
    this.usedBytes -= size;
  }

  /**
   * Evicts least recently used files until the cache is within maxBytes and, every
   * FREE_SPACE_EVERY calls, until the disk keeps minFreeBytes free with `incoming` more
   * on it; false when that cannot be done. Files leave the books before the first
   * unlink, so concurrent callers never count the same one twice.
   */
  private async makeRoom(incoming: number): Promise<boolean> {
    let needFree = 0;
    const checkDisk = this.writes++ % FREE_SPACE_EVERY === 0;
    if (checkDisk) {
      const fs = await statfs(this.dir);
      needFree = Math.max(0, this.options.minFreeBytes + incoming - fs.bavail * fs.bsize);
    }
    const victims: string[] = [];
    for (const [name, size] of this.files) {
      if (this.usedBytes <= this.options.maxBytes && needFree <= 0) break;
      this.forget(name);
      victims.push(name);
      needFree -= size;
    }
    if (checkDisk) this.lowOnSpace = needFree > 0;
    await Promise.all(victims.map((name) => unlinkIfPresent(join(this.dir, name))));
    return this.usedBytes <= this.options.maxBytes && !this.lowOnSpace;
  }
}

/** A new file of the pieces, one after the other. */
async function writeAll(path: string, pieces: readonly Buffer[]): Promise<void> {
  const file = await open(path, 'wx', 0o600);
  try {
    let remaining = [...pieces];
    // writev may write less than asked (IOV_MAX pieces, or a short write): go on from there.
    while (remaining.length > 0) {
      let { bytesWritten } = await file.writev(remaining);
      while (remaining.length > 0 && bytesWritten >= (remaining[0] as Buffer).length) bytesWritten -= (remaining.shift() as Buffer).length;
      if (bytesWritten > 0) remaining[0] = (remaining[0] as Buffer).subarray(bytesWritten);
    }
  } finally {
    await file.close();
  }
}
