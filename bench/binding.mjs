// Throughput of the FUSE binding alone (no S3): an in-memory filesystem through the
// patched fuse-native, against tmpfs (/dev/shm) in the same run.
// Usage: npm run build && node bench/binding.mjs [sizeMiB=512] [files=2000]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsError, mountFuse } from '../dist/fuse/index.js';

const sizeMiB = Number(process.argv[2] ?? 512);
const fileCount = Number(process.argv[3] ?? 2000);
const t0 = { sec: 1_700_000_000, nsec: 0 };

function memoryFs() {
  const files = new Map();
  const handles = new Map();
  let nextFh = 1;
  const stat = (mode, size) => ({ mode, size, uid: 0, gid: 0, atime: t0, mtime: t0, ctime: t0 });
  return {
    async getattr(path) {
      if (path === '/') return stat(0o40755, 4096);
      const f = files.get(path);
      if (!f) throw new FsError('ENOENT');
      return stat(0o100644, f.size);
    },
    async readdir() {
      return [...files.keys()].map((p) => ({ name: p.slice(1), stat: stat(0o100644, files.get(p).size) }));
    },
    async create(path) {
      files.set(path, { chunks: new Map(), size: 0 });
      handles.set(nextFh, path);
      return { fh: nextFh++ };
    },
    async open(path) {
      handles.set(nextFh, path);
      return { fh: nextFh++ };
    },
    // 1 MiB-aligned chunks: dd writes whole MiBs, so no copying between chunks.
    async write(_p, fh, data, position) {
      const f = files.get(handles.get(fh));
      f.chunks.set(position, data);
      f.size = Math.max(f.size, position + data.length);
      return data.length;
    },
    async read(_p, fh, target, position) {
      const f = files.get(handles.get(fh));
      const base = position - (position % (1 << 20));
      const chunk = f.chunks.get(base);
      if (!chunk) return 0;
      return chunk.copy(target, 0, position - base, Math.min(chunk.length, position - base + target.length));
    },
    async release(_p, fh) {
      handles.delete(fh);
    },
    async flush() {},
    async truncate() {},
    async utimens() {},
  };
}

function sh(script) {
  const started = process.hrtime.bigint();
  const r = spawnSync('sh', ['-c', script], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${script}: ${String(r.stderr).slice(0, 500)}`);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function measure(dir) {
  const write = sizeMiB / sh(`dd if=/dev/zero of=${dir}/big bs=1M count=${sizeMiB} conv=fsync 2>/dev/null`);
  const read = sizeMiB / sh(`dd if=${dir}/big of=/dev/null bs=1M 2>/dev/null`);
  sh(`cd ${dir} && seq ${fileCount} | sed 's/^/f/' | xargs touch`);
  const statSecs = sh(`python3 -c "import os\nfor i in range(1, ${fileCount + 1}): os.stat('${dir}/f%d' % i)"`);
  return { write, read, stat: fileCount / statSecs };
}

// The event loop must stay free for the FUSE handlers: the tools run via spawnSync in a
// child process would block it, so the mount lives in a worker-free second process.
if (process.env.BENCH_CHILD) {
  const dir = process.env.BENCH_CHILD;
  const m = await mountFuse(dir, memoryFs(), { fsname: 'bench', subtype: 'bench', attrTimeout: 0, entryTimeout: 0 });
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => m.unmount({ lazy: true }).then(() => process.exit(0)));
} else {
  const { spawn } = await import('node:child_process');
  const fuseDir = mkdtempSync(join(tmpdir(), 'bench-fuse-'));
  const shmDir = mkdtempSync('/dev/shm/bench-tmpfs-');
  const child = spawn(process.execPath, [new URL(import.meta.url).pathname], { env: { ...process.env, BENCH_CHILD: fuseDir }, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve) => child.stdout.once('data', resolve));
  try {
    const fuse = await measure(fuseDir);
    const shm = await measure(shmDir);
    const row = (name, v) => console.log(`${name.padEnd(14)} ${v.write.toFixed(0).padStart(8)} ${v.read.toFixed(0).padStart(8)} ${v.stat.toFixed(0).padStart(9)}`);
    console.log(`${sizeMiB} MiB dd bs=1M, ${fileCount} stats (attr_timeout=0)`);
    console.log(`${''.padEnd(14)} ${'write MB/s'.padStart(8)} ${'read MB/s'.padStart(8)} ${'stat/s'.padStart(9)}`);
    row('tmpfs', shm);
    row('binding', fuse);
    console.log(`${'ratio'.padEnd(14)} ${(fuse.write / shm.write).toFixed(3).padStart(8)} ${(fuse.read / shm.read).toFixed(3).padStart(8)} ${(fuse.stat / shm.stat).toFixed(3).padStart(9)}`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    rmdirSync(fuseDir);
    rmSync(shmDir, { recursive: true, force: true });
  }
}
