import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal, findAbandoned, journalIdentity, readJournalFolder, type JournalRecord } from '../../src/upload/journal.js';
import { JournalLog, SEGMENT_BYTES, replayLog } from '../../src/upload/journal-log.js';
import { IN_MEMORY_LIMIT } from '../../src/upload/staged-file.js';

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

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

  it('keeps small files in memory and their bytes in the log, bigger ones in data files', async () => {
    const journal = await Journal.create(cache, 'id');
    const small = await journal.newDataFile();
    await small.file.write(Buffer.from('hello world'), 0);
    await small.file.truncate(5);
    const target = Buffer.alloc(16);
    expect(target.subarray(0, await small.file.read(target, 0)).toString()).toBe('hello');
    await journal.commit(small.id, small.file, record);
    const big = await journal.newDataFile();
    const bigBytes = randomBytes(IN_MEMORY_LIMIT + 1);
    await big.file.write(bigBytes.subarray(0, 1000), 0); // in memory at first...
    await big.file.write(bigBytes.subarray(1000), 1000); // ...then on disk, with what it held
    const bigRecord = { ...record, key: 'big', size: bigBytes.length };
    await journal.commit(big.id, big.file, bigRecord);
    expect((await readdir(journal.dir)).filter((n) => n.endsWith('.data'))).toEqual([`${big.id}.data`]);
    expect(md5(await readFile(join(journal.dir, `${big.id}.data`)))).toBe(md5(bigBytes));
    const back = Buffer.alloc(bigBytes.length);
    expect(await big.file.read(back, 0)).toBe(bigBytes.length);
    expect(md5(back)).toBe(md5(bigBytes));

    expect(await readJournalFolder(journal.dir)).toEqual({
      entries: [
        { record, dataPath: join(journal.dir, `${small.id}.data`), bytes: Buffer.from('hello') },
        { record: bigRecord, dataPath: join(journal.dir, `${big.id}.data`) },
      ],
      uploads: [],
    });
    // A new record replaces the old one, and keeps the bytes.
    const touched = { ...record, meta: { ...record.meta, mode: 0o100600 } };
    await journal.update(small.id, small.file, touched);
    expect((await readJournalFolder(journal.dir)).entries[0]).toEqual({ record: touched, dataPath: join(journal.dir, `${small.id}.data`), bytes: Buffer.from('hello') });

    await journal.forget(big.id, big.file);
    expect((await readdir(journal.dir)).filter((n) => n.endsWith('.data'))).toEqual([]);
    expect(await journal.close()).toBe(false); // an accepted entry keeps the folder
    expect((await readJournalFolder(journal.dir)).entries.map((e) => e.record)).toEqual([touched]);
  });

  it('removes its folder once no entry is left', async () => {
    const journal = await Journal.create(cache, 'id');
    const { id, file } = await journal.newDataFile();
    await file.write(Buffer.from('x'), 0);
    await journal.commit(id, file, record);
    const upload = await journal.recordUpload(id, { key: 'a/b.txt', uploadId: 'U' });
    expect((await readJournalFolder(journal.dir)).uploads).toEqual([{ key: 'a/b.txt', uploadId: 'U' }]);
    await journal.forgetUpload(upload);
    await journal.forget(id, file);
    expect(await readJournalFolder(journal.dir)).toEqual({ entries: [], uploads: [] });
    expect(await journal.close()).toBe(true);
    expect(await readdir(join(cache, 'journal', 'id'))).toEqual([]);
  });

  it('finds the journals of mounts that are gone, without their never-accepted data', async () => {
    // Journals written through the API, then renamed: a dead pid, and this process's pid
    // with another start time (a pid that was reused); the live one stays as it is.
    const dead = join(cache, 'journal', 'id', `${await deadPid()}-0-deadbeef`);
    const reused = join(cache, 'journal', 'id', `${process.pid}-1-feedface`);
    let live = '';
    for (const target of [dead, reused, undefined]) {
      const journal = await Journal.create(cache, 'id');
      const accepted = await journal.newDataFile();
      await accepted.file.write(Buffer.from('hello'), 0);
      await journal.commit(accepted.id, accepted.file, record);
      const neverClosed = await journal.newDataFile();
      await neverClosed.file.write(randomBytes(IN_MEMORY_LIMIT + 1), 0);
      await journal.recordUpload(neverClosed.id, { key: 'big', uploadId: 'U' });
      await journal.close();
      if (target) await rename(journal.dir, target);
      else live = journal.dir;
    }
    const found = (await findAbandoned(cache, 'id')).sort((a, b) => a.dir.localeCompare(b.dir));
    expect(found.map((j) => j.dir)).toEqual([dead, reused].sort());
    expect(found.find((j) => j.dir === dead)?.entries).toEqual([{ record, dataPath: join(dead, '1.data'), bytes: Buffer.from('hello') }]);
    expect(found.find((j) => j.dir === dead)?.uploads).toEqual([{ key: 'big', uploadId: 'U' }]);
    expect((await readdir(dead)).filter((n) => n.endsWith('.data'))).toEqual([]);
    expect((await readdir(live)).filter((n) => n.endsWith('.data'))).toEqual(['2.data']);
  });
});

describe('journal log', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 's3mount-log-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('replays the latest state of each key, up to a torn frame', async () => {
    const log = new JournalLog(dir, async () => undefined);
    await log.put('a', { v: 1 }, Buffer.from('one'), true);
    await log.put('b', { v: 1 }, undefined, true);
    await log.put('a', { v: 2 }, Buffer.from('two'), false);
    await log.drop('b');
    await log.put('c', { v: 1 }, undefined, true);
    await log.close();
    expect(await replayLog(dir)).toEqual(
      new Map([
        ['a', { body: { v: 2 }, data: Buffer.from('two') }],
        ['c', { body: { v: 1 }, data: undefined }],
      ]),
    );
    // A crash in the middle of the last frame: one byte of it changed.
    const segment = join(dir, '1.log');
    const bytes = await readFile(segment);
    const insideLastFrame = bytes.lastIndexOf(Buffer.from('"c"'));
    bytes.writeUInt8(bytes.readUInt8(insideLastFrame) ^ 0xff, insideLastFrame);
    await writeFile(segment, bytes);
    expect([...(await replayLog(dir)).keys()]).toEqual(['a']);
  });

  it('reuses segments once nothing in them is live, and never replays what they held before', async () => {
    const log = new JournalLog(dir, async () => undefined);
    const chunk = randomBytes(IN_MEMORY_LIMIT);
    // Far more than a segment: each key is written, then dropped.
    for (let i = 0; i < (4 * SEGMENT_BYTES) / IN_MEMORY_LIMIT; i++) {
      await log.put(`k${i}`, { i }, chunk, true);
      if (i > 0) await log.drop(`k${i - 1}`);
    }
    const last = `k${(4 * SEGMENT_BYTES) / IN_MEMORY_LIMIT - 1}`;
    await log.put('kept', { i: -1 }, undefined, true);
    await log.close();
    const segments = (await readdir(dir)).filter((n) => n.endsWith('.log'));
    expect(segments.length).toBeLessThanOrEqual(4); // the current one, the one before, two spares
    const replayed = await replayLog(dir);
    expect([...replayed.keys()].sort()).toEqual([last, 'kept'].sort());
    expect(md5(replayed.get(last)?.data as Buffer)).toBe(md5(chunk));
    expect(log.empty).toBe(false);
  });
});
