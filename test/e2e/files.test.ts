// End to end: file contents and directories through a real mount made by the built
// CLI, checked against the same operations on a local directory and against the
// objects the SDK reads back from the bucket.
import { randomBytes } from 'node:crypto';
import { open, readFile, readdir, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, runOk, waitUntil } from '../support/run.js';
import { createTestBucket, getObjectBytes, headObject, listKeys, putObject } from '../support/s3.js';
import {
  inParallel,
  md5,
  md5File,
  mountBucket,
  tempDir,
  type CliMount,
  cleanUpTestFile,
} from './support/cli-mount.js';

const MANY = 1500;

let bucket: string;
let mnt: CliMount;
let local: string;
/** 1 MiB of random bytes, the source of the writes below. */
let random: string;

beforeAll(async () => {
  bucket = await createTestBucket('e2e-files');
  local = await tempDir('files-local');
  random = join(local, 'random.bin');
  await writeFile(random, randomBytes(1024 * 1024));
  // Objects made with the SDK before the mount looks: listings are cached for the stat TTL.
  const many = Array.from({ length: MANY }, (_, i) => `many/entry-${String(i).padStart(4, '0')}.txt`);
  await inParallel(many, 32, (key) => putObject(bucket, key, `${key}\n`));
  await putObject(bucket, 'implicit/a/b/c.txt', 'deep\n');
  mnt = await mountBucket(bucket);
}, 120_000);

afterAll(() => cleanUpTestFile(local), 120_000);

/** Runs a shell script with $D set to `dir` and $R to the random source file. */
function sh(dir: string, script: string) {
  return runOk('sh', ['-c', script], { env: { D: dir, R: random } });
}

