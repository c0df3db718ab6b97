import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Local files that hold what is being written until it is uploaded. Each mount has
 * its own folder under the cache dir, removed when the mount ends.
 */
export class StagingArea {
  private counter = 0;

  private constructor(readonly dir: string) {}

  static async create(cacheDir: string): Promise<StagingArea> {
    const root = join(cacheDir, 'staging');
    await removeAbandoned(root);
    const dir = join(root, `${process.pid}-${randomBytes(4).toString('hex')}`);
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

/**
 * Removes the folders of mounts whose process is gone (killed before it could clean
 * up). Nothing in them was accepted by close() or fsync(): those upload before they
 * return, so a staged file that outlived its process is a write nobody was told about.
 */
async function removeAbandoned(root: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(name.split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && !isAlive(pid)) await rm(join(root, name), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive, but another user's.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
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
