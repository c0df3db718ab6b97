// End to end: who may use a mount, and the modes and owners it shows. The tests run as
// root and act as another user (nobody) through setpriv, so that the kernel's checks
// (default_permissions) and FUSE's own (allow_other, allow_root) are exercised for real.
import { chmod, chown, copyFile, mkdir, mkdtemp, readFile, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runOk } from '../support/run.js';
import { createTestBucket, headObject, putObject } from '../support/s3.js';
import { fsOpsAsNobody, NOBODY, nobodyCanUseFuse, runAsNobody } from '../support/users.js';
import {
  ROOT,
  cliEnv,
  cleanUpTestFile,
  expectPlainEmptyDir,
  forceUnmount,
  isMounted,
  mountArgs,
  mountBucket,
  tempDir,
  trackMountpoint,
  unmountAll,
} from './support/cli-mount.js';

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const ROOT_UID = '0';

let bucket: string;
/** Cache dirs of nobody's mounts, inside a directory nobody may enter: removed at the end. */
let local: string;

// fusermount3 opens /dev/fuse with the user's own rights (most systems make it 0666, some
// containers leave it 0600) and allows allow_other only with user_allow_other in
// /etc/fuse.conf. The tests set both up as they need them (they run as root) and put
// them back afterwards.

/** Runs `fn` with /dev/fuse at `mode`, then puts its mode back. */
async function withDevFuseMode<T>(mode: number, fn: () => Promise<T>): Promise<T> {
  const before = (await stat('/dev/fuse')).mode & 0o7777;
  await chmod('/dev/fuse', mode);
  try {
    return await fn();
  } finally {
    await chmod('/dev/fuse', before);
  }
}

/** Runs `fn` with /etc/fuse.conf lacking user_allow_other, then puts the file back as it was. */
async function withoutUserAllowOther<T>(fn: () => Promise<T>): Promise<T> {
  const before = await readFile('/etc/fuse.conf', 'utf8').catch(() => undefined);
  if (before !== undefined) {
    await writeFile('/etc/fuse.conf', before.split('\n').filter((line) => line.trim() !== 'user_allow_other').join('\n'));
  }
  try {
    return await fn();
  } finally {
    if (before !== undefined) await writeFile('/etc/fuse.conf', before);
  }
}

beforeAll(async () => {
  local = await tempDir('permissions-local');
  await chmod(local, 0o755);
  bucket = await createTestBucket('e2e-permissions');
  // Attributes as s3fs or another s3mount would have left them.
  const meta = (mode: number, uid: string, gid = uid) => ({ mode: String(S_IFREG | mode), uid, gid });
  await putObject(bucket, 'public.txt', 'readable by all\n', meta(0o644, ROOT_UID));
  await putObject(bucket, 'private.txt', 'root only\n', meta(0o600, ROOT_UID));
  await putObject(bucket, 'nobodys.txt', 'belongs to nobody\n', meta(0o644, String(NOBODY.uid)));
  await putObject(bucket, 'plain.txt', 'no metadata\n');
  await putObject(bucket, 'locked/', '', { mode: String(S_IFDIR | 0o700), uid: ROOT_UID, gid: ROOT_UID });
  await putObject(bucket, 'locked/inside.txt', 'inside\n', meta(0o644, ROOT_UID));
}, 60_000);

afterEach(() => unmountAll(), 120_000);
afterAll(() => cleanUpTestFile(local), 120_000);

/** The mount's options as /proc/mounts lists them. */
async function mountOptions(dir: string): Promise<string[]> {
  const line = (await readFile('/proc/mounts', 'utf8')).split('\n').find((l) => l.split(' ')[1] === dir);
  return line?.split(' ')[3]?.split(',') ?? [];
}

const modeOf = async (path: string) => {
  const st = await stat(path);
  return { mode: st.mode, uid: st.uid, gid: st.gid };
};