/** The whole content of an open file, by positional reads from 0. */
async function readAll(handle: FileHandle): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (let position = 0; ; ) {
    const { bytesRead, buffer } = await handle.read(Buffer.alloc(65536), 0, 65536, position);
    if (bytesRead === 0) return Buffer.concat(chunks);
    chunks.push(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** md5 through the mount, by md5sum (a separate process reading the FUSE file). */
async function md5sum(path: string): Promise<string> {
  return (await runOk('md5sum', ['--', path])).split(' ')[0] ?? '';
}

/**
 * Applies the same step to a local directory and to a directory of the mount, then
 * checks that each named file has the same bytes locally, through the mount, and in
 * the bucket (read by the SDK right after the tool exited, i.e. right after close).
 */
async function sameEverywhere(dir: string, names: string[], steps: Array<[string, string]>): Promise<void> {
  const localDir = join(local, dir);
  await runOk('mkdir', ['-p', localDir, mnt.path(dir)]);
  for (const [what, script] of steps) {
    await sh(localDir, script);
    await sh(mnt.path(dir), script);
    for (const name of names) {
      // A file that a step has not made yet is checked from the step that makes it.
      if (!(await exists(join(localDir, name)))) continue;
      const expected = await md5File(join(localDir, name));
      const size = (await stat(join(localDir, name))).size;
      const label = `${what}: ${name}`;
      expect((await stat(mnt.path(`${dir}/${name}`))).size, label).toBe(size);
      expect(await md5sum(mnt.path(`${dir}/${name}`)), label).toBe(expected);
      // fsync: once it returns, the bucket has the file as written so far.
      await runOk('sync', [mnt.path(`${dir}/${name}`)]);
      const inBucket = await getObjectBytes(bucket, `${dir}/${name}`);
      expect(inBucket.length, label).toBe(size);
      expect(md5(inBucket), label).toBe(expected);
    }
  }
}

describe('file contents', () => {
  it('write, append and overwrite at offsets match a local file', { timeout: 90_000 }, async () => {
    await sameEverywhere('rw', ['f', 'g', 'h'], [
      ['write', 'head -c 300000 "$R" > "$D/f"'],
      ['read back with cat', 'cat "$D/f" > /dev/null'],
      ['append', 'printf "appended line\\n" >> "$D/f"'],
      ['overwrite bytes in the middle', 'printf ABCDEFGH | dd of="$D/f" bs=1 seek=1000 conv=notrunc status=none'],
      ['overwrite blocks', 'dd if="$R" of="$D/f" bs=4096 skip=100 seek=10 count=3 conv=notrunc status=none'],
      ['overwrite across the end', 'dd if="$R" of="$D/f" bs=1000 skip=7 seek=299 count=5 conv=notrunc status=none'],
      ['new file written after a hole', 'printf Z | dd of="$D/g" bs=1 seek=70000 conv=notrunc status=none'],
      ['overwrite with shorter content', 'printf "short\\n" > "$D/g"'],
      ['write large blocks', 'dd if="$R" of="$D/f" bs=256k count=4 status=none'],
      // Above the single-PUT size: multipart uploads, and a download before the first write.
      ['a 20 MiB file', 'for i in $(seq 20); do cat "$R"; done > "$D/h"'],
      ['overwrite inside a 20 MiB file', 'printf XYZ | dd of="$D/h" bs=1 seek=15000000 conv=notrunc status=none'],
      ['append to a 20 MiB file', 'head -c 1000 "$R" >> "$D/h"'],
    ]);
  });

  it('truncate up and down matches a local file', { timeout: 60_000 }, async () => {
    await sameEverywhere('trunc', ['t'], [
      ['write', 'head -c 100000 "$R" > "$D/t"'],
      ['truncate up', 'truncate -s 1000000 "$D/t"'],
      ['truncate down', 'truncate -s 12345 "$D/t"'],
      ['truncate up by a byte', 'truncate -s 12346 "$D/t"'],
      ['truncate to zero', 'truncate -s 0 "$D/t"'],
      ['truncate a new file', 'truncate -s 4097 "$D/u" && cat "$D/u" >> "$D/t"'],
    ]);
  });

  it('empty files made with touch and : > are empty objects', { timeout: 30_000 }, async () => {
    await sameEverywhere('empty', ['touched', 'colon', 'emptied'], [
      ['create', 'touch "$D/touched" && : > "$D/colon" && printf data > "$D/emptied"'],
      ['empty an existing file', ': > "$D/emptied"'],
      ['touch again', 'touch "$D/touched" "$D/colon"'],
    ]);
    for (const name of ['touched', 'colon', 'emptied']) {
      expect((await headObject(bucket, `empty/${name}`))?.ContentLength).toBe(0);
    }
  });

  it('with --write-mode sync, a file is in the bucket as soon as the writing tool has closed it', { timeout: 60_000 }, async () => {
    const data = randomBytes(200_000);
    await writeFile(join(local, 'src.bin'), data);
    const syncMount = await mountBucket(bucket, { args: ['--write-mode', 'sync'] });
    try {
      // cp, tee and a shell redirection: each checked the moment the tool exits.
      await runOk('cp', [join(local, 'src.bin'), syncMount.path('by-cp.bin')]);
      expect(md5(await getObjectBytes(bucket, 'by-cp.bin'))).toBe(md5(data));
      await runOk('sh', ['-c', 'tee "$1" < "$2" > /dev/null', 'sh', syncMount.path('by-tee.bin'), join(local, 'src.bin')]);
      expect(md5(await getObjectBytes(bucket, 'by-tee.bin'))).toBe(md5(data));
      await runOk('sh', ['-c', 'printf "%s\\n" "closed" > "$1"', 'sh', syncMount.path('by-shell.txt')]);
      expect((await getObjectBytes(bucket, 'by-shell.txt')).toString()).toBe('closed\n');
    } finally {
      await syncMount.unmount();
    }
  });

  it('fsync returns once the data is in the bucket, the file still open (write-back mode)', { timeout: 30_000 }, async () => {
    const handle = await open(mnt.path('fsynced.txt'), 'w');
    try {
      await handle.write('synced, still open\n');
      await handle.sync();
      expect((await getObjectBytes(bucket, 'fsynced.txt')).toString()).toBe('synced, still open\n');
    } finally {
      await handle.close();
    }
  });
});

describe('open files', () => {
  it('a file open for reading or writing keeps working after rm, and after mv replaced it', { timeout: 30_000 }, async () => {
    const dir = mnt.path('open');
    await runOk('mkdir', [dir]);
    await runOk('sh', ['-c', 'printf "read me\\n" > "$1/r" && printf "first\\n" > "$1/w" && printf "old\\n" > "$1/old"', 'sh', dir]);
    const reader = await open(join(dir, 'r'), 'r');
    // O_APPEND without O_TRUNC, and nothing written yet when the file goes.
    const writer = await open(join(dir, 'w'), 'a+');
    const replaced = await open(join(dir, 'old'), 'r');
    try {
      await runOk('rm', [join(dir, 'r'), join(dir, 'w')]);
      await runOk('sh', ['-c', 'printf "new\\n" > "$1/new" && mv "$1/new" "$1/old"', 'sh', dir]);
      // POSIX, and docs/semantics.md: "the open descriptor keeps working".
      expect((await reader.read(Buffer.alloc(64), 0, 64, 0)).bytesRead).toBe(8);
      expect((await readAll(reader)).toString()).toBe('read me\n');
      await writer.write('second\n');
      expect((await readAll(writer)).toString()).toBe('first\nsecond\n');
      expect((await readAll(replaced)).toString()).toBe('old\n');
    } finally {
      await reader.close();
      await writer.close();
      await replaced.close();
    }
    expect(await runOk('ls', [dir])).toBe('old\n');
    expect(await runOk('cat', [join(dir, 'old')])).toBe('new\n');
    // Nothing was uploaded for the removed file when its descriptor closed.
    await runOk('sync', [join(dir, 'old')]);
    expect(await listKeys(bucket, 'open/')).toEqual(['open/', 'open/old']);
  });
});

describe('consistency', () => {
  it('stat, cat and ls of another process see a file while it is still open for writing', { timeout: 30_000 }, async () => {
    const handle = await open(mnt.path('growing.bin'), 'w');
    try {
      const data = randomBytes(300_000);
      await handle.write(data, 0, data.length, 0);
      expect(await runOk('stat', ['-c', '%s', mnt.path('growing.bin')])).toBe('300000\n');
      expect(await md5sum(mnt.path('growing.bin'))).toBe(md5(data));
      expect(await runOk('ls', [mnt.dir])).toContain('growing.bin\n');
    } finally {
      await handle.close();
    }
  });

  it('an object replaced in the bucket while open: the handle keeps its version, new opens get the new one, never a mix', { timeout: 60_000 }, async () => {
    const MiB = 1024 * 1024;
    const first = Buffer.alloc(6 * MiB, 1);
    const second = Buffer.alloc(6 * MiB, 2);
    await runOk('sh', ['-c', 'head -c $((6 * 1024 * 1024)) /dev/zero | tr "\\000" "\\001" > "$1"', 'sh', mnt.path('changing.bin')]);
    await runOk('sync', [mnt.path('changing.bin')]);
    expect(md5(await getObjectBytes(bucket, 'changing.bin'))).toBe(md5(first));
    const reader = await open(mnt.path('changing.bin'), 'r');
    try {
      const head = await reader.read(Buffer.alloc(4096), 0, 4096, 0);
      expect(head.buffer.subarray(0, head.bytesRead).equals(first.subarray(0, 4096))).toBe(true);
      // Replaced by another client, same size: only the ETag tells.
      await putObject(bucket, 'changing.bin', second);
      // What the open handle reads is one version: the first (read ahead since), or the
      // second if a chunk of the first had to be fetched and the server said 412.
      const late = await reader.read(Buffer.alloc(4096), 0, 4096, 5 * MiB);
      expect([first, second].some((v) => v.subarray(5 * MiB, 5 * MiB + 4096).equals(late.buffer))).toBe(true);
    } finally {
      await reader.close();
    }
    // New opens see the second version once the stat TTL has passed, and never a mix.
    const seen = new Set<string>();
    await waitUntil(
      'the new version through the mount',
      async () => {
        const sum = md5(await readFile(mnt.path('changing.bin')));
        seen.add(sum);
        return sum === md5(second);
      },
      20_000,
    );
    expect([...seen].filter((sum) => sum !== md5(first) && sum !== md5(second))).toEqual([]);
  });
});

describe('directories', () => {
  it('readdir lists . and .. (ls -a)', { timeout: 30_000 }, async () => {
    await runOk('mkdir', ['-p', mnt.path('dots/empty')]);
    await runOk('sh', ['-c', 'echo x > "$1"', 'sh', mnt.path('dots/file')]);
    expect(await runOk('ls', ['-a', mnt.path('dots/empty')])).toBe('.\n..\n');
    expect(await runOk('ls', ['-a', mnt.path('dots')])).toBe('.\n..\nempty\nfile\n');
    expect(await runOk('ls', ['-a', mnt.path('implicit/a')])).toBe('.\n..\nb\n');
    expect((await runOk('ls', ['-a', mnt.dir])).split('\n').slice(0, 2)).toEqual(['.', '..']);
  });


  it(`lists ${MANY} entries made with the SDK, plus a few made through the mount`, { timeout: 90_000 }, async () => {
    const dir = mnt.path('many');
    expect((await runOk('sh', ['-c', 'ls "$1" | wc -l', 'sh', dir])).trim()).toBe(String(MANY));
    for (const name of ['new-1.txt', 'new-2.txt', 'new 3.txt']) {
      await runOk('sh', ['-c', 'echo made here > "$1"', 'sh', join(dir, name)]);
    }
    const names = (await runOk('ls', [dir])).split('\n').filter(Boolean);
    expect(names).toHaveLength(MANY + 3);
    expect(names).toContain('entry-0000.txt');
    expect(names).toContain(`entry-${MANY - 1}.txt`);
    expect(names).toContain('new 3.txt');
    expect(new Set(names).size).toBe(names.length);
    const long = await run('ls', ['-l', dir], { timeoutMs: 60_000 });
    expect(long.stderr).toBe('');
    expect(long.code).toBe(0);
    const lines = long.stdout.split('\n').filter((line) => line.startsWith('-'));
    expect(lines).toHaveLength(MANY + 3);
    expect(lines.find((line) => line.endsWith(' entry-0042.txt'))).toMatch(/^-rw-r--r-- 1 \S+ \S+ 20 /);
    expect((await runOk('cat', [join(dir, 'entry-0042.txt')]))).toBe('many/entry-0042.txt\n');
    expect((await listKeys(bucket, 'many/')).length).toBe(MANY + 3);
  });

  it('shows implicit directories of keys put with the SDK only', { timeout: 30_000 }, async () => {
    const root = mnt.path('implicit');
    expect(await runOk('ls', [root])).toBe('a\n');
    expect(await runOk('ls', [join(root, 'a')])).toBe('b\n');
    expect(await runOk('stat', ['-c', '%F', join(root, 'a'), join(root, 'a/b'), join(root, 'a/b/c.txt')])).toBe(
      'directory\ndirectory\nregular file\n',
    );
    const found = (await runOk('find', [root])).split('\n').filter(Boolean).sort();
    expect(found).toEqual([root, join(root, 'a'), join(root, 'a/b'), join(root, 'a/b/c.txt')]);
    expect(await runOk('find', [root, '-type', 'd', '-name', 'b'])).toBe(`${join(root, 'a/b')}\n`);
    expect(await runOk('cat', [join(root, 'a/b/c.txt')])).toBe('deep\n');

    const rmdir = await run('rmdir', [join(root, 'a/b')]);
    expect(rmdir.code).not.toBe(0);
    expect(rmdir.stderr).toContain('Directory not empty');
    expect(await listKeys(bucket, 'implicit/')).toEqual(['implicit/a/b/c.txt']);
    expect(await runOk('stat', ['-c', '%F', join(root, 'a/b')])).toBe('directory\n');
  });

  it('keeps an empty directory made with mkdir across a remount', { timeout: 60_000 }, async () => {
    await runOk('mkdir', ['-p', mnt.path('made/empty/deeper')]);
    await runOk('mkdir', [mnt.path('made/empty2')]);
    expect((await listKeys(bucket, 'made/')).sort()).toEqual(['made/', 'made/empty/', 'made/empty/deeper/', 'made/empty2/']);
    await mnt.remount();
    expect(await runOk('ls', [mnt.path('made')])).toBe('empty\nempty2\n');
    expect(await runOk('stat', ['-c', '%F', mnt.path('made/empty/deeper'), mnt.path('made/empty2')])).toBe(
      'directory\ndirectory\n',
    );
    expect(await readdir(mnt.path('made/empty/deeper'))).toEqual([]);
    // rmdir of an empty directory removes its marker; of a non-empty one, ENOTEMPTY.
    const notEmpty = await run('rmdir', [mnt.path('made/empty')]);
    expect(notEmpty.stderr).toContain('Directory not empty');
    await runOk('rmdir', [mnt.path('made/empty/deeper')]);
    await runOk('rmdir', [mnt.path('made/empty')]);
    expect((await listKeys(bucket, 'made/')).sort()).toEqual(['made/', 'made/empty2/']);
  });
});
