// A daemon with a one-file filesystem, for crash tests: node hello-daemon.mjs MOUNTPOINT [--no-auto-unmount]
// Uses the built wrapper (dist/), as the real daemon does. Prints "ready" once mounted.
import { FsError, mountFuse } from '../../dist/fuse/index.js';

const [mountpoint, flag] = process.argv.slice(2);
const t = { sec: 1_000_000_000, nsec: 0 };
const ops = {
  async getattr(path) {
    if (path === '/') return { mode: 0o40755, size: 4096, uid: 0, gid: 0, atime: t, mtime: t, ctime: t };
    if (path === '/hello') return { mode: 0o100644, size: 6, uid: 0, gid: 0, atime: t, mtime: t, ctime: t };
    throw new FsError('ENOENT');
  },
  async readdir() {
    return [{ name: 'hello' }];
  },
  async open() {
    return { fh: 1 };
  },
  async read(_path, _fh, target, position) {
    return Buffer.from('hello\n').copy(target, 0, position);
  },
};
await mountFuse(mountpoint, ops, { fsname: 'hello', subtype: 'hello', autoUnmount: flag !== '--no-auto-unmount' });
process.stdout.write('ready\n');
