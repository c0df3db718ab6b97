import { FsError } from '../errors.js';
import type { PosixMeta } from '../s3/metadata.js';
import type { StagedObject } from '../upload/staged-object.js';
import type { ReadAhead } from '../cache/read-ahead.js';

/** One open file description, keyed by its FUSE file handle (never by path). */
export interface OpenFile {
  readonly fh: number;
  /** Current path: renames of the file or a parent directory update it. */
  path: string;
  readonly writable: boolean;
  /**
   * The staged content this handle reads and writes, shared by every handle of the
   * path. Always set for writable handles; a reader gets it when it opens a file
   * that is pending upload, or when the object it reads from goes away.
   */
  object?: StagedObject;
  /** What a handle without `object` reads: the object as it was at open. */
  size: number;
  etag?: string;
  meta: Required<PosixMeta>;
  /** Unlinked while open: nothing is uploaded any more. */
  unlinked: boolean;
  /** Read-ahead of a handle that reads from the bucket (no `object`). */
  readAhead?: ReadAhead;
}

export class HandleTable {
  private readonly files = new Map<number, OpenFile>();
  private nextFh = 1;

  add(init: Omit<OpenFile, 'fh'>): OpenFile {
    const file: OpenFile = { ...init, fh: this.nextFh++ };
    this.files.set(file.fh, file);
    return file;
  }

  get(fh: number): OpenFile {
    const file = this.files.get(fh);
    if (!file) throw new FsError('EBADF');
    return file;
  }

  delete(fh: number): void {
    this.files.delete(fh);
  }

  all(): OpenFile[] {
    return [...this.files.values()];
  }

  /** The handles that read or write `object`. */
  usersOf(object: StagedObject): OpenFile[] {
    return this.all().filter((f) => f.object === object);
  }

  /** Follows a rename of a file or of a directory with everything below it. */
  rename(from: string, to: string): void {
    for (const file of this.files.values()) {
      if (file.path === from) file.path = to;
      else if (file.path.startsWith(`${from}/`)) file.path = to + file.path.slice(from.length);
    }
  }

  markUnlinked(path: string): void {
    for (const file of this.files.values()) if (file.path === path) file.unlinked = true;
  }
}
