// The read section of `npm run bench` (issue #6): reading what is already in the bucket,
// through each mount tool, against the raw SDK reading the same objects through the same
// proxy in the same run.
//
// The data is uploaded during `prepare`, untimed, with the SDK client that goes straight
// to the server (`ctx.direct`, not through the proxy), into a bucket per workload (the
// sequential and the random reads share the big object's bucket); so `freshBucket: false`
// and the `bucket` argument of raw/run is unused. "Cold" means a fresh mount: every mount
// has its own mount point and --cache-dir (lib/mounts.mjs), so nothing a previous mount
// read or cached is left, and the kernel's page cache goes with the unmount. Only the read
// itself is timed (lib/workload.mjs measure(); the mount and the unmount are not), and the
// proxy's counts are those of the timed part alone.
//
// Every byte read is checked: the sequential and parallel reads are compared with the
// source file as they arrive (the harness reads dd's output through a pipe; the source's
// md5 is the object's ETag, checked at upload), the random reads with the source's bytes
// at each offset, `md5sum -c` must exit 0, and `ls -l` and `stat` must show every name
// with its size. What does not match is reported as FAILED, as in the write section.
//
// The workload contract is bench/write.mjs's, with what reads need on top:
//   raw       optional: no raw SDK row (the ratio is then the workload's own)
//   unit      for rate 'files': what is counted ('reads', 'entries'; default 'files')
// and a Result may also carry
//   title     the row's own title (several rows for one workload: raw/run may resolve
//             an array of Results, one row each)
//   ratio     the "vs raw" figure, computed by the workload (null: none); otherwise the
//             harness's default, raw seconds / tool seconds
//   ratioText how to print it (e.g. "8.12x cold"), ratioOf: what it is relative to (JSON)
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { randomBytes, createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { makeBigFile, makeTree, prng } from './lib/data.mjs';
import { run } from './lib/mounts.mjs';
import { checkObjects, pool } from './lib/s3.mjs';
import { measure, quote, withMount } from './lib/workload.mjs';

const KiB = 1024;
const MiB = 1024 * KiB;
const PREAD = fileURLToPath(new URL('./lib/pread.mjs', import.meta.url));
/** The raw SDK's parallel read: ranges of RANGE bytes, IN_FLIGHT at a time. */
const RANGE = 8 * MiB;
const IN_FLIGHT = 8;

/** Sizes per mode; --quick keeps the read section (without peers) around half a minute. */
export function readSizes(quick) {
  return quick
    ? {
        bigBytes: 64 * MiB,
        parallelFiles: 4,
        parallelBytes: 16 * MiB,
        randomReads: 100,
        randomSize: 4 * KiB,
        listCount: 500,
        statCount: 100,
        treeCount: 200,
        treeSizes: [1 * KiB, 256 * KiB],
        treePerDir: 25,
      }
    : {
        bigBytes: 512 * MiB,
        parallelFiles: 4,
        parallelBytes: 64 * MiB,
        randomReads: 500,
        randomSize: 4 * KiB,
        listCount: 5000,
        statCount: 1000,
        treeCount: 2000,
        treeSizes: [1 * KiB, 1 * MiB],
        treePerDir: 100,
      };
}

const sizeText = (bytes) => (bytes >= MiB ? `${bytes / MiB} MiB` : `${bytes / KiB} KiB`);
const getsOf = (counts) => counts.requests.GET + counts.requests.rangedGET;
const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

// ── set-up (untimed, straight to the server) ───────────────────────────────────────────

/**
 * PutObject of each item ({ key, size, body } or { key, size, path }), `inFlight` at a
 * time, with the direct client; then checks the bucket (every key with its size, ETags of
 * single-part objects against `md5` where given) and throws if anything is wrong.
 */
async function upload(ctx, bucket, items, inFlight = 16) {
  await pool(items, inFlight, async (it) => {
    const Body = it.body ?? createReadStream(it.path);
    await ctx.direct.send(new PutObjectCommand({ Bucket: bucket, Key: it.key, Body, ContentLength: it.size }));
  });
  const problems = await checkObjects(ctx.direct, bucket, items);
  // checkObjects compares ETags below 5 MiB; a single PUT's ETag is the md5 at any size.
  for (const it of items.filter((i) => i.md5 && i.size >= 5 * MiB)) {
    const head = await ctx.direct.send(new HeadObjectCommand({ Bucket: bucket, Key: it.key }));
    if (head.ETag?.replaceAll('"', '') !== it.md5) problems.push(`${it.key}: ETag ${head.ETag}, expected md5 ${it.md5}`);
  }
  if (problems.length > 0) throw new Error(`upload to ${bucket}: ${problems.length} objects wrong, e.g. ${problems[0]}`);
}

/** The big object, shared by the sequential and the random reads: uploaded once per run. */
const bigObjects = new WeakMap();
function bigObject(ctx) {
  if (!bigObjects.has(ctx)) {
    bigObjects.set(
      ctx,
      (async () => {
        const bucket = await ctx.newBucket('r-big');
        const file = await makeBigFile(ctx.dataDir, 'read-big.bin', ctx.readSizes.bigBytes);
        const key = 'big.bin';
        await upload(ctx, bucket, [{ key, path: file.path, size: file.size, md5: file.md5 }]);
        return { bucket, key, file };
      })(),
    );
  }
  return bigObjects.get(ctx);
}

/** `count` small objects `<dir>/fNNNN.bin` of 0..2047 bytes (seeded sizes). */
async function smallObjects(ctx, bucketName, dir, count, seed) {
  const bucket = await ctx.newBucket(bucketName);
  const rand = prng(seed);
  const width = String(count - 1).length;
  const items = Array.from({ length: count }, (_, i) => {
    const size = Math.floor(rand() * 2048);
    const name = `f${String(i).padStart(width, '0')}.bin`;
    return { name, key: `${dir}/${name}`, size, body: randomBytes(size) };
  });
  await upload(ctx, bucket, items, 32);
  return { bucket, dir, entries: items.map(({ name, key, size }) => ({ name, key, size })) };
}

// ── reading and checking ───────────────────────────────────────────────────────────────

/** GetObject (optionally of a range) with `client`, the body streamed and counted. Resolves the byte count. */
async function getCounted(client, bucket, key, range) {
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: range }));
  let n = 0;
  for await (const chunk of res.Body) n += chunk.length;
  return n;
}

