// End to end: the CLI's promises (docs/cli.md) — read-only mounts, one clear line when
// a mount cannot be made (and nothing left behind), unmount of a busy mount, and the
// mount process's lifecycle under signals, in the background and the foreground.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { access, chmod, mkdir, open, readdir, readFile, readlink, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mountedFuseTargets, run, runOk, waitUntil } from '../support/run.js';
import { TEST_CREDENTIALS, createTestBucket, getObjectBytes, listKeys, putObject, testEndpoint } from '../support/s3.js';
import {
  BIN,
  cliEnv,
  expectNothingMounted,
  expectPlainEmptyDir,
  forceUnmount,
  isAlive,
  isMounted,
  mountArgs,
  mountBucket,
  runCli,
  tempDir,
  trackMountpoint,
  unmountAll,
  type CliMount,
} from './support/cli-mount.js';
import { closedPort } from '../support/net.js';

let bucket: string;
/** Temporary directories of this file that are not mount points (removed at the end). */
const scratch: string[] = [];
/** Processes this file started that may still run (killed, by pid, in afterEach). */
const children = new Set<ChildProcess>();

beforeAll(async () => {
  bucket = await createTestBucket('e2e-cli');
  await putObject(bucket, 'hello.txt', 'hello from the bucket\n');
  await putObject(bucket, 'dir/inside.txt', 'inside\n');
}, 60_000);

afterEach(async () => {
  // A failed test must not leave a mount or a mount process behind.
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
  await unmountAll();
}, 120_000);

afterAll(async () => {
  try {
    await unmountAll();
  } finally {
    try {
      await expectNothingMounted();
    } finally {
      // A scratch directory may hold a mount point: never rm -r anything still mounted.
      const targets = await mountedFuseTargets();
      for (const dir of scratch) {
        if (!targets.some((t) => t === dir || t.startsWith(`${dir}/`))) await rm(dir, { recursive: true, force: true });
      }
    }
  }
}, 120_000);

/** A fresh directory for a test to use as a mount point (rmdir'd by the test). */
async function freshMountpoint(): Promise<string> {
  const dir = await tempDir('mp');
  trackMountpoint(dir);
  return dir;
}

async function scratchDir(label: string): Promise<string> {
  const dir = await tempDir(label);
  scratch.push(dir);
  return dir;
}

/** Exit code not 0 and exactly one line on stderr, "s3mount: ...", matching `pattern`. */
function expectOneLineFailure(result: { code: number | null; stderr: string; stdout: string }, pattern: RegExp): void {
  expect(result.stderr).toMatch(/^s3mount: [^\n]+\n$/);
  expect(result.stderr).toMatch(pattern);
  expect(result.code).not.toBe(0);
  expect(result.code).not.toBeNull();
}

/** `text` as a literal in a RegExp. */
function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}


/** Where docs/cli.md says the mount process keeps its pid file. */
async function pidFileOf(mountpoint: string): Promise<string> {
  const name = `${createHash('sha256').update(mountpoint).digest('hex').slice(0, 32)}.pid`;
  const writable = (path: string) =>
    access(path, constants.W_OK).then(
      () => true,
      () => false,
    );
  const uid = process.getuid?.() ?? 0;
  if (uid === 0 && ((await writable('/run/s3mount')) || (await writable('/run')))) return join('/run/s3mount', name);
  if (process.env.XDG_RUNTIME_DIR) return join(process.env.XDG_RUNTIME_DIR, 's3mount', name);
  return join(process.env.TMPDIR || '/tmp', `s3mount-${uid}`, name);
}

async function holdsFuseDevice(pid: number): Promise<boolean> {
  const fds = await readdir(`/proc/${pid}/fd`);
  const targets = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')));
  return targets.includes('/dev/fuse');
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Spawns the CLI as a child of this process; its exit code is ours to see. */
function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}, extraFd = false) {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: Object.fromEntries(
      Object.entries({ ...process.env, TZ: 'UTC', LC_ALL: 'C', ...cliEnv(env) }).filter(([, v]) => v !== undefined),
    ),
    stdio: extraFd ? ['ignore', 'pipe', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, exited, stderr: () => stderr };
}

