import { execFile } from 'node:child_process';
import { opendir, readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { loadFuseNative, type RawFuseOptions } from './native.js';
import { userMountRefusal } from './user-mount.js';
import { toRawOps, type UnexpectedErrorHandler } from './raw-ops.js';
import type { FuseOperations } from '../fs-types.js';

const execFileAsync = promisify(execFile);

export interface FuseMountOptions {
  /** Shown as the source in `mount` and /proc/mounts. */
  fsname?: string;
  /** The type shows as fuse.<subtype>. */
  subtype?: string;
  allowOther?: boolean;
  allowRoot?: boolean;
  /** Let the kernel check permissions against the modes we report. */
  defaultPermissions?: boolean;
  /** Permission bits cleared from every mode reported (not from what is stored). */
  umask?: number;
  readOnly?: boolean;
  /** libfuse prints every request to stderr. */
  debug?: boolean;
  /** A helper process unmounts if this process dies (SIGKILL). Default on. */
  autoUnmount?: boolean;
  /** Kernel caching of attributes, names and missing names, in seconds. */
  attrTimeout?: number;
  entryTimeout?: number;
  negativeTimeout?: number;
  /** Largest write request, in bytes. Default 1 MiB. */
  maxWrite?: number;
  /** Background requests (readahead, async reads) in flight. Default 64. */
  maxBackground?: number;
  /** FUSE worker threads, i.e. requests in flight at once. Default 256. */
  maxThreads?: number;
  /** The kernel caches writes and owns mtime/size. Default off. */
  writebackCache?: boolean;
  /** Report our inode numbers instead of libfuse's own. */
  useIno?: boolean;
  kernelCache?: boolean;
  autoCache?: boolean;
  /** Kernel mount flags as mount(8) spells them (nosuid, nodev, noexec...); the last of a pair wins. */
  mountFlags?: readonly string[];
  /** Mount over a directory that has files in it (refused otherwise). */
  nonempty?: boolean;
  /** Bound on every op but flush, fsync and release, which are never cut short. */
  opTimeoutMs?: number;
  /** Called for exceptions that are not FsError (answered EIO). */
  onUnexpectedError?: UnexpectedErrorHandler;
}

export const DEFAULT_MOUNT_OPTIONS = {
  autoUnmount: true,
  maxWrite: 1024 * 1024,
  maxBackground: 64,
  maxThreads: 256,
  opTimeoutMs: 120_000,
} as const;

export class MountError extends Error {
  override name = 'MountError';
}

/** A live FUSE mount. */
export class FuseMount {
  private done = false;

  constructor(
    readonly mountpoint: string,
    /** Resolves once the kernel connection is gone (unmounted from here or outside). */
    readonly exited: Promise<void>,
  ) {
    void exited.then(() => {
      this.done = true;
    });
  }

  get mounted(): boolean {
    return !this.done;
  }

  /**
   * Unmounts and waits until the FUSE loop has ended. Without `lazy` it fails with
   * "busy" while files are open; `lazy` detaches at once and lets open files finish.
   */
  async unmount(options: { lazy?: boolean } = {}): Promise<void> {
    if (this.done) return;
    try {
      await execFileAsync('fusermount3', [options.lazy ? '-uz' : '-u', '--', this.mountpoint]);
    } catch (err) {
      if (this.done) return;
      const detail = (err as { stderr?: string }).stderr?.trim() || String(err);
      throw new MountError(`cannot unmount ${this.mountpoint}: ${detail}`);
    }
    await this.exited;
  }
}

/** Mounts `ops` at `mountpoint`; resolves once the kernel has sent INIT. */
export async function mountFuse(
  mountpoint: string,
  ops: FuseOperations,
  options: FuseMountOptions = {},
): Promise<FuseMount> {
  const target = resolve(mountpoint);
  await prepareMountpoint(target, options.nonempty ?? false);
  const refusal = await userMountRefusal({ uid: process.getuid?.() ?? 0, allowOther: options.allowOther, allowRoot: options.allowRoot });
  if (refusal) throw new MountError(refusal);
  const Fuse = loadFuseNative();
  const settings = { ...DEFAULT_MOUNT_OPTIONS, ...options };
  const onUnexpectedError =
    settings.onUnexpectedError ?? ((op, err) => console.error(`s3mount: ${op} failed unexpectedly:`, err));

  let signalExit: () => void = () => {};
  const exited = new Promise<void>((res) => {
    signalExit = res;
  });
  const raw: RawFuseOptions = {
    fsname: settings.fsname,
    subtype: settings.subtype,
    allowOther: settings.allowOther,
    allowRoot: settings.allowRoot,
    defaultPermissions: settings.defaultPermissions,
    readOnly: settings.readOnly,
    debug: settings.debug,
    autoUnmount: settings.autoUnmount,
    attrTimeout: settings.attrTimeout,
    entryTimeout: settings.entryTimeout,
    negativeTimeout: settings.negativeTimeout,
    maxWrite: settings.maxWrite,
    maxBackground: settings.maxBackground,
    maxThreads: settings.maxThreads,
    writebackCache: settings.writebackCache,
    useIno: settings.useIno,
    kernelCache: settings.kernelCache,
    autoCache: settings.autoCache,
    extraOptions: [...(settings.mountFlags ?? [])],
    timeout: { default: settings.opTimeoutMs, flush: false, fsync: false, release: false, fsyncdir: false },
    onExit: () => signalExit(),
  };
  const fuse = new Fuse(target, toRawOps(ops, onUnexpectedError, { umask: settings.umask }), raw);
  await new Promise<void>((res, rej) => {
    fuse.mount((err) => {
      if (err) rej(new MountError(`cannot mount ${target}: ${err.message} (libfuse's reason is on stderr)`));
      else res();
    });
  });
  return new FuseMount(target, exited);
}

/**
 * The mount point must be an existing directory that is not mounted, and empty
 * unless `nonempty` (libfuse 3 no longer checks: files would silently vanish under
 * the mount). A dead FUSE mount left by a killed daemon ("Transport endpoint is not
 * connected") is cleared.
 */
async function prepareMountpoint(target: string, nonempty: boolean): Promise<void> {
  try {
    const st = await stat(target);
    if (!st.isDirectory()) throw new MountError(`mount point ${target} is not a directory: mount on a directory`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (err instanceof MountError) throw err;
    if (code === 'ENOENT') throw new MountError(`mount point ${target} does not exist: create it with mkdir -p ${target}`);
    if (code !== 'ENOTCONN' && code !== 'ECONNABORTED') throw new MountError(`mount point ${target}: ${String(err)}`);
    await clearStaleMount(target);
  }
  const type = await mountedType(target);
  // x-systemd.automount: systemd's autofs trigger sits on the mount point and the mount
  // goes over it. Looking inside would wait for this very mount.
  if (type === 'autofs') return;
  if (type !== undefined) {
    throw new MountError(`${target} is already mounted: unmount it first (s3mount unmount ${target})`);
  }
  if (!nonempty && (await hasEntries(target))) {
    throw new MountError(`mount point ${target} is not empty: empty it, or mount over its files with --nonempty (-o nonempty)`);
  }
}

/** Whether the directory has any entry, read one at most (a mount point may hold many). */
async function hasEntries(dir: string): Promise<boolean> {
  const handle = await opendir(dir);
  try {
    return (await handle.read()) !== null;
  } finally {
    await handle.close();
  }
}

async function clearStaleMount(target: string): Promise<void> {
  try {
    await execFileAsync('fusermount3', ['-uz', '--', target]);
  } catch (err) {
    const detail = (err as { stderr?: string }).stderr?.trim() || String(err);
    throw new MountError(`${target} holds a dead FUSE mount that cannot be cleared: ${detail}`);
  }
}

/** Whether `target` is a mount point. */
export async function isMountpoint(target: string): Promise<boolean> {
  return (await mountedType(target)) !== undefined;
}

/**
 * The file system type of the topmost mount on `target` (the last in
 * /proc/self/mountinfo, whose path field escapes octal), undefined if none.
 */
async function mountedType(target: string): Promise<string | undefined> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  let type: string | undefined;
  for (const line of info.split('\n')) {
    const fields = line.split(' ');
    const path = fields[4];
    if (path !== undefined && unescapeMountPath(path) === target) type = fields[fields.indexOf('-') + 1];
  }
  return type;
}

function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}
