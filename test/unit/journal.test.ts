import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal, findAbandoned, journalIdentity, type JournalRecord } from '../../src/upload/journal.js';

/** The pid of a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid as number;
}

const record: JournalRecord = {
  key: 'a/b.txt',
  size: 5,
  meta: { mtime: { sec: 1, nsec: 2 }, mode: 0o100640, uid: 3, gid: 4 },
  partSize: 8 * 1024 * 1024,
  localBlocks: [],
  dirtyBlocks: [1],
};

describe('journal', () => {
  let cache: string;
  beforeEach(async () => {
    cache = await mkdtemp(join(tmpdir(), 's3mount-journal-'));
  });
  afterEach(async () => {
    await rm(cache, { recursive: true, force: true });
  });

  it('names journals by endpoint, bucket and prefix', () => {
    const id = journalIdentity('http://a', 'b', 'p/');
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(journalIdentity('http://a', 'b', 'p/')).toBe(id);
    expect(journalIdentity('http://a', 'b', 'q/')).not.toBe(id);
    expect(journalIdentity(undefined, 'b', 'p/')).not.toBe(id);
  });

  it('stages data, keeps accepted entries and removes its folder once none is left', async () => {
    const journal = await Journal.create(cache, 'id');
    const { id, file } = await journal.newDataFile();
    await file.write(Buffer.from('hello world'), 0);
    await file.truncate(5);
    const target = Buffer.alloc(16);
    expect(target.subarray(0, await file.read(target, 0)).toString()).toBe('hello');
    await journal.commit(id, file, record);
    expect((await readdir(journal.dir)).sort()).toEqual([`${id}.data`, `${id}.json`]);
    expect(await journal.close()).toBe(false); // an accepted entry keeps the folder
    await journal.forget(id, file);
    expect(await journal.close()).toBe(true);
    expect(await readdir(join(cache, 'journal', 'id'))).toEqual([]);
  });

  it('finds the journals of mounts that are gone, without their never-accepted data', async () => {
    const dead = join(cache, 'journal', 'id', `${await deadPid()}-0-deadbeef`);
    // This process's pid with another start time: a pid that was reused.
    const reused = join(cache, 'journal', 'id', `${process.pid}-1-feedface`);
    const live = (await Journal.create(cache, 'id')).dir;
    for (const dir of [dead, reused, live]) {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, '1.data'), 'hello');
      await writeFile(join(dir, '1.json'), JSON.stringify(record));
      await writeFile(join(dir, '2.data'), 'never closed');
      await writeFile(join(dir, '3.4.upload.json'), JSON.stringify({ key: 'big', uploadId: 'U' }));
    }
    const found = (await findAbandoned(cache, 'id')).sort((a, b) => a.dir.localeCompare(b.dir));
    expect(found.map((j) => j.dir)).toEqual([dead, reused].sort());
    expect(found.find((j) => j.dir === dead)?.entries).toEqual([{ record, dataPath: join(dead, '1.data') }]);
    expect(found.find((j) => j.dir === dead)?.uploads).toEqual([{ key: 'big', uploadId: 'U' }]);
    expect((await readdir(dead)).sort()).toEqual(['1.data', '1.json', '3.4.upload.json']);
    expect((await readdir(live)).sort()).toEqual(['1.data', '1.json', '2.data', '3.4.upload.json']);
  });
});
