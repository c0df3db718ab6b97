// End to end: names that need escaping somewhere between the tools and S3, and
// renames of files and directories (copy + delete on the server).
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, runOk } from '../support/run.js';
import { createTestBucket, getObjectBytes, listKeys, putObject } from '../support/s3.js';
import {
  expectNothingMounted,
  inParallel,
  md5,
  mountBucket,
  unmountAll,
  type CliMount,
} from './support/cli-mount.js';

/** Each name must come back exactly, as a file name and as the key. */
const NAMES = [
  'with space.txt',
  ' leading and trailing spaces ',
  'caf\u00e9 \u00e9t\u00e9.txt',
  '\u65e5\u672c\u8a9e.txt',
  '\u{1F642} smile',
  'hash#tag',
  'a+b',
  '100%',
  '%41%2F',
  'what?',
  'this&that',
  'key=value',
  'mixed #+%?&= \u65e5\u672c \u{1F642}.dat',
];

let bucket: string;
let mnt: CliMount;
/** Files of the directory renamed below: relative path -> content. */
const tree = new Map<string, Buffer>();
/** The file moved with mv below. */
const mvSource = randomBytes(70_000);

beforeAll(async () => {
  bucket = await createTestBucket('e2e-names');
  for (let d = 0; d < 5; d++) {
    for (let s = 0; s < 2; s++) {
      for (let f = 0; f < 5; f++) {
        const depth = s === 0 ? `d${d}` : `d${d}/sub ${s}/deeper`;
        tree.set(`${depth}/file-${f}.bin`, randomBytes(1000 + d * 700 + f * 37));
      }
    }
  }
  // Made with the SDK: the rename is what is under test, not the writes.
  await inParallel([...tree], 16, ([path, body]) => putObject(bucket, `tree/${path}`, body));
  // Before the mount: a mount may trust a directory listing for up to --stat-ttl.
  await putObject(bucket, 'mv/source.bin', mvSource);
  mnt = await mountBucket(bucket);
}, 120_000);

afterAll(async () => {
  try {
    await unmountAll();
  } finally {
    await expectNothingMounted();
  }
}, 120_000);

const content = (name: string): string => `content of <${name}>\n`;

describe('names', () => {
  it('creates, lists, reads and renames names with spaces, unicode and URL characters', { timeout: 60_000 }, async () => {
    const dir = mnt.path('names');
    await runOk('mkdir', [dir]);
    for (const name of NAMES) {
      await runOk('sh', ['-c', 'printf "%s" "$2" > "$1"', 'sh', join(dir, name), content(name)]);
    }
    // Listed exactly, by ls (a separate process, raw bytes: stdout is not a terminal) and by readdir.
    const listed = (await runOk('ls', ['-1A', dir])).split('\n').slice(0, -1);
    expect(listed.sort()).toEqual([...NAMES].sort());
    expect((await readdir(dir)).sort()).toEqual([...NAMES].sort());
    for (const name of NAMES) expect(await runOk('cat', [join(dir, name)])).toBe(content(name));
    // The keys are the names, as UTF-8, nothing escaped (in the bucket once fsync returned).
    await runOk('sync', NAMES.map((name) => join(dir, name)));
    expect((await listKeys(bucket, 'names/')).sort()).toEqual(['names/', ...NAMES.map((n) => `names/${n}`)].sort());
    for (const name of NAMES) expect((await getObjectBytes(bucket, `names/${name}`)).toString()).toBe(content(name));

    // Renamed through the mount, into a directory whose name needs escaping too.
    const target = mnt.path('renamed #+%? \u65e5\u672c');
    await runOk('mkdir', [target]);
    for (const name of NAMES) await runOk('mv', [join(dir, name), join(target, `moved ${name}`)]);
    expect(await readdir(dir)).toEqual([]);
    expect((await readdir(target)).sort()).toEqual(NAMES.map((n) => `moved ${n}`).sort());
    for (const name of NAMES) expect(await runOk('cat', [join(target, `moved ${name}`)])).toBe(content(name));
    // Only the (now empty) directory's marker is left of the old names.
    await runOk('sync', NAMES.map((name) => join(target, `moved ${name}`)));
    expect(await listKeys(bucket, 'names/')).toEqual(['names/']);
    const prefix = 'renamed #+%? \u65e5\u672c/';
    expect((await listKeys(bucket, prefix)).sort()).toEqual([prefix, ...NAMES.map((n) => `${prefix}moved ${n}`)].sort());
    for (const name of NAMES) {
      expect((await getObjectBytes(bucket, `${prefix}moved ${name}`)).toString()).toBe(content(name));
    }
  });
});

