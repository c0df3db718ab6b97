import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rmdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mountFuse, type FuseMount } from '../../src/fuse/index.js';
import { MemFs } from '../support/memfs.js';
import { mountedFuseTargets, run, waitUntil } from '../support/run.js';

const daemonScript = new URL('../support/hello-daemon.mjs', import.meta.url).pathname;

/** Starts the daemon and resolves once it says "ready". */
function startDaemon(mountpoint: string, ...flags: string[]): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [daemonScript, mountpoint, ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('daemon did not become ready'));
    }, 15_000);
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited ${code}: ${stderr}`));
    });
  });
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

describe('binding: a SIGKILLed daemon leaves no dead mount behind', () => {
  let dir: string;
  let child: ChildProcess | undefined;
  let remount: FuseMount | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 's3mount-crash-'));
  });
  afterEach(async () => {
    if (child) await killed(child);
    await remount?.unmount({ lazy: true });
    if ((await mountedFuseTargets()).includes(dir)) await run('fusermount3', ['-uz', dir]);
    await rmdir(dir);
    child = remount = undefined;
  });

  it('auto_unmount: the mount goes away by itself', async () => {
    child = await startDaemon(dir);
    expect(await readFile(join(dir, 'hello'), 'utf8')).toBe('hello\n');
    await killed(child);
    await waitUntil('the dead mount to go away', async () => !(await mountedFuseTargets()).includes(dir));
    expect((await stat(dir)).isDirectory()).toBe(true);
  });

  it('without auto_unmount: the next mount clears the dead one and works', async () => {
    child = await startDaemon(dir, '--no-auto-unmount');
    await killed(child);
    await expect(stat(join(dir, 'hello'))).rejects.toMatchObject({ code: 'ENOTCONN' });
    const fs = new MemFs();
    remount = await mountFuse(dir, fs, { fsname: 'memfs', subtype: 'memfs' });
    await run('sh', ['-c', `echo again > ${join(dir, 'again')}`]);
    expect(await readFile(join(dir, 'again'), 'utf8')).toBe('again\n');
  });

  it('mounting over a live mount is refused with a clear message', async () => {
    child = await startDaemon(dir);
    await expect(mountFuse(dir, new MemFs())).rejects.toThrow(`${dir} is already mounted`);
  });
});
