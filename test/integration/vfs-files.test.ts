// src/vfs against the test server, without FUSE: open files (write-back through the
// staging area, ranged reads) and attribute changes kept as object metadata.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { CreateMultipartUploadCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ReadAhead } from '../../src/cache/read-ahead.js';
import type { Timespec } from '../../src/fs-types.js';
import { formatMtime } from '../../src/s3/metadata.js';
import { waitUntil } from '../support/run.js';
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
  writeAll,
  writeFile,
  VfsPool,
  type TestVfs,
} from './support/vfs.js';

const { uid, gid } = DEFAULT_OPTIONS;
const { O_RDONLY, O_WRONLY, O_RDWR, O_TRUNC, O_APPEND, O_CREAT } = constants;

let bucket: string;
/** A fresh Vfs per test, so that no other test's cached listing hides what a test puts through the SDK. */
let t: TestVfs;

const pool = new VfsPool(() => bucket);
const freshVfs = (options?: Parameters<typeof pool.fresh>[0]): Promise<TestVfs> => pool.fresh(options);

/** The x-amz-meta-* headers of a key, as another tool would read them. */
async function metaOf(key: string): Promise<Record<string, string> | undefined> {
  return (await headObject(bucket, key))?.Metadata;
}

function nowSpec(): Timespec {
  const ms = Date.now();
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1_000_000 };
}

const asNs = (t: Timespec): bigint => BigInt(t.sec) * 1_000_000_000n + BigInt(t.nsec);

/** The S3 requests that change a bucket. */
const WRITE_COMMANDS = new Set([
  'PutObjectCommand',
  'CopyObjectCommand',
  'CreateMultipartUploadCommand',
  'UploadPartCommand',
  'UploadPartCopyCommand',
  'CompleteMultipartUploadCommand',
  'DeleteObjectCommand',
  'DeleteObjectsCommand',
]);

/** Records the requests of `v` that change the bucket, by command name. */
function spyOnWrites(v: TestVfs): { calls(): string[] } {
  const send = vi.spyOn(v.bucket.client, 'send');
  return {
    calls: () => send.mock.calls.map(([command]) => command.constructor.name).filter((name) => WRITE_COMMANDS.has(name)),
  };
}

beforeAll(async () => {
  bucket = await createTestBucket('vfs-files');
});

beforeEach(async () => {
  t = await freshVfs();
});

afterAll(async () => {
  vi.restoreAllMocks();
  await pool.closeAll();
});

