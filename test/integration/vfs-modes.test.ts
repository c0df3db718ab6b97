// src/vfs against the test server, without FUSE: read-only mounts and mounts of a
// key prefix.
import { constants } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestBucket, getObjectBytes, headObject, listKeys, putObject } from '../support/s3.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, createTestVfs, names, putMany, readFile, writeFile, type TestVfs } from './support/vfs.js';

const { O_RDONLY, O_WRONLY, O_RDWR, O_TRUNC, O_CREAT } = constants;

let bucket: string;
const opened: TestVfs[] = [];

async function vfsWith(options: Parameters<typeof createTestVfs>[1]): Promise<TestVfs> {
  const v = await createTestVfs(bucket, options);
  opened.push(v);
  return v;
}

beforeAll(async () => {
  bucket = await createTestBucket('vfs-modes');
});

afterAll(async () => {
  for (const v of opened) await v.close();
});

describe('a read-only mount', () => {
  it('refuses every change with EROFS and leaves the bucket as it was', { timeout: 30_000 }, async () => {
    await putMany(bucket, [
      ['ro/file', 'content'],
      ['ro/dir/inner', 'inner'],
      ['ro/empty/', ''],
    ]);
    await putObject(bucket, 'ro/link', 'file', { mode: String(S_IFLNK | 0o777) });
    const keys = await listKeys(bucket, 'ro/');
    const etags = await Promise.all(keys.map(async (k) => (await headObject(bucket, k))?.ETag));
    const { vfs } = await vfsWith({ readOnly: true });

    const refused: Array<[string, () => Promise<unknown>]> = [
      ['create', () => vfs.create('/ro/new', S_IFREG | 0o644, O_WRONLY | O_CREAT)],
      ['open O_WRONLY', () => vfs.open('/ro/file', O_WRONLY)],
      ['open O_RDWR', () => vfs.open('/ro/file', O_RDWR)],
      ['open O_TRUNC', () => vfs.open('/ro/file', O_WRONLY | O_TRUNC)],
      ['truncate', () => vfs.truncate('/ro/file', 0)],
      ['mkdir', () => vfs.mkdir('/ro/newdir', 0o755)],
      ['rmdir', () => vfs.rmdir('/ro/empty')],
      ['unlink', () => vfs.unlink('/ro/file')],
      ['rename', () => vfs.rename('/ro/file', '/ro/renamed', 0)],
      ['rename dir', () => vfs.rename('/ro/dir', '/ro/dir2', 0)],
      ['symlink', () => vfs.symlink('file', '/ro/newlink')],
      ['link', () => vfs.link('/ro/file', '/ro/hard')],
      ['chmod', () => vfs.chmod('/ro/file', 0o600)],
      ['chown', () => vfs.chown('/ro/file', 1, 1)],
      ['utimens', () => vfs.utimens('/ro/file', 'now', 'now')],
      ['utimens atime only', () => vfs.utimens('/ro/file', 'now', 'omit')],
      ['chmod dir', () => vfs.chmod('/ro/dir', 0o700)],
    ];
    for (const [what, op] of refused) {
      await expect(op(), what).rejects.toMatchObject({ code: 'EROFS' });
    }

    // reading works
    expect((await vfs.getattr('/ro/file')).size).toBe(7);
    expect(names(await vfs.readdir('/ro')).sort()).toEqual(['.', '..', 'dir', 'empty', 'file', 'link']);
    expect((await readFile(vfs, '/ro/file')).toString()).toBe('content');
    expect(await vfs.readlink('/ro/link')).toBe('file');
    expect((await vfs.statfs()).namemax).toBe(255);
    const { fh } = await vfs.open('/ro/dir/inner', O_RDONLY);
    expect((await vfs.fgetattr(null, fh)).size).toBe(5);
    await vfs.flush(null, fh);
    await vfs.release(null, fh);

    expect(await listKeys(bucket, 'ro/')).toEqual(keys);
    expect(await Promise.all(keys.map(async (k) => (await headObject(bucket, k))?.ETag))).toEqual(etags);
  });
});

