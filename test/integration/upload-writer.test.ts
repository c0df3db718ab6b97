// src/upload against the test server, without the Vfs: StagedObject (local blocks over a
// base object), ObjectWriter (streamed parts, server-side copies of unchanged parts,
// single PUTs) and journal recovery. Bucket methods are spied on to count requests; the
// requests themselves go to the real server.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Timespec } from '../../src/fs-types.js';
import { createLogger } from '../../src/log.js';
import { Bucket } from '../../src/s3/bucket.js';
import { createS3Client } from '../../src/s3/client.js';
import { formatMtime } from '../../src/s3/metadata.js';
import { Journal, readJournalFolder, type RecordedMeta } from '../../src/upload/journal.js';
import { ObjectWriter } from '../../src/upload/object-writer.js';
import { recoverJournals } from '../../src/upload/recovery.js';
import { StagedObject } from '../../src/upload/staged-object.js';
import { TEST_CREDENTIALS, createTestBucket, getObjectBytes, headObject, putObject, testClient, testEndpoint } from '../support/s3.js';
import { MiB, md5 } from './support/vfs.js';

const PART = 8 * MiB;
const S_IFREG = 0o100000;

const META: RecordedMeta = { mtime: { sec: 1_700_000_000, nsec: 123_456_789 }, mode: S_IFREG | 0o644, uid: 1000, gid: 1001 };

/** The x-amz-meta-* headers `meta` becomes, as the SDK reports them. */
function headersOf(meta: RecordedMeta): Record<string, string> {
  return { mtime: formatMtime(meta.mtime), mode: String(meta.mode), uid: String(meta.uid), gid: String(meta.gid) };
}

function nowSpec(): Timespec {
  const ms = Date.now();
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1_000_000 };
}

/** The pid of a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid as number;
}

/** Resolves once `check()` holds; re-checked by poke(). Fails after `ms` with `what`. */
class Condition {
  private waiters: Array<{ check: () => boolean; resolve: () => void }> = [];

  poke(): void {
    this.waiters = this.waiters.filter((w) => {
      if (!w.check()) return true;
      w.resolve();
      return false;
    });
  }

  until(check: () => boolean, what: string, ms = 30_000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`never happened: ${what}`)), ms);
      this.waiters.push({
        check,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }
}

let bucketName: string;
let client: S3Client;
let bucket: Bucket;
let cacheDir: string;
let journal: Journal;
let writer: ObjectWriter;
let logs: string[];

/** Spies on every Bucket method the write path uses (they still call the real server). */
function spyAll() {
  return {
    createUpload: vi.spyOn(bucket, 'createUpload'),
    copyPart: vi.spyOn(bucket, 'copyPart'),
    completeUpload: vi.spyOn(bucket, 'completeUpload'),
    abortUpload: vi.spyOn(bucket, 'abortUpload'),
    put: vi.spyOn(bucket, 'put'),
    copy: vi.spyOn(bucket, 'copy'),
    getRange: vi.spyOn(bucket, 'getRange'),
  };
}

/**
 * uploadPart, spied on: `parts` lists the part numbers in call order, with 'commit'
 * where markCommit() was called; `sent` waits until given parts were asked for.
 */
function spyUploadPart() {
  const original = bucket.uploadPart.bind(bucket);
  const order: Array<number | 'commit'> = [];
  const condition = new Condition();
  const spy = vi.spyOn(bucket, 'uploadPart').mockImplementation(async (key, uploadId, partNumber, body) => {
    order.push(partNumber);
    condition.poke();
    return original(key, uploadId, partNumber, body);
  });
  return {
    spy,
    order,
    markCommit: () => order.push('commit'),
    sent: (...numbers: number[]) => condition.until(() => numbers.every((n) => order.includes(n)), `parts ${numbers.join(', ')} streamed`),
  };
}

/** A new, empty file staged in the journal. */
async function newObject(key: string, meta = META): Promise<StagedObject> {
  const { id, file } = await journal.newDataFile();
  return new StagedObject({ id, file, key, size: 0, meta, partSize: PART }, bucket);
}

/** An object of the bucket staged for changes, as StagedFiles.fromStored builds it: nothing fetched yet. */
async function storedObject(key: string, etag: string, size: number, meta = META): Promise<StagedObject> {
  const { id, file } = await journal.newDataFile();
  await file.truncate(size);
  return new StagedObject(
    { id, file, key, size, meta, partSize: PART, base: { key, etag, size, validBytes: size }, clean: true },
    bucket,
  );
}

