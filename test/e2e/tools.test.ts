// End to end: unmodified tools on a real mount — tar, md5sum -c, rsync, dd of a
// large file — checked by checksums made locally.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, runOk } from '../support/run.js';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { createTestBucket, headObject, testClient } from '../support/s3.js';
import { MiB, mountBucket, tempDir, type CliMount, cleanUpTestFile } from './support/cli-mount.js';

let bucket: string;
let mnt: CliMount;
let local: string;

beforeAll(async () => {
  bucket = await createTestBucket('e2e-tools');
  local = await tempDir('tools-local');
  mnt = await mountBucket(bucket);
}, 60_000);

afterAll(() => cleanUpTestFile(local), 120_000);

/** A deterministic spread of sizes: mostly small, some empty, a few of a few hundred KiB. */
function sizeOf(i: number): number {
  if (i % 97 === 0) return 0;
  if (i % 50 === 7) return 200_000 + i * 1000;
  return (i * 7919) % 6000;
}

/**
 * A local tree of `count` files in nested directories, with a symlink, mtimes with
 * nanoseconds and a few modes. Returns the relative paths of the regular files.
 */
async function makeTree(root: string, count: number): Promise<string[]> {
  const files: string[] = [];
  for (let i = 0; i < count; i++) {
    const dir = i % 5 === 0 ? `top-${i % 3}` : `d${i % 7}/sub ${i % 4}${i % 3 === 0 ? '/deep' : ''}`;
    files.push(`${dir}/file-${i}${i % 11 === 0 ? ' with space' : ''}.dat`);
  }
  await Promise.all([...new Set(files.map((f) => join(root, f, '..')))].map((d) => mkdir(d, { recursive: true })));
  for (const [i, file] of files.entries()) {
    await writeFile(join(root, file), randomBytes(sizeOf(i)), { mode: i % 13 === 0 ? 0o600 : 0o644 });
  }
  await mkdir(join(root, 'empty dir'));
  await symlink('../top-0/file-0 with space.dat', join(root, 'd1/link to file'));
  // Times with nanoseconds (touch -d), files and directories alike: tar and rsync carry them.
  await runOk('sh', ['-c', 'find "$1" -exec touch -h -d "2019-08-07 06:05:04.987654321" {} +', 'sh', root]);
  return files;
}

/** md5sum manifest of the tree's regular files, made locally (paths relative, "./" form). */
async function manifestOf(root: string): Promise<string> {
  return runOk('sh', ['-c', 'cd "$1" && find . -type f -print0 | sort -z | xargs -0 md5sum', 'sh', root]);
}

/** One line per entry: path, type, mode, size of regular files, mtime in ns; sorted. */
async function attributesOf(root: string): Promise<string[]> {
  const script = 'cd "$1" && find . -mindepth 1 \\( -type f -printf "%p %y %m %s %T@\\n" \\) -o -printf "%p %y %m %T@\\n"';
  return (await runOk('sh', ['-c', script, 'sh', root])).split('\n').filter(Boolean).sort();
}

async function md5sumCheck(dir: string, manifest: string): Promise<void> {
  const result = await run('md5sum', ['-c', '--quiet', '-'], { cwd: dir, input: manifest, timeoutMs: 120_000 });
  expect(result.stdout + result.stderr).toBe('');
  expect(result.code).toBe(0);
}

