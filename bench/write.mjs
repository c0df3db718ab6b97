// The write section of `npm run bench`: each workload runs once with the raw SDK (the
// baseline: what this server and proxy allow) and once per mount tool, into a fresh
// bucket each, and reports the time until the data is durable (in the bucket).
//
// The workload contract (shared with bench/read.mjs):
//   id        short name, also the bucket name prefix
//   title     (ctx) => what is measured, for the table
//   rate      'files' | 'bytes': how the table shows speed
//   tools     optional (ctx) => the mount tools to run (default: every available one)
//   when      optional (ctx) => false to leave the workload out (opt-in workloads: --big)
//   skip      optional async (ctx) => a reason not to run it here (e.g. too little disk), or undefined
//   prepare   (ctx) => data set, made outside any timing
//   raw       (ctx, data, bucket) => Result, the raw SDK baseline
//   run       (ctx, toolId, data, bucket) => Result, through a mount
// Result: { seconds, counts (proxy stats), files, bytes, problems: string[], note?: string }
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { freeBytes, makeBigFile, makeFastFile, makeTree, prng, readRange } from './lib/data.mjs';
import { run } from './lib/mounts.mjs';
import { checkObjects, objectMd5, pool } from './lib/s3.mjs';
import { measure, quote, timedThroughMount } from './lib/workload.mjs';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/**
 * The --big workload: its size (above S3's 5 GiB single-PUT and CopyObject limits) and
 * the free space it needs under the work directory before it starts. Measured peak: 27 GiB
 * (the source file, s3mount's staging copy, and s3rver's parts plus the object they are
 * assembled into, for the upload and again for the copy); see docs/benchmarks.md.
 */
export const HUGE_BYTES = 6 * GiB;
export const HUGE_MIN_FREE = 30 * GiB;
const HUGE_KEY = 'huge.bin';
const HUGE_RENAMED = 'huge-renamed.bin';

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

/** The raw SDK's parallel multipart upload of a local file (untimed: callers time it). */
async function multipartUpload(ctx, file, bucket, key, { partSize = 8 * MiB, inFlight = 8 } = {}) {
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
}

/** The raw SDK's server-side copy in parts (UploadPartCopy): what S3 requires above 5 GiB. */
async function multipartCopy(ctx, bucket, srcKey, dstKey, size, { partSize = 8 * MiB, inFlight = 8 } = {}) {
  const { UploadId } = await ctx.raw.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: dstKey }));
  const count = Math.ceil(size / partSize);
  const parts = new Array(count);
  await pool([...Array(count).keys()], inFlight, async (i) => {
    const start = i * partSize;
    const end = Math.min(start + partSize, size) - 1;
    const res = await ctx.raw.send(
      new UploadPartCopyCommand({
        Bucket: bucket,
        Key: dstKey,
        UploadId,
        PartNumber: i + 1,
        CopySource: `${bucket}/${srcKey}`,
        CopySourceRange: `bytes=${start}-${end}`,
      }),
    );
    parts[i] = { PartNumber: i + 1, ETag: res.CopyPartResult?.ETag };
  });
  await ctx.raw.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: dstKey, UploadId, MultipartUpload: { Parts: parts } }));
}

/** The raw SDK's parallel multipart upload of a local file, timed and checked. */
async function rawMultipart(ctx, file, bucket, key, { partSize = 8 * MiB, inFlight = 8 } = {}) {
  const m = await measure(ctx, () => multipartUpload(ctx, file, bucket, key, { partSize, inFlight }));
  const problems = await checkBig(ctx, bucket, key, file);
  return { seconds: m.seconds, counts: m.counts, files: 1, bytes: file.size, problems };
}

/**
 * The raw SDK's "write and rename" of the --big file: multipart upload as `HUGE_KEY`,
 * multipart copy to `HUGE_RENAMED` (CopyObject stops at 5 GiB), DeleteObject of the
 * first; durable when the delete returns. The object is deleted once checked, to give
 * the disk back before the mounts run.
 */
async function rawHuge(ctx, file, bucket) {
  const phases = {};
  const m = await measure(ctx, async () => {
    let t = performance.now();
    await multipartUpload(ctx, file, bucket, HUGE_KEY, { partSize: 8 * MiB, inFlight: 8 });
    phases.upload = (performance.now() - t) / 1000;
    t = performance.now();
    await multipartCopy(ctx, bucket, HUGE_KEY, HUGE_RENAMED, file.size, { partSize: 8 * MiB, inFlight: 8 });
    await ctx.raw.send(new DeleteObjectCommand({ Bucket: bucket, Key: HUGE_KEY }));
    phases.rename = (performance.now() - t) / 1000;
  });
  const problems = await checkHuge(ctx, bucket, file);
  await ctx.direct.send(new DeleteObjectCommand({ Bucket: bucket, Key: HUGE_RENAMED }));
  const note = `upload ${phases.upload.toFixed(2)} s, copy in parts + delete ${phases.rename.toFixed(2)} s`;
  return { seconds: m.seconds, counts: m.counts, files: 1, bytes: file.size, problems, note };
}

