// src/vfs against the test server, without FUSE: attributes, listings, consistency
// with other writers of the bucket.
import { constants } from 'node:fs';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { waitUntil } from '../support/run.js';
import { createTestBucket, headObject, listKeys, putObject, testClient } from '../support/s3.js';
import {
  DEFAULT_OPTIONS,
  DEFAULT_READ_OPTIONS,
  MiB,
  S_IFDIR,
  S_IFMT,
  S_IFREG,
  deleteObject,
  names,
  putMany,
  readAt,
  readFile,
  VfsPool,
  type TestVfs,
} from './support/vfs.js';

const { uid, gid, fileMode, dirMode } = DEFAULT_OPTIONS;

let bucket: string;
/** A fresh Vfs per test, so that no other test's cached listing hides what a test puts through the SDK. */
let t: TestVfs;

const pool = new VfsPool(() => bucket);
const freshVfs = (options?: Parameters<typeof pool.fresh>[0]): Promise<TestVfs> => pool.fresh(options);

beforeAll(async () => {
  bucket = await createTestBucket('vfs-attrs');
});

beforeEach(async () => {
  t = await freshVfs();
});

afterAll(() => pool.closeAll());

describe('getattr', () => {
  it('answers the root with the mount defaults', { timeout: 10_000 }, async () => {
    const st = await t.vfs.getattr('/');
    expect(st).toMatchObject({ mode: S_IFDIR | dirMode, uid, gid, nlink: 2 });
    expect(st.atime).toEqual(st.mtime);
  });

  it('gives an object without metadata its LastModified and the default owner and mode', { timeout: 10_000 }, async () => {
    await putObject(bucket, 'plain/f.txt', 'hello');
    const head = await headObject(bucket, 'plain/f.txt');
    const ms = head?.LastModified?.getTime() ?? NaN;
    const st = await t.vfs.getattr('/plain/f.txt');
    expect(st).toMatchObject({ mode: S_IFREG | fileMode, uid, gid, size: 5, nlink: 1 });
    expect(st.mtime).toEqual({ sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1_000_000 });
    expect(st.atime).toEqual(st.mtime);
    expect(st.ctime).toEqual(st.mtime);
  });

  it('reads s3fs-style metadata exactly (9-digit nanoseconds, mode with type bits, uid, gid)', { timeout: 10_000 }, async () => {
    await putObject(bucket, 'meta/s3fs.txt', 'abc', {
      mtime: '1700000000.123456789',
      mode: String(S_IFREG | 0o600),
      uid: '1001',
      gid: '1002',
    });
    const st = await t.vfs.getattr('/meta/s3fs.txt');
    expect(st).toMatchObject({ mode: S_IFREG | 0o600, uid: 1001, gid: 1002, size: 3 });
    expect(st.mtime).toEqual({ sec: 1700000000, nsec: 123456789 });
  });

  it("reads rclone's fractional seconds and GeeseFS' integer seconds", { timeout: 10_000 }, async () => {
    await putObject(bucket, 'meta/rclone.txt', 'r', { mtime: '1482412345.5' });
    await putObject(bucket, 'meta/geesefs.txt', 'g', { mtime: '1482412345' });
    expect((await t.vfs.getattr('/meta/rclone.txt')).mtime).toEqual({ sec: 1482412345, nsec: 500_000_000 });
    const geese = await t.vfs.getattr('/meta/geesefs.txt');
    expect(geese.mtime).toEqual({ sec: 1482412345, nsec: 0 });
    // the rest falls back to the defaults
    expect(geese).toMatchObject({ mode: S_IFREG | fileMode, uid, gid });
  });

  it('makes implicit directories of both levels of a/b/c.txt, without any listing cached', { timeout: 10_000 }, async () => {
    await putObject(bucket, 'imp1/b/c.txt', 'c');
    const v = await freshVfs();
    const root = await v.vfs.getattr('/');
    // deepest first: nothing about /imp1 is known yet
    const b = await v.vfs.getattr('/imp1/b');
    const a = await v.vfs.getattr('/imp1');
    for (const st of [a, b]) {
      expect(st).toMatchObject({ mode: S_IFDIR | dirMode, uid, gid, nlink: 2 });
      // a directory without a marker shows the time the mount started, as the root does
      expect(st.mtime).toEqual(root.mtime);
    }
    expect((await v.vfs.getattr('/imp1/b/c.txt')).size).toBe(1);
  });

  it('makes implicit directories of both levels of a/b/c.txt from the cached parent listing', { timeout: 10_000 }, async () => {
    await putObject(bucket, 'imp2/b/c.txt', 'c');
    const v = await freshVfs();
    const root = await v.vfs.getattr('/');
    expect(names(await v.vfs.readdir('/'))).toContain('imp2');
    const probe = vi.spyOn(v.bucket, 'hasAnyUnder');
    const a = await v.vfs.getattr('/imp2');
    expect(names(await v.vfs.readdir('/imp2'))).toEqual(['.', '..', 'b']);
    const b = await v.vfs.getattr('/imp2/b');
    // the listing said "directory": no probing for children
    expect(probe).not.toHaveBeenCalled();
    for (const st of [a, b]) {
      expect(st).toMatchObject({ mode: S_IFDIR | dirMode, uid, gid, nlink: 2 });
      expect(st.mtime).toEqual(root.mtime);
    }
  });

  it('reads the attributes of a directory marker with metadata', { timeout: 10_000 }, async () => {
    await putObject(bucket, 'marked/', '', { mtime: '1600000000.5', mode: String(S_IFDIR | 0o700), uid: '7', gid: '8' });
    const st = await t.vfs.getattr('/marked');
    expect(st).toMatchObject({ mode: S_IFDIR | 0o700, uid: 7, gid: 8, nlink: 2 });
    expect(st.mtime).toEqual({ sec: 1600000000, nsec: 500_000_000 });
    expect(names(await t.vfs.readdir('/marked'))).toEqual(['.', '..']);
  });

  it('answers ENOENT for a missing path, with and without the parent listing cached', { timeout: 10_000 }, async () => {
    await putObject(bucket, 'sparse/present.txt', 'x');
    const v = await freshVfs();
    await expect(v.vfs.getattr('/sparse/absent.txt')).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(v.vfs.getattr('/no-such-dir')).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(v.vfs.getattr('/no-such-dir/deeper')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(names(await v.vfs.readdir('/sparse'))).toEqual(['.', '..', 'present.txt']);
    await expect(v.vfs.getattr('/sparse/also-absent.txt')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('probes names in a directory too big for a lookup to list, and does not list it again within the stat TTL', { timeout: 120_000 }, async () => {
    // More keys than the two pages of 1000 a lookup lists after a missing name.
    await putMany(
      bucket,
      Array.from({ length: 2001 }, (_, i): [string, string] => [`huge/f${String(i).padStart(4, '0')}`, 'x']),
    );
    const v = await freshVfs();
    const lists = vi.spyOn(v.bucket, 'list');
    // The first miss is probed; the second lists (two pages, not the end); the rest probe.
    for (const name of ['absent-1', 'absent-2', 'absent-3', 'absent-4']) {
      await expect(v.vfs.getattr(`/huge/${name}`)).rejects.toMatchObject({ code: 'ENOENT' });
    }
    expect(await v.vfs.getattr('/huge/f2000')).toMatchObject({ mode: S_IFREG | fileMode, size: 1 });
    expect(lists).toHaveBeenCalledTimes(1);
    expect(lists.mock.calls[0]).toEqual(['huge/', '/', 2]);
  });

  describe('attributes fetched ahead of lookups', () => {
    const count = 400;
    const name = (i: number): string => `f${String(i).padStart(3, '0')}`;
    beforeAll(async () => {
      await putMany(
        bucket,
        Array.from({ length: count }, (_, i): [string, string] => [`ahead/${name(i)}`, 'x'.repeat(i % 7)]),
      );
    }, 120_000);

    /** Records the HEADs of entries of ahead/ and tells when none is under way. */
    function headsOf(v: TestVfs): { keys: string[]; settled: () => boolean } {
      const keys: string[] = [];
      let running = 0;
      const head = v.bucket.head.bind(v.bucket);
      vi.spyOn(v.bucket, 'head').mockImplementation((key) => {
        if (!key.startsWith('ahead/f')) return head(key);
        keys.push(key);
        running++;
        return head(key).finally(() => running--);
      });
      return { keys, settled: () => running === 0 };
    }

    it('fetches a listed directory ahead of its lookups, in a window that grows to 128 as lookups wait on it, none twice', { timeout: 60_000 }, async () => {
      const v = await freshVfs();
      const heads = headsOf(v);
      expect(names(await v.vfs.readdir('/ahead')).length).toBe(count + 2);
      expect(heads.keys).toEqual([]); // a listing nobody looks into costs no HEAD
      await v.vfs.getattr(`/ahead/${name(0)}`);
      // Its own HEAD, and the window's first 8.
      await waitUntil('the first window fetched', async () => heads.keys.length === 9 && heads.settled());
      expect(heads.keys).toEqual(Array.from({ length: 9 }, (_, i) => `ahead/${name(i)}`));
      // Lookups of f001..f005 (ready) move the window to f013; those of f009..f013 come
      // before its HEADs are in, as fast as `ls -l`'s: it doubles at each, to 16, 32, 64,
      // 128, and reaches 128 past f013.
      const fast = [1, 2, 3, 4, 5, 9, 10, 11, 12, 13];
      const sizes = await Promise.all(fast.map(async (i) => (await v.vfs.getattr(`/ahead/${name(i)}`)).size));
      expect(sizes).toEqual(fast.map((i) => i % 7));
      await waitUntil('the grown window fetched', async () => heads.settled() && heads.keys.length >= 14 + 128);
      expect(heads.keys.length).toBe(14 + 128);
      for (let i = 1; i < count; i++) {
        expect(await v.vfs.getattr(`/ahead/${name(i)}`)).toMatchObject({ mode: S_IFREG | fileMode, size: i % 7 });
        expect(heads.keys.length).toBeLessThanOrEqual(Math.min(count, Math.max(14, i + 1) + 128));
      }
      expect(heads.keys.length).toBe(count);
      expect(new Set(heads.keys).size).toBe(count);
    });

    it('a walk of lookups that lists the directory fetches ahead from where it is', { timeout: 60_000 }, async () => {
      const v = await freshVfs();
      const heads = headsOf(v);
      // The first lookup probes; the second lists; the third opens the window past itself.
      await v.vfs.getattr(`/ahead/${name(200)}`);
      await v.vfs.getattr(`/ahead/${name(201)}`);
      await v.vfs.getattr(`/ahead/${name(202)}`);
      await waitUntil('the window fetched', async () => heads.keys.length >= 12 && heads.settled());
      // f200's probe (the file and a marker f200/), f201's and f202's own HEADs, then f203 to f210.
      expect(heads.keys).toEqual([`ahead/${name(200)}`, `ahead/${name(200)}/`, ...Array.from({ length: 10 }, (_, i) => `ahead/${name(201 + i)}`)]);
    });
  });

  it('lets the directory win over an object of the same name, with one warning', { timeout: 10_000 }, async () => {
    await putObject(bucket, 'shadow/a', 'the hidden object');
    await putObject(bucket, 'shadow/a/x', 'child');
    const v = await freshVfs();
    const st = await v.vfs.getattr('/shadow/a');
    expect(st.mode & S_IFMT).toBe(S_IFDIR);
    expect(v.warnings()).toEqual([expect.stringContaining('"shadow/a"')]);
    expect(names(await v.vfs.readdir('/shadow'))).toEqual(['.', '..', 'a']);
    expect(names(await v.vfs.readdir('/shadow/a'))).toEqual(['.', '..', 'x']);
    expect(v.warnings()).toHaveLength(1);
  });

  it('lets a directory marker win over an object of the same name, with one warning', { timeout: 10_000 }, async () => {
    await putObject(bucket, 'shadow2/a', 'the hidden object');
    await putObject(bucket, 'shadow2/a/', '');
    const v = await freshVfs();
    const st = await v.vfs.getattr('/shadow2/a');
    expect(st.mode & S_IFMT).toBe(S_IFDIR);
    expect(v.warnings()).toEqual([expect.stringContaining('"shadow2/a"')]);
    expect(names(await v.vfs.readdir('/shadow2'))).toEqual(['.', '..', 'a']);
    expect(v.warnings()).toHaveLength(1);
  });
});

/** Whether the server stores `key` verbatim, tried in a throwaway bucket (some servers break on odd keys). */
async function serverKeepsKey(key: string): Promise<boolean> {
  const scratch = await createTestBucket('vfs-key-probe');
  try {
    await putObject(scratch, key, 'x');
  } catch {
    return false;
  }
  try {
    return JSON.stringify(await listKeys(scratch)) === JSON.stringify([key]);
  } catch {
    return false;
  }
}

describe('readdir', () => {
  it("lists '.' and '..' first, then the entries", { timeout: 10_000 }, async () => {
    await putMany(bucket, [
      ['order/b.txt', 'b'],
      ['order/a.txt', 'a'],
      ['order/sub/c.txt', 'c'],
    ]);
    const entries = await t.vfs.readdir('/order');
    expect(names(entries).slice(0, 2)).toEqual(['.', '..']);
    expect(names(entries).slice(2).sort()).toEqual(['a.txt', 'b.txt', 'sub']);
  });

  it('lists every entry of a directory of more than 1000 keys', { timeout: 120_000 }, async () => {
    const expected = Array.from({ length: 1100 }, (_, i) => `f${String(i).padStart(4, '0')}`);
    await putMany(
      bucket,
      expected.map((name) => [`big/${name}`, name]),
    );
    const entries = await t.vfs.readdir('/big');
    expect(names(entries).slice(0, 2)).toEqual(['.', '..']);
    expect(names(entries).slice(2).sort()).toEqual(expected);
  });

  it('skips keys that cannot be file names, one warning each, without failing', { timeout: 60_000 }, async () => {
    // What each server can store differs: s3rver keeps "." and ".." components but
    // neither empty components nor long names (and a long name breaks its bucket);
    // Ceph RGW and AWS keep them all. Use those this server keeps verbatim.
    const candidates = [
      { key: 'inv/.', entry: 'inv/.' },
      { key: 'inv/..', entry: 'inv/..' },
      { key: 'inv//e', entry: 'inv//' },
      { key: `inv/${'n'.repeat(256)}`, entry: `inv/${'n'.repeat(256)}` },
      { key: `inv/${'é'.repeat(128)}/x`, entry: `inv/${'é'.repeat(128)}/` },
    ];
    const accepted = [];
    for (const c of candidates) if (await serverKeepsKey(c.key)) accepted.push(c);
    expect(accepted.length).toBeGreaterThan(0);
    await putObject(bucket, 'inv/ok.txt', 'fine');
    for (const c of accepted) await putObject(bucket, c.key, 'odd');

    const v = await freshVfs();
    expect(names(await v.vfs.readdir('/inv'))).toEqual(['.', '..', 'ok.txt']);
    expect(v.warnings()).toHaveLength(accepted.length);
    for (const c of accepted) {
      expect(v.warnings().filter((w) => w.includes(`"${c.entry}"`))).toHaveLength(1);
    }
    // listing again (a new listing: fresh caches) warns no more
    const again = await freshVfs({ statTtlSeconds: 0 });
    expect(names(await again.vfs.readdir('/inv'))).toEqual(['.', '..', 'ok.txt']);
    expect(names(await again.vfs.readdir('/inv'))).toEqual(['.', '..', 'ok.txt']);
    expect(again.warnings()).toHaveLength(accepted.length);
    expect((await v.vfs.getattr('/inv/ok.txt')).size).toBe(4);
  });

  it('hands out attributes once the lookups after a listing have fetched them, equal to getattr', { timeout: 30_000 }, async () => {
    await putObject(bucket, 'stats/plain.txt', 'plain');
    await putObject(bucket, 'stats/meta.txt', 'meta!', { mtime: '1700000000.000000001', mode: String(S_IFREG | 0o604), uid: '11', gid: '12' });
    await putObject(bucket, 'stats/marked/', '', { mtime: '1600000000', mode: String(S_IFDIR | 0o711), uid: '13', gid: '14' });
    await putObject(bucket, 'stats/implicit/deep.txt', 'deep');
    const v = await freshVfs();
    const first = await v.vfs.readdir('/stats');
    expect(names(first).slice(2)).toEqual(['implicit', 'marked', 'meta.txt', 'plain.txt']);
    // The first lookup (`ls -l` makes one per name) fetches those after it.
    await v.vfs.getattr('/stats/implicit');
    let entries = first;
    await waitUntil('every entry has its attributes', async () => {
      entries = await v.vfs.readdir('/stats');
      return entries.every((e) => e.stat !== undefined);
    });
    expect(entries[0]?.stat).toEqual(await v.vfs.getattr('/stats'));
    for (const e of entries.slice(2)) {
      expect(e.stat, e.name).toEqual(await v.vfs.getattr(`/stats/${e.name}`));
    }
    const byName = new Map(entries.map((e) => [e.name, e.stat]));
    expect(byName.get('meta.txt')).toMatchObject({ mode: S_IFREG | 0o604, uid: 11, gid: 12, size: 5, mtime: { sec: 1700000000, nsec: 1 } });
    expect(byName.get('marked')).toMatchObject({ mode: S_IFDIR | 0o711, uid: 13, gid: 14, mtime: { sec: 1600000000, nsec: 0 } });
    expect(byName.get('implicit')).toMatchObject({ mode: S_IFDIR | dirMode, uid, gid });
    expect(byName.get('plain.txt')).toMatchObject({ mode: S_IFREG | fileMode, uid, gid, size: 5 });
  });

  it('with ignoreMetadata lists every attribute at once from the listing, without a HEAD', { timeout: 30_000 }, async () => {
    await putObject(bucket, 'nometa/plain.txt', 'plain');
    await putObject(bucket, 'nometa/meta.txt', 'meta!', { mtime: '1700000000.000000001', mode: String(S_IFREG | 0o600), uid: '11', gid: '12' });
    await putObject(bucket, 'nometa/marked/', '', { mode: String(S_IFDIR | 0o700), uid: '13', gid: '14' });
    await putObject(bucket, 'nometa/implicit/deep.txt', 'deep');
    const v = await freshVfs({ ignoreMetadata: true });
    const heads = vi.spyOn(v.bucket, 'head');
    const entries = await v.vfs.readdir('/nometa');
    expect(names(entries).slice(2).sort()).toEqual(['implicit', 'marked', 'meta.txt', 'plain.txt']);
    const byName = new Map(entries.map((e) => [e.name, e.stat]));
    const lastModified = (await headObject(bucket, 'nometa/meta.txt'))?.LastModified?.getTime() ?? NaN;
    expect(byName.get('meta.txt')).toMatchObject({
      mode: S_IFREG | fileMode,
      uid,
      gid,
      size: 5,
      mtime: { sec: Math.floor(lastModified / 1000), nsec: (lastModified % 1000) * 1_000_000 },
    });
    expect(byName.get('plain.txt')).toMatchObject({ mode: S_IFREG | fileMode, uid, gid, size: 5 });
    expect(byName.get('marked')).toMatchObject({ mode: S_IFDIR | dirMode, uid, gid });
    expect(byName.get('implicit')).toMatchObject({ mode: S_IFDIR | dirMode, uid, gid });
    for (const e of entries.slice(2)) expect(await v.vfs.getattr(`/nometa/${e.name}`), e.name).toEqual(e.stat);
    // The directory's own lookup probes it ("nometa", "nometa/"); none of its entries is HEADed.
    expect(heads.mock.calls.map(([key]) => key).sort()).toEqual(['nometa', 'nometa/']);
    // A lookup outside any listing HEADs the object, and ignores its metadata the same way.
    const alone = await freshVfs({ ignoreMetadata: true });
    expect(await alone.vfs.getattr('/nometa/meta.txt')).toEqual(byName.get('meta.txt'));
  });

  it('answers ENOTDIR for a file and ENOENT for a missing directory', { timeout: 10_000 }, async () => {
    await putObject(bucket, 'notdir.txt', 'x');
    await expect(t.vfs.readdir('/notdir.txt')).rejects.toMatchObject({ code: 'ENOTDIR' });
    await expect(t.vfs.readdir('/missing-dir')).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('consistency with other writers', () => {
  it('sees objects replaced, added and deleted through the SDK once the stat TTL has passed', { timeout: 30_000 }, async () => {
    await putObject(bucket, 'ttl/f.txt', 'one');
    const v = await freshVfs({ statTtlSeconds: 0.2 });
    expect((await v.vfs.getattr('/ttl/f.txt')).size).toBe(3);
    expect(names(await v.vfs.readdir('/ttl'))).toEqual(['.', '..', 'f.txt']);

    await putObject(bucket, 'ttl/f.txt', 'three', { mtime: '1234567890' });
    await waitUntil('the new size', async () => (await v.vfs.getattr('/ttl/f.txt')).size === 5, 5_000);
    expect((await v.vfs.getattr('/ttl/f.txt')).mtime).toEqual({ sec: 1234567890, nsec: 0 });
    expect((await readFile(v.vfs, '/ttl/f.txt')).toString()).toBe('three');

    await putObject(bucket, 'ttl/g.txt', 'new');
    await waitUntil('the new entry', async () => names(await v.vfs.readdir('/ttl')).includes('g.txt'), 5_000);

    await deleteObject(bucket, 'ttl/f.txt');
    await waitUntil('the deletion', async () => !names(await v.vfs.readdir('/ttl')).includes('f.txt'), 5_000);
    await expect(v.vfs.getattr('/ttl/f.txt')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('reads the new version of an object replaced after open, never a mix of both', { timeout: 60_000 }, async () => {
    const before = Buffer.alloc(6 * MiB, 'a');
    const after = Buffer.alloc(6 * MiB, 'b');
    await testClient().send(new PutObjectCommand({ Bucket: bucket, Key: 'stale/big.bin', Body: before, ContentLength: before.length }));
    const v = await freshVfs();
    const { fh } = await v.vfs.open('/stale/big.bin', constants.O_RDONLY);
    const { fh: unread } = await v.vfs.open('/stale/big.bin', constants.O_RDONLY);
    const chunk = DEFAULT_READ_OPTIONS.chunkSize;
    const middle = 3 * MiB; // a chunk boundary; a first read there starts no read-ahead
    try {
      // the chunk before `middle` is cached (old version); the one after is not
      expect((await readAt(v.vfs, fh, middle - 4096, 4096)).toString()).toBe('a'.repeat(4096));
      await testClient().send(new PutObjectCommand({ Bucket: bucket, Key: 'stale/big.bin', Body: after, ContentLength: after.length }));
      // A read across both: the GET of the second, conditional on the old ETag, gets 412;
      // the whole read is done again on the new version.
      expect((await readAt(v.vfs, fh, middle - 2048, 4096)).toString()).toBe('b'.repeat(4096));
      expect((await readAt(v.vfs, fh, middle - chunk, 4096)).toString()).toBe('b'.repeat(4096));
      expect((await readAt(v.vfs, unread, 5 * MiB, 4096)).toString()).toBe('b'.repeat(4096));
    } finally {
      await v.vfs.release(null, fh);
      await v.vfs.release(null, unread);
    }
  });

});
