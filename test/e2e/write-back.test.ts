// End to end: the write-back uploader (issue #5) on real mounts, through
// bench/latency-proxy.mjs in front of the run's S3 server. The proxy makes uploads slow
// (latency per request kind), holds requests until released, and refuses them with S3
// errors (faults), so that each test controls when objects can reach the bucket. What
// is in the bucket is always read with the SDK straight from the server, never through
// the mount or the proxy.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { NO_UPLOAD_PART_COPY, startLatencyProxy, UPLOAD_KINDS, type LatencyProxy } from '../../bench/latency-proxy.mjs';
import { isMountProcess, pidFilePath, readPidFile } from '../../src/cli/pidfile.js';
import { readJournalFolder } from '../../src/upload/journal.js';
import { mountedFuseTargets, run, runOk, waitUntil } from '../support/run.js';
import { createTestBucket, getObjectBytes, headObject, listKeys, putObject, testClient, testEndpoint, testServer } from '../support/s3.js';
import {
  cleanUpTestFile,
  inParallel,
  isMounted,
  md5,
  md5File,
  MiB,
  mountBucket,
  runCli,
  tempDir,
  unmountAll,
  type CliMount,
} from './support/cli-mount.js';

let proxy: LatencyProxy;
let local: string;
/** 64 MiB of random bytes, also in the local file `bigFile`. */
let bigData: Buffer;
let bigFile: string;

beforeAll(async () => {
  proxy = await startLatencyProxy({ upstream: testEndpoint(), latencyMs: 0 });
  local = await tempDir('write-back-local');
  bigData = randomBytes(64 * MiB);
  bigFile = join(local, 'big.bin');
  await writeFile(bigFile, bigData);
}, 60_000);

beforeEach(() => {
  proxy.reset();
});

afterEach(async () => {
  // Held or refused uploads would keep an unmount draining forever.
  proxy.release();
  proxy.setFault(undefined);
  proxy.setLatency(0);
  await unmountAll();
}, 180_000);

afterAll(async () => {
  try {
    await cleanUpTestFile(local);
  } finally {
    await proxy?.close();
  }
}, 180_000);

/** The journal records under CACHE_DIR/journal (of every mount and bucket), as JSON text. */
async function journalRecords(cacheDir: string): Promise<Array<{ dir: string; text: string }>> {
  const root = join(cacheDir, 'journal');
  const records = [];
  for (const identity of await readdir(root).catch(() => [] as string[])) {
    for (const mount of await readdir(join(root, identity)).catch(() => [] as string[])) {
      const dir = join(root, identity, mount);
      // The folder goes once the mount has nothing left in it.
      const { entries } = await readJournalFolder(dir).catch(() => ({ entries: [] }));
      for (const entry of entries) records.push({ dir, text: JSON.stringify(entry.record) });
    }
  }
  return records;
}

async function logOf(mnt: CliMount): Promise<string> {
  return readFile(join(mnt.cacheDir, 's3mount.log'), 'utf8').catch(() => '');
}

/** The pid of the mount process serving `dir` (its pid file; the process title hides the arguments). */
async function mountPid(dir: string): Promise<number> {
  const pid = await readPidFile(await pidFilePath(dir));
  if (pid === undefined || !(await isMountProcess(pid))) throw new Error(`no running mount process for ${dir} (pid file: ${pid})`);
  return pid;
}

/**
 * Whether `pid` is gone, reaped included. A killed daemon is re-parented to pid 1, and
 * in containers whose pid 1 reaps slowly it stays a zombie for a second or two; until
 * then kill(pid, 0) still succeeds, so a pid check would take the mount for alive.
 */
async function isReaped(pid: number): Promise<boolean> {
  return readFile(`/proc/${pid}/stat`, 'utf8').then(
    () => false,
    () => true,
  );
}

/**
 * SIGKILL of the mount process, then the dead mount is detached (fusermount3 -uz). The
 * mount's auto_unmount helper may get there first: either way it ends unmounted.
 */
