// A Vfs wired as src/mount.ts wires it, minus FUSE: the real S3 client, Bucket and
// write journal against the run's test server (test/global-setup.ts). Tests drive the
// Vfs's methods the way the FUSE adapter would and check the bucket with the raw SDK
// helpers of test/support/s3.ts.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import PQueue from 'p-queue';
import { createLogger } from '../../../src/log.js';
import { Bucket } from '../../../src/s3/bucket.js';
import { createS3Client } from '../../../src/s3/client.js';
import { Journal } from '../../../src/upload/journal.js';
import { ObjectReader, type ReadCacheOptions } from '../../../src/cache/object-reader.js';
import { ObjectWriter } from '../../../src/upload/object-writer.js';
import { Vfs, type VfsOptions } from '../../../src/vfs/vfs.js';
import { TEST_CREDENTIALS, putObject, testClient, testEndpoint } from '../../support/s3.js';

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

export const MiB = 1024 * 1024;

/** The defaults every test Vfs gets unless told otherwise: distinct values, so that a mix-up shows. */
export const DEFAULT_OPTIONS: VfsOptions = {
  prefix: '',
  readOnly: false,
  uid: 1234,
  gid: 2345,
  fileMode: 0o640,
  dirMode: 0o750,
  statTtlSeconds: 60,
  ignoreMetadata: false,
  // close() returns after the upload: tests check the bucket right after a release.
  writeMode: 'sync',
  uploadConcurrency: 4,
  cacheSize: 1024 * MiB,
  partSize: 8 * MiB,
};

// createS3Client takes its credentials from the SDK's default chain, as a real mount
// does: give that chain the test server's (and only those), in this test process.
process.env.AWS_ACCESS_KEY_ID = TEST_CREDENTIALS.accessKeyId;
process.env.AWS_SECRET_ACCESS_KEY = TEST_CREDENTIALS.secretAccessKey;
delete process.env.AWS_SESSION_TOKEN;
delete process.env.AWS_PROFILE;

export interface TestVfs {
  vfs: Vfs;
  /** The Bucket the Vfs talks through (spy on it to count requests). */
  bucket: Bucket;
  bucketName: string;
  journal: Journal;
  options: VfsOptions;
  /** Every line the Vfs logged, in order. */
  logs: string[];
  /** The logged warnings, without the "s3mount warn: " prefix. */
  warnings(): string[];
  /** Disposes of the journal and the client. */
  close(): Promise<void>;
}

/** The read cache's defaults in tests: small chunks, so that files of a few MiB span many. */
export const DEFAULT_READ_OPTIONS: ReadCacheOptions = {
  chunkSize: 256 * 1024,
  memoryCacheSize: 64 * MiB,
  maxReadAhead: 4 * MiB,
  sequentialCutoff: 64 * MiB,
  cacheSize: 1024 * MiB,
  minFreeSpace: 0,
};

/** A Vfs on `bucketName` with DEFAULT_OPTIONS (and DEFAULT_READ_OPTIONS) overridden. */
export async function createTestVfs(bucketName: string, options: Partial<VfsOptions> = {}, readOptions: Partial<ReadCacheOptions> = {}): Promise<TestVfs> {
  const full: VfsOptions = { ...DEFAULT_OPTIONS, ...options };
  const client = createS3Client({ endpoint: testEndpoint(), region: 'us-east-1', pathStyle: true });
  const bucket = new Bucket(client, bucketName);
  const cacheDir = await mkdtemp(join(tmpdir(), 's3mount-vfs-test-'));
  const journal = await Journal.create(cacheDir, 'test');
  const logs: string[] = [];
  const log = createLogger('debug', (line) => logs.push(line));
  const writer = new ObjectWriter(bucket, journal, { singlePutLimit: 8 * MiB, partConcurrency: 4 }, log);
  const reader = await ObjectReader.open(join(cacheDir, 'chunks'), bucket, { ...DEFAULT_READ_OPTIONS, ...readOptions }, log);
  const vfs = new Vfs(bucket, { journal, writer, reader }, full, log);
  return {
    vfs,
    bucket,
    bucketName,
    journal,
    options: full,
    logs,
    warnings: () => logs.filter((l) => l.startsWith('s3mount warn: ')).map((l) => l.slice('s3mount warn: '.length).trimEnd()),
    async close() {
      await vfs.drain();
      await journal.close();
      await rm(cacheDir, { recursive: true, force: true });
      client.destroy();
    },
  };
}