/** Writes `data` from offset 0 in 1 MiB pieces, letting the writer stream full parts after each. */
async function writeStreaming(object: StagedObject, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length; at += MiB) {
    await object.write(Buffer.from(data.subarray(at, at + MiB)), at);
    writer.streamParts(object);
  }
}

async function readAt(object: StagedObject, position: number, length: number): Promise<Buffer> {
  const target = Buffer.alloc(length);
  const n = await object.read(target, position);
  return target.subarray(0, n);
}

beforeAll(async () => {
  bucketName = await createTestBucket('upload-writer');
});

beforeEach(async () => {
  client = createS3Client({ endpoint: testEndpoint(), region: 'us-east-1', pathStyle: true, credentials: { ...TEST_CREDENTIALS } });
  bucket = new Bucket(client, bucketName);
  cacheDir = await mkdtemp(join(tmpdir(), 's3mount-writer-test-'));
  journal = await Journal.create(cacheDir, 'test');
  logs = [];
  writer = new ObjectWriter(bucket, journal, { singlePutLimit: 8 * MiB, partConcurrency: 4 }, createLogger('debug', (l) => logs.push(l)));
});

afterEach(async () => {
  vi.restoreAllMocks();
  client.destroy();
  await journal.close();
  await rm(cacheDir, { recursive: true, force: true });
});

describe('streaming a file written front to back', () => {
  it('sends the full parts while the file is written and only the last one at commit', { timeout: 120_000 }, async () => {
    const data = randomBytes(20 * MiB);
    const spies = spyAll();
    const uploadPart = spyUploadPart();
    const object = await newObject('stream/20m.bin');
    await writeStreaming(object, data);
    // Parts 1 (0-8 MiB) and 2 (8-16 MiB) go up without a commit.
    await uploadPart.sent(1, 2);
    expect(spies.createUpload).toHaveBeenCalledTimes(1);
    uploadPart.markCommit();
    await writer.commit(object);

    // (parts 1 and 2 may be asked for in either order: they can be queued together)
    const commitAt = uploadPart.order.indexOf('commit');
    expect(uploadPart.order.slice(0, commitAt).sort()).toEqual([1, 2]);
    expect(uploadPart.order.slice(commitAt + 1)).toEqual([3]);
    expect(spies.createUpload).toHaveBeenCalledTimes(1);
    expect(spies.completeUpload).toHaveBeenCalledTimes(1);
    expect(spies.completeUpload.mock.calls[0]?.[2]).toHaveLength(3);
    for (const spy of [spies.copyPart, spies.put, spies.copy, spies.getRange, spies.abortUpload]) expect(spy).not.toHaveBeenCalled();
    expect(md5(await getObjectBytes(bucketName, 'stream/20m.bin'))).toBe(md5(data));
    expect((await headObject(bucketName, 'stream/20m.bin'))?.Metadata).toEqual(headersOf(META));
    expect(object.dirty).toBe(false);
    // the multipart upload's journal note is gone with it
    expect((await readJournalFolder(journal.dir)).uploads).toEqual([]);
    expect(logs.some((l) => /uploaded stream\/20m\.bin .*1 part\(s\) sent, 2 streamed/.test(l))).toBe(true);
  });

  const metaChanges: Array<[what: string, change: (m: RecordedMeta) => RecordedMeta]> = [
    ['a chmod', (m) => ({ ...m, mode: S_IFREG | 0o600 })],
    ['an mtime set back', (m) => ({ ...m, mtime: { sec: m.mtime.sec - 86_400, nsec: 5 } })],
    ['an mtime set ahead', (m) => ({ ...m, mtime: { sec: m.mtime.sec + 86_400, nsec: 7 } })],
    ['a chown', (m) => ({ ...m, uid: 4242, gid: 4343 })],
    ['a chmod and an mtime set ahead', (m) => ({ ...m, mode: S_IFREG | 0o751, mtime: { sec: m.mtime.sec + 60, nsec: 0 } })],
  ];

  it.each(metaChanges)('ends with the attributes of %s made after parts were streamed', { timeout: 120_000 }, async (_what, change) => {
    const key = `stream/meta-${randomBytes(4).toString('hex')}`;
    const data = randomBytes(17 * MiB);
    const uploadPart = spyUploadPart();
    // created now, as a file being written is
    const object = await newObject(key, { ...META, mtime: nowSpec() });
    await writeStreaming(object, data);
    await uploadPart.sent(1, 2);
    const changed = change(object.meta);
    object.setMeta(changed);
    await writer.commit(object);
    expect(md5(await getObjectBytes(bucketName, key))).toBe(md5(data));
    expect((await headObject(bucketName, key))?.Metadata).toEqual(headersOf(changed));
    // and the staged object still says what the bucket has
    expect(object.meta).toEqual(changed);
  });
});

