import { FsError } from '../errors.js';
import type { StagedFile } from '../upload/staging.js';
import type { PosixMeta } from './metadata.js';

/** One open file description, keyed by its FUSE file handle (never by path). */
export interface OpenFile {
  readonly fh: number;
  /** Current path: renames of the file or a parent directory update it. */
  path: string;
  readonly writable: boolean;
  /** Local copy of the content, once something needed it. */
  staged?: StagedFile;
  /** Pending download of the current object into `staged`. */
  loading?: Promise<void>;
  /** Size as this handle sees it (local size once staged). */
  size: number;
  /** ETag of the object the handle reads from; undefined for a file not yet in the bucket. */
  etag?: string;
  /** Attributes the object will carry when uploaded. */
  meta: Required<PosixMeta>;
  /** The local content differs from the bucket. */
  dataDirty: boolean;
  /** Only the attributes differ from the bucket. */
  metaDirty: boolean;
  /** Unlinked while open: nothing is uploaded any more. */
  unlinked: boolean;
  /** Serialises uploads of this handle. */
  committing: Promise<void>;
  /** The last ranged GET, reused while reads stay inside it. */
  window?: { start: number; end: number; data: Promise<Buffer> };
}

export class HandleTable {
  private readonly files = new Map<number, OpenFile>();
  private nextFh = 1;

  add(init: Omit<OpenFile, 'fh' | 'committing'>): OpenFile {
    const file: OpenFile = { ...init, fh: this.nextFh++, committing: Promise.resolve() };
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

  /** Open writable handles of a path, the most recently opened last. */
  writersOf(path: string): OpenFile[] {
    return [...this.files.values()].filter((f) => f.writable && !f.unlinked && f.path === path);
  }

  all(): OpenFile[] {
    return [...this.files.values()];
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
