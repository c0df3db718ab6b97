import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canonicalMountpoint } from '../../src/cli/paths.js';
import { isMountProcess, pidFilePath, readPidFile, removePidFile, writePidFile } from '../../src/cli/pidfile.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 's3mount-pid-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('pid files', () => {
  it('names one file per mount point', async () => {
    const a = await pidFilePath('/mnt/a');
    expect(a).toMatch(/\/[0-9a-f]{32}\.pid$/);
    expect(await pidFilePath('/mnt/a')).toBe(a);
    expect(await pidFilePath('/mnt/b')).not.toBe(a);
  });

  it('lives in XDG_RUNTIME_DIR for users and in /run/s3mount for root', async () => {
    const path = await pidFilePath('/mnt/a', { XDG_RUNTIME_DIR: '/run/user/1000' });
    expect(path.startsWith(process.getuid?.() === 0 ? '/run/s3mount/' : '/run/user/1000/s3mount/')).toBe(true);
  });

  it('writes, reads and removes the pid, creating its directory', async () => {
    const file = join(dir, 'run', 'x.pid');
    await writePidFile(file, 4242);
    expect(await readFile(file, 'utf8')).toBe('4242\n');
    expect(await readPidFile(file)).toBe(4242);
    await removePidFile(file, 4242);
    expect(await readPidFile(file)).toBeUndefined();
    await removePidFile(file, 4242);
  });

  it('does not remove a file that names another process', async () => {
    const file = join(dir, 'x.pid');
    await writePidFile(file, 7);
    await removePidFile(file, 8);
    expect(await readPidFile(file)).toBe(7);
  });

  it('reads a file without a pid as no pid', async () => {
    const file = join(dir, 'x.pid');
    await writeFile(file, 'garbage\n');
    expect(await readPidFile(file)).toBeUndefined();
  });

  it('tells a running s3mount process from a dead one and from another program', async () => {
    const mountLike = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30_000)', 's3mount'], { stdio: 'ignore' });
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      expect(await isMountProcess(mountLike.pid!)).toBe(true);
      expect(await isMountProcess(other.pid!)).toBe(false);
    } finally {
      mountLike.kill();
      other.kill();
    }
    await new Promise((resolve) => mountLike.once('exit', resolve));
    expect(await isMountProcess(mountLike.pid!)).toBe(false);
  });
});

describe('canonicalMountpoint', () => {
  it('resolves symlinks above the mount point but not the mount point itself', async () => {
    await mkdir(join(dir, 'real', 'mnt'), { recursive: true });
    await symlink(join(dir, 'real'), join(dir, 'link'));
    await symlink(join(dir, 'real', 'mnt'), join(dir, 'real', 'mnt-link'));
    const real = join(await realpath(dir), 'real');
    expect(await canonicalMountpoint(join(dir, 'link', 'mnt'))).toBe(join(real, 'mnt'));
    expect(await canonicalMountpoint(join(dir, 'link', 'mnt-link'))).toBe(join(real, 'mnt-link'));
  });

  it('keeps paths whose parent does not exist, and the root', async () => {
    expect(await canonicalMountpoint('/no/such/dir/mnt')).toBe('/no/such/dir/mnt');
    expect(await canonicalMountpoint('/')).toBe('/');
  });
});