async function killMount(mnt: CliMount): Promise<void> {
  const pid = await mountPid(mnt.dir);
  process.kill(pid, 'SIGKILL');
  await waitUntil(`mount process ${pid} to die and be reaped`, () => isReaped(pid), 30_000);
  await waitUntil(
    `the dead mount on ${mnt.dir} to be gone`,
    async () => {
      if (await isMounted(mnt.dir)) await run('fusermount3', ['-uz', '--', mnt.dir]);
      return !(await isMounted(mnt.dir));
    },
    10_000,
  );
}

/** `s3mount unmount DIR` itself (no fusermount3 fallback): it must succeed and drain. */
async function drainUnmount(mnt: CliMount): Promise<void> {
  const result = await runCli(['unmount', mnt.dir], { timeoutMs: 300_000 });
  expect(result.code, result.stderr).toBe(0);
  expect(await mountedFuseTargets()).not.toContain(mnt.dir);
}

/**
 * A separate process that writes `source` to `path`, then fsync()s or fdatasync()s it
 * and prints {"sync":"ok"} or {"sync":"EIO"...}; with `hold`, it keeps the file open until
 * it reads a line on stdin, then closes it and prints {"close":...}.
 */
const SYNC_WRITER = `
const fs = require('node:fs');
const [path, source, how, hold] = process.argv.slice(1);
const say = (o) => fs.writeSync(1, JSON.stringify(o) + '\\n');
const data = fs.readFileSync(source);
const fd = fs.openSync(path, 'w');
for (let at = 0; at < data.length; at += 1048576) fs.writeSync(fd, data, at, Math.min(1048576, data.length - at), at);
try {
  (how === 'fdatasync' ? fs.fdatasyncSync : fs.fsyncSync)(fd);
  say({ sync: 'ok' });
} catch (err) {
  say({ sync: err.code, errno: -err.errno });
}
if (hold === 'hold') fs.readSync(0, Buffer.alloc(1));
try {
  fs.closeSync(fd);
  say({ close: 'ok' });
} catch (err) {
  say({ close: err.code, errno: -err.errno });
}
`;

interface SyncWriter {
  /** The next JSON line the writer prints. */
  next(): Promise<Record<string, unknown>>;
  /** Lets a holding writer close; resolves with its exit code once it has exited. */
  finish(): Promise<number | null>;
}