describe('writing', () => {
  it('uploads a created file at flush with its exact bytes and its attributes', { timeout: 20_000 }, async () => {
    await t.vfs.mkdir('/w', 0o755);
    const data = randomBytes(300_000);
    const { fh } = await t.vfs.create('/w/new.bin', S_IFREG | 0o640, O_WRONLY | O_CREAT);
    await writeAll(t.vfs, fh, data, 0, 128 * 1024);
    expect(await headObject(bucket, 'w/new.bin')).toBeUndefined();
    await t.vfs.flush('/w/new.bin', fh);
    expect(md5(await getObjectBytes(bucket, 'w/new.bin'))).toBe(md5(data));
    const st = await t.vfs.getattr('/w/new.bin');
    expect(st).toMatchObject({ mode: S_IFREG | 0o640, uid, gid, size: data.length });
    expect(await metaOf('w/new.bin')).toEqual({
      mtime: formatMtime(st.mtime),
      mode: String(S_IFREG | 0o640),
      uid: String(uid),
      gid: String(gid),
    });
    await t.vfs.release('/w/new.bin', fh);
    // a fresh mount reads back the same attributes from the object
    const v = await freshVfs();
    expect(await v.vfs.getattr('/w/new.bin')).toEqual(st);
  });

  it('uploads an empty file', { timeout: 10_000 }, async () => {
    await t.vfs.mkdir('/empty', 0o755);
    await writeFile(t.vfs, '/empty/zero', '');
    const head = await headObject(bucket, 'empty/zero');
    expect(head?.ContentLength).toBe(0);
    expect(head?.Metadata?.mode).toBe(String(S_IFREG | 0o644));
    expect((await t.vfs.getattr('/empty/zero')).size).toBe(0);
    expect((await readFile(t.vfs, '/empty/zero')).length).toBe(0);
  });

  it('uploads at fsync, before close', { timeout: 20_000 }, async () => {
    await t.vfs.mkdir('/sync', 0o755);
    const { fh } = await t.vfs.create('/sync/f', S_IFREG | 0o600, O_WRONLY | O_CREAT);
    try {
      await t.vfs.write(null, fh, Buffer.from('first'), 0);
      await t.vfs.fsync(null, false, fh);
      expect((await getObjectBytes(bucket, 'sync/f')).toString()).toBe('first');
      await t.vfs.write(null, fh, Buffer.from(' second'), 5);
      await t.vfs.fsync(null, true, fh);
      expect((await getObjectBytes(bucket, 'sync/f')).toString()).toBe('first second');
    } finally {
      await t.vfs.release(null, fh);
    }
    expect((await getObjectBytes(bucket, 'sync/f')).toString()).toBe('first second');
  });

  it('downloads an existing file at the first write into its middle and uploads it whole', { timeout: 20_000 }, async () => {
    const original = randomBytes(100_000);
    await putObject(bucket, 'mid/f.bin', original);
    const { fh } = await t.vfs.open('/mid/f.bin', O_WRONLY);
    await t.vfs.write(null, fh, Buffer.from('XYZ'), 50_000);
    await t.vfs.flush(null, fh);
    await t.vfs.release(null, fh);
    const expected = Buffer.from(original);
    expected.write('XYZ', 50_000);
    expect(md5(await getObjectBytes(bucket, 'mid/f.bin'))).toBe(md5(expected));
    expect((await metaOf('mid/f.bin'))?.mode).toBe(String(S_IFREG | DEFAULT_OPTIONS.fileMode));
  });

  it('fetches only the part a write touches, and copies the unchanged parts server-side', { timeout: 120_000 }, async () => {
    const original = randomBytes(20 * MiB + 5);
    await putObject(bucket, 'mid/big.bin', original);
    const getRange = vi.spyOn(t.bucket, 'getRange');
    const copyPart = vi.spyOn(t.bucket, 'copyPart');
    const uploadPart = vi.spyOn(t.bucket, 'uploadPart');
    const { fh } = await t.vfs.open('/mid/big.bin', O_WRONLY);
    try {
      await t.vfs.write(null, fh, Buffer.from('patch'), 10 * MiB);
      // Part 2 (8 to 16 MiB) and nothing else: a whole-object GET would need the whole file in memory.
      expect(getRange.mock.calls.map(([, start, end]) => [start, end])).toEqual([[8 * MiB, 16 * MiB]]);
      await t.vfs.flush(null, fh);
    } finally {
      await t.vfs.release(null, fh);
    }
    expect(uploadPart.mock.calls.map(([, , partNumber]) => partNumber)).toEqual([2]);
    expect(copyPart.mock.calls.map(([, , partNumber]) => partNumber).sort()).toEqual([1, 3]);
    const expected = Buffer.from(original);
    expected.write('patch', 10 * MiB);
    expect(md5(await getObjectBytes(bucket, 'mid/big.bin'))).toBe(md5(expected));
  });

  it('truncates at open with O_TRUNC', { timeout: 20_000 }, async () => {
    await putObject(bucket, 'trunc/a', 'a long original content');
    await putObject(bucket, 'trunc/b', 'another original content');
    const a = await t.vfs.open('/trunc/a', O_WRONLY | O_TRUNC);
    expect((await t.vfs.fgetattr(null, a.fh)).size).toBe(0);
    await t.vfs.write(null, a.fh, Buffer.from('new'), 0);
    await t.vfs.flush(null, a.fh);
    await t.vfs.release(null, a.fh);
    expect((await getObjectBytes(bucket, 'trunc/a')).toString()).toBe('new');
    // O_TRUNC alone empties the file
    const b = await t.vfs.open('/trunc/b', O_WRONLY | O_TRUNC);
    await t.vfs.flush(null, b.fh);
    await t.vfs.release(null, b.fh);
    expect((await getObjectBytes(bucket, 'trunc/b')).length).toBe(0);
    expect((await t.vfs.getattr('/trunc/b')).size).toBe(0);
  });

  it('ftruncates down and up', { timeout: 20_000 }, async () => {
    const original = randomBytes(1000);
    await putObject(bucket, 'ftrunc/f', original);
    const { fh } = await t.vfs.open('/ftrunc/f', O_RDWR);
    try {
      await t.vfs.ftruncate(null, fh, 500);
      expect((await t.vfs.fgetattr(null, fh)).size).toBe(500);
      await t.vfs.flush(null, fh);
      expect((await getObjectBytes(bucket, 'ftrunc/f')).equals(original.subarray(0, 500))).toBe(true);
      await t.vfs.ftruncate(null, fh, 800);
      expect((await t.vfs.getattr('/ftrunc/f')).size).toBe(800);
      await t.vfs.flush(null, fh);
      const expected = Buffer.concat([original.subarray(0, 500), Buffer.alloc(300)]);
      expect((await getObjectBytes(bucket, 'ftrunc/f')).equals(expected)).toBe(true);
      expect((await readHandle(t.vfs, fh)).equals(expected)).toBe(true);
    } finally {
      await t.vfs.release(null, fh);
    }
  });

  it('truncates a closed file by path, down and up', { timeout: 20_000 }, async () => {
    await putObject(bucket, 'ptrunc/f', 'abcdefghij');
    await t.vfs.truncate('/ptrunc/f', 3);
    expect((await getObjectBytes(bucket, 'ptrunc/f')).toString()).toBe('abc');
    expect((await t.vfs.getattr('/ptrunc/f')).size).toBe(3);
    await t.vfs.truncate('/ptrunc/f', 6);
    expect((await getObjectBytes(bucket, 'ptrunc/f')).equals(Buffer.from('abc\0\0\0'))).toBe(true);
    await t.vfs.truncate('/ptrunc/f', 0);
    expect((await getObjectBytes(bucket, 'ptrunc/f')).length).toBe(0);
    expect((await metaOf('ptrunc/f'))?.mode).toBe(String(S_IFREG | DEFAULT_OPTIONS.fileMode));
    await expect(t.vfs.truncate('/ptrunc/missing', 0)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('appends', { timeout: 20_000 }, async () => {
    await putObject(bucket, 'append/log', 'line 1\n');
    const { fh } = await t.vfs.open('/append/log', O_WRONLY | O_APPEND);
    // the kernel writes O_APPEND data at the size it knows
    const { size } = await t.vfs.fgetattr(null, fh);
    await t.vfs.write(null, fh, Buffer.from('line 2\n'), Number(size));
    await t.vfs.flush(null, fh);
    await t.vfs.release(null, fh);
    expect((await getObjectBytes(bucket, 'append/log')).toString()).toBe('line 1\nline 2\n');
  });

  it('does not touch the bucket when a file is closed without writes', { timeout: 20_000 }, async () => {
    await putObject(bucket, 'untouched/f', 'as it was');
    const before = await headObject(bucket, 'untouched/f');
    const v = await freshVfs();
    const spies = spyOnWrites(v);
    for (const flags of [O_RDONLY, O_WRONLY, O_RDWR, O_WRONLY | O_APPEND]) {
      const { fh } = await v.vfs.open('/untouched/f', flags);
      await v.vfs.flush(null, fh);
      await v.vfs.fsync(null, false, fh);
      await v.vfs.release(null, fh);
    }
    expect(spies.calls()).toEqual([]);
    const after = await headObject(bucket, 'untouched/f');
    expect(after?.ETag).toBe(before?.ETag);
    expect(after?.LastModified).toEqual(before?.LastModified);
    expect(after?.Metadata).toEqual({});
  });

  it('shows the local size and content of a file open for writing (read your writes)', { timeout: 20_000 }, async () => {
    await t.vfs.mkdir('/ryw', 0o755);
    const { fh } = await t.vfs.create('/ryw/new', S_IFREG | 0o644, O_WRONLY | O_CREAT);
    try {
      await t.vfs.write(null, fh, Buffer.alloc(1000, 'a'), 0);
      expect((await t.vfs.getattr('/ryw/new')).size).toBe(1000);
      await t.vfs.write(null, fh, Buffer.alloc(2000, 'b'), 1000);
      expect((await t.vfs.getattr('/ryw/new')).size).toBe(3000);
      expect(await headObject(bucket, 'ryw/new')).toBeUndefined();
      // another descriptor reads what was written, and the directory lists it
      const expected = Buffer.concat([Buffer.alloc(1000, 'a'), Buffer.alloc(2000, 'b')]);
      expect((await readFile(t.vfs, '/ryw/new')).equals(expected)).toBe(true);
      expect(names(await t.vfs.readdir('/ryw'))).toEqual(['.', '..', 'new']);
    } finally {
      await t.vfs.flush(null, fh);
      await t.vfs.release(null, fh);
    }

    // an existing object, extended but not yet flushed
    await putObject(bucket, 'ryw/old', 'old content');
    const v = await freshVfs();
    const w = await v.vfs.open('/ryw/old', O_WRONLY);
    try {
      await v.vfs.write(null, w.fh, Buffer.from(' and more'), 11);
      expect((await v.vfs.getattr('/ryw/old')).size).toBe(20);
      expect((await readFile(v.vfs, '/ryw/old')).toString()).toBe('old content and more');
      expect((await getObjectBytes(bucket, 'ryw/old')).toString()).toBe('old content');
    } finally {
      await v.vfs.flush(null, w.fh);
      await v.vfs.release(null, w.fh);
    }
    expect((await getObjectBytes(bucket, 'ryw/old')).toString()).toBe('old content and more');
  });

  it('lists a file created in a directory whose listing was not cached yet', { timeout: 20_000 }, async () => {
    await putObject(bucket, 'ryw2/existing', 'x');
    const v = await freshVfs();
    const { fh } = await v.vfs.create('/ryw2/created', S_IFREG | 0o644, O_WRONLY | O_CREAT);
    try {
      expect(names(await v.vfs.readdir('/ryw2')).sort()).toEqual(['.', '..', 'created', 'existing']);
    } finally {
      await v.vfs.release(null, fh);
    }
  });

  it('keeps an unlinked open file deleted through flush and release', { timeout: 20_000 }, async () => {
    await t.vfs.mkdir('/unl', 0o755);
    const { fh } = await t.vfs.create('/unl/f', S_IFREG | 0o644, O_RDWR | O_CREAT);
    await t.vfs.write(null, fh, Buffer.from('uploaded'), 0);
    await t.vfs.flush(null, fh);
    expect((await getObjectBytes(bucket, 'unl/f')).toString()).toBe('uploaded');
    await t.vfs.write(null, fh, Buffer.from(' then changed'), 8);
    await t.vfs.unlink('/unl/f');
    expect(await headObject(bucket, 'unl/f')).toBeUndefined();
    await expect(t.vfs.getattr('/unl/f')).rejects.toMatchObject({ code: 'ENOENT' });
    // the descriptor keeps working on the local copy
    expect((await readAt(t.vfs, fh, 0, 100)).toString()).toBe('uploaded then changed');
    await t.vfs.write(null, fh, Buffer.from('!'), 21);
    await t.vfs.flush(null, fh);
    await t.vfs.fsync(null, false, fh);
    await t.vfs.release(null, fh);
    expect(await headObject(bucket, 'unl/f')).toBeUndefined();
    await expect(t.vfs.getattr('/unl/f')).rejects.toMatchObject({ code: 'ENOENT' });

    // never uploaded at all
    const n = await t.vfs.create('/unl/never', S_IFREG | 0o644, O_WRONLY | O_CREAT);
    await t.vfs.write(null, n.fh, Buffer.from('data'), 0);
    await t.vfs.unlink('/unl/never');
    await t.vfs.flush(null, n.fh);
    await t.vfs.release(null, n.fh);
    expect(await listKeys(bucket, 'unl/')).toEqual(['unl/']);
  });

  it('uploads a 20 MiB file as a multipart upload and reads it back exactly', { timeout: 120_000 }, async () => {
    await t.vfs.mkdir('/big', 0o755);
    const data = randomBytes(20 * MiB);
    const send = vi.spyOn(t.bucket.client, 'send');
    try {
      await writeFile(t.vfs, '/big/20m.bin', data);
      const multipart = send.mock.calls.filter(([command]) => command instanceof CreateMultipartUploadCommand);
      expect(multipart).toHaveLength(1);
    } finally {
      send.mockRestore();
    }
    expect(md5(await getObjectBytes(bucket, 'big/20m.bin'))).toBe(md5(data));
    expect((await metaOf('big/20m.bin'))?.mode).toBe(String(S_IFREG | 0o644));
    const v = await freshVfs();
    expect((await v.vfs.getattr('/big/20m.bin')).size).toBe(data.length);
    expect(md5(await readFile(v.vfs, '/big/20m.bin'))).toBe(md5(data));
    // and with the kernel's 1 MiB reads, at unaligned offsets
    const { fh } = await v.vfs.open('/big/20m.bin', O_RDONLY);
    try {
      expect(md5(await readHandle(v.vfs, fh, MiB + 7))).toBe(md5(data));
    } finally {
      await v.vfs.release(null, fh);
    }
  });
});

describe('reading', () => {
  const size = 10 * MiB + 123;
  let data: Buffer;
  let v: TestVfs;

  beforeAll(async () => {
    data = randomBytes(size);
    await putObject(bucket, 'read/10m.bin', data);
    v = await freshVfs();
  });

  it('reads at any offset: first byte, last byte, across the read window, at and past EOF', { timeout: 60_000 }, async () => {
    const { fh } = await v.vfs.open('/read/10m.bin', O_RDONLY);
    try {
      expect(await readAt(v.vfs, fh, 0, 1)).toEqual(data.subarray(0, 1));
      expect(await readAt(v.vfs, fh, size - 1, 1)).toEqual(data.subarray(size - 1));
      // across the first 4 MiB window, and across a window started by a random read
      expect(await readAt(v.vfs, fh, 4 * MiB - 100, 200)).toEqual(data.subarray(4 * MiB - 100, 4 * MiB + 100));
      // (md5: vitest's deep equality walks a Buffer byte by byte, which takes seconds per MiB)
      expect(md5(await readAt(v.vfs, fh, 3 * MiB, 2 * MiB))).toBe(md5(data.subarray(3 * MiB, 5 * MiB)));
      expect(md5(await readAt(v.vfs, fh, 9 * MiB, 64 * 1024))).toBe(md5(data.subarray(9 * MiB, 9 * MiB + 64 * 1024)));
      // a read that straddles EOF is short
      expect(await readAt(v.vfs, fh, size - 10, 100)).toEqual(data.subarray(size - 10));
      expect((await readAt(v.vfs, fh, size, 100)).length).toBe(0);
      expect((await readAt(v.vfs, fh, size + MiB, 100)).length).toBe(0);
      expect(md5(await readHandle(v.vfs, fh, 128 * 1024))).toBe(md5(data));
    } finally {
      await v.vfs.release(null, fh);
    }
  });

  it('reads through a handle opened for writing, before any write', { timeout: 60_000 }, async () => {
    const { fh } = await v.vfs.open('/read/10m.bin', O_RDWR);
    try {
      expect(await readAt(v.vfs, fh, 5 * MiB, 10)).toEqual(data.subarray(5 * MiB, 5 * MiB + 10));
    } finally {
      await v.vfs.release(null, fh);
    }
    expect((await headObject(bucket, 'read/10m.bin'))?.Metadata).toEqual({});
  });

  it("gives the file's read-ahead share back at release", { timeout: 20_000 }, async () => {
    const close = vi.spyOn(ReadAhead.prototype, 'close');
    try {
      const { fh } = await v.vfs.open('/read/10m.bin', O_RDONLY);
      expect(await readAt(v.vfs, fh, 0, 10)).toEqual(data.subarray(0, 10));
      expect(close).not.toHaveBeenCalled();
      await v.vfs.release(null, fh);
      expect(close).toHaveBeenCalledTimes(1);
    } finally {
      close.mockRestore();
    }
  });

  it('fails open of a missing file with ENOENT and of a directory with EISDIR', { timeout: 10_000 }, async () => {
    await expect(v.vfs.open('/read/missing', O_RDONLY)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(v.vfs.open('/read', O_RDONLY)).rejects.toMatchObject({ code: 'EISDIR' });
  });

  it('answers EBADF for a handle that is not open', { timeout: 10_000 }, async () => {
    await expect(v.vfs.read(null, 999_999, Buffer.alloc(1), 0)).rejects.toMatchObject({ code: 'EBADF' });
  });
});

describe('reading the files of a directory in listing order', () => {
  // Under the tests' 256 KiB chunk: one GET each.
  const bodies = Array.from({ length: 8 }, (_, i) => randomBytes(10_000 + i * 30_000));
  const paths = bodies.map((_, i) => `/inorder/f${i}.bin`);

  beforeAll(async () => {
    const others: Array<[string, Buffer]> = [['leaf/a', randomBytes(100)], ['leaf/b', randomBytes(200)], ['inner/c', randomBytes(300)], ['inner/sub/d', randomBytes(400)]];
    await putMany(bucket, [...bodies.map((body, i): [string, Buffer] => [`inorder/f${i}.bin`, body]), ...others]);
  });

  /**
   * A Vfs that has just listed the directory, with the keys of its GETs. The HEADs of
   * the keys `held` says yes to wait until `releaseHeads()`.
   */
  async function listedVfs(held: (key: string) => boolean = () => false): Promise<{ v: TestVfs; gets: () => string[]; releaseHeads: () => void }> {
    const v = await freshVfs();
    let releaseHeads!: () => void;
    const gate = new Promise<void>((resolve) => (releaseHeads = resolve));
    const head = v.bucket.head.bind(v.bucket);
    vi.spyOn(v.bucket, 'head').mockImplementation(async (key) => {
      if (held(key)) await gate;
      return head(key);
    });
    expect(names(await v.vfs.readdir('/inorder'))).toEqual(['.', '..', ...paths.map((p) => p.slice('/inorder/'.length))]);
    const streamRange = vi.spyOn(v.bucket, 'streamRange');
    return { v, gets: () => streamRange.mock.calls.map(([key]) => key), releaseHeads };
  }

  it('fetches the next files ahead once two were read whole one after the other, and reads each with one GET', { timeout: 30_000 }, async () => {
    // The files after f1 are fetched by their listed ETags: their HEADs are held.
    const { v, gets, releaseHeads } = await listedVfs((key) => /f[2-7]\.bin$/.test(key));
    try {
      expect(md5(await readFile(v.vfs, paths[0] as string))).toBe(md5(bodies[0] as Buffer));
      expect(gets()).toEqual(['inorder/f0.bin']);
      expect(md5(await readFile(v.vfs, paths[1] as string))).toBe(md5(bodies[1] as Buffer));
      await waitUntil('the files after f1 fetched', () => gets().length === paths.length);
      expect(gets().sort()).toEqual(paths.map((p) => p.slice(1)));
    } finally {
      releaseHeads();
    }
    for (const [i, path] of paths.entries()) expect(md5(await readFile(v.vfs, path))).toBe(md5(bodies[i] as Buffer));
    expect(gets().length).toBe(paths.length);
  });

  it('after reading a directory to its end, fetches the files of the next directory without subdirectories that is listed', { timeout: 30_000 }, async () => {
    const { v, gets } = await listedVfs();
    for (const [i, path] of paths.entries()) expect(md5(await readFile(v.vfs, path))).toBe(md5(bodies[i] as Buffer));
    expect(gets().length).toBe(paths.length);
    expect(names(await v.vfs.readdir('/inner'))).toEqual(['.', '..', 'sub', 'c']); // has a subdirectory: its files wait
    expect(names(await v.vfs.readdir('/leaf'))).toEqual(['.', '..', 'a', 'b']);
    await waitUntil('the files of /leaf fetched', () => gets().length === paths.length + 2);
    expect(gets().slice(paths.length).sort()).toEqual(['leaf/a', 'leaf/b']);
  });

  it('fetches nothing ahead for files read out of order or read in part', { timeout: 30_000 }, async () => {
    const { v, gets } = await listedVfs();
    for (const i of [0, 5, 2, 7]) expect(md5(await readFile(v.vfs, paths[i] as string))).toBe(md5(bodies[i] as Buffer));
    expect(gets()).toEqual(['inorder/f0.bin', 'inorder/f5.bin', 'inorder/f2.bin', 'inorder/f7.bin']);
    for (const i of [3, 4]) {
      const { fh } = await v.vfs.open(paths[i] as string, O_RDONLY);
      expect(await readAt(v.vfs, fh, 0, 100)).toEqual((bodies[i] as Buffer).subarray(0, 100));
      await v.vfs.release(null, fh);
    }
    expect(gets().slice(4)).toEqual(['inorder/f3.bin', 'inorder/f4.bin']);
  });
});

/** The keys `v` HEADs as it asks for them, and those whose ranges it GETs. */
function requestsOf(v: TestVfs): { heads: string[]; gets: () => string[] } {
  const heads: string[] = [];
  const head = v.bucket.head.bind(v.bucket);
  vi.spyOn(v.bucket, 'head').mockImplementation((key) => {
    heads.push(key);
    return head(key);
  });
  const streamRange = vi.spyOn(v.bucket, 'streamRange');
  return { heads, gets: () => streamRange.mock.calls.map(([key]) => key) };
}

describe('attributes of files fetched ahead of a reader', () => {
  const count = 24;
  const name = (i: number): string => `f${String(i).padStart(2, '0')}`;
  const bodies = Array.from({ length: count }, (_, i) => randomBytes(1000 + i * 700));
  /** Metadata a HEAD and a GET both carry: s3fs-style attributes, and a symlink (never read). */
  const metadata: Record<number, Record<string, string>> = {
    12: { mtime: '1700000000.000000001', mode: String(S_IFREG | 0o604), uid: '11', gid: '12' },
    13: { mode: String(S_IFLNK | 0o777) },
  };

  beforeAll(async () => {
    for (let i = 0; i < count; i++) await putObject(bucket, `claimed/${name(i)}`, bodies[i] as Buffer, metadata[i]);
  }, 60_000);

  it("takes a file's attributes from the answer to the GET that fetched it ahead: no HEAD, the same attributes", { timeout: 60_000 }, async () => {
    const v = await freshVfs();
    const { heads, gets } = requestsOf(v);
    expect(names(await v.vfs.readdir('/claimed')).length).toBe(count + 2);
    const seen = [];
    // As `tar c` goes: a lookup, then the file read whole, in listing order.
    for (let i = 0; i < count; i++) {
      const path = `/claimed/${name(i)}`;
      seen.push(await v.vfs.getattr(path));
      if (i !== 13) expect(md5(await readFile(v.vfs, path)), path).toBe(md5(bodies[i] as Buffer));
    }
    // f00's own HEAD and the window's first 8 past it, then f09 as f01 was looked up.
    // Once f01 was read whole, f02..f23 were fetched ahead (up to 32 names past it):
    // those not HEADed yet (f10 on) are known from their GETs, the window within them.
    expect(heads.filter((key) => key.startsWith('claimed/f'))).toEqual(Array.from({ length: 10 }, (_, i) => `claimed/${name(i)}`));
    expect(gets().sort()).toEqual(Array.from({ length: count }, (_, i) => `claimed/${name(i)}`));
    // The same attributes as HEADs give, to a Vfs that fetched nothing ahead.
    const other = await freshVfs();
    for (let i = 0; i < count; i++) expect(seen[i], name(i)).toEqual(await other.vfs.getattr(`/claimed/${name(i)}`));
    expect(seen[12]).toMatchObject({ mode: S_IFREG | 0o604, uid: 11, gid: 12, size: bodies[12]?.length, mtime: { sec: 1700000000, nsec: 1 } });
    expect((seen[13]?.mode ?? 0) & S_IFMT).toBe(S_IFLNK);
  });
});

describe('a walk that lists nothing (md5sum -c) going from one directory to the next', () => {
  const keys = [...Array.from({ length: 4 }, (_, i) => `walk/a/a${i}`), ...Array.from({ length: 10 }, (_, i) => `walk/b/b${i}`)];
  const bodies = new Map(keys.map((key, i) => [key, randomBytes(500 + i * 900)]));

  beforeAll(async () => {
    await putMany(bucket, [...bodies]);
  });

  it('lists the next directory at its first file read whole, and fetches its next files with their attributes: no HEAD for them', { timeout: 30_000 }, async () => {
    const v = await freshVfs();
    const { heads, gets } = requestsOf(v);
    const seen = new Map<string, unknown>();
    for (const key of keys) {
      seen.set(key, await v.vfs.getattr(`/${key}`));
      expect(md5(await readFile(v.vfs, `/${key}`)), key).toBe(md5(bodies.get(key) as Buffer));
    }
    // b0 is probed (the file and a marker b0/), as the first name looked up in a
    // directory not listed; reading it whole lists walk/b, and b1..b9 come with their GETs.
    expect(heads.filter((key) => key.startsWith('walk/b/'))).toEqual(['walk/b/b0', 'walk/b/b0/']);
    expect(gets().sort()).toEqual([...keys].sort());
    const other = await freshVfs();
    for (const key of keys) expect(seen.get(key), key).toEqual(await other.vfs.getattr(`/${key}`));
  });

  it('lists the next directory of its parent and fetches its first files while it reads the last ones of a directory', { timeout: 30_000 }, async () => {
    const tree = Array.from({ length: 3 }, (_, d) => Array.from({ length: 6 }, (_, i) => `next/d${d}/f${i}`)).flat();
    const data = new Map(tree.map((key, i) => [key, randomBytes(700 + i * 500)]));
    await putMany(bucket, [...data]);
    const v = await freshVfs();
    const events: string[] = [];
    const head = v.bucket.head.bind(v.bucket);
    vi.spyOn(v.bucket, 'head').mockImplementation((key) => {
      events.push(`HEAD ${key}`);
      return head(key);
    });
    const list = v.bucket.list.bind(v.bucket);
    vi.spyOn(v.bucket, 'list').mockImplementation((prefix, ...rest) => {
      events.push(`LIST ${prefix}`);
      return list(prefix, ...rest);
    });
    const streamRange = vi.spyOn(v.bucket, 'streamRange');
    expect(names(await v.vfs.readdir('/next'))).toEqual(['.', '..', 'd0', 'd1', 'd2']);
    for (const key of tree) {
      events.push(`read ${key}`);
      // As the kernel looks a path up: its directory first.
      if (key.endsWith('/f0')) await v.vfs.getattr(`/${key.slice(0, key.lastIndexOf('/'))}`);
      await v.vfs.getattr(`/${key}`);
      expect(md5(await readFile(v.vfs, `/${key}`)), key).toBe(md5(data.get(key) as Buffer));
    }
    // d1 and d2 were listed while the walk was still in the directory before, and their
    // files asked nothing more: no probe, no HEAD (their GETs told).
    for (const dir of ['next/d1/', 'next/d2/']) {
      const listed = events.indexOf(`LIST ${dir}`);
      expect(listed, dir).toBeGreaterThan(-1);
      expect(listed, dir).toBeLessThan(events.indexOf(`read ${dir}f0`));
      expect(events.filter((e) => e.startsWith(`HEAD ${dir}f`) || e === `LIST ${dir}f0/`)).toEqual([]);
    }
    expect(streamRange.mock.calls.map(([key]) => key).sort()).toEqual([...tree].sort());
    const other = await freshVfs();
    for (const key of tree) expect(await v.vfs.getattr(`/${key}`), key).toEqual(await other.vfs.getattr(`/${key}`));
    // Directories without a marker, as /next is.
    for (const key of ['next/d1', 'next/d2']) expect(await v.vfs.getattr(`/${key}`), key).toEqual(await v.vfs.getattr('/next'));
  });
});

describe('attributes of closed files', () => {
  it('sets mtime to the nanosecond by copying the object onto itself, body unchanged', { timeout: 20_000 }, async () => {
    const body = randomBytes(5000);
    await putObject(bucket, 'times/f', body);
    await t.vfs.utimens('/times/f', 'omit', { sec: 1700000000, nsec: 123456789 });
    expect(await metaOf('times/f')).toEqual({
      mtime: '1700000000.123456789',
      mode: String(S_IFREG | DEFAULT_OPTIONS.fileMode),
      uid: String(uid),
      gid: String(gid),
    });
    expect(md5(await getObjectBytes(bucket, 'times/f'))).toBe(md5(body));
    expect((await t.vfs.getattr('/times/f')).mtime).toEqual({ sec: 1700000000, nsec: 123456789 });
    const v = await freshVfs();
    expect((await v.vfs.getattr('/times/f')).mtime).toEqual({ sec: 1700000000, nsec: 123456789 });

    await t.vfs.utimens('/times/f', { sec: 1, nsec: 2 }, { sec: 1600000000, nsec: 0 });
    expect((await metaOf('times/f'))?.mtime).toBe('1600000000');
    expect(md5(await getObjectBytes(bucket, 'times/f'))).toBe(md5(body));
  });

  it("changes nothing for mtime 'omit' and sets the current time for 'now'", { timeout: 20_000 }, async () => {
    await putObject(bucket, 'times/g', 'g', { mtime: '1500000000.5' });
    const v = await freshVfs();
    const spies = spyOnWrites(v);
    await v.vfs.utimens('/times/g', 'now', 'omit');
    expect(spies.calls()).toEqual([]);
    expect((await metaOf('times/g'))?.mtime).toBe('1500000000.5');
    expect((await v.vfs.getattr('/times/g')).mtime).toEqual({ sec: 1500000000, nsec: 500_000_000 });

    const before = nowSpec();
    await v.vfs.utimens('/times/g', 'omit', 'now');
    const after = nowSpec();
    const mtime = (await v.vfs.getattr('/times/g')).mtime;
    expect(asNs(mtime)).toBeGreaterThanOrEqual(asNs(before));
    expect(asNs(mtime)).toBeLessThanOrEqual(asNs(after));
    expect((await metaOf('times/g'))?.mtime).toBe(formatMtime(mtime));
    expect((await getObjectBytes(bucket, 'times/g')).toString()).toBe('g');
    await expect(v.vfs.utimens('/times/missing', 'now', 'now')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('chmod keeps the file type bits', { timeout: 20_000 }, async () => {
    await putObject(bucket, 'modes/f', 'f', { mtime: '1400000000', mode: String(S_IFREG | 0o644), uid: '5', gid: '6' });
    await t.vfs.chmod('/modes/f', 0o600);
    expect(await metaOf('modes/f')).toEqual({ mtime: '1400000000', mode: String(S_IFREG | 0o600), uid: '5', gid: '6' });
    expect((await t.vfs.getattr('/modes/f')).mode).toBe(S_IFREG | 0o600);
    // the kernel may pass the type bits along; setuid and sticky bits are kept
    await t.vfs.chmod('/modes/f', S_IFREG | 0o4755);
    expect((await metaOf('modes/f'))?.mode).toBe(String(S_IFREG | 0o4755));
    expect((await getObjectBytes(bucket, 'modes/f')).toString()).toBe('f');

    // directories: a marker gets the mode, an implicit directory gets a marker
    await t.vfs.mkdir('/modes/d', 0o755);
    await t.vfs.chmod('/modes/d', 0o700);
    expect((await metaOf('modes/d/'))?.mode).toBe(String(S_IFDIR | 0o700));
    expect((await t.vfs.getattr('/modes/d')).mode).toBe(S_IFDIR | 0o700);
    await putObject(bucket, 'modes/implicit/x', 'x');
    await t.vfs.chmod('/modes/implicit', 0o711);
    expect((await metaOf('modes/implicit/'))?.mode).toBe(String(S_IFDIR | 0o711));
    const v = await freshVfs();
    expect((await v.vfs.getattr('/modes/implicit')).mode).toBe(S_IFDIR | 0o711);
  });

  it('chown leaves an id given as -1 unchanged', { timeout: 20_000 }, async () => {
    await putObject(bucket, 'owners/f', 'f', { mtime: '1400000000', mode: String(S_IFREG | 0o644), uid: '5', gid: '6' });
    await t.vfs.chown('/owners/f', 4242, -1);
    expect(await metaOf('owners/f')).toMatchObject({ uid: '4242', gid: '6', mode: String(S_IFREG | 0o644), mtime: '1400000000' });
    await t.vfs.chown('/owners/f', -1, 4343);
    expect(await metaOf('owners/f')).toMatchObject({ uid: '4242', gid: '4343' });
    await t.vfs.chown('/owners/f', -1, -1);
    expect(await metaOf('owners/f')).toMatchObject({ uid: '4242', gid: '4343' });
    expect(await t.vfs.getattr('/owners/f')).toMatchObject({ uid: 4242, gid: 4343 });
    expect((await getObjectBytes(bucket, 'owners/f')).toString()).toBe('f');
  });
});

describe('attributes of open files', () => {
  it('uploads chmod, chown and utimens of a file being written with its data, in one upload', { timeout: 20_000 }, async () => {
    await t.vfs.mkdir('/openmeta', 0o755);
    const v = await freshVfs();
    const spies = spyOnWrites(v);
    const { fh } = await v.vfs.create('/openmeta/f', S_IFREG | 0o644, O_WRONLY | O_CREAT);
    try {
      await v.vfs.write(null, fh, Buffer.from('payload'), 0);
      await v.vfs.chmod('/openmeta/f', 0o600);
      await v.vfs.chown('/openmeta/f', 77, -1);
      await v.vfs.utimens('/openmeta/f', 'omit', { sec: 1300000000, nsec: 42 });
      expect(await v.vfs.getattr('/openmeta/f')).toMatchObject({ mode: S_IFREG | 0o600, uid: 77, gid, mtime: { sec: 1300000000, nsec: 42 } });
      expect(await v.vfs.fgetattr(null, fh)).toMatchObject({ mode: S_IFREG | 0o600, uid: 77, gid });
      expect(spies.calls()).toEqual([]);
      await v.vfs.flush(null, fh);
    } finally {
      await v.vfs.release(null, fh);
    }
    expect(spies.calls()).toEqual(['PutObjectCommand']);
    expect(await metaOf('openmeta/f')).toEqual({ mtime: '1300000000.000000042', mode: String(S_IFREG | 0o600), uid: '77', gid: String(gid) });
    expect((await getObjectBytes(bucket, 'openmeta/f')).toString()).toBe('payload');
  });

  it('uploads an attribute change that arrives while release is still uploading', { timeout: 20_000 }, async () => {
    // The kernel sends release after close() returned, without waiting for it: a
    // chmod or touch of the path can come while release uploads, and finds the handle.
    await t.vfs.mkdir('/late', 0o755);
    const { fh } = await t.vfs.create('/late/f', S_IFREG | 0o644, O_WRONLY | O_CREAT);
    await t.vfs.write(null, fh, Buffer.from('late data'), 0);
    const upload = t.bucket.put.bind(t.bucket);
    let started!: () => void;
    const uploadStarted = new Promise<void>((resolve) => (started = resolve));
    let proceed!: () => void;
    const gate = new Promise<void>((resolve) => (proceed = resolve));
    vi.spyOn(t.bucket, 'put').mockImplementation(async (...args) => {
      started();
      await gate;
      return upload(...args);
    });
    await t.vfs.release(null, fh);
    await uploadStarted;
    const changes = (async () => {
      await t.vfs.chmod('/late/f', 0o600);
      await t.vfs.utimens('/late/f', 'omit', { sec: 1300000002, nsec: 0 });
    })();
    proceed();
    await changes;
    await t.vfs.drain();
    expect(await metaOf('late/f')).toMatchObject({ mode: String(S_IFREG | 0o600), mtime: '1300000002' });
    expect((await getObjectBytes(bucket, 'late/f')).toString()).toBe('late data');
    const v = await freshVfs();
    expect(await v.vfs.getattr('/late/f')).toMatchObject({ mode: S_IFREG | 0o600, mtime: { sec: 1300000002, nsec: 0 } });
  });

  it('copies the new attributes of a file open without writes at its flush, body unchanged', { timeout: 20_000 }, async () => {
    const body = randomBytes(10_000);
    await putObject(bucket, 'openmeta/g', body);
    const v = await freshVfs();
    const spies = spyOnWrites(v);
    const { fh } = await v.vfs.open('/openmeta/g', O_WRONLY);
    try {
      await v.vfs.chmod('/openmeta/g', 0o604);
      await v.vfs.utimens('/openmeta/g', 'omit', { sec: 1300000001, nsec: 0 });
      await v.vfs.flush(null, fh);
    } finally {
      await v.vfs.release(null, fh);
    }
    expect(spies.calls()).toEqual(['CopyObjectCommand']);
    expect(await metaOf('openmeta/g')).toEqual({ mtime: '1300000001', mode: String(S_IFREG | 0o604), uid: String(uid), gid: String(gid) });
    expect(md5(await getObjectBytes(bucket, 'openmeta/g'))).toBe(md5(body));
  });
});
