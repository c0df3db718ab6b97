// src/vfs in --write-mode=async against the test server, without FUSE: close() accepts
// files into the journal and uploads run in the background. Uploads are held at a gate
// (Bucket.put spied on, then let through to the real server) to look at a file while it
// is pending: back-pressure from --cache-size, read-your-writes, renames and unlinks
// before the upload, and libfuse's hidden names.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { readJournalFolder, type JournalRecord } from '../../src/upload/journal.js';
import { createTestBucket, getObjectBytes, headObject, listKeys, putObject } from '../support/s3.js';
import { MiB, S_IFREG, createTestVfs, md5, names, readFile, readHandle, writeAll, writeFile, type TestVfs } from './support/vfs.js';

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_TRUNC } = constants;
const KiB = 1024;

/** Lets `n` turns of the event loop go by (no timer involved). */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * Holds every Bucket.put of `v` until open() (each then goes to the real server).
 * `keys` lists the keys put was called with, in order; reached(key) waits for one.
 */
function gatePut(v: TestVfs) {
  const original = v.bucket.put.bind(v.bucket);
  let open = (): void => {};
  const opened = new Promise<void>((resolve) => (open = resolve));
  const keys: string[] = [];
  const waiters: Array<() => void> = [];
  const spy = vi.spyOn(v.bucket, 'put').mockImplementation(async (key, body, metadata, contentType) => {
    keys.push(key);
    for (const wake of waiters.splice(0)) wake();
    await opened;
    return original(key, body, metadata, contentType);
  });
  const reached = async (key?: string): Promise<void> => {
    while (!(key === undefined ? keys.length > 0 : keys.includes(key))) await new Promise<void>((resolve) => waiters.push(resolve));
  };
  gates.push(open);
  return { spy, keys, open, reached };
}

/** The records in `v`'s journal, as a killed mount would leave them. */
async function records(v: TestVfs): Promise<JournalRecord[]> {
  return (await readJournalFolder(v.journal.dir)).entries.map((e) => e.record);
}

/** Asserts that `v`'s journal holds nothing: no record, no data file. */
async function expectEmptyJournal(v: TestVfs): Promise<void> {
  expect(await readJournalFolder(v.journal.dir)).toEqual({ entries: [], uploads: [] });
  expect((await readdir(v.journal.dir)).filter((n) => n.endsWith('.data'))).toEqual([]);
}

let bucket: string;
let t: TestVfs;
/** Gates still closed when a test ends (it failed): opened so that close() can drain. */
let gates: Array<() => void> = [];

beforeEach(async () => {
  bucket = await createTestBucket('vfs-write-back');
});

afterEach(async () => {
  for (const open of gates.splice(0)) open();
  vi.restoreAllMocks();
  await t?.close();
});