function startSyncWriter(path: string, source: string, how: 'fsync' | 'fdatasync', hold: boolean): SyncWriter {
  const child = spawn(process.execPath, ['-e', SYNC_WRITER, path, source, how, hold ? 'hold' : 'close'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  // A writer that does not hold has exited by finish(): its stdin is a closed pipe.
  child.stdin.on('error', () => {});
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
  return {
    async next() {
      const line = await lines.next();
      if (line.done) throw new Error(`the writer of ${path} exited with code ${await exited} before printing`);
      return JSON.parse(line.value) as Record<string, unknown>;
    },
    async finish() {
      child.stdin.end('\n');
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

describe('durability', () => {
  it(
    'a mount SIGKILLed with uploads pending: the next mount with the same cache dir uploads every file, with its mode and mtime',
    { timeout: 300_000 },
    async () => {
      const bucket = await createTestBucket('wb-kill');
      // Slow uploads, one at a time; multipart completions wait at the proxy, so the
      // 64 MiB file (and the 9 MiB one) cannot be complete in the bucket when the mount
      // dies: a half-done multipart upload is left for recovery to finish or abort.
      proxy.setLatency(30);
      proxy.hold(['CompleteMultipart']);
      const mnt = await mountBucket(bucket, { endpoint: proxy.endpoint, args: ['--upload-concurrency', '1'] });

      const MODES = [0o600, 0o640, 0o604, 0o755, 0o700, 0o444, 0o664, 0o750];
      const sizeOf = (i: number): number => {
        if (i === 120) return 6 * MiB; // a single PUT just below the 8 MiB part size
        if (i === 150) return 9 * MiB; // multipart
        if (i % 50 === 0) return 0;
        if (i % 37 === 5) return 100_000 + i * 3000;
        return (i * 7919) % 20_000;
      };
      const files = Array.from({ length: 200 }, (_, i) => ({
        name: `kill/d${i % 4}/f-${i}.bin`,
        data: randomBytes(sizeOf(i)),
        mode: i % 4 === 1 ? MODES[(i >> 2) % MODES.length] : undefined,
        // Distinct mtimes to the nanosecond: "@SECONDS.NANOSECONDS" for touch -d.
        mtime: i % 3 === 0 ? { sec: 1_565_157_904 + i * 3601, nsec: (i * 7_919_113) % 1_000_000_000 } : undefined,
      }));
      await runOk('mkdir', ['-p', ...[0, 1, 2, 3].map((d) => mnt.path(`kill/d${d}`))]);
      await inParallel(files, 8, (f) => writeFile(mnt.path(f.name), f.data));
      const quote = (path: string) => `'${path.replace(/'/g, `'\\''`)}'`;
      const script = files
        .flatMap((f) => [
          f.mode === undefined ? [] : [`chmod ${f.mode.toString(8)} ${quote(mnt.path(f.name))}`],
          f.mtime === undefined ? [] : [`touch -m -d @${f.mtime.sec}.${String(f.mtime.nsec).padStart(9, '0')} ${quote(mnt.path(f.name))}`],
        ])
        .flat()
        .join('\n');
      await runOk('sh', ['-e', '-s'], { input: `${script}\n` });
      // The 64 MiB file last.
      await runOk('cp', [bigFile, mnt.path('kill/big.bin')]);
      expect(await headObject(bucket, 'kill/big.bin')).toBeUndefined();

      // What the mount showed before it died: the files' attributes to keep.
      const before = new Map<string, { mode: number; mtimeNs: bigint; size: bigint }>();
      for (const f of files) {
        const st = await stat(mnt.path(f.name), { bigint: true });
        before.set(f.name, { mode: Number(st.mode & 0o7777n), mtimeNs: st.mtimeNs, size: st.size });
        expect(st.size, f.name).toBe(BigInt(f.data.length));
        if (f.mode !== undefined) expect(Number(st.mode & 0o7777n), f.name).toBe(f.mode);
        if (f.mtime !== undefined) expect(st.mtimeNs, f.name).toBe(BigInt(f.mtime.sec) * 1_000_000_000n + BigInt(f.mtime.nsec));
      }

      await killMount(mnt);
      // Requests the dead mount left at the proxy are dropped, never completed for it.
      proxy.release();
      proxy.setLatency(0);
      expect((await journalRecords(mnt.cacheDir)).length).toBeGreaterThan(0);

      // The same mount point, the same --cache-dir, the same options.
      await mnt.remount();
      // Recovery is done before the mount is ready.
      expect(await logOf(mnt)).toMatch(/recover/i);
      const missing: string[] = [];
      await inParallel([...files, { name: 'kill/big.bin', data: bigData }], 16, async (f) => {
        const object = await headObject(bucket, f.name);
        if (object === undefined) missing.push(f.name);
      });
      expect(missing).toEqual([]);
      await inParallel(files, 16, async (f) => {
        expect(md5(await getObjectBytes(bucket, f.name)), f.name).toBe(md5(f.data));
      });
      expect(md5(await getObjectBytes(bucket, 'kill/big.bin'))).toBe(md5(bigData));
      expect(await journalRecords(mnt.cacheDir)).toEqual([]);

      // Through the new mount, i.e. from the objects' metadata.
      for (const f of files) {
        const st = await stat(mnt.path(f.name), { bigint: true });
        const was = before.get(f.name);
        expect({ mode: Number(st.mode & 0o7777n), mtimeNs: st.mtimeNs, size: st.size }, f.name).toEqual(was);
      }
      expect(await md5File(mnt.path('kill/big.bin'))).toBe(md5(bigData));

      if (testServer() === 'rgw') {
        // s3rver has no ListMultipartUploads (501).
        const uploads = await testClient().send(new ListMultipartUploadsCommand({ Bucket: bucket }));
        expect(uploads.Uploads ?? []).toEqual([]);
      }
    },
  );

  it('fsync and fdatasync return once the object is in the bucket (async mode)', { timeout: 180_000 }, async () => {
    const bucket = await createTestBucket('wb-fsync');
    // Slow uploads: a background upload would not be done by the time the writer
    // reports, unless fsync waited for it.
    proxy.setLatency(50, UPLOAD_KINDS);
    const mnt = await mountBucket(bucket, { endpoint: proxy.endpoint });
    const cases = [
      { name: 'single.bin', size: 300_000, how: 'fsync' as const },
      { name: 'multipart.bin', size: 20 * MiB + 12_345, how: 'fdatasync' as const },
    ];
    for (const c of cases) {
      const data = randomBytes(c.size);
      const source = join(local, `fsync-${c.name}`);
      await writeFile(source, data);
      const writer = startSyncWriter(mnt.path(c.name), source, c.how, true);
      let finished = false;
      try {
        expect(await writer.next(), c.how).toEqual({ sync: 'ok' });
        // The file is still open: only fsync can have put the object there.
        const object = await getObjectBytes(bucket, c.name);
        expect(object.length, c.name).toBe(c.size);
        expect(md5(object), c.name).toBe(md5(data));
        finished = true;
        expect(await writer.finish()).toBe(0);
        expect(await writer.next()).toEqual({ close: 'ok' });
      } finally {
        if (!finished) await writer.finish();
      }
    }
  });

  it('s3mount unmount drains pending uploads before it returns', { timeout: 180_000 }, async () => {
    const bucket = await createTestBucket('wb-drain');
    // 300 ms per upload, two at a time: 50 files need at least 7.5 s to reach the bucket.
    proxy.setLatency(300, UPLOAD_KINDS);
    const mnt = await mountBucket(bucket, { endpoint: proxy.endpoint, args: ['--upload-concurrency', '2'] });
    const files = Array.from({ length: 50 }, (_, i) => ({ name: `drain-${i}.bin`, data: randomBytes(1000 + i * 2000) }));
    await Promise.all(files.map((f) => writeFile(mnt.path(f.name), f.data)));
    // Something is left to drain.
    expect((await listKeys(bucket)).length).toBeLessThan(files.length);

    await drainUnmount(mnt);
    expect((await listKeys(bucket)).sort()).toEqual(files.map((f) => f.name).sort());
    await inParallel(files, 16, async (f) => {
      expect(md5(await getObjectBytes(bucket, f.name)), f.name).toBe(md5(f.data));
    });
    expect(await journalRecords(mnt.cacheDir)).toEqual([]);
  });

  it('an upload refused by the server fails fsync with EIO, stays in the journal, and is uploaded once the server is back', { timeout: 300_000 }, async () => {
    const bucket = await createTestBucket('wb-errors');
    const mnt = await mountBucket(bucket, { endpoint: proxy.endpoint });
    proxy.setFault({ kinds: UPLOAD_KINDS, status: 503, code: 'ServiceUnavailable' });
    const cases = [
      { name: 'refused.bin', data: randomBytes(200_000) },
      { name: 'refused-multipart.bin', data: randomBytes(12 * MiB) },
    ];
    for (const c of cases) {
      const source = join(local, `errors-${c.name}`);
      await writeFile(source, c.data);
      const writer = startSyncWriter(mnt.path(c.name), source, 'fsync', false);
      expect(await writer.next(), c.name).toEqual({ sync: 'EIO', errno: 5 });
      // What close says after that is not specified; it must not hang.
      await writer.next();
      await writer.finish();
      expect(await headObject(bucket, c.name)).toBeUndefined();
    }
    expect(proxy.stats().faulted).toBeGreaterThan(0);
    const pending = await journalRecords(mnt.cacheDir);
    for (const c of cases) expect(pending.some((r) => r.text.includes(c.name)), `journal record of ${c.name}`).toBe(true);

    // The server is back: retried in the background, without a remount.
    proxy.setFault(undefined);
    for (const c of cases) {
      await waitUntil(`${c.name} in the bucket`, async () => (await headObject(bucket, c.name)) !== undefined, 180_000);
      expect(md5(await getObjectBytes(bucket, c.name)), c.name).toBe(md5(c.data));
    }
    await waitUntil('an empty journal', async () => (await journalRecords(mnt.cacheDir)).length === 0, 30_000);
  });

  it('uploads the server denies (403) do not hold up s3mount unmount: they stay in the journal for the next mount', { timeout: 120_000 }, async () => {
    const bucket = await createTestBucket('wb-denied');
    const mnt = await mountBucket(bucket, { endpoint: proxy.endpoint });
    proxy.setFault({ kinds: UPLOAD_KINDS, status: 403, code: 'AccessDenied' });
    const data = randomBytes(300_000);
    const source = join(local, 'denied.bin');
    await writeFile(source, data);
    await runOk('cp', [source, mnt.path('denied.bin')]);
    await waitUntil('a refused upload', async () => proxy.stats().faulted > 0, 30_000);

    const result = await runCli(['unmount', mnt.dir], { timeoutMs: 60_000 });
    expect(result.code, result.stderr).toBe(0);
    expect(await mountedFuseTargets()).not.toContain(mnt.dir);
    expect(await logOf(mnt)).toMatch(/refused the upload of 1 file\(s\) \(access denied\): denied\.bin; they stay in the journal/);
    expect(await headObject(bucket, 'denied.bin')).toBeUndefined();
    expect((await journalRecords(mnt.cacheDir)).some((r) => r.text.includes('denied.bin'))).toBe(true);

    // Allowed again: the next mount with the same --cache-dir uploads it before serving.
    proxy.setFault(undefined);
    await mnt.remount();
    expect(md5(await getObjectBytes(bucket, 'denied.bin'))).toBe(md5(data));
    expect(await journalRecords(mnt.cacheDir)).toEqual([]);
  });
});

describe('big objects', () => {
  /** bigData with `patch` at `offset`, and the same edit through the mount with dd conv=notrunc,fsync. */
  async function editInPlace(mnt: CliMount, expected: Buffer, offset: number): Promise<void> {
    const patch = randomBytes(4096);
    patch.copy(expected, offset);
    const patchFile = join(local, `patch-${offset}.bin`);
    await writeFile(patchFile, patch);
    await runOk('dd', [`if=${patchFile}`, `of=${mnt.path('big.bin')}`, 'bs=4096', `seek=${offset / 4096}`, 'count=1', 'conv=notrunc,fsync', 'status=none']);
  }

  it('a 4 KiB write into the middle of a 64 MiB object copies the unchanged parts server-side', { timeout: 240_000 }, async () => {
    const bucket = await createTestBucket('wb-random');
    await putObject(bucket, 'big.bin', bigData);
    const mnt = await mountBucket(bucket, { endpoint: proxy.endpoint, args: ['--part-size', '8M'] });
    const expected = Buffer.from(bigData);
    proxy.reset();
    await editInPlace(mnt, expected, 30 * MiB);
    // After fsync: in the bucket.
    expect(md5(await getObjectBytes(bucket, 'big.bin'))).toBe(md5(expected));
    await drainUnmount(mnt);
    expect(md5(await getObjectBytes(bucket, 'big.bin'))).toBe(md5(expected));

    // Everything the edit cost, the drain included (nothing read the file through the
    // mount). 8 parts of 8 MiB, one of them touched.
    const s = proxy.stats();
    const summary = JSON.stringify(s);
    expect(s.requests.UploadPartCopy, summary).toBeGreaterThanOrEqual(6);
    expect(s.requests.UploadPart, summary).toBeLessThanOrEqual(2);
    expect(s.requests.PUT, summary).toBe(0);
    // Neither downloaded nor uploaded whole: at most a few parts' worth each way.
    expect(s.bytesDown, summary).toBeLessThan(24 * MiB);
    expect(s.bytesUp, summary).toBeLessThan(24 * MiB);
  });

  it('where the server answers UploadPartCopy with 501, the changed object is still exact and the log says so once', { timeout: 240_000 }, async () => {
    const bucket = await createTestBucket('wb-no-copy');
    await putObject(bucket, 'big.bin', bigData);
    proxy.setFault(NO_UPLOAD_PART_COPY);
    const mnt = await mountBucket(bucket, { endpoint: proxy.endpoint, args: ['--part-size', '8M'] });
    const expected = Buffer.from(bigData);
    await editInPlace(mnt, expected, 30 * MiB);
    expect(md5(await getObjectBytes(bucket, 'big.bin'))).toBe(md5(expected));
    // A second edit, in another part: still exact, still one line in the log.
    await editInPlace(mnt, expected, 50 * MiB + 8192);
    expect(md5(await getObjectBytes(bucket, 'big.bin'))).toBe(md5(expected));
    await drainUnmount(mnt);
    expect(md5(await getObjectBytes(bucket, 'big.bin'))).toBe(md5(expected));

    const s = proxy.stats();
    expect(s.requests.UploadPartCopy, JSON.stringify(s)).toBeGreaterThanOrEqual(1);
    expect(s.faulted, JSON.stringify(s)).toBe(s.requests.UploadPartCopy);
    const lines = (await logOf(mnt)).split('\n').filter((line) => line.includes('UploadPartCopy'));
    expect(lines).toHaveLength(1);
  });

  it('with --part-size 5M a 64 MiB file is written and renamed with mv', { timeout: 240_000 }, async () => {
    const bucket = await createTestBucket('wb-parts');
    const mnt = await mountBucket(bucket, { endpoint: proxy.endpoint, args: ['--part-size', '5M'] });
    proxy.reset();
    await runOk('cp', [bigFile, mnt.path('big.bin')]);
    await runOk('mv', [mnt.path('big.bin'), mnt.path('renamed.bin')]);
    expect(await runOk('ls', [mnt.dir])).toBe('renamed.bin\n');
    expect(await md5File(mnt.path('renamed.bin'))).toBe(md5(bigData));
    await drainUnmount(mnt);

    expect(await listKeys(bucket)).toEqual(['renamed.bin']);
    const object = await getObjectBytes(bucket, 'renamed.bin');
    expect(object.length).toBe(bigData.length);
    expect(md5(object)).toBe(md5(bigData));
    // 64 MiB in parts of 5 MiB: 13 parts (12 full ones and 4 MiB); 8 MiB parts would be 8.
    const s = proxy.stats();
    expect(s.requests.UploadPart, JSON.stringify(s)).toBeGreaterThanOrEqual(13);
  });
});

describe('read-your-writes', () => {
  it('stat, cat and ls show a closed file before it is in the bucket', { timeout: 120_000 }, async () => {
    const bucket = await createTestBucket('wb-ryw');
    await putObject(bucket, 'old.txt', 'old content\n');
    // --stat-ttl 0: every stat asks the server again, which still has the old state.
    const mnt = await mountBucket(bucket, { endpoint: proxy.endpoint, args: ['--stat-ttl', '0'] });
    // Uploads wait at the proxy until released: nothing new can reach the bucket.
    proxy.hold([...UPLOAD_KINDS]);
    const data = randomBytes(300_000);
    await writeFile(mnt.path('new.bin'), data);
    await runOk('sh', ['-c', 'printf "new content, longer\\n" > "$1"', 'sh', mnt.path('old.txt')]);
    await runOk('touch', ['-m', '-d', '@1600000000.123456789', mnt.path('new.bin')]);

    const check = async (when: string): Promise<void> => {
      expect(await runOk('stat', ['-c', '%s %.9Y', mnt.path('new.bin')]), when).toBe('300000 1600000000.123456789\n');
      expect(await runOk('stat', ['-c', '%s', mnt.path('old.txt')]), when).toBe('20\n');
      expect((await runOk('md5sum', [mnt.path('new.bin')])).split(' ')[0], when).toBe(md5(data));
      expect(await runOk('cat', [mnt.path('old.txt')]), when).toBe('new content, longer\n');
      expect(await runOk('ls', [mnt.dir]), when).toBe('new.bin\nold.txt\n');
    };
    await check('pending');
    expect(await headObject(bucket, 'new.bin')).toBeUndefined();
    expect((await getObjectBytes(bucket, 'old.txt')).toString()).toBe('old content\n');

    proxy.release();
    await waitUntil('new.bin in the bucket', async () => (await headObject(bucket, 'new.bin')) !== undefined, 60_000);
    await waitUntil('old.txt replaced in the bucket', async () => (await getObjectBytes(bucket, 'old.txt')).toString() !== 'old content\n', 60_000);
    expect(md5(await getObjectBytes(bucket, 'new.bin'))).toBe(md5(data));
    expect((await getObjectBytes(bucket, 'old.txt')).toString()).toBe('new content, longer\n');
    await check('uploaded');
  });
});
