import { FsError } from '../errors.js';

/** Longest name component Linux accepts (NAME_MAX), in bytes. */
const NAME_MAX = 255;

/**
 * Maps mount paths ("/a/b") to keys under the mount's prefix ("prefix/a/b") and back.
 * Directories are prefixes: "/a" as a directory is the key prefix "prefix/a/".
 */
export class Namespace {
  constructor(private readonly prefix: string) {}

  /** The object key of a file, symlink or (with "/" added) directory marker. */
  key(path: string): string {
    if (path === '/') return this.prefix;
    return this.prefix + path.slice(1);
  }

  /** The key prefix of a directory's children: "prefix/a/" for "/a", the mount prefix for "/". */
  dirPrefix(path: string): string {
    if (path === '/') return this.prefix;
    return `${this.prefix}${path.slice(1)}/`;
  }

  /** The mount path of a key under this mount's prefix. */
  pathOf(key: string): string {
    return `/${key.slice(this.prefix.length).replace(/\/$/, '')}`;
  }
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/** Whether a listed name can be a POSIX directory entry. */
export function isPosixName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0') && Buffer.byteLength(name) <= NAME_MAX;
}

/** Names created through the mount: the kernel already refuses most bad ones. */
export function assertCreatableName(path: string): void {
  if (Buffer.byteLength(baseName(path)) > NAME_MAX) throw new FsError('ENAMETOOLONG');
}
