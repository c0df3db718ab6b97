// End to end: /etc/fstab lines, mounted by mount(8) itself (`mount -T FILE MOUNTPOINT`)
// and unmounted with umount, in both forms docs/fstab.md shows:
//   type fuse.s3mount: mount(8) -> mount.fuse3 -> `s3mount SOURCE MOUNTPOINT -o OPTIONS`
//   type s3mount:      mount(8) -> /sbin/mount.s3mount SOURCE MOUNTPOINT [-sfnv] -o OPTIONS
// The test installs the two commands where mount(8) and mount.fuse3 look for them
// (mount(8) runs helpers without PATH: mount.fuse3's shell then searches its default
// path, which starts with /usr/local/sbin) and removes them afterwards.
import { lstat, mkdir, readFile, readlink, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pidFilePath } from '../../src/cli/pidfile.js';
import { run, waitUntil, type RunResult } from '../support/run.js';
import { TEST_CREDENTIALS, createTestBucket, getObjectBytes, putObject, testEndpoint } from '../support/s3.js';
import {
  ROOT,
  cliEnv,
  expectNothingMounted,
  expectPlainEmptyDir,
  forceUnmount,
  isAlive,
  isMounted,
  tempDir,
  trackMountpoint,
} from './support/cli-mount.js';

/** Where each command must be for mount(8) to find it, and what it links to. */
const HELPERS = [
  { link: '/sbin/mount.s3mount', target: join(ROOT, 'bin', 'mount.s3mount.js') },
  { link: '/usr/local/sbin/s3mount', target: join(ROOT, 'bin', 's3mount.js') },
];
/** The links this file made (and so removes). */
const installed: string[] = [];

let bucket: string;
let endpoint: string;
/** Directories that are no mount points (removed at the end). */
const scratch: string[] = [];
/** Mount points of this file (unmounted after each test, even after a failure). */
const mountpoints: string[] = [];

async function installHelpers(): Promise<void> {
  for (const { link, target } of HELPERS) {
    const existing = await readlink(link).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : `(${err.code})`));
    if (existing === target) continue;
    if (existing !== undefined) {
      throw new Error(`${link} exists and is not a link to ${target} (it is ${existing}): this test will not replace it`);
    }
    await symlink(target, link);
    installed.push(link);
  }
}

async function removeHelpers(): Promise<void> {
  for (const link of installed.splice(0)) {
    // Only if it is still ours.
    const target = HELPERS.find((h) => h.link === link)?.target;
    if ((await readlink(link).catch(() => undefined)) === target) await unlink(link);
  }
}

beforeAll(async () => {
  endpoint = testEndpoint();
  bucket = await createTestBucket('e2e-fstab');
  await putObject(bucket, 'some/prefix/hello.txt', 'hello from the prefix\n');
  await putObject(bucket, 'some/prefix/sub/inside.txt', 'inside\n');
  await putObject(bucket, 'outside.txt', 'not under the prefix\n');
  await installHelpers();
}, 60_000);

afterEach(async () => {
  for (const dir of mountpoints) await forceUnmount(dir);
}, 120_000);

afterAll(async () => {
  try {
    for (const dir of mountpoints) await forceUnmount(dir);
    await removeHelpers();
  } finally {
    try {
      await expectNothingMounted();
    } finally {
      for (const dir of scratch) await rm(dir, { recursive: true, force: true });
    }
  }
}, 120_000);

async function scratchDir(label: string): Promise<string> {
  const dir = await tempDir(label);
  scratch.push(dir);
  return dir;
}

async function freshMountpoint(): Promise<string> {
  const dir = await tempDir('fstab-mnt');
  trackMountpoint(dir);
  mountpoints.push(dir);
  return dir;
}

/** A test fstab holding `lines`. */
async function fstabFile(...lines: string[]): Promise<string> {
  const file = join(await scratchDir('fstab'), 'fstab');
  await writeFile(file, `# s3mount test fstab\n${lines.join('\n')}\n`);
  return file;
}

/** mount(8) with the test's credentials in the environment (mount passes it on to helpers). */
function mount(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return run('mount', args, { env: cliEnv(env), timeoutMs: 60_000 });
}

/** The mount's line in /proc/self/mountinfo: its type, source and options (mount flags and superblock options). */
async function mountInfo(dir: string): Promise<{ type: string; source: string; options: string[] } | undefined> {
  for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
    const fields = line.split(' ');
    if (fields[4] !== dir) continue;
    const tail = fields.slice(fields.indexOf('-') + 1);
    return { type: tail[0] ?? '', source: tail[1] ?? '', options: `${fields[5]},${tail[2]}`.split(',') };
  }
  return undefined;
}

/** The pid of the mount process serving `dir`, from its pid file (docs/cli.md). */
async function mountProcess(dir: string): Promise<number> {
  return Number((await readFile(await pidFilePath(dir), 'utf8')).trim());
}

