// End to end: the read cache (src/cache: chunks in memory and on disk, read-ahead,
// keep_cache) on real mounts made by the built CLI. Requests are counted by
// bench/latency-proxy.mjs between the mount and the run's S3 server. Objects are put with
// the SDK before the mount looks at them (listings and stats are cached).
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readdir, readFile, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startLatencyProxy, type LatencyProxy } from '../../bench/latency-proxy.mjs';
import { isMountProcess, pidFilePath, readPidFile } from '../../src/cli/pidfile.js';
import { runOk, waitUntil } from '../support/run.js';
import { createTestBucket, putObject, testEndpoint } from '../support/s3.js';
import { cleanUpTestFile, forceUnmount, md5, MiB, mountBucket, tempDir, unmountAll, type CliMount } from './support/cli-mount.js';

const KiB = 1024;

let proxy: LatencyProxy;
let local: string;

beforeAll(async () => {
  proxy = await startLatencyProxy({ upstream: testEndpoint(), latencyMs: 0 });
  local = await tempDir('read-cache-local');
}, 30_000);

beforeEach(() => {
  proxy.reset();
});

afterEach(async () => {
  await unmountAll();
}, 60_000);

afterAll(async () => {
  try {
    await cleanUpTestFile(local);
  } finally {
    await proxy?.close();
  }
}, 60_000);

/** A small seeded PRNG (mulberry32): the same "random" offsets on every run. */
function seeded(seed: number): (below: number) => number {
  let state = seed >>> 0;
  return (below) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const unit = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    return Math.floor(unit * below);
  };
}

/** Bytes [position, position + length) of an open file, by one positional read (short at EOF). */
async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buffer, 0, length, position);
  return buffer.subarray(0, bytesRead);
}

/** A positional read through `handle` gives exactly the source's bytes there (a short count at EOF). */
async function expectRead(handle: FileHandle, source: Buffer, position: number, length: number, what: string): Promise<void> {
  const got = await readAt(handle, position, length);
  const want = source.subarray(Math.min(position, source.length), Math.min(source.length, position + length));
  expect(got.length, `${what}: bytes read at ${position}+${length}`).toBe(want.length);
  expect(got.equals(want), `${what}: bytes at ${position}+${length}`).toBe(true);
}

/** md5 through the mount, by md5sum (a separate process reading the FUSE file). */
async function md5sum(path: string): Promise<string> {
  return (await runOk('md5sum', ['--', path], { timeoutMs: 60_000 })).split(' ')[0] ?? '';
}

/** A new bucket holding `obj.bin`, `size` random bytes, mounted through the proxy. */
async function mountedObject(bucketName: string, size: number, args: string[] = []): Promise<{ data: Buffer; mnt: CliMount; path: string }> {
  const data = randomBytes(size);
  const bucket = await createTestBucket(bucketName);
  await putObject(bucket, 'obj.bin', data);
  const mnt = await mountBucket(bucket, { endpoint: proxy.endpoint, args });
  return { data, mnt, path: mnt.path('obj.bin') };
}

/** Waits until the mount's chunk files hold `bytes` in all, none of them half written. */
async function chunkFilesHold(mnt: CliMount, bytes: number): Promise<void> {
  await waitUntil(`${bytes} bytes of chunk files`, async () => {
    const kept = await chunkBytes(mnt);
    return kept.bytes === bytes && kept.temporary === 0;
  });
}

/** Object GETs (whole and ranged) the proxy saw since its last reset. */
function gets(): number {
  const { requests } = proxy.stats();
  return requests.GET + requests.rangedGET;
}

function summary(): string {
  const s = proxy.stats();
  return `${JSON.stringify(s.requests)}, ${s.bytesDown} bytes down`;
}

/** Every file under `dir` (recursively) with its size; [] when `dir` does not exist. */
async function filesUnder(dir: string): Promise<Array<{ path: string; size: number }>> {
  const found: Array<{ path: string; size: number }> = [];
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await filesUnder(path)));
    else {
      // A chunk file may be renamed or evicted between readdir and stat.
      const st = await stat(path).catch(() => undefined);
      if (st?.isFile()) found.push({ path, size: st.size });
    }
  }
  return found;
}

async function chunkBytes(mnt: CliMount): Promise<{ bytes: number; files: number; temporary: number }> {
  const files = await filesUnder(join(mnt.cacheDir, 'chunks'));
  return {
    bytes: files.reduce((sum, f) => sum + f.size, 0),
    files: files.length,
    temporary: files.filter((f) => f.path.includes('.tmp')).length,
  };
}

