import { randomBytes } from 'node:crypto';
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Local files that hold what is being written until it is uploaded. Each mount has
 * its own folder under the cache dir, removed when the mount ends.
 */
export class StagingArea {
  private counter = 0;

  private constructor(readonly dir: string) {}

  static async create(cacheDir: string): Promise<StagingArea> {
    const dir = join(cacheDir, 'staging', `${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new StagingArea(dir);
  }

  async newFile(): Promise<StagedFile> {
    const path = join(this.dir, String(++this.counter));
    return new StagedFile(path, await open(path, 'w+', 0o600));
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** One staged file: positional reads and writes, never blocking the event loop. */
export class StagedFile {
  constructor(
    readonly path: string,
    private readonly handle: FileHandle,
  ) {}

  async write(data: Buffer, position: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.handle.write(data, done, data.length - done, position + done);
      done += bytesWritten;
    }
  }

  async read(target: Buffer, position: number): Promise<number> {
    const { bytesRead } = await this.handle.read(target, 0, target.length, position);
    return bytesRead;
  }

  async truncate(size: number): Promise<void> {
    await this.handle.truncate(size);
  }

  /** Makes the bytes durable on the local disk. */
  async sync(): Promise<void> {
    await this.handle.sync();
  }

  async discard(): Promise<void> {
    await this.handle.close();
    await rm(this.path, { force: true });
  }
}