describe('--write-mode=async', () => {
  it('makes writes wait while --cache-size is used up by uploads still pending', { timeout: 60_000 }, async () => {
    t = await createTestVfs(bucket, { writeMode: 'async', cacheSize: MiB });
    const gate = gatePut(t);
    const a = randomBytes(700 * KiB);
    const b = randomBytes(700 * KiB);
    await writeFile(t.vfs, '/a', a);
    // A's upload began and is held: its 700 KiB stay staged.
    await gate.reached('a');

    const { fh } = await t.vfs.create('/b', S_IFREG | 0o644, O_WRONLY | O_CREAT);
    let written = false;
    const writing = t.vfs.write(null, fh, b, 0).then((n) => {
      written = true;
      return n;
    });
    await turns(50);
    expect(written).toBe(false);
    expect((await t.vfs.getattr('/b')).size).toBe(0);
    expect(await headObject(bucket, 'a')).toBeUndefined();

    gate.open();
    expect(await writing).toBe(b.length);
    expect(written).toBe(true);
    await t.vfs.flush(null, fh);
    await t.vfs.release(null, fh);
    await t.vfs.drain();
    expect(md5(await getObjectBytes(bucket, 'a'))).toBe(md5(a));
    expect(md5(await getObjectBytes(bucket, 'b'))).toBe(md5(b));
    expect(gate.keys).toEqual(['a', 'b']);
  });

  it('shows a pending file (size, listing, bytes) before it is in the bucket', { timeout: 60_000 }, async () => {
    t = await createTestVfs(bucket, { writeMode: 'async' });
    const old = Buffer.from('the old content, still in the bucket');
    await putObject(bucket, 'ryw/old.txt', old);
    const gate = gatePut(t);

    const data = randomBytes(300 * KiB + 7);
    await writeFile(t.vfs, '/ryw/new.bin', data, 0o640);
    const replaced = Buffer.from('new');
    const { fh } = await t.vfs.open('/ryw/old.txt', O_WRONLY | O_TRUNC);
    await writeAll(t.vfs, fh, replaced);
    await t.vfs.flush(null, fh);
    await t.vfs.release(null, fh);
    await gate.reached('ryw/new.bin');
    await gate.reached('ryw/old.txt');

    expect(await headObject(bucket, 'ryw/new.bin')).toBeUndefined();
    expect((await getObjectBytes(bucket, 'ryw/old.txt')).equals(old)).toBe(true);
    expect(await t.vfs.getattr('/ryw/new.bin')).toMatchObject({ size: data.length, mode: S_IFREG | 0o640 });
    expect((await t.vfs.getattr('/ryw/old.txt')).size).toBe(replaced.length);
    const entries = await t.vfs.readdir('/ryw');
    expect(names(entries).sort()).toEqual(['.', '..', 'new.bin', 'old.txt']);
    expect(entries.find((e) => e.name === 'new.bin')?.stat).toMatchObject({ size: data.length, mode: S_IFREG | 0o640 });
    expect(entries.find((e) => e.name === 'old.txt')?.stat).toMatchObject({ size: replaced.length });
    expect(md5(await readFile(t.vfs, '/ryw/new.bin'))).toBe(md5(data));
    expect((await readFile(t.vfs, '/ryw/old.txt')).equals(replaced)).toBe(true);

    gate.open();
    await t.vfs.drain();
    expect(md5(await getObjectBytes(bucket, 'ryw/new.bin'))).toBe(md5(data));
    expect((await getObjectBytes(bucket, 'ryw/old.txt')).equals(replaced)).toBe(true);
    expect((await headObject(bucket, 'ryw/new.bin'))?.Metadata?.mode).toBe(String(S_IFREG | 0o640));
  });

  it('uploads a file renamed before its upload began once, under its new name only', { timeout: 60_000 }, async () => {
    t = await createTestVfs(bucket, { writeMode: 'async' });
    const gate = gatePut(t);
    const copy = vi.spyOn(t.bucket, 'copy');
    const del = vi.spyOn(t.bucket, 'delete');
    const data = randomBytes(200 * KiB);
    await writeFile(t.vfs, '/a', data);
    // Within the upload's 100 ms delay: nothing was put yet.
    await Promise.race([t.vfs.rename('/a', '/b', 0), gate.reached()]);
    expect(gate.keys).toEqual([]);
    await expect(t.vfs.getattr('/a')).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await t.vfs.getattr('/b')).size).toBe(data.length);

    gate.open();
    await t.vfs.drain();
    expect(await listKeys(bucket)).toEqual(['b']);
    expect(md5(await getObjectBytes(bucket, 'b'))).toBe(md5(data));
    expect(gate.spy).toHaveBeenCalledTimes(1);
    expect(gate.keys).toEqual(['b']);
    // never in the bucket under its old name: nothing to copy or delete
    expect(copy).not.toHaveBeenCalled();
    expect(del).not.toHaveBeenCalled();
  });

  it('names the new key in the journal once a pending file is renamed', { timeout: 60_000 }, async () => {
    // A mount killed after the rename must not upload the file under its old name.
    t = await createTestVfs(bucket, { writeMode: 'async' });
    const gate = gatePut(t);
    await writeFile(t.vfs, '/a', 'pending');
    expect((await records(t)).map((r) => r.key)).toEqual(['a']);
    await Promise.race([t.vfs.rename('/a', '/b', 0), gate.reached()]);
    expect(gate.keys).toEqual([]);
    expect((await records(t)).map((r) => r.key)).toEqual(['b']);
    gate.open();
  });

  it('uploads nothing for a new file unlinked before its upload began, and deletes nothing', { timeout: 60_000 }, async () => {
    t = await createTestVfs(bucket, { writeMode: 'async' });
    const gate = gatePut(t);
    const del = vi.spyOn(t.bucket, 'delete');
    await putObject(bucket, 'other', 'unrelated');
    await writeFile(t.vfs, '/u', randomBytes(100 * KiB));
    await Promise.race([t.vfs.unlink('/u'), gate.reached()]);
    expect(gate.keys).toEqual([]);
    await expect(t.vfs.getattr('/u')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(names(await t.vfs.readdir('/'))).toEqual(['.', '..', 'other']);
    gate.open();
    await t.vfs.drain();
    expect(gate.spy).not.toHaveBeenCalled();
    expect(del).not.toHaveBeenCalled();
    expect(await listKeys(bucket)).toEqual(['other']);
    // and the journal has nothing left of it
    await expectEmptyJournal(t);
  });
});

describe('renaming a big file whose parts were streamed', () => {
  it('finishes its upload and copies it server-side instead of sending it again', { timeout: 120_000 }, async () => {
    t = await createTestVfs(bucket, { writeMode: 'async' });
    const data = randomBytes(20 * MiB + 3);
    const uploadPart = vi.spyOn(t.bucket, 'uploadPart');
    const copy = vi.spyOn(t.bucket, 'copy');
    // Written front to back, closed, then renamed at once (rsync's temporary file).
    await writeFile(t.vfs, '/.tmp-big', data);
    await t.vfs.rename('/.tmp-big', '/big', 0);
    await t.vfs.drain();
    expect(uploadPart.mock.calls.map(([key, , n]) => `${key}#${n}`).sort()).toEqual(['.tmp-big#1', '.tmp-big#2', '.tmp-big#3']);
    expect(copy.mock.calls.map(([from, to]) => `${from} -> ${to}`)).toEqual(['.tmp-big -> big']);
    expect(md5(await getObjectBytes(bucket, 'big'))).toBe(md5(data));
    expect(await listKeys(bucket, '')).toEqual(['big']);
  });
});

