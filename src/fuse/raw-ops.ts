import type { RawCallback, RawOps, RawTimespec } from './native.js';
import { toNegativeErrno, FsError } from '../errors.js';
import type { FileStat, FuseOperations, OpenResult, StatFs, TimeUpdate } from '../fs-types.js';

const UTIME_NOW = 1073741823;
const UTIME_OMIT = 1073741822;
const NO_ID = 0xffffffff;
const FUSE_UNKNOWN_INO = 0xffffffff;
const OPEN_DIRECT_IO = 1;
const OPEN_KEEP_CACHE = 2;

export type UnexpectedErrorHandler = (op: string, err: unknown) => void;

export interface StatView {
  /**
   * Permission bits cleared from every mode the kernel is shown (s3fs' umask). Applied
   * here, at the edge, so that the stored metadata keeps what chmod asked for and a
   * chown or utimens never writes the masked mode back.
   */
  umask?: number;
}

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

/**
 * Turns the typed, promise-based operations into fuse-native's raw callback table,
 * hiding its conventions: negative errnos, read/write answering `cb(bytes)`, native
 * buffers that are detached once answered, UTIME_NOW/UTIME_OMIT in tv_nsec.
 */
export function toRawOps(ops: FuseOperations, onUnexpectedError: UnexpectedErrorHandler, view: StatView = {}): RawOps {
  const umask = view.umask ?? 0;
  // Symlinks keep 0777: Linux ignores their mode, and ls shows lrwxrwxrwx by habit.
  const toRawStat = (st: FileStat): Record<string, unknown> =>
    statRecord(umask === 0 || (st.mode & S_IFMT) === S_IFLNK ? st : { ...st, mode: st.mode & ~umask });
  const fail = (op: string, cb: RawCallback) => (err: unknown) => {
    if (!(err instanceof FsError)) onUnexpectedError(op, err);
    cb(toNegativeErrno(err));
  };
  const done = (op: string, cb: RawCallback, promise: Promise<unknown>) => {
    promise.then(() => cb(0), fail(op, cb));
  };
  const raw: Record<string, (...args: any[]) => void> = {};

  raw.getattr = (path: string, cb: RawCallback) => {
    ops.getattr(path).then((st) => cb(0, toRawStat(st)), fail('getattr', cb));
  };
  if (ops.init) {
    const init = ops.init.bind(ops);
    raw.init = (cb: RawCallback) => done('init', cb, init());
  }
  if (ops.fgetattr) {
    const fgetattr = ops.fgetattr.bind(ops);
    raw.fgetattr = (path: string | null, fh: number, cb: RawCallback) => {
      fgetattr(path, fh).then((st) => cb(0, toRawStat(st)), fail('fgetattr', cb));
    };
  }
  if (ops.statfs) {
    const statfs = ops.statfs.bind(ops);
    raw.statfs = (path: string, cb: RawCallback) => {
      statfs(path).then((st) => cb(0, toRawStatFs(st)), fail('statfs', cb));
    };
  }
  if (ops.access) {
    const access = ops.access.bind(ops);
    raw.access = (path: string, mode: number, cb: RawCallback) => done('access', cb, access(path, mode));
  }
  if (ops.readdir) {
    const readdir = ops.readdir.bind(ops);
    raw.readdir = (path: string, cb: RawCallback) => {
      readdir(path).then((entries) => {
        const names = entries.map((e) => e.name);
        const withStats = entries.every((e) => e.stat !== undefined);
        cb(0, names, withStats ? entries.map((e) => toRawStat(e.stat as FileStat)) : []);
      }, fail('readdir', cb));
    };
  }
  if (ops.opendir) {
    const opendir = ops.opendir.bind(ops);
    raw.opendir = (path: string, flags: number, cb: RawCallback) => {
      opendir(path, flags).then((fh) => cb(0, fh), fail('opendir', cb));
    };
  }
  if (ops.releasedir) {
    const releasedir = ops.releasedir.bind(ops);
    raw.releasedir = (path: string | null, fh: number, cb: RawCallback) => done('releasedir', cb, releasedir(path, fh));
  }
  if (ops.fsyncdir) {
    const fsyncdir = ops.fsyncdir.bind(ops);
    raw.fsyncdir = (path: string | null, datasync: number, fh: number, cb: RawCallback) =>
      done('fsyncdir', cb, fsyncdir(path, datasync !== 0, fh));
  }
  if (ops.open) {
    const open = ops.open.bind(ops);
    raw.open = (path: string, flags: number, cb: RawCallback) => {
      open(path, flags).then((r) => cb(0, r.fh, openFlags(r)), fail('open', cb));
    };
  }
  if (ops.create) {
    const create = ops.create.bind(ops);
    raw.create = (path: string, mode: number, flags: number, cb: RawCallback) => {
      create(path, mode, flags).then((r) => cb(0, r.fh, openFlags(r)), fail('create', cb));
    };
  }
  if (ops.read) {
    const read = ops.read.bind(ops);
    raw.read = (path: string | null, fh: number, buf: Buffer, len: number, position: number, cb: RawCallback) => {
      read(path, fh, buf.subarray(0, len), position).then((n) => cb(n), fail('read', cb));
    };
  }
  if (ops.write) {
    const write = ops.write.bind(ops);
    raw.write = (path: string | null, fh: number, buf: Buffer, len: number, position: number, cb: RawCallback) => {
      // The native buffer stays valid until answered, and the filesystem is done with it by
      // then (copied or written out), so it gets no copy: copying took a fifth of the
      // mount's CPU on a large write. Were the op answered by its timeout instead, the
      // buffer would be detached (length 0) and the late write would store nothing.
      write(path, fh, buf.subarray(0, len), position).then((n) => cb(n), fail('write', cb));
    };
  }
  if (ops.flush) {
    const flush = ops.flush.bind(ops);
    raw.flush = (path: string | null, fh: number, cb: RawCallback) => done('flush', cb, flush(path, fh));
  }
  if (ops.fsync) {
    const fsync = ops.fsync.bind(ops);
    raw.fsync = (path: string | null, datasync: number, fh: number, cb: RawCallback) =>
      done('fsync', cb, fsync(path, datasync !== 0, fh));
  }
  if (ops.release) {
    const release = ops.release.bind(ops);
    raw.release = (path: string | null, fh: number, cb: RawCallback) => done('release', cb, release(path, fh));
  }
  if (ops.truncate) {
    const truncate = ops.truncate.bind(ops);
    raw.truncate = (path: string, size: number, cb: RawCallback) => done('truncate', cb, truncate(path, size));
  }
  if (ops.ftruncate) {
    const ftruncate = ops.ftruncate.bind(ops);
    raw.ftruncate = (path: string | null, fh: number, size: number, cb: RawCallback) =>
      done('ftruncate', cb, ftruncate(path, fh, size));
  }
  if (ops.utimens) {
    const utimens = ops.utimens.bind(ops);
    raw.utimens = (path: string, atime: RawTimespec, mtime: RawTimespec, _fh: number, cb: RawCallback) =>
      done('utimens', cb, utimens(path, toTimeUpdate(atime), toTimeUpdate(mtime)));
  }
  if (ops.chmod) {
    const chmod = ops.chmod.bind(ops);
    raw.chmod = (path: string, mode: number, cb: RawCallback) => done('chmod', cb, chmod(path, mode));
  }
  if (ops.chown) {
    const chown = ops.chown.bind(ops);
    raw.chown = (path: string, uid: number, gid: number, cb: RawCallback) =>
      done('chown', cb, chown(path, uid === NO_ID ? -1 : uid, gid === NO_ID ? -1 : gid));
  }
  if (ops.readlink) {
    const readlink = ops.readlink.bind(ops);
    raw.readlink = (path: string, cb: RawCallback) => {
      readlink(path).then((target) => cb(0, target), fail('readlink', cb));
    };
  }
  const pathOps = ['symlink', 'link', 'mknod', 'mkdir', 'rmdir', 'unlink', 'rename'] as const;
  for (const name of pathOps) {
    const op = ops[name] as ((...args: any[]) => Promise<void>) | undefined;
    if (!op) continue;
    const bound = op.bind(ops);
    raw[name] = (...args: any[]) => {
      const cb = args.pop() as RawCallback;
      done(name, cb, bound(...args));
    };
  }
  return raw as RawOps;
}

function openFlags(result: OpenResult): number {
  return (result.directIo ? OPEN_DIRECT_IO : 0) | (result.keepCache ? OPEN_KEEP_CACHE : 0);
}

function toTimeUpdate(t: RawTimespec): TimeUpdate {
  if (t.nsec === UTIME_NOW) return 'now';
  if (t.nsec === UTIME_OMIT) return 'omit';
  return { sec: t.sec, nsec: t.nsec };
}

function statRecord(st: FileStat): Record<string, unknown> {
  const size = BigInt(st.size);
  return {
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    size,
    nlink: st.nlink ?? 1,
    // libfuse's "unknown inode": with 0, glibc's readdir would drop "." and ".." (d_ino 0).
    ino: st.ino ?? FUSE_UNKNOWN_INO,
    blksize: st.blksize ?? 4096,
    blocks: st.blocks ?? (size + 511n) / 512n,
    atime: st.atime,
    mtime: st.mtime,
    ctime: st.ctime,
  };
}

function toRawStatFs(st: StatFs): Record<string, unknown> {
  return { ...st, fsid: 0, flag: 0 };
}
