import { open, rm, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { FsError } from '../errors.js';

const STREAM_CHUNK = 1024 * 1024;

/** One local data file: positional reads and writes, never blocking the event loop. */
export class StagedFile {
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
  ) {}

  /** Creates (or empties) the file at `path`. */
  static async create(path: string): Promise<StagedFile> {
    return new StagedFile(path, await open(path, 'w+', 0o600));
  }

  /** Opens an existing file (a journal entry left by an earlier mount). */
  static async reopen(path: string): Promise<StagedFile> {
    return new StagedFile(path, await open(path, 'r+'));
  }

  async write(data: Buffer, position: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.handle.write(data, done, data.length - done, position + done);
      done += bytesWritten;
    }
  }

  /** Reads up to target.length bytes; fewer only at the end of the file. */
  async read(target: Buffer, position: number): Promise<number> {
    let filled = 0;
    while (filled < target.length) {
      const { bytesRead } = await this.handle.read(target, filled, target.length - filled, position + filled);
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
    const handle = this.handle;
    async function* chunks(): AsyncGenerator<Buffer> {
      const end = start + size;
      for (let offset = start; offset < end; ) {
        const length = Math.min(STREAM_CHUNK, end - offset);
        const buffer = Buffer.allocUnsafe(length);
        const { bytesRead } = await handle.read(buffer, 0, length, offset);
        if (bytesRead === 0) throw new FsError('EIO', `staged file ended at byte ${offset}, expected ${end}`);
        offset += bytesRead;
        yield buffer.subarray(0, bytesRead);
      }
    }
    return Readable.from(chunks(), { objectMode: false });
  }

  async truncate(size: number): Promise<void> {
    await this.handle.truncate(size);
  }

  /** Makes the bytes durable on the local disk. */
  async sync(): Promise<void> {
    await this.handle.sync();
  }

  async close(): Promise<void> {
    await this.handle.close();
  }

  async discard(): Promise<void> {
    await this.handle.close();
    await rm(this.path, { force: true });
  }
}