describe('parts too large to hold in memory', () => {
  it('streams parts above 16 MiB from the staged file', { timeout: 120_000 }, async () => {
    const key = `big-parts/${randomBytes(4).toString('hex')}`;
    const data = randomBytes(41 * MiB + 5);
    const { id, file } = await journal.newDataFile();
    const object = new StagedObject({ id, file, key, size: 0, meta: META, partSize: 20 * MiB }, bucket);
    await object.write(data, 0);
    const uploadPart = vi.spyOn(bucket, 'uploadPart');
    await writer.commit(object);
    const bodies = uploadPart.mock.calls.map(([, , n, body]) => [n, Buffer.isBuffer(body) ? 'memory' : `stream of ${body.size}`]);
    expect(bodies.sort()).toEqual([
      [1, `stream of ${20 * MiB}`],
      [2, `stream of ${20 * MiB}`],
      [3, 'memory'],
    ]);
    expect(md5(await getObjectBytes(bucketName, key))).toBe(md5(data));
  });
});

describe('changing an existing object', () => {
  it('fetches only the block a write touches and copies the 7 other parts server-side', { timeout: 180_000 }, async () => {
    const key = 'base/64m.bin';
    const original = randomBytes(64 * MiB);
    const etag = await putObject(bucketName, key, original);
    const spies = spyAll();
    const uploadPart = vi.spyOn(bucket, 'uploadPart');
    const object = await storedObject(key, etag, original.length);
    const patch = randomBytes(4096);
    await object.write(patch, 30 * MiB);
    // block 4 holds 30 MiB: bytes 24 to 32 MiB, and nothing else was fetched
    expect(spies.getRange.mock.calls).toEqual([[key, 24 * MiB, 32 * MiB, etag]]);
    await writer.commit(object);

    expect(spies.getRange).toHaveBeenCalledTimes(1);
    expect(uploadPart.mock.calls.map(([, , n, body]) => [n, Buffer.isBuffer(body) ? body.length : body.size])).toEqual([[4, PART]]);
    const copies = spies.copyPart.mock.calls.map(([, , n, source]) => [n, source]).sort((a, b) => Number(a[0]) - Number(b[0]));
    expect(copies).toEqual(
      [1, 2, 3, 5, 6, 7, 8].map((n) => [n, { key, etag, start: (n - 1) * PART, end: n * PART }]),
    );
    expect(spies.createUpload).toHaveBeenCalledTimes(1);
    expect(spies.completeUpload).toHaveBeenCalledTimes(1);
    for (const spy of [spies.put, spies.copy]) expect(spy).not.toHaveBeenCalled();

    const expected = Buffer.from(original);
    patch.copy(expected, 30 * MiB);
    expect(md5(await getObjectBytes(bucketName, key))).toBe(md5(expected));
    expect((await headObject(bucketName, key))?.Metadata).toEqual(headersOf(META));
    expect(object.dirty).toBe(false);
    expect(object.base?.etag).toBe((await headObject(bucketName, key))?.ETag);
    // the data file stays sparse: one block on disk, not 64 MiB
    expect((await stat(object.file.path)).blocks * 512).toBeLessThan(2 * PART);
  });

  it('truncated down then extended: the bytes past the cut are zeros, never the base object', { timeout: 120_000 }, async () => {
    const key = 'base/trunc-20m.bin';
    const original = randomBytes(20 * MiB);
    const etag = await putObject(bucketName, key, original);
    const spies = spyAll();
    const object = await storedObject(key, etag, original.length);
    await object.truncate(5 * MiB);
    await object.truncate(12 * MiB);
    const expected = Buffer.concat([original.subarray(0, 5 * MiB), Buffer.alloc(7 * MiB)]);
    // what the file shows before the commit too
    expect(md5(await readAt(object, 0, 20 * MiB))).toBe(md5(expected));
    await writer.commit(object);
    const stored = await getObjectBytes(bucketName, key);
    expect(stored.length).toBe(12 * MiB);
    expect(md5(stored)).toBe(md5(expected));
    // nothing past the cut was asked of the base object
    for (const [, start, end] of spies.getRange.mock.calls) expect([start, end]).toEqual([0, 5 * MiB]);
    expect(spies.copyPart).not.toHaveBeenCalled();
    // and once more on the committed object: down to 3 MiB + 3, up to 7 MiB (one PUT)
    await object.truncate(3 * MiB + 3);
    await object.truncate(7 * MiB);
    await writer.commit(object);
    const small = Buffer.concat([original.subarray(0, 3 * MiB + 3), Buffer.alloc(4 * MiB - 3)]);
    expect(md5(await getObjectBytes(bucketName, key))).toBe(md5(small));
    expect(md5(await readAt(object, 0, 8 * MiB))).toBe(md5(small));
  });

  it('reads exact bytes across local and remote blocks, and nothing past the end', { timeout: 120_000 }, async () => {
    const key = 'base/read-20m.bin';
    const original = randomBytes(20 * MiB + 5);
    const etag = await putObject(bucketName, key, original);
    const object = await storedObject(key, etag, original.length);
    // block 2 (8 to 16 MiB) becomes local; blocks 1 and 3 still come from the base
    const patch = randomBytes(1000);
    await object.write(patch, 9 * MiB + 100);
    const expected = Buffer.from(original);
    patch.copy(expected, 9 * MiB + 100);
    const size = expected.length;
    const cases: Array<[position: number, length: number]> = [
      [0, 1], // first byte (remote)
      [size - 1, 1], // last byte (remote, in the short block 3)
      [size - 1, 100], // the last byte, asked with more
      [PART - 10, 20], // remote -> local
      [2 * PART - 10, 20], // local -> remote
      [PART - 5, PART + 10], // remote, all of local, remote
      [9 * MiB + 50, 2000], // across the patch
      [0, size], // everything
      [3 * MiB, 1], // a remote byte in the middle
    ];
    for (const [position, length] of cases) {
      const got = await readAt(object, position, length);
      expect(got.length, `read(${position}, ${length})`).toBe(Math.min(length, size - position));
      expect(got.equals(expected.subarray(position, position + length)), `read(${position}, ${length})`).toBe(true);
    }
    // at and past EOF: nothing
    expect((await readAt(object, size, 100)).length).toBe(0);
    expect((await readAt(object, size + 12345, 100)).length).toBe(0);
    expect((await readAt(object, size - 5, 0)).length).toBe(0);

    // cut inside remote block 3 and grow again: base bytes up to the cut, zeros after
    await object.truncate(18 * MiB);
    await object.truncate(19 * MiB);
    const cut = Buffer.concat([expected.subarray(0, 18 * MiB), Buffer.alloc(MiB)]);
    for (const [position, length] of [
      [18 * MiB - 10, 20],
      [2 * PART - 10, 3 * MiB],
      [19 * MiB - 1, 50],
      [0, 19 * MiB],
    ] as const) {
      const got = await readAt(object, position, length);
      expect(got.equals(cut.subarray(position, position + length)), `after truncate: read(${position}, ${length})`).toBe(true);
    }
  });
});