export const md5 = (data: Buffer): string => createHash('md5').update(data).digest('hex');

/** Writes `data` at `position` in pieces of at most `chunk` bytes, as the kernel sends them. */
export async function writeAll(vfs: Vfs, fh: number, data: Buffer, position = 0, chunk = MiB): Promise<void> {
  for (let at = 0; at < data.length; at += chunk) {
    const piece = Buffer.from(data.subarray(at, at + chunk));
    const written = await vfs.write(null, fh, piece, position + at);
    if (written !== piece.length) throw new Error(`short write: ${written} of ${piece.length}`);
  }
}

/** create + write + flush + release: what `cp` does to a new file. */
export async function writeFile(vfs: Vfs, path: string, data: Buffer | string, mode = 0o644): Promise<void> {
  const { fh } = await vfs.create(path, S_IFREG | mode, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC);
  try {
    await writeAll(vfs, fh, Buffer.from(data));
    await vfs.flush(path, fh);
  } finally {
    await vfs.release(path, fh);
  }
}

/** Reads an open handle sequentially from `position` to EOF in `chunk`-byte reads. */
export async function readHandle(vfs: Vfs, fh: number, chunk = 128 * 1024, position = 0): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (;;) {
    const target = Buffer.alloc(chunk);
    const n = await vfs.read(null, fh, target, position);
    if (n === 0) break;
    parts.push(target.subarray(0, n));
    position += n;
  }
  return Buffer.concat(parts);
}

/** open(O_RDONLY) + reads to EOF + release. */
export async function readFile(vfs: Vfs, path: string, chunk?: number): Promise<Buffer> {
  const { fh } = await vfs.open(path, constants.O_RDONLY);
  try {
    return await readHandle(vfs, fh, chunk);
  } finally {
    await vfs.release(path, fh);
  }
}

/** One read of `length` bytes at `position` through an open handle. */
export async function readAt(vfs: Vfs, fh: number, position: number, length: number): Promise<Buffer> {
  const target = Buffer.alloc(length);
  const n = await vfs.read(null, fh, target, position);
  return target.subarray(0, n);
}

/** Puts many small objects through the raw SDK, `concurrency` at a time. */
export async function putMany(bucket: string, entries: Array<[key: string, body: string | Buffer]>, concurrency = 32): Promise<void> {
  const queue = new PQueue({ concurrency });
  await Promise.all(entries.map(([key, body]) => queue.add(() => putObject(bucket, key, body))));
}

export async function deleteObject(bucket: string, key: string): Promise<void> {
  await testClient().send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

/** The names of a readdir answer, in order. */
export function names(entries: Array<{ name: string }>): string[] {
  return entries.map((e) => e.name);
}

/**
 * The Vfs instances one test file makes: a fresh one per test (so that no other test's
 * cached listing hides what a test puts through the SDK), all closed at the end.
 */
export class VfsPool {
  private readonly made: TestVfs[] = [];

  constructor(private readonly bucket: () => string) {}

  async fresh(options: Parameters<typeof createTestVfs>[1] = {}): Promise<TestVfs> {
    const v = await createTestVfs(this.bucket(), options);
    this.made.push(v);
    return v;
  }

  async closeAll(): Promise<void> {
    for (const v of this.made.splice(0)) await v.close();
  }
}
