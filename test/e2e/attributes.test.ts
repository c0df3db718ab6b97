// End to end: attributes kept in the object's metadata (mtime to the nanosecond,
// mode), symlinks, and the errors of what S3 cannot do or does not have.
import { randomBytes } from 'node:crypto';
import { lstat, readdir, readlink, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, runOk } from '../support/run.js';
import { createTestBucket, getObjectBytes, headObject, listKeys, putObject } from '../support/s3.js';
import { md5, mountBucket, tempDir, type CliMount, cleanUpTestFile } from './support/cli-mount.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

const WHEN = '2001-02-03 04:05:06.123456789';
/** `stat -c %y` of WHEN (the tools run with TZ=UTC). */
const WHEN_Y = '2001-02-03 04:05:06.123456789 +0000';
/** x-amz-meta-mtime of WHEN, as s3fs writes it. */
const WHEN_META = '981173106.123456789';

let bucket: string;
let mnt: CliMount;
let local: string;

beforeAll(async () => {
  bucket = await createTestBucket('e2e-attributes');
  local = await tempDir('attributes-local');
  // Objects of other tools, put before the mount: it may trust a listing for --stat-ttl.
  await putObject(bucket, 'foreign/s3fs', 's3fs\n', { mtime: '1482412345.123456789', mode: String(S_IFREG | 0o755), uid: '1234', gid: '5678' });
  await putObject(bucket, 'foreign/rclone', 'rclone\n', { mtime: '1482412345.5' });
  await putObject(bucket, 'foreign/geesefs', 'geesefs\n', { mtime: '1482412345' });
  await putObject(bucket, 'foreign/plain', 'plain\n');
  mnt = await mountBucket(bucket);
}, 60_000);

afterAll(() => cleanUpTestFile(local), 120_000);

const statY = async (...paths: string[]): Promise<string> => runOk('stat', ['-c', '%y', ...paths]);

describe('mtime', () => {
  it('touch -d and cp -p keep nanosecond mtimes across a remount, as x-amz-meta-mtime', { timeout: 60_000 }, async () => {
    await runOk('sh', ['-c', 'echo touched > "$1"', 'sh', mnt.path('touched.txt')]);
    await runOk('touch', ['-d', WHEN, mnt.path('touched.txt')]);
    // touch -d creating the file.
    await runOk('touch', ['-d', WHEN, mnt.path('created-by-touch.txt')]);

    const source = join(local, 'source.bin');
    await writeFile(source, randomBytes(50_000));
    await runOk('touch', ['-d', WHEN, source]);
    await runOk('cp', ['-p', source, mnt.path('copied.bin')]);
    // A time with zero nanoseconds, and one before 1970.
    await runOk('sh', ['-c', 'echo x > "$1" && echo y > "$2"', 'sh', mnt.path('whole-second.txt'), mnt.path('old.txt')]);
    await runOk('touch', ['-d', '2020-05-06 07:08:09', mnt.path('whole-second.txt')]);
    await runOk('touch', ['-d', '1969-07-20 20:17:40.5', mnt.path('old.txt')]);

    const names = ['touched.txt', 'created-by-touch.txt', 'copied.bin'];
    const expected = `${names.map(() => WHEN_Y).join('\n')}\n2020-05-06 07:08:09.000000000 +0000\n1969-07-20 20:17:40.500000000 +0000\n`;
    const all = [...names, 'whole-second.txt', 'old.txt'].map((n) => mnt.path(n));
    expect(await statY(...all)).toBe(expected);

    // fsync: the bucket has each file's attributes once it returns (write-back mode).
    await runOk('sync', all);
    for (const name of names) expect((await headObject(bucket, name))?.Metadata?.mtime, name).toBe(WHEN_META);
    expect((await headObject(bucket, 'whole-second.txt'))?.Metadata?.mtime).toBe('1588748889');

    await mnt.remount();
    expect(await statY(...all)).toBe(expected);
    expect(await runOk('md5sum', ['--', mnt.path('copied.bin')])).toBe(
      (await runOk('md5sum', ['--', source])).replace(source, mnt.path('copied.bin')),
    );
    // Node agrees (its own stat of the FUSE files, nanoseconds kept in mtimeNs).
    const st = await stat(mnt.path('copied.bin'), { bigint: true });
    expect(st.mtimeNs).toBe(981173106123456789n);
  });

  it('touch -a changes nothing and touch -m alone sets mtime', { timeout: 30_000 }, async () => {
    await runOk('sh', ['-c', 'echo a > "$1"', 'sh', mnt.path('am.txt')]);
    await runOk('touch', ['-m', '-d', WHEN, mnt.path('am.txt')]);
    expect(await statY(mnt.path('am.txt'))).toBe(`${WHEN_Y}\n`);
    await runOk('touch', ['-a', '-d', '2010-01-01', mnt.path('am.txt')]);
    expect(await statY(mnt.path('am.txt'))).toBe(`${WHEN_Y}\n`);
    await runOk('sync', [mnt.path('am.txt')]);
    expect((await headObject(bucket, 'am.txt'))?.Metadata?.mtime).toBe(WHEN_META);
    // utimes from Node, with an mtime in milliseconds.
    await utimes(mnt.path('am.txt'), new Date(0), new Date(1_600_000_000_250));
    await runOk('sync', [mnt.path('am.txt')]);
    expect((await headObject(bucket, 'am.txt'))?.Metadata?.mtime).toBe('1600000000.250000000');
  });
});