describe("libfuse's hidden names (.fuse_hidden…) for files unlinked while open", () => {
  const HIDDEN = '/dir/.fuse_hidden0000000a00000003';

  /** Every key and prefix `v` sends to the server, from now on. */
  function spyOnKeys(v: TestVfs): () => string[] {
    const send = vi.spyOn(v.bucket.client, 'send');
    return () =>
      send.mock.calls.flatMap(([command]) => {
        const input = command.input as Record<string, unknown>;
        return [input.Key, input.Prefix, input.CopySource].filter((k): k is string => typeof k === 'string');
      });
  }

  it('deletes the key, keeps the open handle reading, and never sends the hidden name', { timeout: 60_000 }, async () => {
    t = await createTestVfs(bucket, { writeMode: 'async' });
    const sent = spyOnKeys(t);
    await t.vfs.mkdir('/dir', 0o755);
    const data = randomBytes(300 * KiB);
    await writeFile(t.vfs, '/dir/a', data);
    await writeFile(t.vfs, '/dir/b', 'stays');
    await t.vfs.drain();
    expect(await listKeys(bucket)).toEqual(['dir/', 'dir/a', 'dir/b']);

    const { fh } = await t.vfs.open('/dir/a', O_RDONLY);
    await t.vfs.rename('/dir/a', HIDDEN, 0);
    expect(await listKeys(bucket)).toEqual(['dir/', 'dir/b']);
    expect(names(await t.vfs.readdir('/dir')).sort()).toEqual(['.', '..', 'b']);
    await expect(t.vfs.getattr('/dir/a')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await t.vfs.getattr(HIDDEN)).toMatchObject({ size: data.length, mode: S_IFREG | 0o644 });
    expect((await t.vfs.fgetattr(null, fh)).size).toBe(data.length);
    expect(md5(await readHandle(t.vfs, fh))).toBe(md5(data));
    await t.vfs.release(HIDDEN, fh);
    // libfuse unlinks the hidden name at the last release
    expect((await t.vfs.getattr(HIDDEN)).size).toBe(data.length);
    await t.vfs.unlink(HIDDEN);
    await expect(t.vfs.getattr(HIDDEN)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(t.vfs.unlink(HIDDEN)).rejects.toMatchObject({ code: 'ENOENT' });

    await t.vfs.drain();
    expect(await listKeys(bucket)).toEqual(['dir/', 'dir/b']);
    expect(sent().filter((k) => k.includes('fuse_hidden'))).toEqual([]);
  });

  it('keeps a pending file open for writing readable and writable, and never uploads it', { timeout: 60_000 }, async () => {
    t = await createTestVfs(bucket, { writeMode: 'async' });
    const sent = spyOnKeys(t);
    const del = vi.spyOn(t.bucket, 'delete');
    await t.vfs.mkdir('/dir', 0o755);
    const { fh } = await t.vfs.create('/dir/w', S_IFREG | 0o600, O_RDWR | O_CREAT);
    await t.vfs.write(null, fh, Buffer.from('written'), 0);
    await t.vfs.flush(null, fh); // accepted into the journal, not uploaded yet
    await t.vfs.rename('/dir/w', HIDDEN, 0);
    expect(del).not.toHaveBeenCalled(); // never in the bucket
    expect(names(await t.vfs.readdir('/dir'))).toEqual(['.', '..']);
    expect((await t.vfs.getattr(HIDDEN)).size).toBe(7);
    await t.vfs.write(null, fh, Buffer.from(' and more'), 7);
    expect((await readHandle(t.vfs, fh)).toString()).toBe('written and more');
    expect((await t.vfs.getattr(HIDDEN)).size).toBe(16);
    await t.vfs.flush(HIDDEN, fh);
    await t.vfs.release(HIDDEN, fh);
    await t.vfs.unlink(HIDDEN);
    await t.vfs.drain();
    expect(await listKeys(bucket)).toEqual(['dir/']);
    expect(sent().filter((k) => k.includes('fuse_hidden') || k === 'dir/w')).toEqual([]);
    await expectEmptyJournal(t);
  });

  it('drops the journal record of a pending file unlinked while open', { timeout: 60_000 }, async () => {
    // A mount killed while the descriptor is still open must not bring the file back.
    t = await createTestVfs(bucket, { writeMode: 'async' });
    await t.vfs.mkdir('/dir', 0o755);
    const { fh } = await t.vfs.create('/dir/w', S_IFREG | 0o600, O_RDWR | O_CREAT);
    try {
      await t.vfs.write(null, fh, Buffer.from('written'), 0);
      await t.vfs.flush(null, fh);
      expect((await records(t)).map((r) => r.key)).toEqual(['dir/w']);
      await t.vfs.rename('/dir/w', HIDDEN, 0);
      expect(await records(t)).toEqual([]);
    } finally {
      await t.vfs.release(HIDDEN, fh);
    }
  });
});