describe('a mount of a key prefix', () => {
  it('sees only the keys under the prefix and writes under it', { timeout: 30_000 }, async () => {
    await putMany(bucket, [
      // the prefix's own marker is not an entry
      ['sub/dir/', ''],
      ['sub/dir/a.txt', 'a'],
      ['sub/dir/nested/b.txt', 'b'],
      ['sub/other.txt', 'not mine'],
      ['sub/dirx/c.txt', 'not mine either'],
      ['outside.txt', 'outside'],
    ]);
    const mount = await vfsWith({ prefix: 'sub/dir/' });
    const { vfs } = mount;

    const root = await vfs.getattr('/');
    expect(root.mode & S_IFMT).toBe(S_IFDIR);
    expect(names(await vfs.readdir('/')).sort()).toEqual(['.', '..', 'a.txt', 'nested']);
    expect(names(await vfs.readdir('/nested'))).toEqual(['.', '..', 'b.txt']);
    expect(mount.warnings()).toEqual([]);
    expect((await readFile(vfs, '/a.txt')).toString()).toBe('a');
    expect((await readFile(vfs, '/nested/b.txt')).toString()).toBe('b');
    for (const outside of ['/other.txt', '/outside.txt', '/dirx', '/sub', '/c.txt']) {
      await expect(vfs.getattr(outside), outside).rejects.toMatchObject({ code: 'ENOENT' });
    }

    await writeFile(vfs, '/new.txt', 'new');
    await vfs.mkdir('/made', 0o755);
    await vfs.symlink('a.txt', '/made/link');
    await vfs.rename('/new.txt', '/made/moved.txt', 0);
    await vfs.utimens('/made/moved.txt', 'omit', { sec: 1700000000, nsec: 1 });
    await vfs.rename('/nested', '/nested2', 0);
    await vfs.unlink('/a.txt');
    const keys = (await listKeys(bucket)).filter((k) => k === 'outside.txt' || k.startsWith('sub'));
    expect(keys).toEqual([
      'outside.txt',
      'sub/dir/',
      'sub/dir/made/',
      'sub/dir/made/link',
      'sub/dir/made/moved.txt',
      'sub/dir/nested2/b.txt',
      'sub/dirx/c.txt',
      'sub/other.txt',
    ]);
    expect((await getObjectBytes(bucket, 'sub/dir/made/moved.txt')).toString()).toBe('new');
    expect((await headObject(bucket, 'sub/dir/made/moved.txt'))?.Metadata?.mtime).toBe('1700000000.000000001');
    expect((await getObjectBytes(bucket, 'sub/dir/made/link')).toString()).toBe('a.txt');

    // a second mount of the same prefix sees the same tree
    const again = await vfsWith({ prefix: 'sub/dir/' });
    expect(names(await again.vfs.readdir('/')).sort()).toEqual(['.', '..', 'made', 'nested2']);
    expect(names(await again.vfs.readdir('/made')).sort()).toEqual(['.', '..', 'link', 'moved.txt']);
    expect(await again.vfs.readlink('/made/link')).toBe('a.txt');
    await expect(again.vfs.rmdir('/made')).rejects.toMatchObject({ code: 'ENOTEMPTY' });
  });

  it('keeps the mount root when its last key goes', { timeout: 30_000 }, async () => {
    await putObject(bucket, 'solo/prefix/only', 'x');
    const { vfs } = await vfsWith({ prefix: 'solo/prefix/' });
    await vfs.unlink('/only');
    expect(names(await vfs.readdir('/'))).toEqual(['.', '..']);
    expect((await vfs.getattr('/')).mode & S_IFMT).toBe(S_IFDIR);
    expect(await listKeys(bucket, 'solo/')).toEqual([]);
  });
});