describe('metadata written by other tools', () => {
  it('reads s3fs, rclone and GeeseFS headers, and falls back to LastModified and the defaults', { timeout: 30_000 }, async () => {
    const lastModified = (await headObject(bucket, 'foreign/plain'))?.LastModified as Date;
    const files = ['s3fs', 'rclone', 'geesefs', 'plain'].map((n) => mnt.path(`foreign/${n}`));
    expect(await runOk('stat', ['-c', '%y %a %u %g %s', ...files])).toBe(
      [
        `2016-12-22 13:12:25.123456789 +0000 755 1234 5678 5`,
        `2016-12-22 13:12:25.500000000 +0000 644 ${process.getuid?.()} ${process.getgid?.()} 7`,
        `2016-12-22 13:12:25.000000000 +0000 644 ${process.getuid?.()} ${process.getgid?.()} 8`,
        `${lastModified.toISOString().replace('T', ' ').replace(/\.(\d{3})Z$/, '.$1000000 +0000')} 644 ${process.getuid?.()} ${process.getgid?.()} 6`,
        '',
      ].join('\n'),
    );
  });
});

describe('mode', () => {
  it('chmod 0640 persists across a remount; x-amz-meta-mode is the full st_mode', { timeout: 60_000 }, async () => {
    await runOk('sh', ['-c', 'echo secret > "$1" && echo script > "$2"', 'sh', mnt.path('secret.txt'), mnt.path('run.sh')]);
    await runOk('chmod', ['0640', mnt.path('secret.txt')]);
    await runOk('chmod', ['4755', mnt.path('run.sh')]);
    await runOk('mkdir', [mnt.path('private')]);
    await runOk('chmod', ['0700', mnt.path('private')]);
    expect(await runOk('stat', ['-c', '%a', mnt.path('secret.txt'), mnt.path('run.sh'), mnt.path('private')])).toBe(
      '640\n4755\n700\n',
    );
    await runOk('sync', [mnt.path('secret.txt'), mnt.path('run.sh')]);
    expect((await headObject(bucket, 'secret.txt'))?.Metadata?.mode).toBe(String(S_IFREG | 0o640));
    expect((await headObject(bucket, 'run.sh'))?.Metadata?.mode).toBe(String(S_IFREG | 0o4755));
    expect((await headObject(bucket, 'private/'))?.Metadata?.mode).toBe(String(0o040700));
    // chmod copies the object onto itself: the bytes stay.
    expect((await getObjectBytes(bucket, 'secret.txt')).toString()).toBe('secret\n');

    await mnt.remount();
    expect(await runOk('stat', ['-c', '%a %F', mnt.path('secret.txt'), mnt.path('run.sh'), mnt.path('private')])).toBe(
      '640 regular file\n4755 regular file\n700 directory\n',
    );
    expect(await runOk('cat', [mnt.path('secret.txt')])).toBe('secret\n');
  });

  it('a file created with a mode keeps it (open O_CREAT, mode 0600)', { timeout: 30_000 }, async () => {
    await writeFile(mnt.path('created-0600.txt'), 'mode\n', { mode: 0o600 });
    expect(((await stat(mnt.path('created-0600.txt'))).mode & 0o7777).toString(8)).toBe('600');
    await runOk('sync', [mnt.path('created-0600.txt')]);
    expect((await headObject(bucket, 'created-0600.txt'))?.Metadata?.mode).toBe(String(S_IFREG | 0o600));
  });
});