describe('--allow-other', () => {
  it('lets other users in, with the kernel checking the modes (default_permissions)', { timeout: 60_000 }, async () => {
    const mnt = await mountBucket(bucket, { args: ['--allow-other'] });
    expect(await mountOptions(mnt.dir)).toEqual(expect.arrayContaining(['allow_other', 'default_permissions']));
    const outcomes = await fsOpsAsNobody([
      ['read', mnt.path('public.txt')],
      ['append', mnt.path('public.txt'), 'not allowed\n'],
      ['read', mnt.path('private.txt')],
      ['readdir', mnt.path('locked')],
      ['stat', mnt.path('locked/inside.txt')],
      ['append', mnt.path('nobodys.txt'), 'by nobody\n'],
      ['readdir', mnt.dir],
    ]);
    expect(outcomes).toEqual([
      { ok: true, data: 'readable by all\n' },
      { ok: false, code: 'EACCES' },
      { ok: false, code: 'EACCES' },
      { ok: false, code: 'EACCES' },
      { ok: false, code: 'EACCES' },
      { ok: true },
      { ok: true, data: 'locked,nobodys.txt,plain.txt,private.txt,public.txt' },
    ]);
    // Nothing of the refused writes reached the files; nobody's own write did.
    expect(await readFile(mnt.path('public.txt'), 'utf8')).toBe('readable by all\n');
    expect(await readFile(mnt.path('nobodys.txt'), 'utf8')).toBe('belongs to nobody\nby nobody\n');
    // Root is not held back by the modes.
    expect(await readFile(mnt.path('private.txt'), 'utf8')).toBe('root only\n');
  });

  it('without it, the mount is closed to every other user, whatever the modes', { timeout: 60_000 }, async () => {
    const mnt = await mountBucket(bucket);
    expect(await mountOptions(mnt.dir)).not.toContain('allow_other');
    expect(await fsOpsAsNobody([['stat', mnt.dir], ['read', mnt.path('public.txt')]])).toEqual([
      { ok: false, code: 'EACCES' },
      { ok: false, code: 'EACCES' },
    ]);
  });
});

describe('--allow-root', () => {
  it('lets root in besides the mounting user, and nobody else', { timeout: 60_000 }, async () => {
    // Mounted by root here, so the difference from --allow-other is for the others.
    const mnt = await mountBucket(bucket, { args: ['--allow-root'] });
    expect(await readFile(mnt.path('public.txt'), 'utf8')).toBe('readable by all\n');
    expect(await fsOpsAsNobody([['read', mnt.path('public.txt')]])).toEqual([{ ok: false, code: 'EACCES' }]);
  });
});

describe('modes and owners', () => {
  it('metadata wins over --uid, --gid, --file-mode and --dir-mode, which apply to the rest', { timeout: 60_000 }, async () => {
    const mnt = await mountBucket(bucket, { args: ['--uid', '1234', '--gid', '4321', '--file-mode', '0640', '--dir-mode', '0750'] });
    expect(await modeOf(mnt.path('public.txt'))).toEqual({ mode: S_IFREG | 0o644, uid: 0, gid: 0 });
    expect(await modeOf(mnt.path('nobodys.txt'))).toEqual({ mode: S_IFREG | 0o644, uid: NOBODY.uid, gid: NOBODY.gid });
    expect(await modeOf(mnt.path('locked'))).toEqual({ mode: S_IFDIR | 0o700, uid: 0, gid: 0 });
    expect(await modeOf(mnt.path('plain.txt'))).toEqual({ mode: S_IFREG | 0o640, uid: 1234, gid: 4321 });
    expect(await modeOf(mnt.dir)).toEqual({ mode: S_IFDIR | 0o750, uid: 1234, gid: 4321 });
  });

  it('--umask clears bits from every mode shown, never from what is stored', { timeout: 60_000 }, async () => {
    // The root directory's group is nobody's, so that nobody may still enter it.
    const mnt = await mountBucket(bucket, { args: ['--umask', '027', '--allow-other', '--gid', String(NOBODY.gid)] });
    expect(await modeOf(mnt.path('public.txt'))).toEqual({ mode: S_IFREG | 0o640, uid: 0, gid: 0 });
    expect(await modeOf(mnt.path('plain.txt'))).toEqual({ mode: S_IFREG | 0o640, uid: 0, gid: NOBODY.gid });
    expect((await modeOf(mnt.path('locked'))).mode).toBe(S_IFDIR | 0o700);
    expect((await modeOf(mnt.dir)).mode).toBe(S_IFDIR | 0o750);
    // The kernel checks the masked modes: "others" lost their read bit, the owner kept it.
    expect(await fsOpsAsNobody([['read', mnt.path('public.txt')], ['read', mnt.path('nobodys.txt')]])).toEqual([
      { ok: false, code: 'EACCES' },
      { ok: true, data: expect.stringMatching(/^belongs to nobody\n/) },
    ]);
    // chmod stores what was asked; the mount shows it masked.
    await runOk('sh', ['-c', 'echo made here > "$1" && chmod 666 "$1" && sync "$1"', 'sh', mnt.path('chmodded.txt')]);
    expect((await modeOf(mnt.path('chmodded.txt'))).mode).toBe(S_IFREG | 0o640);
    expect((await headObject(bucket, 'chmodded.txt'))?.Metadata?.mode).toBe(String(S_IFREG | 0o666));
  });
});