/** The pid of the mount process serving `dir` (its pid file). */
async function mountPid(dir: string): Promise<number> {
  const pid = await readPidFile(await pidFilePath(dir));
  if (pid === undefined || !(await isMountProcess(pid))) throw new Error(`no running mount process for ${dir} (pid file: ${pid})`);
  return pid;
}

/** A field of /proc/PID/status in bytes ("VmHWM:   123456 kB"). */
async function procStatusBytes(pid: number, field: string): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) * KiB;
}

describe('read cache', () => {
  it('--chunk-size 64K: exact bytes at chunk boundaries, at EOF, and for concurrent readers', { timeout: 40_000 }, async () => {
    const CHUNK = 64 * KiB;
    const data = randomBytes(MiB + 123);
    const bucket = await createTestBucket('rc-bounds');
    await putObject(bucket, 'obj.bin', data);
    const mnt = await mountBucket(bucket, { args: ['--chunk-size', '64K'] });
    const path = mnt.path('obj.bin');
    const size = data.length;

    // Through the page cache (the mount sees page-aligned reads), then with O_DIRECT
    // (the mount sees the reads' own offsets and lengths, across chunk boundaries).
    for (const [mode, flags] of [
      ['page cache', constants.O_RDONLY],
      ['O_DIRECT', constants.O_RDONLY | constants.O_DIRECT],
    ] as const) {
      const handle = await open(path, flags);
      try {
        await expectRead(handle, data, 0, 1, `${mode} first byte`);
        await expectRead(handle, data, size - 1, 1, `${mode} last byte`);
        for (const boundary of [1, 2, 7, 15, 16]) {
          await expectRead(handle, data, boundary * CHUNK - 1, 2, `${mode} 2 bytes across boundary ${boundary}`);
          await expectRead(handle, data, boundary * CHUNK - 1000, 5000, `${mode} 5000 bytes across boundary ${boundary}`);
        }
        // Two chunks and a bit: three chunks in one read.
        await expectRead(handle, data, 3 * CHUNK - 10, 2 * CHUNK + 20, `${mode} across two boundaries`);
        await expectRead(handle, data, 5 * CHUNK + 4321, 3000, `${mode} a read`);
        await expectRead(handle, data, 5 * CHUNK + 5000, 70_000, `${mode} overlapping the previous read`);
        // The last chunk holds 123 bytes.
        await expectRead(handle, data, size - 200, 4096, `${mode} crossing EOF`);
        expect((await readAt(handle, size - 200, 4096)).length, `${mode} short count at EOF`).toBe(200);
        expect((await readAt(handle, size, 4096)).length, `${mode} at EOF`).toBe(0);
        expect((await readAt(handle, size + 100_000, 4096)).length, `${mode} after EOF`).toBe(0);
      } finally {
        await handle.close();
      }
    }

    // Four readers at once on their own descriptors (O_DIRECT: each read reaches the mount).
    const readers = [1, 2, 3, 4].map(async (seed) => {
      const random = seeded(seed);
      const handle = await open(path, constants.O_RDONLY | constants.O_DIRECT);
      try {
        for (let i = 0; i < 25; i++) {
          const position = random(size);
          await expectRead(handle, data, position, 1 + random(3 * CHUNK), `reader ${seed}, read ${i}`);
        }
      } finally {
        await handle.close();
      }
    });
    await Promise.all(readers);

    expect(await md5sum(path)).toBe(md5(data));
  });

  it('re-reading makes no GET: not in the same mount, nor in a new mount with the same --cache-dir', { timeout: 40_000 }, async () => {
    const { data, mnt, path } = await mountedObject('rc-reread', 3 * MiB);

    proxy.reset();
    expect(await md5sum(path)).toBe(md5(data));
    const cold = gets();
    expect(cold, summary()).toBeGreaterThan(0);

    proxy.reset();
    expect(await md5sum(path)).toBe(md5(data));
    expect(gets(), `again in the same mount: ${summary()}`).toBe(0);

    // The chunk files are written in the background: all three (1 MiB each) before unmounting.
    await chunkFilesHold(mnt, data.length);

    await mnt.remount(); // same mount point, same --cache-dir, same proxy
    proxy.reset();
    expect(await md5sum(path)).toBe(md5(data));
    expect(gets(), `after a remount with the same --cache-dir: ${summary()}`).toBe(0);
  });

  it('re-reading after the kernel dropped the file from its page cache makes no GET either: the chunks read past are on disk', { timeout: 40_000 }, async () => {
    const { data, mnt, path } = await mountedObject('rc-dropped', 8 * MiB);
    expect(await md5sum(path)).toBe(md5(data));
    await chunkFilesHold(mnt, data.length);

    // POSIX_FADV_DONTNEED over the whole file, as memory pressure would do it.
    await runOk('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none'], { timeoutMs: 10_000 });
    const resident = await runOk('fincore', ['--bytes', '--noheadings', '--output', 'RES', path], { timeoutMs: 10_000 });
    expect(resident.trim(), 'bytes of the file left in the page cache').toBe('0');
    proxy.reset();
    expect(await md5sum(path)).toBe(md5(data));
    expect(gets(), `re-read once the page cache lost it: ${summary()}`).toBe(0);
  });

  it('--sequential-cutoff 8M: a file read from end to end keeps only its first 8 MiB on disk for a new mount', { timeout: 40_000 }, async () => {
    const { data, mnt, path } = await mountedObject('rc-cutoff', 24 * MiB, ['--sequential-cutoff', '8M']);
    expect(await md5sum(path)).toBe(md5(data));

    await mnt.remount(); // unmount writes what is kept; the new mount finds it
    expect((await chunkBytes(mnt)).bytes, 'chunk files after the first read').toBe(8 * MiB);
    proxy.reset();
    expect(await md5sum(path)).toBe(md5(data));
    // What was past the cutoff, and no more than the listing and HEAD answers besides.
    const down = proxy.stats().bytesDown;
    expect(down, `bytes the re-read fetched: ${summary()}`).toBeGreaterThanOrEqual(16 * MiB);
    expect(down, `bytes the re-read fetched: ${summary()}`).toBeLessThan(16 * MiB + 64 * KiB);
  });

  it('--chunk-size 64K: random 4 KiB reads make at most one GET per chunk they miss', { timeout: 40_000 }, async () => {
    const CHUNK = 64 * KiB;
    const READ = 4 * KiB;
    const { data, path } = await mountedObject('rc-random', 4 * MiB, ['--chunk-size', '64K']);

    // 50 offsets, none within 128 KiB of where the previous read ended (nor its start),
    // the first beyond the first two chunks: no read looks sequential, so no read-ahead.
    const random = seeded(42);
    const offsets: number[] = [];
    while (offsets.length < 50) {
      const position = random(data.length - READ);
      const previous = offsets.at(-1);
      if (previous === undefined ? position < 2 * CHUNK : Math.abs(position - previous) < 2 * CHUNK + READ) continue;
      offsets.push(position);
    }
    const touched = new Set<number>();
    for (const position of offsets) {
      touched.add(Math.floor(position / CHUNK));
      touched.add(Math.floor((position + READ - 1) / CHUNK));
    }

    const handle = await open(path, 'r');
    proxy.reset();
    try {
      for (const [i, position] of offsets.entries()) await expectRead(handle, data, position, READ, `read ${i}`);
    } finally {
      await handle.close();
    }
    const s = proxy.stats();
    expect(gets(), `${touched.size} chunks touched: ${summary()}`).toBeGreaterThan(0);
    expect(gets(), `${touched.size} chunks touched: ${summary()}`).toBeLessThanOrEqual(touched.size);
    // No whole-object GET, and no more bytes than the chunks touched.
    expect(s.requests.GET, summary()).toBe(0);
    expect(s.bytesDown, summary()).toBeLessThanOrEqual(touched.size * CHUNK);
  });

  it('--memory-cache-size 32M: reading a 256 MiB object keeps the mount process below 232 MiB of peak RSS', { timeout: 60_000 }, async () => {
    const data = randomBytes(256 * MiB);
    const sum = md5(data);
    const bucket = await createTestBucket('rc-memory');
    await putObject(bucket, 'big.bin', data);
    const mnt = await mountBucket(bucket, { endpoint: proxy.endpoint, args: ['--memory-cache-size', '32M'] });
    const pid = await mountPid(mnt.dir);

    proxy.reset();
    const out = await runOk('sh', ['-c', 'dd if="$1" bs=1M status=none | md5sum', 'sh', mnt.path('big.bin')], { timeoutMs: 50_000 });
    expect(out.split(' ')[0]).toBe(sum);

    const peak = await procStatusBytes(pid, 'VmHWM');
    const rss = await procStatusBytes(pid, 'VmRSS');
    const report = `VmHWM ${(peak / MiB).toFixed(1)} MiB, VmRSS ${(rss / MiB).toFixed(1)} MiB; ${summary()}`;
    expect.soft(peak, report).toBeLessThan(32 * MiB + 200 * MiB);
    // One sequential pass downloads the object once: read-ahead that the memory tier
    // cannot hold until it is read would fetch it again and again. (The lookup's
    // listing answer counts too: a few hundred bytes.)
    expect.soft(proxy.stats().bytesDown, report).toBeLessThanOrEqual(data.length + 64 * KiB);
  });

  it('--cache-size 2M: the chunk files stay within 2 MiB after reading 3 MiB of objects', { timeout: 40_000 }, async () => {
    const objects = [1, 2, 3].map((i) => ({ name: `obj-${i}.bin`, data: randomBytes(MiB) }));
    const bucket = await createTestBucket('rc-evict');
    for (const o of objects) await putObject(bucket, o.name, o.data);
    const mnt = await mountBucket(bucket, { args: ['--cache-size', '2M', '--chunk-size', '64K'] });

    // The most the chunk files took at any moment seen while reading (sampled).
    let most = { bytes: 0, files: 0, temporary: 0 };
    let reading = true;
    const sampler = (async () => {
      while (reading) {
        const now = await chunkBytes(mnt);
        if (now.bytes > most.bytes) most = now;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    try {
      for (const o of objects) {
        expect(await md5sum(mnt.path(o.name)), o.name).toBe(md5(o.data));
        // Something is kept on disk (the disk tier is in use at all).
        await waitUntil(`chunk files of ${o.name}`, async () => (await chunkBytes(mnt)).bytes > 0);
      }
    } finally {
      reading = false;
      await sampler;
    }
    const mounted = await chunkBytes(mnt);

    // Once the mount process has exited, nothing more is written: the final state.
    await forceUnmount(mnt.dir);
    const final = await chunkBytes(mnt);
    const report = JSON.stringify({ most, mounted, final });
    expect(final.bytes, report).toBeGreaterThan(0);
    expect(final.bytes, report).toBeLessThanOrEqual(2 * MiB);
    expect(mounted.bytes, report).toBeLessThanOrEqual(2 * MiB);
    expect(most.bytes, report).toBeLessThanOrEqual(2 * MiB);
  });
});

describe('files read in listing order', () => {
  it('md5sum over a directory: the next files are fetched before md5sum opens them, each with one GET and without a HEAD', { timeout: 60_000 }, async () => {
    const bucket = await createTestBucket('rc-inorder');
    // Under 1 MiB, the default chunk: one GET each.
    const files = Array.from({ length: 40 }, (_, i) => ({ name: `f${String(i).padStart(2, '0')}`, data: randomBytes(1000 + i * 2500) }));
    for (const f of files) await putObject(bucket, `tree/${f.name}`, f.data);
    const mnt = await mountBucket(bucket, { endpoint: proxy.endpoint, args: ['--stat-ttl', '60'] });
    const sums = join(local, 'inorder.md5');
    await writeFile(sums, files.map((f) => `${md5(f.data)}  ${mnt.path(`tree/${f.name}`)}\n`).join(''));

    proxy.reset();
    const firstThree = await runOk('md5sum', files.slice(0, 3).map((f) => mnt.path(`tree/${f.name}`)), { timeoutMs: 30_000 });
    expect(firstThree.trim().split('\n').map((line) => line.split(' ')[0])).toEqual(files.slice(0, 3).map((f) => md5(f.data)));
    // f01 read whole after f00: f02..f33 are fetched ahead; after f02, f34 too. The
    // lookup of f01 listed the directory: the files ahead go by the listing's ETags
    // where their HEADs are still under way, and must be the versions md5sum then reads.
    await waitUntil('f00..f34 fetched', () => gets() >= 35);
    expect(gets(), summary()).toBe(35);
    // The probes of tree and f00 (HEADs of the key and of a marker each), f01's and f02's
    // own, and the window's first 8 past f02: the files fetched ahead from f11 on are
    // known from their GETs.
    expect(proxy.stats().requests.HEAD, summary()).toBe(2 + 2 + 1 + 1 + 8);

    await runOk('md5sum', ['-c', '--quiet', sums], { timeoutMs: 30_000 });
    expect(gets(), summary()).toBe(files.length);
    expect(proxy.stats().requests.HEAD, summary()).toBe(14); // none more
  });
});

describe('files read in listing order, through a tree', () => {
  it('tar c and cp -r of a tree of small directories: exact bytes, one GET per file, and no HEAD for files fetched ahead', { timeout: 60_000 }, async () => {
    const bucket = await createTestBucket('rc-walk');
    const files = [
      ...Array.from({ length: 4 }, (_, d) => Array.from({ length: 6 }, (_, i) => `tree/d${d}/f${i}`)).flat(),
      'tree/top-a',
      'tree/top-b',
    ].map((key, i) => ({ key, data: randomBytes(500 + i * 3000) }));
    for (const f of files) await putObject(bucket, f.key, f.data);
    const mnt = await mountBucket(bucket, { endpoint: proxy.endpoint });
    const out = join(local, 'walk-tar');
    const copy = join(local, 'walk-cp');
    await runOk('mkdir', ['-p', out]);

    proxy.reset();
    await runOk('sh', ['-c', 'tar -c -C "$1" tree | tar -x -C "$2"', 'sh', mnt.path(''), out], { timeoutMs: 50_000 });
    for (const f of files) expect(md5(await readFile(join(out, f.key))), f.key).toBe(md5(f.data));
    expect(gets(), summary()).toBe(files.length);
    // The probe of tree; d0 (its own HEAD, of its marker) and the window past it (d1..d3,
    // top-a, top-b); f0 of d0 and the window past it. The files of d1..d3 are fetched
    // ahead as each is listed, and known from their GETs.
    expect(proxy.stats().requests.HEAD, summary()).toBe(2 + 6 + 6);

    await runOk('cp', ['-r', mnt.path('tree'), copy], { timeoutMs: 50_000 });
    for (const f of files) expect(md5(await readFile(join(copy, f.key.slice('tree/'.length)))), f.key).toBe(md5(f.data));
    expect(gets(), summary()).toBe(files.length); // read again: no GET
  });
});

describe('directory scans', () => {
  it('stat of many files in one directory: one HEAD each and a listing, not a probe each; later puts show after the stat TTL', { timeout: 60_000 }, async () => {
    const bucket = await createTestBucket('rc-scan');
    const files = Array.from({ length: 60 }, (_, i) => ({ name: `f-${String(i).padStart(3, '0')}`, data: randomBytes(100 + i) }));
    for (const f of files) await putObject(bucket, `scan/${f.name}`, f.data);
    const mnt = await mountBucket(bucket, { endpoint: proxy.endpoint, args: ['--stat-ttl', '1'] });

    proxy.reset();
    const out = await runOk('stat', ['-c', '%s %n', ...files.map((f) => mnt.path(`scan/${f.name}`))], { timeoutMs: 50_000 });
    const sizes = out.trim().split('\n').map((line) => Number(line.split(' ')[0]));
    expect(sizes).toEqual(files.map((f) => f.data.length));
    const { requests } = proxy.stats();
    // Probing every name would be three requests each (HEAD key, HEAD key/, LIST).
    expect(requests.HEAD, summary()).toBeLessThanOrEqual(files.length + 4);
    expect(requests.List, summary()).toBeLessThanOrEqual(4);

    // An object put after the directory was listed shows once the listing is older than
    // the stat TTL (docs/semantics.md), like after ls.
    await putObject(bucket, 'scan/late', Buffer.from('late'));
    await waitUntil('scan/late through the mount', async () => (await stat(mnt.path('scan/late')).catch(() => undefined))?.size === 4, 10_000);
  });

  it('--ignore-metadata: ls -l of a directory makes no HEAD per entry, and shows the default owner and mode', { timeout: 60_000 }, async () => {
    const bucket = await createTestBucket('rc-nometa');
    const files = Array.from({ length: 60 }, (_, i) => ({ name: `f-${String(i).padStart(3, '0')}`, data: randomBytes(100 + i) }));
    for (const f of files) await putObject(bucket, `ls/${f.name}`, f.data);
    // Metadata that a default mount would show (mode 0600, owner 1234) is not read.
    await putObject(bucket, 'ls/private', 'private', { mode: String(0o100600), uid: '1234', gid: '5678' });
    const mnt = await mountBucket(bucket, { endpoint: proxy.endpoint, args: ['--ignore-metadata', '--file-mode', '0640', '--uid', '0', '--gid', '0'] });

    proxy.reset();
    const out = await runOk('ls', ['-ln', '--time-style=+', mnt.path('ls')], { timeoutMs: 50_000 });
    const lines = out.trim().split('\n').slice(1); // "total N" first
    const expected = [...files.map((f) => ({ name: f.name, size: f.data.length })), { name: 'private', size: 7 }];
    expect(lines.map((line) => line.split(/\s+/))).toEqual(expected.map((f) => ['-rw-r-----', '1', '0', '0', String(f.size), f.name]));
    const { requests } = proxy.stats();
    // The lookup of "ls" itself probes it (two HEADs and a LIST); its 61 entries cost nothing more than the listing.
    expect(requests.HEAD, summary()).toBeLessThanOrEqual(2);
    expect(requests.List, summary()).toBeLessThanOrEqual(3);
  });
});