/** umount(8), then the mount process finishes its uploads and exits. */
async function umountAndWait(dir: string): Promise<void> {
  const pid = await mountProcess(dir);
  const result = await run('umount', [dir], { timeoutMs: 30_000 });
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  expect(await isMounted(dir)).toBe(false);
  await waitUntil(`mount process ${pid} to exit`, async () => !(await isAlive(pid)), 30_000);
}

describe('fstab line of type fuse.s3mount (mount.fuse3 runs s3mount)', () => {
  it('mounts with the options of the line, ready when mount returns; umount unmounts', { timeout: 60_000 }, async () => {
    const dir = await freshMountpoint();
    const cacheDir = await scratchDir('cache');
    // The line, with the test server as the endpoint, plus modes, kernel flags
    // and mount(8)/systemd options that must be accepted.
    const options = [
      '_netdev',
      'allow_other',
      `endpoint=${endpoint}`,
      'path_style',
      'uid=1000',
      'gid=1000',
      'file_mode=0640',
      'dir_mode=0750',
      // A comma in a value, quoted: mount(8) and mount.fuse3 must hand it over in one piece.
      `cache_dir="${cacheDir}/a,b"`,
      'nosuid,nodev,noexec',
      'nofail,x-systemd.automount,x-systemd.idle-timeout=60,comment=test',
    ].join(',');
    const fstab = await fstabFile(`${bucket}:/some/prefix ${dir} fuse.s3mount ${options} 0 0`);

    const mounted = await mount(['-T', fstab, dir]);
    expect(mounted.stderr).toBe('');
    expect(mounted.code).toBe(0);
    // Ready as soon as mount(8) returns: no waiting.
    expect(await readFile(join(dir, 'hello.txt'), 'utf8')).toBe('hello from the prefix\n');

    const info = await mountInfo(dir);
    expect(info?.type).toBe('fuse.s3mount');
    expect(info?.source).toBe(`${bucket}:some/prefix/`);
    expect(info?.options).toEqual(expect.arrayContaining(['rw', 'nosuid', 'nodev', 'noexec', 'allow_other']));

    expect((await stat(join(cacheDir, 'a,b', 'journal'))).isDirectory()).toBe(true);

    const file = await stat(join(dir, 'hello.txt'));
    expect({ uid: file.uid, gid: file.gid, mode: file.mode }).toEqual({ uid: 1000, gid: 1000, mode: 0o100640 });
    const sub = await stat(join(dir, 'sub'));
    expect({ uid: sub.uid, gid: sub.gid, mode: sub.mode }).toEqual({ uid: 1000, gid: 1000, mode: 0o40750 });

    // Read-write: a file written here reaches the bucket under the prefix.
    await writeFile(join(dir, 'written.txt'), 'written through fstab\n');
    await umountAndWait(dir);
    expect((await getObjectBytes(bucket, 'some/prefix/written.txt')).toString()).toBe('written through fstab\n');
    await expectPlainEmptyDir(dir);
  });
});

