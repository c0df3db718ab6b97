import { constants } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { FsError, type FileStat, type FuseOperations, type StatFs } from '../../src/fuse/index.js';
import type { MemFs } from '../support/memfs.js';
import { mountMemFs, mountTestFs, type TestMount } from '../support/memfs-mount.js';
import { run, runOk } from '../support/run.js';

const { O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_WRONLY, O_RDWR } = constants;
const MiB = 1024 * 1024;

describe('binding: what requests reach the filesystem', () => {
  let m: TestMount<MemFs> | undefined;
  afterEach(async () => {
    await m?.close();
    m = undefined;
  });

  it('create sees O_EXCL, O_TRUNC and O_APPEND as given', async () => {
    m = await mountMemFs();
    const cases: Array<[string, number]> = [
      ['excl', O_CREAT | O_EXCL | O_WRONLY],
      ['trunc', O_CREAT | O_TRUNC | O_WRONLY],
      ['append', O_CREAT | O_APPEND | O_RDWR],
    ];
    for (const [name, flags] of cases) {
      const fh = await open(m.path(name), flags, 0o640);
      await fh.close();
      const created = m.fs.callsOf('create').find((c) => c.path === `/${name}`);
      const wanted = flags & (O_EXCL | O_TRUNC | O_APPEND | O_WRONLY | O_RDWR);
      expect((created?.flags ?? 0) & (O_EXCL | O_TRUNC | O_APPEND | 3), name).toBe(wanted);
    }
    expect((await stat(m.path('excl'))).mode & 0o7777).toBe(0o640);
  });

  it('O_TRUNC on an existing file arrives in open (atomic_o_trunc) and truncates', async () => {
    m = await mountMemFs();
    await runOk('sh', ['-c', `printf 'long old content' > ${m.path('f')}`]);
    await runOk('sh', ['-c', `printf 'new' > ${m.path('f')}`]);
    const opened = m.fs.callsOf('open').filter((c) => c.path === '/f');
    expect(opened.some((c) => ((c.flags ?? 0) & O_TRUNC) !== 0)).toBe(true);
    expect(await readFile(m.path('f'), 'utf8')).toBe('new');
  });

  it('dd bs=1M reaches the filesystem as 1 MiB write requests', async () => {
    m = await mountMemFs();
    await runOk('dd', ['if=/dev/urandom', `of=${m.path('big')}`, 'bs=1M', 'count=8', 'conv=fsync']);
    const writes = m.fs.callsOf('write');
    expect(writes.map((w) => w.size)).toEqual(Array(8).fill(MiB));
    expect((await stat(m.path('big'))).size).toBe(8 * MiB);
  });

  it('100 concurrent slow getattrs are all in flight at once', async () => {
    // attr_timeout=0: every stat is a GETATTR of an already looked-up file.
    m = await mountMemFs({ attrTimeout: 0, entryTimeout: 60 });
    const names = Array.from({ length: 100 }, (_, i) => `f${i}`);
    await runOk('sh', ['-c', `cd ${m.dir} && touch ${names.join(' ')} && stat ${names.join(' ')} > /dev/null`]);

    let inFlight = 0;
    let peak = 0;
    let openGate: () => void = () => {};
    const gate = new Promise<void>((res) => (openGate = res));
    // A barrier, bounded: each getattr waits until all 100 are in flight (or 20 s pass).
    const bound = setTimeout(openGate, 20_000);
    m.fs.hooks.getattr = async (path) => {
      if (!path?.startsWith('/f')) return;
      inFlight++;
      peak = Math.max(peak, inFlight);
      if (inFlight === 100) openGate();
      await gate;
      inFlight--;
    };
    const script = `cd ${m.dir} && for f in ${names.join(' ')}; do stat -c %s $f > /dev/null & done; wait`;
    const result = await run('sh', ['-c', script], { timeoutMs: 30_000 });
    clearTimeout(bound);
    expect(result.code).toBe(0);
    expect(peak).toBe(100);
  });

  it('a flush that takes 20 s does not fail close() with ETIMEDOUT', { timeout: 60_000 }, async () => {
    // A short bound for the other ops shows that flush is exempt, not merely under it.
    m = await mountMemFs({ opTimeoutMs: 5_000 });
    m.fs.hooks.flush = async (path) => {
      if (path === '/slow') await new Promise((r) => setTimeout(r, 20_000));
    };
    // One open/write/close: exactly one flush, and python reports a failing close().
    const script = `import os\nfd = os.open('${m.path('slow')}', os.O_CREAT | os.O_WRONLY, 0o644)\nos.write(fd, b'data')\nos.close(fd)\n`;
    const result = await run('python3', ['-c', script], { timeoutMs: 50_000 });
    expect(result.stderr).toBe('');
    expect(m.fs.callsOf('flush').filter((c) => c.path === '/slow')).toHaveLength(1);
    expect(result.code).toBe(0);
    expect(result.ms).toBeGreaterThanOrEqual(20_000);
  });

  it('other ops are bounded: a getattr that never answers gives ETIMEDOUT', async () => {
    m = await mountMemFs({ opTimeoutMs: 1_500, attrTimeout: 0, negativeTimeout: 0 });
    let release: () => void = () => {};
    const never = new Promise<void>((res) => (release = res));
    m.fs.hooks.getattr = async (path) => {
      if (path === '/hang') await never;
    };
    const result = await run('stat', [m.path('hang')], { timeoutMs: 20_000 });
    release();
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('Connection timed out');
    expect(result.ms).toBeLessThan(10_000);
  });
});

describe('binding: 64-bit fields', () => {
  const big = 6n * 1024n * 1024n * 1024n + 5n; // above 2^32
  const bigIno = (1n << 40n) + 7n;
  const t = { sec: 4102444800, nsec: 5 }; // 2100-01-01, past 2^31 seconds
  const ops: FuseOperations = {
    async getattr(path: string): Promise<FileStat> {
      if (path === '/') return { mode: 0o40755, size: 4096, uid: 0, gid: 0, atime: t, mtime: t, ctime: t };
      if (path === '/huge') return { mode: 0o100644, size: big, uid: 70000, gid: 70001, atime: t, mtime: t, ctime: t, ino: bigIno };
      throw new FsError('ENOENT');
    },
    async statfs(): Promise<StatFs> {
      return { bsize: 4096, frsize: 4096, blocks: 1n << 40n, bfree: 1n << 39n, bavail: 1n << 38n, files: 1n << 35n, ffree: 1n << 34n, favail: 1n << 34n, namemax: 255 };
    },
  };
  let m: TestMount<FuseOperations> | undefined;
  afterEach(async () => {
    await m?.close();
    m = undefined;
  });

  it('size, uid/gid, times past 2038 and statfs counts are not truncated', async () => {
    m = await mountTestFs(ops);
    expect((await runOk('stat', ['-c', '%s %u %g %y', m.path('huge')])).trim()).toBe(
      `${big} 70000 70001 2100-01-01 00:00:00.000000005 +0000`,
    );
    expect((await runOk('stat', ['-f', '-c', '%b %f %a %c %d', m.dir])).trim()).toBe(
      `${1n << 40n} ${1n << 39n} ${1n << 38n} ${1n << 35n} ${1n << 34n}`,
    );
  });

  it('use_ino: inode numbers above 2^32 reach stat', async () => {
    m = await mountTestFs(ops, { useIno: true });
    expect((await runOk('stat', ['-c', '%i', m.path('huge')])).trim()).toBe(String(bigIno));
  });
});