describe('read-only mounts', () => {
  let mnt: CliMount;
  beforeAll(async () => {
    mnt = await mountBucket(bucket, { args: ['--read-only'] });
  }, 60_000);
  afterAll(async () => {
    await mnt.unmount();
  }, 60_000);

  it('reads, and refuses every change with "Read-only file system"', { timeout: 30_000 }, async () => {
    expect(await runOk('cat', [mnt.path('hello.txt')])).toBe('hello from the bucket\n');
    expect(await runOk('cat', [mnt.path('dir/inside.txt')])).toBe('inside\n');
    const attempts: Array<[string, string[]]> = [
      ['sh', ['-c', 'echo new > "$1"', 'sh', mnt.path('new.txt')]],
      ['sh', ['-c', 'echo more >> "$1"', 'sh', mnt.path('hello.txt')]],
      ['touch', [mnt.path('hello.txt')]],
      ['mkdir', [mnt.path('newdir')]],
      ['rm', [mnt.path('hello.txt')]],
      ['mv', [mnt.path('hello.txt'), mnt.path('moved.txt')]],
      ['chmod', ['600', mnt.path('hello.txt')]],
      ['ln', ['-s', 'hello.txt', mnt.path('link')]],
      ['truncate', ['-s', '0', mnt.path('hello.txt')]],
    ];
    for (const [tool, args] of attempts) {
      const result = await run(tool, args);
      expect(result.code, `${tool} ${args.join(' ')}`).not.toBe(0);
      expect(result.stderr, `${tool} ${args.join(' ')}`).toContain('Read-only file system');
    }
    await expect(writeFile(mnt.path('node.txt'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
    await expect(mkdir(mnt.path('node-dir'))).rejects.toMatchObject({ code: 'EROFS' });
    // Nothing changed in the bucket.
    const keys = await listKeys(bucket);
    for (const key of ['new.txt', 'newdir/', 'moved.txt', 'link', 'node.txt', 'node-dir/']) expect(keys).not.toContain(key);
    expect(keys).toContain('hello.txt');
    expect((await getObjectBytes(bucket, 'hello.txt')).toString()).toBe('hello from the bucket\n');
  });
});

describe('mount failures: one line on stderr, nothing left mounted', () => {
  it('bucket missing', { timeout: 30_000 }, async () => {
    const dir = await freshMountpoint();
    const result = await runCli(mountArgs(`${bucket}-missing`, dir, await scratchDir('cache')));
    expectOneLineFailure(result, new RegExp(`^s3mount: bucket ${bucket}-missing does not exist`));
    await expectPlainEmptyDir(dir);
    await rmdir(dir);
  });

  it('wrong secret key: access denied', { timeout: 30_000 }, async () => {
    const dir = await freshMountpoint();
    const wrong = `${TEST_CREDENTIALS.secretAccessKey}-wrong`;
    const result = await runCli(mountArgs(bucket, dir, await scratchDir('cache')), { env: { AWS_SECRET_ACCESS_KEY: wrong } });
    // s3rver and RGW with its own keys answer SignatureDoesNotMatch; RGW with LDAP
    // authentication on (as the test server runs) answers AccessDenied.
    expectOneLineFailure(
      result,
      new RegExp(`^s3mount: access denied to bucket ${bucket} at ${escape(testEndpoint())} \\((SignatureDoesNotMatch|AccessDenied)\\): check the credentials`),
    );
    expect(result.stderr).not.toContain(wrong);
    await expectPlainEmptyDir(dir);
    await rmdir(dir);
  });

  it('endpoint unreachable (a closed loopback port): fails within 15 s', { timeout: 30_000 }, async () => {
    const dir = await freshMountpoint();
    const endpoint = `http://127.0.0.1:${await closedPort()}`;
    const args = [bucket, dir, '--endpoint', endpoint, '--path-style', '--cache-dir', await scratchDir('cache')];
    const result = await runCli(args, { timeoutMs: 25_000 });
    expectOneLineFailure(result, new RegExp(`^s3mount: cannot reach ${escape(endpoint)}: ECONNREFUSED`));
    expect(result.ms).toBeLessThan(15_000);
    await expectPlainEmptyDir(dir);
    await rmdir(dir);
  });

  it('mount point missing', { timeout: 30_000 }, async () => {
    const parent = await scratchDir('parent');
    const dir = join(parent, 'missing');
    trackMountpoint(dir);
    const result = await runCli(mountArgs(bucket, dir, await scratchDir('cache')));
    expectOneLineFailure(result, new RegExp(`^s3mount: mount point ${dir} does not exist: create it with mkdir -p ${dir}\\n$`));
    expect(await exists(dir)).toBe(false);
    expect(await isMounted(dir)).toBe(false);
  });

  it('mount point is a file', { timeout: 30_000 }, async () => {
    const parent = await scratchDir('parent');
    const file = join(parent, 'a-file');
    await writeFile(file, 'not a directory\n');
    trackMountpoint(file);
    const result = await runCli(mountArgs(bucket, file, await scratchDir('cache')));
    expectOneLineFailure(result, new RegExp(`^s3mount: mount point ${file} is not a directory`));
    expect(await readFile(file, 'utf8')).toBe('not a directory\n');
    expect(await isMounted(file)).toBe(false);
  });

  it('mount point already mounted: the first mount is left as it was', { timeout: 60_000 }, async () => {
    const first = await mountBucket(bucket);
    const result = await runCli(mountArgs(bucket, first.dir, await scratchDir('cache')));
    expectOneLineFailure(result, new RegExp(`^s3mount: ${first.dir} is already mounted`));
    // Still mounted once, and still working.
    expect((await readFile('/proc/mounts', 'utf8')).split('\n').filter((l) => l.split(' ')[1] === first.dir)).toHaveLength(1);
    expect(await runOk('cat', [first.path('hello.txt')])).toBe('hello from the bucket\n');
    await first.unmount();
    expect(await isMounted(first.dir)).toBe(false);
  });
});

describe('credentials', () => {
  it('--passwd-file (s3fs format, relative paths): the bucket\'s line wins; a file others can read is refused', { timeout: 60_000 }, async () => {
    const work = await scratchDir('passwd');
    const dir = join(work, 'mnt');
    await mkdir(dir);
    trackMountpoint(dir);
    const passwd = join(work, 'passwd');
    const { accessKeyId, secretAccessKey } = TEST_CREDENTIALS;
    await writeFile(passwd, `# s3fs format\nnobody:wrong\n${bucket}:${accessKeyId}:${secretAccessKey}\n`, { mode: 0o600 });
    const noEnv = { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined };
    // Relative mount point, cache dir and passwd file: the background process works from /.
    const args = [bucket, 'mnt', '--endpoint', testEndpoint(), '--path-style', '--cache-dir', 'cache', '--passwd-file', 'passwd'];
    try {
      const mounted = await runCli(args, { env: noEnv, cwd: work });
      expect(mounted.stderr).toBe('');
      expect(mounted.code).toBe(0);
      expect(await runOk('cat', [join(dir, 'hello.txt')])).toBe('hello from the bucket\n');
      expect((await runCli(['unmount', 'mnt'], { cwd: work })).code).toBe(0);
      expect(await isMounted(dir)).toBe(false);

      await chmod(passwd, 0o644);
      const refused = await runCli(args, { env: noEnv, cwd: work });
      expectOneLineFailure(refused, new RegExp(`^s3mount: the passwd file ${passwd} is readable by others: chmod 600 ${passwd}\\n$`));
      await expectPlainEmptyDir(dir);
    } finally {
      await forceUnmount(dir);
    }
  });

  it('--access-key-id takes the secret from the environment and never shows in ps', { timeout: 60_000 }, async () => {
    const dir = await freshMountpoint();
    const args = mountArgs(bucket, dir, await scratchDir('cache'), ['--access-key-id', TEST_CREDENTIALS.accessKeyId]);
    try {
      const mounted = await runCli(args, { env: { AWS_ACCESS_KEY_ID: undefined } });
      expect(mounted.stderr).toBe('');
      expect(mounted.code).toBe(0);
      expect(await runOk('cat', [join(dir, 'hello.txt')])).toBe('hello from the bucket\n');
      const pid = Number((await readFile(await pidFileOf(dir), 'utf8')).trim());
      expect(await runOk('ps', ['-o', 'args=', '-p', String(pid)])).toBe('s3mount\n');
    } finally {
      await forceUnmount(dir);
    }
    await rmdir(dir);
  });
});

describe('lifecycle', () => {
  it('unmount of a busy mount fails with the "busy" message and leaves it mounted', { timeout: 60_000 }, async () => {
    const mnt = await mountBucket(bucket);
    const pidFile = await pidFileOf(mnt.dir);
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    expect(await isAlive(pid)).toBe(true);

    const reader = await open(mnt.path('hello.txt'), 'r');
    let busy;
    try {
      busy = await runCli(['unmount', mnt.dir]);
      expect(await isMounted(mnt.dir)).toBe(true);
      // The open file still reads.
      const { bytesRead, buffer } = await reader.read(Buffer.alloc(100), 0, 100, 0);
      expect(buffer.subarray(0, bytesRead).toString()).toBe('hello from the bucket\n');
    } finally {
      await reader.close();
    }
    expect(busy.stderr).toBe(
      `s3mount: ${mnt.dir} is busy: close the files open under it (fuser -vm ${mnt.dir} shows them) and try again\n`,
    );
    expect(busy.code).toBe(1);

    const done = await runCli(['unmount', mnt.dir]);
    expect(done.stderr).toBe('');
    expect(done.code).toBe(0);
    expect(await isMounted(mnt.dir)).toBe(false);
    // unmount returns once the mount process has drained and exited.
    expect(await isAlive(pid)).toBe(false);
    expect(await exists(pidFile)).toBe(false);
    await mnt.unmount();
  });

  it('SIGTERM to a background mount process unmounts cleanly', { timeout: 60_000 }, async () => {
    const mnt = await mountBucket(bucket, { args: ['--log-level', 'info'] });
    const pidFile = await pidFileOf(mnt.dir);
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    // ps shows every s3mount process only as "s3mount"; this one holds the FUSE device.
    expect((await readFile(`/proc/${pid}/cmdline`, 'utf8')).replace(/\0+$/, '')).toBe('s3mount');
    expect(await holdsFuseDevice(pid)).toBe(true);
    await runOk('sh', ['-c', 'echo "written before SIGTERM" > "$1"', 'sh', mnt.path('sigterm.txt')]);

    process.kill(pid, 'SIGTERM');
    await waitUntil('the mount to go', async () => !(await isMounted(mnt.dir)), 30_000);
    await waitUntil('the mount process to exit', async () => !(await isAlive(pid)), 30_000);
    expect(await exists(pidFile)).toBe(false);
    expect((await getObjectBytes(bucket, 'sigterm.txt')).toString()).toBe('written before SIGTERM\n');
    // A clean stop: the log says so and holds no error.
    // The background mount's log: CACHE_DIR/s3mount.log, mode 0600, lines with the pid.
    expect((await stat(join(mnt.cacheDir, 's3mount.log'))).mode & 0o777).toBe(0o600);
    const log = await readFile(join(mnt.cacheDir, 's3mount.log'), 'utf8');
    expect(log).toMatch(new RegExp(`\\[${pid}\\] s3mount info: received SIGTERM`));
    expect(log).not.toMatch(/ s3mount error: /);
    await expectPlainEmptyDir(mnt.dir);
    await mnt.unmount();
  });

  it('a mount process killed with SIGKILL leaves no mount behind; the next mount there works', { timeout: 60_000 }, async () => {
    const mnt = await mountBucket(bucket);
    const pidFile = await pidFileOf(mnt.dir);
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    process.kill(pid, 'SIGKILL');
    // libfuse's auto_unmount helper takes the mount away when its process dies.
    await waitUntil('the mount to go', async () => !(await isMounted(mnt.dir)), 15_000);
    await waitUntil('the mount process to die', async () => !(await isAlive(pid)), 15_000);
    const unmount = await runCli(['unmount', mnt.dir]);
    expect(unmount.stderr).toBe(`s3mount: ${mnt.dir} is not mounted\n`);
    expect(unmount.code).toBe(1);
    // ...and the stale pid file is gone with it.
    expect(await exists(pidFile)).toBe(false);
    await expectPlainEmptyDir(mnt.dir);
    await mnt.remount();
    expect(await runOk('cat', [mnt.path('hello.txt')])).toBe('hello from the bucket\n');
    await mnt.unmount();
  });

  it('the background mount process exits 0 after SIGTERM', { timeout: 60_000 }, async () => {
    // Started the way the launcher starts it (src/cli/daemon.ts: report pipe on fd 3),
    // but as this process's child, so that its exit code can be seen.
    const dir = await freshMountpoint();
    const mount = spawnCli(mountArgs(bucket, dir, await scratchDir('cache')), { S3MOUNT_DAEMON_READY_FD: '3' }, true);
    const report = mount.child.stdio[3] as Readable;
    let received = '';
    report.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
    await waitUntil('the ready report', () => received.includes('\n') || mount.child.exitCode !== null, 30_000);
    expect(received).toBe('ready\n');
    expect(await isMounted(dir)).toBe(true);
    expect(Number((await readFile(await pidFileOf(dir), 'utf8')).trim())).toBe(mount.child.pid);

    mount.child.kill('SIGTERM');
    expect(await mount.exited).toEqual({ code: 0, signal: null });
    expect(await isMounted(dir)).toBe(false);
    await expectPlainEmptyDir(dir);
    await rmdir(dir);
  });

  it('-f stays in the foreground; SIGINT unmounts and exits 0', { timeout: 60_000 }, async () => {
    const dir = await freshMountpoint();
    const mount = spawnCli(mountArgs(bucket, dir, await scratchDir('cache'), ['-f']));
    try {
      await waitUntil('the foreground mount', async () => (await isMounted(dir)) || mount.child.exitCode !== null, 30_000);
      expect(await isMounted(dir)).toBe(true);
      expect(mount.child.exitCode).toBeNull();
      expect(await runOk('cat', [join(dir, 'hello.txt')])).toBe('hello from the bucket\n');
      await runOk('sh', ['-c', 'echo foreground > "$1"', 'sh', join(dir, 'fg.txt')]);

      mount.child.kill('SIGINT');
      expect(await mount.exited).toEqual({ code: 0, signal: null });
      expect(mount.stderr()).not.toMatch(/error/i);
      expect(await isMounted(dir)).toBe(false);
      expect((await getObjectBytes(bucket, 'fg.txt')).toString()).toBe('foreground\n');
      await expectPlainEmptyDir(dir);
    } finally {
      await forceUnmount(dir);
    }
    await rmdir(dir);
  });
});