describe('fstab line of type s3mount (mount(8) runs /sbin/mount.s3mount)', () => {
  it('mounts read-only with ro: reads work, writes fail with EROFS; credentials from a passwd file', { timeout: 60_000 }, async () => {
    const dir = await freshMountpoint();
    const cacheDir = await scratchDir('cache');
    const passwd = join(await scratchDir('passwd'), 'passwd-s3fs');
    await writeFile(passwd, `${TEST_CREDENTIALS.accessKeyId}:${TEST_CREDENTIALS.secretAccessKey}\n`, { mode: 0o600 });
    // The second line, with the test server's endpoint and a passwd file.
    const options = `_netdev,nofail,ro,endpoint=${endpoint},path_style,passwd_file=${passwd},cache_dir="${cacheDir}/c,d"`;
    const fstab = await fstabFile(`s3://${bucket}/some/prefix ${dir} s3mount ${options} 0 0`);

    const noCredentials = { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined };
    const mounted = await mount(['-T', fstab, dir], noCredentials);
    expect(mounted.stderr).toBe('');
    expect(mounted.code).toBe(0);
    expect(await readFile(join(dir, 'sub', 'inside.txt'), 'utf8')).toBe('inside\n');
    expect((await mountInfo(dir))?.options).toContain('ro');
    expect((await stat(join(cacheDir, 'c,d', 'journal'))).isDirectory()).toBe(true);
    // The credentials are nowhere in the mount process's command line.
    const cmdline = await readFile(`/proc/${await mountProcess(dir)}/cmdline`, 'utf8');
    expect(cmdline).not.toContain(TEST_CREDENTIALS.secretAccessKey);

    await expect(writeFile(join(dir, 'new.txt'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
    await expect(writeFile(join(dir, 'hello.txt'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
    await expect(mkdir(join(dir, 'newdir'))).rejects.toMatchObject({ code: 'EROFS' });
    await expect(unlink(join(dir, 'hello.txt'))).rejects.toMatchObject({ code: 'EROFS' });

    await umountAndWait(dir);
    await expectPlainEmptyDir(dir);
  });

  it('mount -f (fake) checks the line and mounts nothing', { timeout: 30_000 }, async () => {
    const dir = await freshMountpoint();
    const fstab = await fstabFile(`s3://${bucket} ${dir} s3mount ro,endpoint=${endpoint},path_style 0 0`);
    const result = await mount(['-f', '-T', fstab, dir]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    await expectPlainEmptyDir(dir);
  });
});

describe('bad fstab lines: one line naming the problem, nothing mounted', () => {
  it.each([
    ['fuse.s3mount', 'ro,bogus_option=1', "s3mount: unknown mount option 'bogus_option'; -o takes s3mount's options without their dashes"],
    ['s3mount', 'ro,bogus_option=1', "s3mount: unknown mount option 'bogus_option'; -o takes s3mount's options without their dashes"],
    ['s3mount', 'ro,path_style=yes', 's3mount: mount option path_style takes no value (got path_style=yes)'],
    ['s3mount', 'file_mode', 's3mount: mount option file_mode needs a value: file_mode=VALUE'],
    ['s3mount', 'file_mode=abc', "s3mount: --file-mode must be an octal mode from 0 to 7777, such as 644 (got 'abc')"],
  ])('type %s, options %s', { timeout: 30_000 }, async (type, options, message) => {
    const dir = await freshMountpoint();
    const fstab = await fstabFile(`${bucket} ${dir} ${type} endpoint=${endpoint},path_style,${options} 0 0`);
    const result = await mount(['-T', fstab, dir]);
    expect(result.code).not.toBe(0);
    expect(result.stderr.split('\n').filter(Boolean)).toEqual([expect.stringContaining(message)]);
    await expectPlainEmptyDir(dir);
  });
});

describe('the mount point', () => {
  it('not empty: refused with one line naming the fix; --nonempty (-o nonempty) mounts over it', { timeout: 60_000 }, async () => {
    const dir = await freshMountpoint();
    await writeFile(join(dir, 'local.txt'), 'underneath\n');
    try {
      const fstab = await fstabFile(`${bucket}:some/prefix ${dir} s3mount endpoint=${endpoint},path_style,cache_dir=${await scratchDir('cache')} 0 0`);
      const refused = await mount(['-T', fstab, dir]);
      expect(refused.stderr).toBe(`s3mount: mount point ${dir} is not empty: empty it, or mount over its files with --nonempty (-o nonempty)\n`);
      expect(refused.code).not.toBe(0);
      expect(await isMounted(dir)).toBe(false);

      const nonempty = await fstabFile(`${bucket}:some/prefix ${dir} s3mount nonempty,endpoint=${endpoint},path_style,cache_dir=${await scratchDir('cache')} 0 0`);
      const mounted = await mount(['-T', nonempty, dir]);
      expect(mounted.stderr).toBe('');
      expect(mounted.code).toBe(0);
      expect(await readFile(join(dir, 'hello.txt'), 'utf8')).toBe('hello from the prefix\n');
      await umountAndWait(dir);
      expect(await readFile(join(dir, 'local.txt'), 'utf8')).toBe('underneath\n');
    } finally {
      await forceUnmount(dir);
      await unlink(join(dir, 'local.txt')).catch(() => undefined);
    }
  });

  it('already mounted: refused, the first mount stays as it was', { timeout: 60_000 }, async () => {
    const dir = await freshMountpoint();
    const fstab = await fstabFile(`${bucket}:some/prefix ${dir} s3mount ro,endpoint=${endpoint},path_style,cache_dir=${await scratchDir('cache')} 0 0`);
    expect((await mount(['-T', fstab, dir])).code).toBe(0);
    const again = await mount(['-T', fstab, dir]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toBe(`s3mount: ${dir} is already mounted: unmount it first (s3mount unmount ${dir})\n`);
    expect((await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.split(' ')[4] === dir)).toHaveLength(1);
    expect(await readFile(join(dir, 'hello.txt'), 'utf8')).toBe('hello from the prefix\n');
    await umountAndWait(dir);
  });

  it('missing or not a directory: refused with the fix', { timeout: 30_000 }, async () => {
    const parent = await scratchDir('parent');
    const missing = join(parent, 'missing');
    const file = join(parent, 'file');
    await writeFile(file, 'a file\n');
    for (const [dir, message] of [
      [missing, `s3mount: mount point ${missing} does not exist: create it with mkdir -p ${missing}\n`],
      [file, `s3mount: mount point ${file} is not a directory: mount on a directory\n`],
    ] as const) {
      trackMountpoint(dir);
      const result = await run(process.execPath, [join(ROOT, 'bin', 's3mount.js'), bucket, dir, '-o', `endpoint=${endpoint},path_style`], {
        env: cliEnv(),
        timeoutMs: 30_000,
      });
      expect(result.stderr).toBe(message);
      expect(result.code).toBe(1);
      expect(await isMounted(dir)).toBe(false);
    }
    expect((await lstat(file)).isFile()).toBe(true);
    await expect(stat(missing)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