describe('mounts by a user other than root', () => {
  /** A mount point and cache dir that belong to nobody, as a user's own would. */
  async function nobodysDirs(): Promise<{ dir: string; cache: string }> {
    const dir = await tempDir('nobody-mnt');
    trackMountpoint(dir);
    const cache = await mkdtemp(join(local, 'nobody-cache-'));
    for (const path of [dir, cache]) await chown(path, NOBODY.uid, NOBODY.gid);
    return { dir, cache };
  }

  // The checkout may lie where nobody cannot go (a clone in /root, or in a 0700 temporary
  // directory): nobody runs the CLI from a view of it in a directory anyone may enter, with
  // what the CLI needs bind-mounted there. Taken apart with umount and rmdir only, never a
  // recursive removal, which would reach into the checkout through a mount left behind.
  const VIEWED = ['bin', 'dist', 'node_modules'];
  let project: string;
  beforeAll(async () => {
    project = await tempDir('project-view');
    await chmod(project, 0o755);
    await copyFile(join(ROOT, 'package.json'), join(project, 'package.json'));
    for (const name of VIEWED) {
      await mkdir(join(project, name));
      await runOk('mount', ['--bind', join(ROOT, name), join(project, name)]);
    }
  }, 30_000);
  afterAll(async () => {
    for (const name of VIEWED) {
      const path = join(project, name);
      if ((await readFile('/proc/mounts', 'utf8')).split('\n').some((line) => line.split(' ')[1] === path)) await runOk('umount', [path]);
      await rmdir(path).catch(() => undefined);
    }
    await unlink(join(project, 'package.json')).catch(() => undefined);
    await rmdir(project);
  }, 30_000);

  function cliAsNobody(args: string[]) {
    // No XDG_RUNTIME_DIR: root's would not be nobody's (the pid file goes to /tmp instead).
    return runAsNobody(process.execPath, [join(project, 'bin', 's3mount.js'), ...args], { env: { ...cliEnv(), HOME: '/nonexistent', XDG_RUNTIME_DIR: '' }, cwd: '/', timeoutMs: 60_000 });
  }

  it('nobody mounts, reads and writes; root and others stay out; nobody unmounts', { timeout: 90_000 }, () => withDevFuseMode(0o666, async () => {
    expect(await nobodyCanUseFuse()).toBe(true);
    const { dir, cache } = await nobodysDirs();
    try {
      const mounted = await cliAsNobody(mountArgs(bucket, dir, cache));
      expect(mounted.stderr).toBe('');
      expect(mounted.code).toBe(0);
      const outcomes = await fsOpsAsNobody([
        ['read', `${dir}/public.txt`],
        ['append', `${dir}/by-nobody.txt`, 'a user mount\n'],
        ['read', `${dir}/by-nobody.txt`],
      ]);
      expect(outcomes).toEqual([{ ok: true, data: 'readable by all\n' }, { ok: true }, { ok: true, data: 'a user mount\n' }]);
      // FUSE keeps even root out of a user's mount without allow_other or allow_root.
      await expect(stat(`${dir}/public.txt`)).rejects.toMatchObject({ code: 'EACCES' });
      const unmounted = await cliAsNobody(['unmount', dir]);
      expect(unmounted.stderr).toBe('');
      expect(unmounted.code).toBe(0);
      expect(await isMounted(dir)).toBe(false);
    } finally {
      await forceUnmount(dir);
    }
    await rmdir(dir);
  }));

  it('--allow-other without user_allow_other in /etc/fuse.conf: one line, nothing mounted', { timeout: 60_000 }, () => withDevFuseMode(0o666, () => withoutUserAllowOther(async () => {
    const { dir, cache } = await nobodysDirs();
    const result = await cliAsNobody(mountArgs(bucket, dir, cache, ['--allow-other']));
    expect(result.stderr).toBe(
      's3mount: --allow-other needs the line user_allow_other in /etc/fuse.conf when the mount is not made by root: add it (as root) or mount as root\n',
    );
    expect(result.code).toBe(1);
    await expectPlainEmptyDir(dir);
    await rmdir(dir);
  })));

  it('without access to /dev/fuse: one line naming the device and the fix, nothing mounted', { timeout: 60_000 }, () => withDevFuseMode(0o600, async () => {
    expect(await nobodyCanUseFuse()).toBe(false);
    const { dir, cache } = await nobodysDirs();
    const result = await cliAsNobody(mountArgs(bucket, dir, cache));
    expect(result.stderr).toBe(
      's3mount: /dev/fuse cannot be opened for reading and writing by this user: give users access to it (most systems make it mode 0666) or mount as root\n',
    );
    expect(result.code).toBe(1);
    await expectPlainEmptyDir(dir);
    await rmdir(dir);
  }));
});