describe('a base object replaced by another client', () => {
  it('fails the commit with ESTALE instead of copying parts of the other version', { timeout: 120_000 }, async () => {
    const key = `replaced/${randomBytes(4).toString('hex')}`;
    const original = randomBytes(24 * MiB);
    const etag = await putObject(bucketName, key, original);
    const object = await storedObject(key, etag, original.length);
    await object.write(randomBytes(4096), 10 * MiB);
    // Another client replaces the object while this mount has it staged.
    const theirs = randomBytes(24 * MiB);
    await putObject(bucketName, key, theirs);
    await expect(writer.commit(object)).rejects.toMatchObject({ code: 'ESTALE' });
    // Nothing mixed was written: the bucket has their version, whole.
    expect(md5(await getObjectBytes(bucketName, key))).toBe(md5(theirs));
  });
});

describe('recovery', () => {
  it('uploads the accepted files of a dead mount, drops the rest and aborts its multipart uploads', { timeout: 120_000 }, async () => {
    const identity = 'recovery-test';
    const key = 'recovered/file.bin';
    const data = randomBytes(9 * MiB + 17); // a multipart upload
    const meta: RecordedMeta = { mtime: { sec: 1_600_000_000, nsec: 42 }, mode: S_IFREG | 0o604, uid: 77, gid: 88 };

    // What the dead mount left: written with a journal of its own, then given a dead pid.
    const old = await Journal.create(cacheDir, identity);
    const accepted = await old.newDataFile();
    const staged = new StagedObject({ id: accepted.id, file: accepted.file, key, size: 0, meta, partSize: PART }, bucket);
    await staged.write(data, 0);
    await old.commit(accepted.id, accepted.file, staged.toRecord());
    await accepted.file.close();
    // A small file: staged in memory, its bytes in the journal's log.
    const smallKey = 'recovered/small.txt';
    const small = await old.newDataFile();
    const smallStaged = new StagedObject({ id: small.id, file: small.file, key: smallKey, size: 0, meta, partSize: PART }, bucket);
    await smallStaged.write(Buffer.from('small and in the log'), 0);
    await old.commit(small.id, small.file, smallStaged.toRecord());
    const neverClosed = await old.newDataFile();
    await neverClosed.file.write(randomBytes(2 * MiB), 0); // on disk: past the in-memory limit
    await neverClosed.file.close();
    const pendingKey = 'recovered/half-done.bin';
    const { UploadId } = await testClient().send(new CreateMultipartUploadCommand({ Bucket: bucketName, Key: pendingKey }));
    expect(UploadId).toBeTruthy();
    const uploadId = UploadId as string;
    await old.recordUpload(neverClosed.id, { key: pendingKey, uploadId });
    const deadDir = join(cacheDir, 'journal', identity, `${await deadPid()}-0-${randomBytes(4).toString('hex')}`);
    await rename(old.dir, deadDir);
    const found = await readJournalFolder(deadDir);
    expect(found.entries.map((e) => [e.record.key, e.bytes?.toString()]).sort()).toEqual([
      [key, undefined],
      [smallKey, 'small and in the log'],
    ]);
    expect(found.uploads).toEqual([{ key: pendingKey, uploadId }]);
    expect((await readdir(deadDir)).filter((n) => n.endsWith('.data')).sort()).toEqual([`${accepted.id}.data`, `${neverClosed.id}.data`]);

    // This mount's journal lives next to it, under the same identity.
    const live = await Journal.create(cacheDir, identity);
    const spies = spyAll();
    const context = { cacheDir, identity, bucket, journal: live, writer, concurrency: 2, log: createLogger('debug', (l) => logs.push(l)) };

    // A read-only mount leaves the journal alone, and says so.
    expect(await recoverJournals({ ...context, readOnly: true })).toEqual([]);
    expect(await headObject(bucketName, key)).toBeUndefined();
    expect((await readJournalFolder(deadDir)).entries).toHaveLength(2);
    expect(logs.some((l) => /2 file\(s\), \d+ bytes, .* wait for the next read-write mount/.test(l))).toBe(true);

    const leftovers = await recoverJournals({ ...context, readOnly: false });

    expect(leftovers).toEqual([]);
    expect(md5(await getObjectBytes(bucketName, key))).toBe(md5(data));
    const head = await headObject(bucketName, key);
    expect(head?.Metadata).toEqual(headersOf(meta));
    expect(head?.Metadata?.mode).toBe(String(S_IFREG | 0o604));
    expect(head?.Metadata?.mtime).toBe('1600000000.000000042');
    expect((await getObjectBytes(bucketName, smallKey)).toString()).toBe('small and in the log');
    await expect(stat(deadDir)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readdir(join(cacheDir, 'journal', identity))).toEqual([live.dir.split('/').at(-1)]);
    expect(await readJournalFolder(live.dir)).toEqual({ entries: [], uploads: [] });
    expect((await readdir(live.dir)).filter((n) => n.endsWith('.data'))).toEqual([]);
    expect(logs.some((l) => /recovering 2 file/.test(l))).toBe(true);
    expect(logs.some((l) => /recovery done: 2 of 2 file/.test(l))).toBe(true);
    // Nothing of the never-accepted file went up.
    expect(spies.put.mock.calls.map(([k]) => k)).toEqual([smallKey]);
    expect(await headObject(bucketName, pendingKey)).toBeUndefined();

    // The half-done upload was aborted: s3rver has no ListMultipartUploads, so ask the
    // server to abort it again, which it refuses for an upload that is gone.
    expect(spies.abortUpload.mock.calls).toContainEqual([pendingKey, uploadId]);
    await expect(testClient().send(new AbortMultipartUploadCommand({ Bucket: bucketName, Key: pendingKey, UploadId: uploadId }))).rejects.toMatchObject({
      name: 'NoSuchUpload',
    });
  });
});