/**
 * The --big checks (a full read-back of 6 GiB would double the run): the renamed object's
 * size by HEAD, the old name gone, and ranged GETs compared byte for byte with the local
 * file: the start, the end, across the first 8 MiB part boundary and the 5 GiB limit, and
 * at eight seeded offsets.
 */
async function checkHuge(ctx, bucket, file) {
  const problems = [];
  const head = await ctx.direct.send(new HeadObjectCommand({ Bucket: bucket, Key: HUGE_RENAMED })).catch((err) => err);
  if (head instanceof Error) return [`${HUGE_RENAMED}: HEAD failed: ${head.name}`];
  if (head.ContentLength !== file.size) return [`${HUGE_RENAMED}: ${head.ContentLength} bytes, expected ${file.size}`];
  const old = await ctx.direct.send(new HeadObjectCommand({ Bucket: bucket, Key: HUGE_KEY })).catch((err) => err);
  if (!(old instanceof Error)) problems.push(`${HUGE_KEY}: still in the bucket after the rename`);
  else if (old.$metadata?.httpStatusCode !== 404) problems.push(`${HUGE_KEY}: HEAD failed: ${old.name}`);
  const span = MiB;
  const rand = prng(7);
  const starts = [0, 8 * MiB - span / 2, 5 * GiB - span / 2, file.size - span];
  for (let i = 0; i < 8; i++) starts.push(Math.floor(rand() * (file.size - span)));
  for (const start of starts.filter((s) => s >= 0 && s + span <= file.size)) {
    const end = start + span - 1;
    const res = await ctx.direct.send(new GetObjectCommand({ Bucket: bucket, Key: HUGE_RENAMED, Range: `bytes=${start}-${end}` }));
    const got = Buffer.from(await res.Body.transformToByteArray());
    const want = await readRange(file.path, start, span);
    if (!got.equals(want)) problems.push(`${HUGE_RENAMED}: bytes ${start}-${end} differ from the source`);
  }
  return problems;
}

/** `dd` of the --big file into the mount, then `mv` to another name in the mount, until durable. */
async function hugeThroughMount(ctx, toolId, file, bucket) {
  const phases = {};
  const action = async (mnt) => {
    let t = performance.now();
    const dd = [`if=${file.path}`, `of=${join(mnt, HUGE_KEY)}`, 'bs=1M'];
    let r = await run('dd', dd);
    if (r.code !== 0) throw new Error(`dd ${dd.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
    phases.dd = (performance.now() - t) / 1000;
    t = performance.now();
    const mv = [join(mnt, HUGE_KEY), join(mnt, HUGE_RENAMED)];
    r = await run('mv', mv);
    if (r.code !== 0) throw new Error(`${quote(['mv', ...mv])} exited ${r.code}: ${r.stderr.trim()}`);
    phases.mv = (performance.now() - t) / 1000;
  };
  const r = await timedThroughMount(ctx, toolId, bucket, action, [{ key: HUGE_RENAMED, size: file.size }]);
  if (r.problems.length === 0) r.problems = await checkHuge(ctx, bucket, file);
  // Give the disk back (both names: a failed rename may leave the first one).
  for (const Key of [HUGE_RENAMED, HUGE_KEY]) await ctx.direct.send(new DeleteObjectCommand({ Bucket: bucket, Key })).catch(() => {});
  const after = r.seconds - r.returnedSeconds;
  const note = `dd ${phases.dd.toFixed(2)} s, mv ${phases.mv.toFixed(2)} s, unmount (drain) ${after.toFixed(2)} s`;
  return { ...r, files: 1, bytes: file.size, note };
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
  {
    // Opt-in (--big): minutes, and up to 27 GiB of disk at its peak.
    id: 'w-huge',
    title: () => `one ${HUGE_BYTES / GiB} GiB file, dd bs=1M, then mv`,
    rate: 'bytes',
    when: (ctx) => ctx.big,
    // s3mount alone: the peers' 6 GiB runs are not part of the comparison asked for.
    tools: (ctx) => ctx.tools.filter((t) => t === 's3mount'),
    skip: async (ctx) => {
      const free = await freeBytes(ctx.workDir);
      if (free >= HUGE_MIN_FREE) return undefined;
      return `only ${(free / GiB).toFixed(1)} GiB free under ${ctx.workDir}; the ${HUGE_BYTES / GiB} GiB write and rename needs at least ${HUGE_MIN_FREE / GiB} GiB (source file, staging, server copies)`;
    },
    prepare: (ctx) => makeFastFile(ctx.dataDir, HUGE_KEY, HUGE_BYTES),
    raw: (ctx, file, bucket) => rawHuge(ctx, file, bucket),
    run: (ctx, toolId, file, bucket) => hugeThroughMount(ctx, toolId, file, bucket),
  },
];