/** GetObject (optionally of a range), the body as a Buffer. */
async function getBuffer(client, bucket, key, range) {
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: range }));
  return Buffer.from(await res.Body.transformToByteArray());
}

/**
 * `dd if=PATH bs=1M` with its output read through a pipe and compared, as it arrives,
 * with the local source file. Throws if dd fails; resolves the problems ([] when every
 * byte matched and the size is right).
 */
async function ddCompare(path, source, name) {
  const fd = openSync(source.path, 'r');
  let pos = 0;
  let firstDiff;
  let want = Buffer.allocUnsafe(MiB);
  const args = [`if=${path}`, 'bs=1M', 'status=none'];
  try {
    const r = await run('dd', args, {
      onStdout: (chunk) => {
        if (firstDiff === undefined) {
          if (want.length < chunk.length) want = Buffer.allocUnsafe(chunk.length);
          const n = readSync(fd, want, 0, chunk.length, pos);
          if (n !== chunk.length || !want.subarray(0, n).equals(chunk)) {
            let i = 0;
            while (i < n && want[i] === chunk[i]) i++;
            firstDiff = pos + i;
          }
        }
        pos += chunk.length;
      },
    });
    if (r.code !== 0) throw new Error(`dd ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  } finally {
    closeSync(fd);
  }
  if (firstDiff !== undefined) return [`${name}: byte ${firstDiff} differs from the source (${pos} bytes read)`];
  if (pos !== source.size) return [`${name}: ${pos} bytes read, expected ${source.size}`];
  return [];
}

/**
 * How many bytes of `path` the kernel's page cache holds (fincore, which opens the file),
 * or undefined without fincore. A warm re-read must fetch what is missing: on the 6.18
 * kernel here, a cold read through FUSE (a passthrough of a local file through the same
 * binding too) leaves a few folios of the file out of the cache when its reads take a
 * while.
 */
async function pageCacheBytes(path) {
  try {
    const r = await run('fincore', ['--bytes', '--noheadings', '--output', 'RES', path]);
    const bytes = Number(r.stdout.trim());
    return r.code === 0 && Number.isFinite(bytes) ? bytes : undefined;
  } catch {
    return undefined; // fincore missing (util-linux-extra)
  }
}

/** Compares `got` (the reads, one after the other) with the source's bytes at `offsets`. */
function compareReads(got, source, offsets, length, name) {
  const problems = [];
  if (got.length !== offsets.length * length) return [`${name}: ${got.length} bytes read, expected ${offsets.length * length}`];
  const fd = openSync(source.path, 'r');
  try {
    const want = Buffer.alloc(length);
    offsets.forEach((offset, i) => {
      readSync(fd, want, 0, length, offset);
      if (!want.equals(got.subarray(i * length, (i + 1) * length))) problems.push(`${name}: the ${length} bytes at ${offset} differ from the source`);
    });
  } finally {
    closeSync(fd);
  }
  return problems;
}

/** Runs a checking command (md5sum -c, stat, ls): throws when it cannot start; resolves { code, out, stderr }. */
async function runCollect(cmd, args) {
  const chunks = [];
  const r = await run(cmd, args, { env: { ...process.env, LC_ALL: 'C' }, onStdout: (c) => chunks.push(c) });
  return { code: r.code, out: Buffer.concat(chunks).toString('utf8'), stderr: r.stderr, args: [cmd, ...args] };
}

/** Compares name -> size as listed with the expected entries. */
function compareEntries(seen, entries, what) {
  const problems = [];
  for (const e of entries) {
    const size = seen.get(e.name);
    if (size === undefined) problems.push(`${what}: ${e.name} missing`);
    else if (size !== e.size) problems.push(`${what}: ${e.name} has ${size} bytes, expected ${e.size}`);
  }
  if (seen.size !== entries.length) problems.push(`${what}: ${seen.size} entries, expected ${entries.length}`);
  return problems;
}

function failedCommand(r) {
  return `${quote(r.args.slice(0, 4))}${r.args.length > 4 ? ' ...' : ''} exited ${r.code}: ${(r.stderr.trim() || r.out.trim()).split('\n')[0]}`;
}

// ── the workloads ──────────────────────────────────────────────────────────────────────

/** @type {Array<import('./run.mjs').Workload>} */
export const readWorkloads = [
  {
    // Rows: the raw SDK's single GetObject and its parallel ranged GETs (the reference of
    // the rate ratios); per tool a cold read in a fresh mount, then a warm re-read in the
    // same mount, with the GETs the proxy saw during it.
    id: 'r-big',
    title: (ctx) => `one ${sizeText(ctx.readSizes.bigBytes)} object, sequential read`,
    rate: 'bytes',
    freshBucket: false,
    prepare: (ctx) => bigObject(ctx),
    raw: async (ctx, { bucket, key, file }) => {
      const size = sizeText(file.size);
      const single = await measure(ctx, () => getCounted(ctx.raw, bucket, key));
      const singleProblems = single.value === file.size ? [] : [`${key}: ${single.value} bytes read, expected ${file.size}`];
      const ranges = [];
      for (let start = 0; start < file.size; start += RANGE) ranges.push(`bytes=${start}-${Math.min(start + RANGE, file.size) - 1}`);
      const parallel = await measure(ctx, async () => {
        let n = 0;
        await pool(ranges, IN_FLIGHT, async (range) => {
          const got = await getCounted(ctx.raw, bucket, key, range);
          n += got;
        });
        return n;
      });
      const parallelProblems = parallel.value === file.size ? [] : [`${key}: ${parallel.value} bytes read, expected ${file.size}`];
      const baseline = parallelProblems.length === 0 ? file.size / parallel.seconds : undefined;
      ctx.readBaseline = baseline;
      const ratioOf = `raw SDK ${ranges.length} x ${sizeText(RANGE)} ranged GETs, MiB/s`;
      return [
        {
          title: `${size} object, one GetObject`,
          seconds: single.seconds,
          counts: single.counts,
          files: 1,
          bytes: file.size,
          problems: singleProblems,
          ratio: baseline && singleProblems.length === 0 ? file.size / single.seconds / baseline : null,
          ratioOf,
        },
        {
          title: `${size} object, ${ranges.length} x ${sizeText(RANGE)} ranged GETs`,
          seconds: parallel.seconds,
          counts: parallel.counts,
          files: 1,
          bytes: file.size,
          problems: parallelProblems,
          note: `${IN_FLIGHT} in flight`,
          ratio: baseline ? 1 : null,
          ratioOf,
        },
      ];
    },
    run: (ctx, toolId, { bucket, key, file }) =>
      withMount(ctx, toolId, bucket, async (mnt) => {
        const size = sizeText(file.size);
        const path = join(mnt, key);
        const cold = await measure(ctx, () => ddCompare(path, file, key));
        const cached = await pageCacheBytes(path);
        const warm = await measure(ctx, () => ddCompare(path, file, key));
        const baseline = ctx.readBaseline;
        return [
          {
            title: `${size} object, cold read (dd bs=1M)`,
            seconds: cold.seconds,
            counts: cold.counts,
            files: 1,
            bytes: file.size,
            problems: cold.value,
            ratio: baseline ? file.size / cold.seconds / baseline : null,
            ratioOf: 'raw SDK parallel ranged GETs, MiB/s',
          },
          {
            title: `${size} object, warm re-read (same mount)`,
            seconds: warm.seconds,
            counts: warm.counts,
            files: 1,
            bytes: file.size,
            problems: warm.value,
            note:
              `${plural(getsOf(warm.counts), 'GET')} during the warm read` +
              (cached === undefined ? '' : `; ${(file.size - cached) / KiB} KiB of the file not in the page cache before it`),
            ratio: cold.seconds / warm.seconds,
            ratioText: `${(cold.seconds / warm.seconds).toFixed(2)}x cold`,
            ratioOf: 'the same tool\'s cold read, seconds',
          },
        ];
      }),
  },
  {
    // No raw row of its own: the ratio is the rate against the raw SDK's parallel ranged
    // GETs of the big object (the workload above).
    id: 'r-par',
    title: (ctx) => `${ctx.readSizes.parallelFiles} parallel readers of ${ctx.readSizes.parallelFiles} x ${sizeText(ctx.readSizes.parallelBytes)} files, cold (dd bs=1M)`,
    rate: 'bytes',
    freshBucket: false,
    prepare: async (ctx) => {
      const { parallelFiles, parallelBytes } = ctx.readSizes;
      const bucket = await ctx.newBucket('r-par');
      const files = [];
      for (let i = 0; i < parallelFiles; i++) {
        const file = await makeBigFile(ctx.dataDir, `read-par-${i}.bin`, parallelBytes);
        files.push({ ...file, key: `par/f${i}.bin` });
      }
      await upload(ctx, bucket, files, parallelFiles);
      return { bucket, files, bytes: parallelFiles * parallelBytes };
    },
    run: (ctx, toolId, { bucket, files, bytes }) =>
      withMount(ctx, toolId, bucket, async (mnt) => {
        const m = await measure(ctx, () => Promise.all(files.map((f) => ddCompare(join(mnt, f.key), f, f.key))));
        const baseline = ctx.readBaseline;
        return {
          seconds: m.seconds,
          counts: m.counts,
          files: files.length,
          bytes,
          problems: m.value.flat(),
          ratio: baseline ? bytes / m.seconds / baseline : null,
          ratioOf: 'raw SDK parallel ranged GETs of the big object, MiB/s',
        };
      }),
  },
  {
    // Page-aligned offsets from a fixed seed, read one at a time from one open file.
    id: 'r-random',
    title: (ctx) => `${ctx.readSizes.randomReads} random ${sizeText(ctx.readSizes.randomSize)} reads of the ${sizeText(ctx.readSizes.bigBytes)} object, cold`,
    rate: 'files',
    unit: 'reads',
    freshBucket: false,
    prepare: async (ctx) => {
      const big = await bigObject(ctx);
      const { randomReads, randomSize } = ctx.readSizes;
      const rand = prng(11);
      const pages = Math.floor(big.file.size / randomSize);
      const offsets = Array.from({ length: randomReads }, () => Math.floor(rand() * pages) * randomSize);
      const blocks = new Set(offsets.map((o) => Math.floor(o / MiB))).size;
      return { ...big, offsets, length: randomSize, blocks };
    },
    raw: async (ctx, { bucket, key, file, offsets, length }) => {
      const m = await measure(ctx, async () => {
        const parts = [];
        for (const o of offsets) parts.push(await getBuffer(ctx.raw, bucket, key, `bytes=${o}-${o + length - 1}`));
        return Buffer.concat(parts);
      });
      const problems = compareReads(m.value, file, offsets, length, key);
      return { seconds: m.seconds, counts: m.counts, files: offsets.length, bytes: offsets.length * length, problems, note: `${offsets.length} ranged GETs of ${sizeText(length)}, one at a time` };
    },
    run: (ctx, toolId, { bucket, key, file, offsets, length, blocks }) =>
      withMount(ctx, toolId, bucket, async (mnt) => {
        const chunks = [];
        const args = [PREAD, join(mnt, key), String(length), ...offsets.map(String)];
        const m = await measure(ctx, () => run(process.execPath, args, { onStdout: (c) => chunks.push(c) }));
        if (m.value.code !== 0) throw new Error(`node bench/lib/pread.mjs exited ${m.value.code}: ${m.value.stderr.trim()}`);
        const problems = compareReads(Buffer.concat(chunks), file, offsets, length, key);
        const note = `${plural(getsOf(m.counts), 'GET')} for ${offsets.length} reads in ${blocks} distinct 1 MiB blocks`;
        return { seconds: m.seconds, counts: m.counts, files: offsets.length, bytes: offsets.length * length, problems, note };
      }),
  },
  {
    id: 'r-list',
    title: (ctx) => `ls -l of a ${ctx.readSizes.listCount}-object directory, cold`,
    rate: 'files',
    unit: 'entries',
    freshBucket: false,
    prepare: (ctx) => smallObjects(ctx, 'r-list', 'list', ctx.readSizes.listCount, 12),
    raw: async (ctx, { bucket, dir, entries }) => {
      const m = await measure(ctx, async () => {
        const seen = new Map();
        let token;
        let pages = 0;
        do {
          const page = await ctx.raw.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${dir}/`, Delimiter: '/', ContinuationToken: token }));
          pages += 1;
          for (const o of page.Contents ?? []) seen.set(o.Key.slice(dir.length + 1), o.Size);
          token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
        return { seen, pages };
      });
      const problems = compareEntries(m.value.seen, entries, `LIST ${dir}/`);
      return { seconds: m.seconds, counts: m.counts, files: entries.length, bytes: 0, problems, note: `ListObjectsV2, ${plural(m.value.pages, 'page')}` };
    },
    run: (ctx, toolId, { bucket, dir, entries }) =>
      withMount(ctx, toolId, bucket, async (mnt) => {
        const m = await measure(ctx, () => runCollect('ls', ['-l', join(mnt, dir)]));
        const r = m.value;
        let problems;
        if (r.code !== 0) problems = [failedCommand(r)];
        else {
          const seen = new Map();
          for (const line of r.out.split('\n')) {
            const f = line.trim().split(/\s+/);
            if (f.length < 9) continue; // "total N", the empty last line
            seen.set(f[f.length - 1], Number(f[4]));
          }
          problems = compareEntries(seen, entries, `ls -l ${dir}`);
        }
        return { seconds: m.seconds, counts: m.counts, files: entries.length, bytes: 0, problems };
      }),
  },
  {
    id: 'r-stat',
    title: (ctx) => `stat of ${ctx.readSizes.statCount} files, cold`,
    rate: 'files',
    freshBucket: false,
    prepare: (ctx) => smallObjects(ctx, 'r-stat', 'stat', ctx.readSizes.statCount, 13),
    raw: async (ctx, { bucket, entries }) => {
      const m = await measure(ctx, async () => {
        const seen = new Map();
        await pool(entries, 16, async (e) => {
          const head = await ctx.raw.send(new HeadObjectCommand({ Bucket: bucket, Key: e.key }));
          seen.set(e.name, head.ContentLength);
        });
        return seen;
      });
      const problems = compareEntries(m.value, entries, 'HEAD');
      return { seconds: m.seconds, counts: m.counts, files: entries.length, bytes: 0, problems, note: `${entries.length} HeadObject, 16 in flight` };
    },
    run: (ctx, toolId, { bucket, dir, entries }) =>
      withMount(ctx, toolId, bucket, async (mnt) => {
        // One stat(1) for all the files, printing size and name.
        const args = ['-c', '%s %n', ...entries.map((e) => join(mnt, e.key))];
        const m = await measure(ctx, () => runCollect('stat', args));
        const r = m.value;
        let problems;
        if (r.code !== 0) problems = [failedCommand(r)];
        else {
          const seen = new Map();
          const prefix = `${join(mnt, dir)}/`;
          for (const line of r.out.split('\n').filter(Boolean)) {
            const space = line.indexOf(' ');
            seen.set(line.slice(space + 1).replace(prefix, ''), Number(line.slice(0, space)));
          }
          problems = compareEntries(seen, entries, 'stat');
        }
        return { seconds: m.seconds, counts: m.counts, files: entries.length, bytes: 0, problems };
      }),
  },
  {
    id: 'r-md5',
    title: (ctx) => `md5sum -c, ${ctx.readSizes.treeCount} files ${sizeText(ctx.readSizes.treeSizes[0])}..${sizeText(ctx.readSizes.treeSizes[1])}`,
    rate: 'files',
    freshBucket: false,
    prepare: async (ctx) => {
      const { treeCount, treeSizes, treePerDir } = ctx.readSizes;
      const bucket = await ctx.newBucket('r-md5');
      const tree = await makeTree(ctx.dataDir, 'rtree', { count: treeCount, sizes: treeSizes, perDir: treePerDir, seed: 3, tarball: false });
      await upload(ctx, bucket, tree.files, 16);
      return { bucket, tree };
    },
    raw: async (ctx, { bucket, tree }) => {
      const problems = [];
      const m = await measure(ctx, () =>
        pool(tree.files, 16, async (f) => {
          const body = await getBuffer(ctx.raw, bucket, f.key);
          if (createHash('md5').update(body).digest('hex') !== f.md5) problems.push(`${f.key}: md5 differs`);
        }),
      );
      return { seconds: m.seconds, counts: m.counts, files: tree.files.length, bytes: tree.bytes, problems, note: 'GetObject of each, 16 in flight, md5 compared' };
    },
    run: (ctx, toolId, { bucket, tree }) =>
      withMount(ctx, toolId, bucket, async (mnt) => {
        const sums = join(ctx.dataDir, `rtree-${toolId}.md5`);
        await writeFile(sums, tree.files.map((f) => `${f.md5}  ${join(mnt, f.key)}\n`).join(''));
        const m = await measure(ctx, () => runCollect('md5sum', ['-c', '--quiet', sums]));
        const r = m.value;
        const problems = [];
        if (r.code !== 0) {
          const failedLines = r.out.split('\n').filter((l) => /FAILED/.test(l));
          problems.push(...(failedLines.length ? failedLines.map((l) => l.replace(`${mnt}/`, '')) : [failedCommand(r)]));
        }
        return { seconds: m.seconds, counts: m.counts, files: tree.files.length, bytes: tree.bytes, problems };
      }),
  },
];
