import { constants } from 'node:fs';
import {
  FsError,
  type DirEntry,
  type FileStat,
  type FuseOperations,
  type OpenResult,
  type StatFs,
  type TimeUpdate,
  type Timespec,
} from '../../src/fuse/index.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

interface Node {
  mode: number;
  uid: number;
  gid: number;
  data: Buffer;
  target?: string;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
}

export interface Call {
  op: string;
  path: string | null;
  flags?: number;
  size?: number;
  position?: number;
}

function now(): Timespec {
  const ms = Date.now();
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1_000_000 };
}

function resolveTime(t: TimeUpdate, current: Timespec): Timespec {
  if (t === 'omit') return current;
  if (t === 'now') return now();
  return t;
}

/**
 * A tiny in-memory filesystem on the typed wrapper: what the binding tests mount.
 * It records every call, and `hooks` can delay an op to test concurrency and timeouts.
 */
export class MemFs implements FuseOperations {
  readonly nodes = new Map<string, Node>();
  readonly calls: Call[] = [];
  readonly hooks: Partial<Record<string, (path: string | null) => Promise<void>>> = {};
  private readonly handles = new Map<number, string>();
  private nextFh = 1;

  constructor() {
    this.nodes.set('/', this.newNode(S_IFDIR | 0o755));
  }

  private newNode(mode: number): Node {
    const t = now();
    return { mode, uid: 0, gid: 0, data: Buffer.alloc(0), atime: t, mtime: t, ctime: t };
  }

  private async enter(call: Call): Promise<void> {
    this.calls.push(call);
    const hook = this.hooks[call.op];
    if (hook) await hook(call.path);
  }

  private get(path: string): Node {
    const node = this.nodes.get(path);
    if (!node) throw new FsError('ENOENT');
    return node;
  }

  private byHandle(fh: number): Node {
    const path = this.handles.get(fh);
    if (path === undefined) throw new FsError('EBADF');
    return this.get(path);
  }

  private parentOf(path: string): string {
    const i = path.lastIndexOf('/');
    return i <= 0 ? '/' : path.slice(0, i);
  }

  private children(dir: string): string[] {
    const prefix = dir === '/' ? '/' : `${dir}/`;
    return [...this.nodes.keys()].filter((p) => p !== dir && p.startsWith(prefix) && !p.slice(prefix.length).includes('/'));
  }

  private add(path: string, node: Node): void {
    const parent = this.nodes.get(this.parentOf(path));
    if (!parent || (parent.mode & S_IFMT) !== S_IFDIR) throw new FsError('ENOENT');
    if (this.nodes.has(path)) throw new FsError('EEXIST');
    this.nodes.set(path, node);
  }

  private toStat(node: Node): FileStat {
    const isDir = (node.mode & S_IFMT) === S_IFDIR;
    return {
      mode: node.mode,
      size: node.target !== undefined ? Buffer.byteLength(node.target) : isDir ? 4096 : node.data.length,
      uid: node.uid,
      gid: node.gid,
      atime: node.atime,
      mtime: node.mtime,
      ctime: node.ctime,
      nlink: isDir ? 2 : 1,
    };
  }

  async statfs(): Promise<StatFs> {
    return { bsize: 4096, frsize: 4096, blocks: 1n << 40n, bfree: 1n << 39n, bavail: 1n << 39n, files: 1_000_000, ffree: 999_000, favail: 999_000, namemax: 255 };
  }

  async getattr(path: string): Promise<FileStat> {
    await this.enter({ op: 'getattr', path });
    return this.toStat(this.get(path));
  }

  async fgetattr(path: string | null, fh: number): Promise<FileStat> {
    await this.enter({ op: 'fgetattr', path });
    return this.toStat(this.byHandle(fh));
  }

  async readdir(path: string): Promise<DirEntry[]> {
    await this.enter({ op: 'readdir', path });
    this.get(path);
    return this.children(path).map((p) => ({ name: p.slice(p.lastIndexOf('/') + 1), stat: this.toStat(this.get(p)) }));
  }

  private openHandle(path: string): OpenResult {
    const fh = this.nextFh++;
    this.handles.set(fh, path);
    return { fh };
  }

  async create(path: string, mode: number, flags: number): Promise<OpenResult> {
    await this.enter({ op: 'create', path, flags });
    this.add(path, this.newNode(S_IFREG | (mode & 0o7777)));
    return this.openHandle(path);
  }