describe('prefix mounts', () => {
  it('BUCKET:PREFIX mounts the keys under PREFIX as the root', { timeout: 60_000 }, async () => {
    await putObject(bucket, 'sub/tree/seen.txt', 'under the prefix\n');
    await putObject(bucket, 'sub-sibling.txt', 'beside the prefix\n');
    const sub = await mountBucket(bucket, { prefix: 'sub/tree' });
    try {
      expect(await runOk('ls', ['-A', sub.dir])).toBe('seen.txt\n');
      expect(await runOk('cat', [sub.path('seen.txt')])).toBe('under the prefix\n');
      await runOk('mkdir', [sub.path('made \u65e5\u672c')]);
      await runOk('sh', ['-c', 'printf "written through the prefix mount\\n" > "$1"', 'sh', sub.path('made \u65e5\u672c/new #1.txt')]);
      await runOk('mv', [sub.path('seen.txt'), sub.path('made \u65e5\u672c/seen.txt')]);
      await runOk('sync', [sub.path('made \u65e5\u672c/new #1.txt')]);
      expect((await listKeys(bucket, 'sub/')).sort()).toEqual(
        ['sub/tree/made \u65e5\u672c/', 'sub/tree/made \u65e5\u672c/new #1.txt', 'sub/tree/made \u65e5\u672c/seen.txt'].sort(),
      );
      expect((await getObjectBytes(bucket, 'sub/tree/made \u65e5\u672c/new #1.txt')).toString()).toBe('written through the prefix mount\n');
      expect((await getObjectBytes(bucket, 'sub-sibling.txt')).toString()).toBe('beside the prefix\n');
    } finally {
      await sub.unmount();
    }
  });
});

describe('rename', () => {
  it('moves a file with mv: new key with the same bytes, old key gone', { timeout: 30_000 }, async () => {
    const data = mvSource;
    await runOk('mkdir', ['-p', mnt.path('mv-target')]);
    // Under a directory that the mount has not listed yet: no stale listing in the way.
    await runOk('mv', [mnt.path('mv/source.bin'), mnt.path('mv/renamed.bin')]);
    expect(md5(await getObjectBytes(bucket, 'mv/renamed.bin'))).toBe(md5(data));
    expect((await runOk('md5sum', [mnt.path('mv/renamed.bin')])).split(' ')[0]).toBe(md5(data));
    // Into another directory.
    await runOk('mv', [mnt.path('mv/renamed.bin'), mnt.path('mv-target/moved.bin')]);
    expect((await runOk('md5sum', [mnt.path('mv-target/moved.bin')])).split(' ')[0]).toBe(md5(data));
    expect(md5(await getObjectBytes(bucket, 'mv-target/moved.bin'))).toBe(md5(data));
    const missing = await run('stat', [mnt.path('mv/renamed.bin')]);
    expect(missing.stderr).toContain('No such file or directory');
    // mv/ had no marker: it stays as an empty directory once its last file left.
    expect(await listKeys(bucket, 'mv/')).toEqual(['mv/']);
    expect(await runOk('stat', ['-c', '%F', mnt.path('mv')])).toBe('directory\n');
    expect(await listKeys(bucket, 'mv-target/')).toEqual(['mv-target/', 'mv-target/moved.bin']);
  });

  it('moves a directory of 50 files in subdirectories', { timeout: 60_000 }, async () => {
    await runOk('mv', [mnt.path('tree'), mnt.path('moved tree')]);
    // Every file at its new path, with its bytes, through the mount...
    const manifest = [...tree].map(([path, body]) => `${md5(body)}  ${path}\n`).join('');
    const check = await run('md5sum', ['-c', '--quiet', '-'], { cwd: mnt.path('moved tree'), input: manifest });
    expect(check.stdout + check.stderr).toBe('');
    expect(check.code).toBe(0);
    const found = (await runOk('find', ['.', '-type', 'f'], { cwd: mnt.path('moved tree') }))
      .split('\n')
      .filter(Boolean)
      .map((p) => p.slice(2))
      .sort();
    expect(found).toEqual([...tree.keys()].sort());
    // ...and in the bucket: the old keys gone, the new ones there with the same bytes.
    expect(await listKeys(bucket, 'tree/')).toEqual([]);
    const moved = (await listKeys(bucket, 'moved tree/')).filter((key) => !key.endsWith('/'));
    expect(moved.sort()).toEqual([...tree.keys()].map((p) => `moved tree/${p}`).sort());
    await inParallel([...tree], 8, async ([path, body]) => {
      expect(md5(await getObjectBytes(bucket, `moved tree/${path}`)), path).toBe(md5(body));
    });
    const old = await run('ls', [mnt.path('tree')]);
    expect(old.stderr).toContain('No such file or directory');
  });
});
