// The vocabulary shared by the layers: the FUSE wrapper speaks it, the VFS implements it.
/** A point in time with nanosecond precision, as the kernel keeps it. */
export interface Timespec {
  sec: number;
  nsec: number;
}

/** What utimensat asked for one of the two times. */
export type TimeUpdate = Timespec | 'now' | 'omit';

export interface FileStat {
  mode: number;
  size: number | bigint;
  uid: number;
  gid: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  nlink?: number;
  ino?: number | bigint;
  blocks?: number | bigint;
  blksize?: number;
}

export interface StatFs {
  bsize: number;
  frsize: number;
  blocks: number | bigint;
  bfree: number | bigint;
  bavail: number | bigint;
  files: number | bigint;
  ffree: number | bigint;
  favail: number | bigint;
  namemax: number;
}

export interface DirEntry {
  name: string;
  /** With a stat the entry goes out as readdirplus: no LOOKUP per name afterwards. */
  stat?: FileStat;
}

export interface OpenResult {
  fh: number;
  /** Bypass the kernel page cache for this open file. */
  directIo?: boolean;
  /** Keep the kernel page cache from earlier opens (the file did not change). */
  keepCache?: boolean;
}

/**
 * The filesystem, as the rest of s3mount implements it. Every method is async and
 * fails by throwing an FsError (any other exception becomes EIO). Paths are absolute
 * within the mount ("/a/b"); `null` where the kernel no longer has a path (an open
 * file that was unlinked). Methods left out answer ENOSYS.
 */
export interface FuseOperations {
  init?(): Promise<void>;
  statfs?(path: string): Promise<StatFs>;
  getattr(path: string): Promise<FileStat>;
  /** fstat() and the attributes after create/ftruncate: answer from the open file. */
  fgetattr?(path: string | null, fh: number): Promise<FileStat>;
  access?(path: string, mode: number): Promise<void>;
  readdir?(path: string): Promise<DirEntry[]>;
  opendir?(path: string, flags: number): Promise<number>;
  releasedir?(path: string | null, fh: number): Promise<void>;
  fsyncdir?(path: string | null, datasync: boolean, fh: number): Promise<void>;
  open?(path: string, flags: number): Promise<OpenResult>;
  /** flags are the open(2) flags as given (O_EXCL, O_TRUNC, O_APPEND...). */
  create?(path: string, mode: number, flags: number): Promise<OpenResult>;
  /** Fill `target` from `position`; resolve with the byte count (0 at EOF). */
  read?(path: string | null, fh: number, target: Buffer, position: number): Promise<number>;
  /** `data` is a private copy: it may be kept after the promise resolves. */
  write?(path: string | null, fh: number, data: Buffer, position: number): Promise<number>;
  flush?(path: string | null, fh: number): Promise<void>;
  fsync?(path: string | null, datasync: boolean, fh: number): Promise<void>;
  release?(path: string | null, fh: number): Promise<void>;
  truncate?(path: string, size: number): Promise<void>;
  ftruncate?(path: string | null, fh: number, size: number): Promise<void>;
  utimens?(path: string, atime: TimeUpdate, mtime: TimeUpdate): Promise<void>;
  chmod?(path: string, mode: number): Promise<void>;
  /** uid or gid is -1 when it is not to change. */
  chown?(path: string, uid: number, gid: number): Promise<void>;
  readlink?(path: string): Promise<string>;
  symlink?(target: string, path: string): Promise<void>;
  link?(existing: string, path: string): Promise<void>;
  mknod?(path: string, mode: number, dev: number): Promise<void>;
  mkdir?(path: string, mode: number): Promise<void>;
  rmdir?(path: string): Promise<void>;
  unlink?(path: string): Promise<void>;
  /** flags: RENAME_NOREPLACE (1) / RENAME_EXCHANGE (2), as renameat2(2). */
  rename?(from: string, to: string, flags: number): Promise<void>;
}

export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;