  async open(path: string, flags: number): Promise<OpenResult> {
    await this.enter({ op: 'open', path, flags });
    const node = this.get(path);
    if (flags & constants.O_TRUNC) node.data = Buffer.alloc(0);
    return this.openHandle(path);
  }

  async read(path: string | null, fh: number, target: Buffer, position: number): Promise<number> {
    await this.enter({ op: 'read', path, size: target.length, position });
    const node = this.byHandle(fh);
    return node.data.copy(target, 0, Math.min(position, node.data.length), Math.min(position + target.length, node.data.length));
  }

  async write(path: string | null, fh: number, data: Buffer, position: number): Promise<number> {
    await this.enter({ op: 'write', path, size: data.length, position });
    const node = this.byHandle(fh);
    const end = position + data.length;
    if (end > node.data.length) {
      const grown = Buffer.alloc(end);
      node.data.copy(grown);
      node.data = grown;
    }
    data.copy(node.data, position);
    node.mtime = node.ctime = now();
    return data.length;
  }

  async flush(path: string | null): Promise<void> {
    await this.enter({ op: 'flush', path });
  }

  async fsync(path: string | null): Promise<void> {
    await this.enter({ op: 'fsync', path });
  }

  async release(path: string | null, fh: number): Promise<void> {
    await this.enter({ op: 'release', path });
    this.handles.delete(fh);
  }

  private resize(node: Node, size: number): void {
    const resized = Buffer.alloc(size);
    node.data.copy(resized, 0, 0, Math.min(size, node.data.length));
    node.data = resized;
    node.mtime = node.ctime = now();
  }

  async truncate(path: string, size: number): Promise<void> {
    await this.enter({ op: 'truncate', path, size });
    this.resize(this.get(path), size);
  }

  async ftruncate(path: string | null, fh: number, size: number): Promise<void> {
    await this.enter({ op: 'ftruncate', path, size });
    this.resize(this.byHandle(fh), size);
  }

  async utimens(path: string, atime: TimeUpdate, mtime: TimeUpdate): Promise<void> {
    await this.enter({ op: 'utimens', path });
    const node = this.get(path);
    node.atime = resolveTime(atime, node.atime);
    node.mtime = resolveTime(mtime, node.mtime);
    node.ctime = now();
  }

  async chmod(path: string, mode: number): Promise<void> {
    await this.enter({ op: 'chmod', path });
    const node = this.get(path);
    node.mode = (node.mode & S_IFMT) | (mode & 0o7777);
  }

  async chown(path: string, uid: number, gid: number): Promise<void> {
    await this.enter({ op: 'chown', path });
    const node = this.get(path);
    if (uid !== -1) node.uid = uid;
    if (gid !== -1) node.gid = gid;
  }

  async mkdir(path: string, mode: number): Promise<void> {
    await this.enter({ op: 'mkdir', path });
    this.add(path, this.newNode(S_IFDIR | (mode & 0o7777)));
  }

  async rmdir(path: string): Promise<void> {
    await this.enter({ op: 'rmdir', path });
    this.get(path);
    if (this.children(path).length > 0) throw new FsError('ENOTEMPTY');
    this.nodes.delete(path);
  }

  async unlink(path: string): Promise<void> {
    await this.enter({ op: 'unlink', path });
    this.get(path);
    this.nodes.delete(path);
  }

  async rename(from: string, to: string, flags: number): Promise<void> {
    await this.enter({ op: 'rename', path: from, flags });
    if (flags !== 0) throw new FsError('EINVAL');
    const moved = [...this.nodes.entries()].filter(([p]) => p === from || p.startsWith(`${from}/`));
    if (moved.length === 0) throw new FsError('ENOENT');
    this.nodes.delete(to);
    for (const [p, node] of moved) {
      this.nodes.delete(p);
      this.nodes.set(to + p.slice(from.length), node);
    }
    for (const [fh, p] of this.handles) if (p === from) this.handles.set(fh, to);
  }

  async symlink(target: string, path: string): Promise<void> {
    await this.enter({ op: 'symlink', path });
    const node = this.newNode(S_IFLNK | 0o777);
    node.target = target;
    this.add(path, node);
  }

  async readlink(path: string): Promise<string> {
    await this.enter({ op: 'readlink', path });
    const node = this.get(path);
    if (node.target === undefined) throw new FsError('EINVAL');
    return node.target;
  }

  /** Calls of one op, for assertions. */
  callsOf(op: string): Call[] {
    return this.calls.filter((c) => c.op === op);
  }
}