describe('links', () => {
  it('a symlink round-trips: readlink after a remount, cat follows it', { timeout: 60_000 }, async () => {
    await runOk('mkdir', ['-p', mnt.path('links/dir')]);
    await runOk('sh', ['-c', 'echo "the target" > "$1"', 'sh', mnt.path('links/target.txt')]);
    await runOk('ln', ['-s', 'target.txt', mnt.path('links/link')]);
    await runOk('ln', ['-s', '../target.txt', mnt.path('links/dir/up')]);
    await runOk('ln', ['-s', '/nonexistent/absolute path', mnt.path('links/dangling')]);
    const body = await getObjectBytes(bucket, 'links/link');
    expect(body.toString()).toBe('target.txt');
    const mode = Number((await headObject(bucket, 'links/link'))?.Metadata?.mode);
    expect(mode & S_IFMT).toBe(S_IFLNK);

    await mnt.remount();
    expect(await runOk('readlink', [mnt.path('links/link'), mnt.path('links/dir/up'), mnt.path('links/dangling')])).toBe(
      'target.txt\n../target.txt\n/nonexistent/absolute path\n',
    );
    expect(await runOk('stat', ['-c', '%F', mnt.path('links/link')])).toBe('symbolic link\n');
    expect(await runOk('cat', [mnt.path('links/link')])).toBe('the target\n');
    expect(await runOk('cat', [mnt.path('links/dir/up')])).toBe('the target\n');
    expect(await readlink(mnt.path('links/link'))).toBe('target.txt');
    expect((await lstat(mnt.path('links/link'))).isSymbolicLink()).toBe(true);
    const dangling = await run('cat', [mnt.path('links/dangling')]);
    expect(dangling.stderr).toContain('No such file or directory');
  });

  it('ln (hard link) fails with "Operation not permitted" and leaves nothing behind', { timeout: 30_000 }, async () => {
    await runOk('mkdir', [mnt.path('hard')]);
    await runOk('sh', ['-c', 'echo one > "$1"', 'sh', mnt.path('hard/a')]);
    const ln = await run('ln', [mnt.path('hard/a'), mnt.path('hard/b')]);
    expect(ln.code).not.toBe(0);
    expect(ln.stderr).toContain('Operation not permitted');
    expect(await readdir(mnt.path('hard'))).toEqual(['a']);
    await runOk('sync', [mnt.path('hard/a')]);
    expect((await listKeys(bucket, 'hard/')).sort()).toEqual(['hard/', 'hard/a']);
    expect(await runOk('cat', [mnt.path('hard/a')])).toBe('one\n');
    const missing = await run('stat', [mnt.path('hard/b')]);
    expect(missing.stderr).toContain('No such file or directory');
  });
});

describe('missing files', () => {
  it('cat and stat of a missing file say "No such file or directory"', { timeout: 30_000 }, async () => {
    const cat = await run('cat', [mnt.path('nope')]);
    expect(cat.code).toBe(1);
    expect(cat.stderr).toBe(`cat: ${mnt.path('nope')}: No such file or directory\n`);
    const st = await run('stat', [mnt.path('nope')]);
    expect(st.code).toBe(1);
    expect(st.stderr).toContain('No such file or directory');
    const deep = await run('cat', [mnt.path('no/such/dir/file')]);
    expect(deep.stderr).toContain('No such file or directory');
    await expect(stat(mnt.path('nope'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(readdir(mnt.path('nope-dir'))).rejects.toMatchObject({ code: 'ENOENT' });
    // Nothing was created by looking.
    expect(await headObject(bucket, 'nope')).toBeUndefined();
  });

  it('the bytes read back are the bytes written', { timeout: 30_000 }, async () => {
    const data = randomBytes(9 * 1024 * 1024 + 17);
    await writeFile(join(local, 'nine.bin'), data);
    await runOk('cp', [join(local, 'nine.bin'), mnt.path('nine.bin')]);
    await runOk('sync', [mnt.path('nine.bin')]);
    expect(md5(await getObjectBytes(bucket, 'nine.bin'))).toBe(md5(data));
    expect((await runOk('md5sum', [mnt.path('nine.bin')])).split(' ')[0]).toBe(md5(data));
  });
});
