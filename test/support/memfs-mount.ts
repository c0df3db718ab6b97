import { mkdtemp, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mountFuse, type FuseMount, type FuseMountOptions, type FuseOperations } from '../../src/fuse/index.js';
import { MemFs } from './memfs.js';

export interface TestMount<T extends FuseOperations> {
  fs: T;
  dir: string;
  mount: FuseMount;
  path(name: string): string;
  close(): Promise<void>;
}

/** Mounts `fs` on a fresh temporary directory; close() always unmounts and removes it. */
export async function mountTestFs<T extends FuseOperations>(fs: T, options: FuseMountOptions = {}): Promise<TestMount<T>> {
  const dir = await mkdtemp(join(tmpdir(), 's3mount-binding-'));
  const mount = await mountFuse(dir, fs, { fsname: 'memfs', subtype: 'memfs', ...options }).catch(async (err: unknown) => {
    await rmdir(dir);
    throw err;
  });
  return {
    fs,
    dir,
    mount,
    path: (name: string) => join(dir, name),
    async close() {
      try {
        await mount.unmount({ lazy: true });
      } finally {
        // rmdir, never rm -r: if the unmount failed, nothing below is touched.
        await rmdir(dir);
      }
    },
  };
}

export function mountMemFs(options: FuseMountOptions = {}): Promise<TestMount<MemFs>> {
  return mountTestFs(new MemFs(), options);
}
