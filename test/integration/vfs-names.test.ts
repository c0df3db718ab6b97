// src/vfs against the test server, without FUSE: directories, renames, links.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { RENAME_EXCHANGE, RENAME_NOREPLACE } from '../../src/fs-types.js';
import { createTestBucket, getObjectBytes, headObject, listKeys, putObject } from '../support/s3.js';
import {
  DEFAULT_OPTIONS,
  MiB,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  md5,
  names,
  putMany,
  readAt,
  readFile,
  readHandle,
  writeFile,
  VfsPool,
  type TestVfs,
} from './support/vfs.js';

const { uid, gid } = DEFAULT_OPTIONS;

let bucket: string;
/** A fresh Vfs per test, so that no other test's cached listing hides what a test puts through the SDK. */
let t: TestVfs;

const pool = new VfsPool(() => bucket);
const freshVfs = (options?: Parameters<typeof pool.fresh>[0]): Promise<TestVfs> => pool.fresh(options);

beforeAll(async () => {
  bucket = await createTestBucket('vfs-names');
});

beforeEach(async () => {
  t = await freshVfs();
});

afterAll(async () => {
  vi.restoreAllMocks();
  await pool.closeAll();
});

describe('directories', () => {
  it('mkdir writes a zero-byte marker with the attributes', { timeout: 10_000 }, async () => {
    await t.vfs.mkdir('/made', 0o751);
    const head = await headObject(bucket, 'made/');
    expect(head?.ContentLength).toBe(0);
    const st = await t.vfs.getattr('/made');
    expect(st).toMatchObject({ mode: S_IFDIR | 0o751, uid, gid, nlink: 2 });
    expect(head?.Metadata).toEqual({
      mtime: expect.stringMatching(/^\d+(\.\d{9})?$/),
      mode: String(S_IFDIR | 0o751),
      uid: String(uid),
      gid: String(gid),
    });
    const v = await freshVfs();
    expect(await v.vfs.getattr('/made')).toEqual(st);
    expect(names(await v.vfs.readdir('/made'))).toEqual(['.', '..']);
    // nested, and under a missing parent
    await t.vfs.mkdir('/made/inner', 0o700);
    expect(await listKeys(bucket, 'made/')).toEqual(['made/', 'made/inner/']);
    await expect(t.vfs.mkdir('/nowhere/inner', 0o755)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('rmdir of a non-empty directory fails with ENOTEMPTY and removes nothing', { timeout: 10_000 }, async () => {
    await putObject(bucket, 'full/', '');
    await putObject(bucket, 'full/file', 'x');
    await putObject(bucket, 'full2/sub/deep', 'x');
    await expect(t.vfs.rmdir('/full')).rejects.toMatchObject({ code: 'ENOTEMPTY' });
    await expect(t.vfs.rmdir('/full2')).rejects.toMatchObject({ code: 'ENOTEMPTY' });
    expect(await listKeys(bucket, 'full')).toEqual(['full/', 'full/file', 'full2/sub/deep']);
    await expect(t.vfs.rmdir('/full/file')).rejects.toMatchObject({ code: 'ENOTDIR' });
    await expect(t.vfs.rmdir('/full/missing')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('rmdir of an empty directory removes its marker', { timeout: 10_000 }, async () => {
    await t.vfs.mkdir('/gone', 0o755);
    await t.vfs.rmdir('/gone');
    expect(await headObject(bucket, 'gone/')).toBeUndefined();
    await expect(t.vfs.getattr('/gone')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(names(await t.vfs.readdir('/'))).not.toContain('gone');
    const v = await freshVfs();
    await expect(v.vfs.getattr('/gone')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('rmdir refuses a directory that holds a file not yet uploaded', { timeout: 10_000 }, async () => {
    await t.vfs.mkdir('/busy', 0o755);
    const { fh } = await t.vfs.create('/busy/pending', S_IFREG | 0o644, constants.O_WRONLY | constants.O_CREAT);
    try {
      await expect(t.vfs.rmdir('/busy')).rejects.toMatchObject({ code: 'ENOTEMPTY' });
      await t.vfs.flush(null, fh);
    } finally {
      await t.vfs.release(null, fh);
    }
    expect(await listKeys(bucket, 'busy/')).toEqual(['busy/', 'busy/pending']);
  });

  it('keeps an implicit directory when its last file is unlinked (writes its marker)', { timeout: 20_000 }, async () => {
    await putObject(bucket, 'imp/sub/only.txt', 'only');
    // a mount that knows nothing of the directory yet
    const v = await freshVfs();
    await v.vfs.unlink('/imp/sub/only.txt');
    expect(await listKeys(bucket, 'imp/')).toEqual(['imp/sub/']);
    expect((await v.vfs.getattr('/imp/sub')).mode & S_IFMT).toBe(S_IFDIR);
    expect(names(await v.vfs.readdir('/imp/sub'))).toEqual(['.', '..']);

    // a mount that has listed it
    await putObject(bucket, 'imp2/sub/only.txt', 'only');
    const w = await freshVfs();
    expect(names(await w.vfs.readdir('/imp2/sub'))).toEqual(['.', '..', 'only.txt']);
    await w.vfs.unlink('/imp2/sub/only.txt');
    expect(await listKeys(bucket, 'imp2/')).toEqual(['imp2/sub/']);
    expect(names(await w.vfs.readdir('/imp2/sub'))).toEqual(['.', '..']);
    const fresh = await freshVfs();
    expect((await fresh.vfs.getattr('/imp2/sub')).mode & S_IFMT).toBe(S_IFDIR);
  });

  it('unlink of a directory is EISDIR, of a missing file ENOENT', { timeout: 10_000 }, async () => {
    await t.vfs.mkdir('/unl', 0o755);
    await expect(t.vfs.unlink('/unl')).rejects.toMatchObject({ code: 'EISDIR' });
    await expect(t.vfs.unlink('/unl/missing')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await listKeys(bucket, 'unl/')).toEqual(['unl/']);
  });
});

describe('rename of files', () => {
  it('copies to the new key with bytes and metadata, then deletes the old key', { timeout: 20_000 }, async () => {
    const body = randomBytes(50_000);
    const meta = { mtime: '1700000000.123456789', mode: String(S_IFREG | 0o600), uid: '31', gid: '32' };
    await putObject(bucket, 'rf/a', body, meta);
    const before = await t.vfs.getattr('/rf/a');
    await t.vfs.rename('/rf/a', '/rf/b', 0);
    expect(await listKeys(bucket, 'rf/')).toEqual(['rf/b']);
    expect(md5(await getObjectBytes(bucket, 'rf/b'))).toBe(md5(body));
    expect((await headObject(bucket, 'rf/b'))?.Metadata).toEqual(meta);
    await expect(t.vfs.getattr('/rf/a')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await t.vfs.getattr('/rf/b')).toEqual(before);
    expect(md5(await readFile(t.vfs, '/rf/b'))).toBe(md5(body));
    // the directory that lost its only file stays
    await t.vfs.mkdir('/rf2', 0o755);
    await t.vfs.rename('/rf/b', '/rf2/c', 0);
    expect(await listKeys(bucket, 'rf')).toEqual(['rf/', 'rf2/', 'rf2/c']);
    expect(md5(await readFile(t.vfs, '/rf2/c'))).toBe(md5(body));
  });

  it('replaces an existing file', { timeout: 20_000 }, async () => {
    await putObject(bucket, 'ro/src', 'the new content');
    await putObject(bucket, 'ro/dst', 'the old content, longer');
    await t.vfs.rename('/ro/src', '/ro/dst', 0);
    expect(await listKeys(bucket, 'ro/')).toEqual(['ro/dst']);
    expect((await getObjectBytes(bucket, 'ro/dst')).toString()).toBe('the new content');
    expect((await t.vfs.getattr('/ro/dst')).size).toBe(15);
    expect((await readFile(t.vfs, '/ro/dst')).toString()).toBe('the new content');
  });

  it('renames a file that is not uploaded yet without copying anything', { timeout: 20_000 }, async () => {
    await t.vfs.mkdir('/rn', 0o755);
    const v = await freshVfs();
    const copy = vi.spyOn(v.bucket, 'copy');
    const { fh } = await v.vfs.create('/rn/draft', S_IFREG | 0o644, constants.O_WRONLY | constants.O_CREAT);
    try {
      await v.vfs.write(null, fh, Buffer.from('draft content'), 0);
      await v.vfs.rename('/rn/draft', '/rn/final', 0);
      expect(copy).not.toHaveBeenCalled();
      expect((await v.vfs.getattr('/rn/final')).size).toBe(13);
      await expect(v.vfs.getattr('/rn/draft')).rejects.toMatchObject({ code: 'ENOENT' });
      await v.vfs.flush(null, fh);
    } finally {
      await v.vfs.release(null, fh);
    }
    expect(copy).not.toHaveBeenCalled();
    expect(await listKeys(bucket, 'rn/')).toEqual(['rn/', 'rn/final']);
    expect((await getObjectBytes(bucket, 'rn/final')).toString()).toBe('draft content');
  });

  it('renames a multipart file under an open reader: both read it back exactly', { timeout: 120_000 }, async () => {
    // AWS gives a copied multipart object a new ETag: reads must not expect the old one.
    await t.vfs.mkdir('/mp', 0o755);
    const data = randomBytes(20 * MiB);
    await writeFile(t.vfs, '/mp/big', data);
    const { fh } = await t.vfs.open('/mp/big', constants.O_RDONLY);
    try {
      expect(md5(await readAt(t.vfs, fh, 0, 1000))).toBe(md5(data.subarray(0, 1000)));
      await t.vfs.rename('/mp/big', '/mp/renamed', 0);
      expect(md5(await readHandle(t.vfs, fh, MiB))).toBe(md5(data));
    } finally {
      await t.vfs.release(null, fh);
    }
    expect(md5(await readFile(t.vfs, '/mp/renamed'))).toBe(md5(data));
    expect(md5(await getObjectBytes(bucket, 'mp/renamed'))).toBe(md5(data));
    expect(await listKeys(bucket, 'mp/')).toEqual(['mp/', 'mp/renamed']);
  });

  it('renaming a file or a directory onto itself changes nothing', { timeout: 20_000 }, async () => {
    // rename(2): "if oldpath and newpath are existing hard links referring to the same file, rename() does nothing"
    await putObject(bucket, 'self/file', 'keep me');
    await putObject(bucket, 'self/dir/', '');
    await putObject(bucket, 'self/full/inner', 'inner');
    await t.vfs.rename('/self/file', '/self/file', 0);
    await t.vfs.rename('/self/dir', '/self/dir', 0);
    await t.vfs.rename('/self/full', '/self/full', 0);
    expect(await listKeys(bucket, 'self/')).toEqual(['self/dir/', 'self/file', 'self/full/inner']);
    expect((await getObjectBytes(bucket, 'self/file')).toString()).toBe('keep me');
    expect((await readFile(t.vfs, '/self/file')).toString()).toBe('keep me');
  });

  it('honours RENAME_NOREPLACE and refuses RENAME_EXCHANGE', { timeout: 20_000 }, async () => {
    await putObject(bucket, 'rx/a', 'a');
    await putObject(bucket, 'rx/b', 'b');
    await expect(t.vfs.rename('/rx/a', '/rx/b', RENAME_NOREPLACE)).rejects.toMatchObject({ code: 'EEXIST' });
    await expect(t.vfs.rename('/rx/a', '/rx/b', RENAME_EXCHANGE)).rejects.toMatchObject({ code: 'EINVAL' });
    expect(await listKeys(bucket, 'rx/')).toEqual(['rx/a', 'rx/b']);
    expect((await getObjectBytes(bucket, 'rx/a')).toString()).toBe('a');
    expect((await getObjectBytes(bucket, 'rx/b')).toString()).toBe('b');
    await t.vfs.rename('/rx/a', '/rx/c', RENAME_NOREPLACE);
    expect(await listKeys(bucket, 'rx/')).toEqual(['rx/b', 'rx/c']);
    await expect(t.vfs.rename('/rx/missing', '/rx/d', 0)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a file onto a directory with EISDIR', { timeout: 20_000 }, async () => {
    await putObject(bucket, 'rd/file', 'f');
    await putObject(bucket, 'rd/dir/inner', 'i');
    await t.vfs.mkdir('/rd/empty', 0o755);
    await expect(t.vfs.rename('/rd/file', '/rd/dir', 0)).rejects.toMatchObject({ code: 'EISDIR' });
    await expect(t.vfs.rename('/rd/file', '/rd/empty', 0)).rejects.toMatchObject({ code: 'EISDIR' });
    expect(await listKeys(bucket, 'rd/')).toEqual(['rd/dir/inner', 'rd/empty/', 'rd/file']);
  });
});

describe('rename of directories', () => {
  it('moves every key under the prefix, markers included, with bytes and metadata', { timeout: 30_000 }, async () => {
    const files: Array<[string, Buffer]> = [
      ['tree/a.txt', randomBytes(1000)],
      ['tree/sub/b.txt', randomBytes(2000)],
      ['tree/deep/x/y.txt', randomBytes(3000)],
      ['tree/odd name +#%?.txt', randomBytes(10)],
    ];
    await putObject(bucket, 'tree/', '', { mode: String(S_IFDIR | 0o700), mtime: '1600000000' });
    await putObject(bucket, 'tree/sub/', '', { mode: String(S_IFDIR | 0o710), mtime: '1600000001' });
    await putMany(bucket, files);
    await putObject(bucket, 'treehouse/keep', 'not under tree/');
    expect(names(await t.vfs.readdir('/tree')).sort()).toEqual(['.', '..', 'a.txt', 'deep', 'odd name +#%?.txt', 'sub']);

    await t.vfs.rename('/tree', '/moved', 0);
    expect(await listKeys(bucket, 'tree')).toEqual(['treehouse/keep']);
    expect(await listKeys(bucket, 'moved/')).toEqual(
      ['moved/', 'moved/a.txt', 'moved/deep/x/y.txt', 'moved/odd name +#%?.txt', 'moved/sub/', 'moved/sub/b.txt'].sort(),
    );
    for (const [key, body] of files) {
      const moved = key.replace(/^tree\//, 'moved/');
      expect(md5(await getObjectBytes(bucket, moved)), moved).toBe(md5(body));
      expect(md5(await readFile(t.vfs, `/${moved}`)), moved).toBe(md5(body));
    }
    expect((await headObject(bucket, 'moved/sub/'))?.Metadata).toMatchObject({ mode: String(S_IFDIR | 0o710) });
    expect(await t.vfs.getattr('/moved')).toMatchObject({ mode: S_IFDIR | 0o700 });
    expect(await t.vfs.getattr('/moved/sub')).toMatchObject({ mode: S_IFDIR | 0o710 });
    await expect(t.vfs.getattr('/tree')).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(t.vfs.getattr('/tree/a.txt')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(names(await t.vfs.readdir('/moved/deep/x'))).toEqual(['.', '..', 'y.txt']);
  });

  it('moves a directory onto an empty one', { timeout: 20_000 }, async () => {
    await putObject(bucket, 'de/src/f', 'f');
    await t.vfs.mkdir('/de/dst', 0o755);
    await t.vfs.rename('/de/src', '/de/dst', 0);
    expect(await listKeys(bucket, 'de/')).toEqual(['de/dst/f']);
    expect((await readFile(t.vfs, '/de/dst/f')).toString()).toBe('f');
  });

  it('refuses into itself (EINVAL), onto a non-empty directory (ENOTEMPTY), onto a file (ENOTDIR)', { timeout: 20_000 }, async () => {
    await putObject(bucket, 'dr/src/f', 'f');
    await putObject(bucket, 'dr/full/g', 'g');
    await putObject(bucket, 'dr/file', 'file');
    const keys = await listKeys(bucket, 'dr/');
    await expect(t.vfs.rename('/dr/src', '/dr/src/inside', 0)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(t.vfs.rename('/dr/src', '/dr/full', 0)).rejects.toMatchObject({ code: 'ENOTEMPTY' });
    await expect(t.vfs.rename('/dr/src', '/dr/file', 0)).rejects.toMatchObject({ code: 'ENOTDIR' });
    expect(await listKeys(bucket, 'dr/')).toEqual(keys);
  });

  it('moves open files with the directory: they upload under the new name', { timeout: 20_000 }, async () => {
    await t.vfs.mkdir('/od', 0o755);
    const { fh } = await t.vfs.create('/od/open', S_IFREG | 0o644, constants.O_WRONLY | constants.O_CREAT);
    try {
      await t.vfs.write(null, fh, Buffer.from('written before the move'), 0);
      await t.vfs.rename('/od', '/od2', 0);
      expect((await t.vfs.getattr('/od2/open')).size).toBe(23);
      await t.vfs.flush(null, fh);
    } finally {
      await t.vfs.release(null, fh);
    }
    expect(await listKeys(bucket, 'od')).toEqual(['od2/', 'od2/open']);
  });
});

describe('links and the rest', () => {
  it('symlink stores the target as the body with S_IFLNK in the mode; readlink reads it back', { timeout: 10_000 }, async () => {
    await t.vfs.mkdir('/links', 0o755);
    const target = '../some dir/target file é';
    await t.vfs.symlink(target, '/links/l');
    expect((await getObjectBytes(bucket, 'links/l')).toString()).toBe(target);
    expect((await headObject(bucket, 'links/l'))?.Metadata).toMatchObject({ mode: String(S_IFLNK | 0o777) });
    const st = await t.vfs.getattr('/links/l');
    expect(st.mode).toBe(S_IFLNK | 0o777);
    expect(st.size).toBe(Buffer.byteLength(target));
    expect(await t.vfs.readlink('/links/l')).toBe(target);
    const v = await freshVfs();
    expect((await v.vfs.getattr('/links/l')).mode).toBe(S_IFLNK | 0o777);
    expect(await v.vfs.readlink('/links/l')).toBe(target);
    // s3fs' symlinks read the same
    await putObject(bucket, 'links/s3fs', '/abs/target', { mode: String(S_IFLNK | 0o777) });
    expect(await v.vfs.readlink('/links/s3fs')).toBe('/abs/target');
  });

  it('readlink of a file or a directory is EINVAL, of a missing path ENOENT', { timeout: 10_000 }, async () => {
    await putObject(bucket, 'links/file', 'not a link');
    await expect(t.vfs.readlink('/links/file')).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(t.vfs.readlink('/links')).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(t.vfs.readlink('/links/missing')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('link fails with EPERM and writes nothing', { timeout: 10_000 }, async () => {
    await writeFile(t.vfs, '/links/orig', 'o');
    await expect(t.vfs.link('/links/orig', '/links/hard')).rejects.toMatchObject({ code: 'EPERM' });
    expect(await headObject(bucket, 'links/hard')).toBeUndefined();
  });

  it('statfs reports a large constant capacity and NAME_MAX 255', { timeout: 10_000 }, async () => {
    const s = await t.vfs.statfs();
    expect(s).toEqual({
      bsize: 4096,
      frsize: 4096,
      blocks: 1n << 40n,
      bfree: 1n << 40n,
      bavail: 1n << 40n,
      files: 1n << 32n,
      ffree: 1n << 32n,
      favail: 1n << 32n,
      namemax: 255,
    });
  });

  it('refuses names longer than 255 bytes with ENAMETOOLONG', { timeout: 10_000 }, async () => {
    const long = `/${'x'.repeat(256)}`;
    await expect(t.vfs.create(long, S_IFREG | 0o644, constants.O_WRONLY | constants.O_CREAT)).rejects.toMatchObject({ code: 'ENAMETOOLONG' });
    await expect(t.vfs.mkdir(long, 0o755)).rejects.toMatchObject({ code: 'ENAMETOOLONG' });
    await expect(t.vfs.symlink('t', long)).rejects.toMatchObject({ code: 'ENAMETOOLONG' });
  });
});
