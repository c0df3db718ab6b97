import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MemFs } from '../support/memfs.js';
import { mountMemFs, type TestMount } from '../support/memfs-mount.js';
import { runOk } from '../support/run.js';

// Stock fuse-native lost every one of these: utimens passed atime as mtime, mtime-only
// updates never arrived and times were milliseconds.
describe('binding: times to the nanosecond', () => {
  let m: TestMount<MemFs>;
  let local: string;

  beforeEach(async () => {
    m = await mountMemFs();
    local = await mkdtemp(join(tmpdir(), 's3mount-local-'));
  });
  afterEach(async () => {
    await m?.close();
    await rm(local, { recursive: true, force: true });
  });

  const times = (path: string) => runOk('stat', ['-c', '%x|%y', path]).then((s) => s.trim());

  it('touch -d sets atime and mtime to the nanosecond', async () => {
    await runOk('touch', ['-d', '2001-02-03 04:05:06.123456789', m.path('f')]);
    expect(await times(m.path('f'))).toBe('2001-02-03 04:05:06.123456789 +0000|2001-02-03 04:05:06.123456789 +0000');
  });

  it('touch -m changes only mtime and touch -a only atime', async () => {
    await runOk('touch', ['-d', '2001-02-03 04:05:06.123456789', m.path('f')]);
    await runOk('touch', ['-m', '-d', '2010-01-01 00:00:00.000000001', m.path('f')]);
    expect(await times(m.path('f'))).toBe('2001-02-03 04:05:06.123456789 +0000|2010-01-01 00:00:00.000000001 +0000');
    await runOk('touch', ['-a', '-d', '1999-12-31 23:59:59.999999999', m.path('f')]);
    expect(await times(m.path('f'))).toBe('1999-12-31 23:59:59.999999999 +0000|2010-01-01 00:00:00.000000001 +0000');
  });

  it('cp -p keeps the mtime of the source', async () => {
    const src = join(local, 'src.bin');
    await writeFile(src, 'payload\n');
    await runOk('touch', ['-d', '2005-06-07 08:09:10.987654321', src]);
    await runOk('cp', ['-p', src, m.path('copy.bin')]);
    expect((await runOk('stat', ['-c', '%y', m.path('copy.bin')])).trim()).toBe('2005-06-07 08:09:10.987654321 +0000');
    expect(await runOk('cat', [m.path('copy.bin')])).toBe('payload\n');
  });

  it('tar x restores every mtime of a tree, directories included', async () => {
    const tree = join(local, 'tree');
    await runOk('mkdir', ['-p', join(tree, 'sub/deeper')]);
    const stamps: Record<string, string> = {
      'a.txt': '2003-01-01 01:01:01.111111111',
      'sub/b.txt': '2004-02-02 02:02:02.222222222',
      'sub/deeper/c.txt': '2005-03-03 03:03:03.333333333',
      'sub/deeper': '2006-04-04 04:04:04.444444444',
      sub: '2007-05-05 05:05:05.555555555',
    };
    for (const [name, stamp] of Object.entries(stamps)) {
      if (name.endsWith('.txt')) await writeFile(join(tree, name), `content of ${name}\n`);
    }
    for (const [name, stamp] of Object.entries(stamps)) await runOk('touch', ['-d', stamp, join(tree, name)]);
    const archive = join(local, 'tree.tar');
    await runOk('tar', ['--format=posix', '-cf', archive, '-C', tree, '.']);
    await runOk('tar', ['-xf', archive, '-C', m.dir]);
    for (const [name, stamp] of Object.entries(stamps)) {
      expect((await runOk('stat', ['-c', '%y', m.path(name)])).trim(), name).toBe(`${stamp} +0000`);
    }
  });

  it('rsync -a keeps mtimes, and a second run transfers nothing', async () => {
    const src = join(local, 'src');
    await runOk('mkdir', ['-p', join(src, 'd')]);
    for (let i = 0; i < 20; i++) await writeFile(join(src, i % 2 ? `d/f${i}` : `f${i}`), `file ${i}\n`.repeat(i + 1));
    await runOk('touch', ['-d', '2011-11-11 11:11:11.123456789', join(src, 'f0')]);
    await runOk('rsync', ['-a', `${src}/`, `${m.dir}/`]);
    expect((await runOk('stat', ['-c', '%y', m.path('f0')])).trim()).toBe('2011-11-11 11:11:11.123456789 +0000');
    const writesBefore = m.fs.callsOf('write').length;
    const second = await runOk('rsync', ['-a', '--itemize-changes', `${src}/`, `${m.dir}/`]);
    expect(second).toBe('');
    expect(m.fs.callsOf('write').length).toBe(writesBefore);
    expect(await runOk('md5sum', [m.path('d/f19')])).toContain((await runOk('md5sum', [join(src, 'd/f19')])).split(' ')[0]);
  });
});
