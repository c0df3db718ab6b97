// The write section of `npm run bench`: each workload runs once with the raw SDK (the
// baseline: what this server and proxy allow) and once per mount tool, into a fresh
// bucket each, and reports the time until the data is durable (in the bucket).
//
// The workload contract (shared with bench/read.mjs):
//   id        short name, also the bucket name prefix
//   title     (ctx) => what is measured, for the table
//   rate      'files' | 'bytes': how the table shows speed
//   tools     optional (ctx) => the mount tools to run (default: every available one)
//   prepare   (ctx) => data set, made outside any timing
//   raw       (ctx, data, bucket) => Result, the raw SDK baseline
//   run       (ctx, toolId, data, bucket) => Result, through a mount
// Result: { seconds, counts (proxy stats), files, bytes, problems: string[] }
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { makeBigFile, makeTree } from './lib/data.mjs';
import { run } from './lib/mounts.mjs';
import { checkObjects, objectMd5, pool } from './lib/s3.mjs';
import { measure, quote, timedThroughMount } from './lib/workload.mjs';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Sizes per mode; --quick keeps the whole write section (without peers) well under a minute. */
export function writeSizes(quick) {
  return quick
    ? { smallCount: 100, smallSize: 4 * KiB, mixedCount: 100, mixedSizes: [1 * KiB, 256 * KiB], mixedPerDir: 25, bigBytes: 64 * MiB }
    : { smallCount: 1000, smallSize: 4 * KiB, mixedCount: 2000, mixedSizes: [1 * KiB, 1 * MiB], mixedPerDir: 100, bigBytes: 512 * MiB };
}

/** The raw SDK: PutObject of every file of a tree, `inFlight` at a time. */
async function rawPutTree(ctx, tree, bucket, inFlight = 16) {
  const m = await measure(ctx, () =>
    pool(tree.files, inFlight, async (f) => {
      const body = await readFile(f.path);
      await ctx.raw.send(new PutObjectCommand({ Bucket: bucket, Key: f.key, Body: body, ContentLength: body.length }));
    }),
  );
  const problems = await checkObjects(ctx.direct, bucket, tree.files);
  return { seconds: m.seconds, counts: m.counts, files: tree.files.length, bytes: tree.bytes, problems };
}

/** `tar x` of the tree's tarball into the mount, until durable. */
async function tarThroughMount(ctx, toolId, tree, bucket) {
  const action = async (mnt) => {
    // --no-same-owner: tar run as root would chown every file; not every peer supports it.
    const args = ['-x', '--no-same-owner', '-f', tree.tarball, '-C', mnt];
    const r = await run('tar', args);
    if (r.code !== 0) throw new Error(`${quote(['tar', ...args])} exited ${r.code}: ${r.stderr.trim().split('\n').slice(0, 5).join('\n')}`);
  };
  const r = await timedThroughMount(ctx, toolId, bucket, action, tree.files);
  return { ...r, files: tree.files.length, bytes: tree.bytes };
}

/** The raw SDK's parallel multipart upload of a local file. */
async function rawMultipart(ctx, file, bucket, key, { partSize = 8 * MiB, inFlight = 8 } = {}) {
  const m = await measure(ctx, async () => {
    const { UploadId } = await ctx.raw.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    const fh = await open(file.path, 'r');
    try {
      const count = Math.ceil(file.size / partSize);
      const parts = new Array(count);
      await pool([...Array(count).keys()], inFlight, async (i) => {
        const length = Math.min(partSize, file.size - i * partSize);
        const body = Buffer.allocUnsafe(length);
        const { bytesRead } = await fh.read(body, 0, length, i * partSize);
        if (bytesRead !== length) throw new Error(`short read of ${file.path}`);
        const res = await ctx.raw.send(
          new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: i + 1, Body: body, ContentLength: length }),
        );
        parts[i] = { PartNumber: i + 1, ETag: res.ETag };
      });
      await ctx.raw.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
    } finally {
      await fh.close();
    }
  });
  const problems = await checkBig(ctx, bucket, key, file);
  return { seconds: m.seconds, counts: m.counts, files: 1, bytes: file.size, problems };
}

async function checkBig(ctx, bucket, key, file) {
  const got = await objectMd5(ctx.direct, bucket, key);
  const problems = [];
  if (got.size !== file.size) problems.push(`${key}: ${got.size} bytes, expected ${file.size}`);
  else if (got.md5 !== file.md5) problems.push(`${key}: md5 ${got.md5}, expected ${file.md5}`);
  return problems;
}

/** @type {Array<import('./run.mjs').Workload>} */
export const writeWorkloads = [
  {
    id: 'w-small',
    title: (ctx) => `tar x ${ctx.sizes.smallCount} x ${ctx.sizes.smallSize / KiB} KiB`,
    rate: 'files',
    prepare: (ctx) => makeTree(ctx.dataDir, 'small', { count: ctx.sizes.smallCount, sizes: ctx.sizes.smallSize, seed: 1 }),
    raw: (ctx, tree, bucket) => rawPutTree(ctx, tree, bucket, 16),
    run: (ctx, toolId, tree, bucket) => tarThroughMount(ctx, toolId, tree, bucket),
  },
  {
    id: 'w-mixed',
    title: (ctx) => `tar x ${ctx.sizes.mixedCount} files ${ctx.sizes.mixedSizes[0] / KiB} KiB..${ctx.sizes.mixedSizes[1] / KiB} KiB`,
    rate: 'files',
    // The write-back issue asks for --write-mode=sync beside the default here.
    tools: (ctx) => (ctx.writeModeSync ? ['s3mount', 's3mount-sync', ...ctx.peers] : ctx.tools),
    prepare: (ctx) =>
      makeTree(ctx.dataDir, 'mixed', { count: ctx.sizes.mixedCount, sizes: ctx.sizes.mixedSizes, perDir: ctx.sizes.mixedPerDir, seed: 2 }),
    raw: (ctx, tree, bucket) => rawPutTree(ctx, tree, bucket, 16),
    run: (ctx, toolId, tree, bucket) => tarThroughMount(ctx, toolId, tree, bucket),
  },
  {
    id: 'w-big',
    title: (ctx) => `one ${ctx.sizes.bigBytes / MiB} MiB file, dd bs=1M`,
    rate: 'bytes',
    prepare: (ctx) => makeBigFile(ctx.dataDir, 'big.bin', ctx.sizes.bigBytes),
    raw: (ctx, file, bucket) => rawMultipart(ctx, file, bucket, 'big.bin', { partSize: 8 * MiB, inFlight: 8 }),
    run: async (ctx, toolId, file, bucket) => {
      const action = async (mnt) => {
        const args = [`if=${file.path}`, `of=${join(mnt, 'big.bin')}`, 'bs=1M'];
        const r = await run('dd', args);
        if (r.code !== 0) throw new Error(`dd ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
      };
      const r = await timedThroughMount(ctx, toolId, bucket, action, [{ key: 'big.bin', size: file.size }]);
      if (r.problems.length === 0) r.problems = await checkBig(ctx, bucket, 'big.bin', file);
      return { ...r, files: 1, bytes: file.size };
    },
  },
];
