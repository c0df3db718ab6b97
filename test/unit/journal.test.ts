import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StagingArea } from '../../src/upload/staging.js';

/** The pid of a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid as number;
}

describe('staging area', () => {
  let cache: string;
  beforeEach(async () => {
    cache = await mkdtemp(join(tmpdir(), 's3mount-staging-'));
  });
  afterEach(async () => {
    await rm(cache, { recursive: true, force: true });
  });

  it('stages, reads back, truncates and removes its folder on dispose', async () => {
    const area = await StagingArea.create(cache);
    const file = await area.newFile();
    await file.write(Buffer.from('hello world'), 0);
    await file.truncate(5);
    const target = Buffer.alloc(16);
    expect(target.subarray(0, await file.read(target, 0)).toString()).toBe('hello');
    await file.discard();
    await area.dispose();
    expect(await readdir(join(cache, 'staging'))).toEqual([]);
  });

  it('removes the folders of mounts whose process is gone, and only those', async () => {
    const abandoned = join(cache, 'staging', `${await deadPid()}-deadbeef`);
    const live = join(cache, 'staging', `${process.pid}-0badcafe`);
    for (const dir of [abandoned, live]) {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, '1'), 'partial write');
    }
    const area = await StagingArea.create(cache);
    const left = await readdir(join(cache, 'staging'));
    expect(left).not.toContain(abandoned.split('/').pop());
    expect(left).toContain(live.split('/').pop());
    await area.dispose();
  });
});