describe('tar', () => {
  it('extracts a tree of 520 files; md5sum -c passes through the mount, also after a remount', { timeout: 180_000 }, async () => {
    const src = join(local, 'tar-src');
    await mkdir(src);
    const files = await makeTree(src, 520);
    const archive = join(local, 'tree.tgz');
    // POSIX (pax) format: GNU tar's default format keeps whole seconds only.
    await runOk('tar', ['--format=posix', '-czf', archive, '-C', src, '.']);
    const manifest = await manifestOf(src);
    expect(manifest.split('\n').filter(Boolean)).toHaveLength(files.length);

    const dst = mnt.path('tar');
    await runOk('mkdir', [dst]);
    const tar = await run('tar', ['xzf', archive, '-C', dst], { timeoutMs: 150_000 });
    expect(tar.stderr).toBe('');
    expect(tar.code).toBe(0);
    await md5sumCheck(dst, manifest);
    expect(await runOk('readlink', [join(dst, 'd1/link to file')])).toBe('../top-0/file-0 with space.dat\n');
    // tar x restores the times, to the nanosecond, and the modes.
    expect(await runOk('stat', ['-c', '%y %a', join(dst, 'top-0/file-0 with space.dat'), join(dst, 'd1/sub 1/file-1.dat')])).toBe(
      '2019-08-07 06:05:04.987654321 +0000 600\n2019-08-07 06:05:04.987654321 +0000 644\n',
    );

    await mnt.remount();
    await md5sumCheck(dst, manifest);
    expect(await runOk('cat', [join(dst, 'd1/link to file')])).toBe(await runOk('cat', [join(src, 'top-0/file-0 with space.dat')]));
    expect(await runOk('stat', ['-c', '%F', join(dst, 'empty dir')])).toBe('directory\n');
    // Every entry is there with its type, mode, size (files) and mtime to the nanosecond:
    // tar x restored them on files, directories and the symlink alike.
    expect(await attributesOf(dst)).toEqual(await attributesOf(src));
  });
});

describe('rsync', () => {
  it('a second rsync -a, with and without --checksum, finds nothing to do', { timeout: 120_000 }, async () => {
    const src = join(local, 'rsync-src');
    await mkdir(src);
    await makeTree(src, 80);
    await utimes(src, new Date('2018-01-01T00:00:00Z'), new Date('2018-01-01T00:00:00Z'));
    const dst = `${mnt.path('rsync-dst')}/`;

    const first = await run('rsync', ['-a', `${src}/`, dst], { timeoutMs: 100_000 });
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    await md5sumCheck(dst, await manifestOf(src));

    const checksum = await run('rsync', ['-a', '--checksum', '--dry-run', '--itemize-changes', `${src}/`, dst]);
    expect(checksum.stderr).toBe('');
    expect(checksum.stdout).toBe('');
    expect(checksum.code).toBe(0);
    const plain = await run('rsync', ['-a', '--itemize-changes', `${src}/`, dst]);
    expect(plain.stderr).toBe('');
    expect(plain.stdout).toBe('');
    expect(plain.code).toBe(0);
  });
});

describe('large files', () => {
  it('a 100 MiB file written with dd has the same md5 through the mount and in the bucket', { timeout: 180_000 }, async () => {
    const source = join(local, 'big.bin');
    await runOk('sh', ['-c', 'head -c $((100 * 1024 * 1024)) /dev/urandom > "$1"', 'sh', source], { timeoutMs: 60_000 });
    const expected = (await runOk('md5sum', [source])).split(' ')[0];

    // conv=fsync: dd returns once the file is in the bucket.
    const dd = await run('dd', [`if=${source}`, `of=${mnt.path('big.bin')}`, 'bs=1M', 'conv=fsync'], { timeoutMs: 150_000 });
    expect(dd.code, dd.stderr).toBe(0);
    expect(dd.stderr).toContain(`${100 * MiB} bytes`);

    // The bucket, right after dd exited.
    expect((await headObject(bucket, 'big.bin'))?.ContentLength).toBe(100 * MiB);
    const out = await testClient().send(new GetObjectCommand({ Bucket: bucket, Key: 'big.bin' }));
    const hash = createHash('md5');
    for await (const chunk of out.Body as AsyncIterable<Buffer>) hash.update(chunk);
    expect(hash.digest('hex')).toBe(expected);

    // Through the mount, from S3: a fresh mount has nothing cached.
    await mnt.remount();
    expect((await runOk('md5sum', [mnt.path('big.bin')], { timeoutMs: 120_000 })).split(' ')[0]).toBe(expected);
    expect(await runOk('stat', ['-c', '%s', mnt.path('big.bin')])).toBe(`${100 * MiB}\n`);
  });
});
