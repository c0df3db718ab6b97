import { open, unlink, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { FsError } from '../errors.js';

const STREAM_CHUNK = 1024 * 1024;

/** Files up to this size can be staged in memory (and journaled with their bytes). */
export const IN_MEMORY_LIMIT = 1024 * 1024;
const FIRST_CAPACITY = 64 * 1024;

/** Memory that staged files may hold, shared by all of a journal's files. */
export class MemoryBudget {
  private used = 0;

  constructor(readonly limit: number) {}

  take(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used -= bytes;
  }
}

/**
 * One staged file's bytes: positional reads and writes, never blocking the event loop.
 * A small file lives in memory (its bytes go into the journal's log when accepted) until
 * it grows past IN_MEMORY_LIMIT or the budget is spent; then it moves to its data file.
 */
export class StagedFile {
  private handle?: FileHandle;
  private memory?: Buffer;
  /** Size of an in-memory file; bytes of `memory` past it are zeros. */
  private length = 0;
  private moving?: Promise<void>;
  /** The data file exists and its directory entry may not be durable yet. */
  newDirEntry = false;

  private constructor(
    readonly path: string,
    private readonly budget?: MemoryBudget,
  ) {}

  /** A new, empty file: in memory if the budget allows, else its data file at `path`. */
  static async create(path: string, budget?: MemoryBudget): Promise<StagedFile> {
    const file = new StagedFile(path, budget);
    if (!file.reserve(FIRST_CAPACITY)) await file.moveToDisk();
    return file;
  }

  /** Opens an existing data file (a journal entry left by an earlier mount). */
  static async reopen(path: string): Promise<StagedFile> {
    const file = new StagedFile(path);
    file.handle = await open(path, 'r+');
    return file;
  }

  /**
   * A file whose bytes the journal's log kept (recovery): in memory outside any budget,
   * so it moves to its data file at the first write that grows it.
   */
  static fromBytes(path: string, bytes: Buffer): StagedFile {
    const file = new StagedFile(path);
    file.memory = bytes;
    file.length = bytes.length;
    return file;
  }

  /** A copy of the bytes of an in-memory file; undefined when the file is on disk. */
  async memoryCopy(): Promise<Buffer | undefined> {
    if (this.moving) await this.moving;
    return this.memory ? Buffer.from(this.memory.subarray(0, this.length)) : undefined;
  }

  async write(data: Buffer, position: number): Promise<void> {
    if (this.moving) await this.moving;
    const end = position + data.length;
    if (this.memory && end <= IN_MEMORY_LIMIT && this.reserve(end)) {
      data.copy(this.memory, position);
      this.length = Math.max(this.length, end);
      return;
    }
    if (this.memory) await this.moveToDisk();
    const handle = this.handle as FileHandle;
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
      done += bytesWritten;
    }
  }

  /** Reads up to target.length bytes; fewer only at the end of the file. */
  async read(target: Buffer, position: number): Promise<number> {
    if (this.moving) await this.moving;
    if (this.memory) {
      const end = Math.min(this.length, position + target.length);
      return end > position ? this.memory.copy(target, 0, position, end) : 0;
    }
    const handle = this.handle as FileHandle;
    let filled = 0;
    while (filled < target.length) {
      const { bytesRead } = await handle.read(target, filled, target.length - filled, position + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return filled;
  }

  /**
   * Bytes [start, start + size) as a stream, read at explicit positions: parts in
   * parallel share the handle, and destroying the stream leaves the file open.
   */
  stream(start: number, size: number): Readable {
    const read = (target: Buffer, position: number): Promise<number> => this.read(target, position);
    async function* chunks(): AsyncGenerator<Buffer> {
      const end = start + size;
      for (let offset = start; offset < end; ) {
        const buffer = Buffer.allocUnsafe(Math.min(STREAM_CHUNK, end - offset));
        const bytesRead = await read(buffer, offset);
        if (bytesRead === 0) throw new FsError('EIO', `staged file ended at byte ${offset}, expected ${end}`);
        offset += bytesRead;
        yield buffer.subarray(0, bytesRead);
      }
    }
    return Readable.from(chunks(), { objectMode: false });
  }

  async truncate(size: number): Promise<void> {
    if (this.moving) await this.moving;
    if (this.memory && size <= IN_MEMORY_LIMIT && this.reserve(size)) {
      if (size < this.length) this.memory.fill(0, size, this.length);
      this.length = size;
      return;
    }
    if (this.memory) await this.moveToDisk();
    await (this.handle as FileHandle).truncate(size);
  }

  /** Makes the bytes of a file on disk durable on the local disk. */
  async sync(): Promise<void> {
    if (this.moving) await this.moving;
    await this.handle?.sync();
  }

  async close(): Promise<void> {
    if (this.moving) await this.moving.catch(() => undefined);
    this.release();
    await this.handle?.close();
  }

  async discard(): Promise<void> {
    const onDisk = this.handle !== undefined || this.moving !== undefined;
    await this.close();
    if (onDisk) await unlinkIfPresent(this.path);
  }

  /** Grows the memory to hold `size` bytes, if the budget allows. */
  private reserve(size: number): boolean {
    const capacity = this.memory?.length ?? 0;
    if (size <= capacity && this.memory) return true;
    const grown = Math.min(IN_MEMORY_LIMIT, Math.max(size, FIRST_CAPACITY, capacity * 2));
    if (!this.budget?.take(grown - capacity)) return false;
    const memory = Buffer.alloc(grown);
    this.memory?.copy(memory, 0, 0, this.length);
    this.memory = memory;
    return true;
  }

  private release(): void {
    if (this.memory) this.budget?.give(this.memory.length);
    this.memory = undefined;
  }

  /** From memory to the data file; calls made meanwhile wait for it. */
  private moveToDisk(): Promise<void> {
    this.moving ??= (async () => {
      const handle = await open(this.path, 'w+', 0o600);
      this.newDirEntry = true;
      const bytes = this.memory?.subarray(0, this.length);
      let done = 0;
      while (bytes && done < bytes.length) done += (await handle.write(bytes, done, bytes.length - done, done)).bytesWritten;
      this.handle = handle;
      this.release();
    })();
    return this.moving.finally(() => {
      this.moving = undefined;
    });
  }
}

/**
 * Removes one file; a missing file is fine. Not fs.rm: Node's rm({ force }) goes through
 * a synchronous lstat on the event loop, about 0.25 ms per file here.
 */
export async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
