// Data sets for the workloads, generated locally (outside any timing) in the run's
// work directory: trees of files with a tarball of each, and single large files.
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdir, open, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Deterministic sizes from a seed (mulberry32), so that every run writes the same tree. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A tree `<dataDir>/<name>/` of `count` files and its tarball `<dataDir>/<name>.tar`
 * (members `<name>/...`, so `tar x -C MNT` makes keys `<name>/...`).
 *   sizes: a number (every file that size) or [min, max] (log-uniform, seeded).
 *   perDir: files per subdirectory (0: all in `<name>/`).
 *   tarball: false to skip the tarball (the read section uploads the files themselves).
 * Resolves with { name, dir, tarball, files: [{ key, path, size, md5 }], bytes }.
 */
export async function makeTree(dataDir, name, { count, sizes, perDir = 0, seed = 1, tarball: withTarball = true }) {
  const rand = prng(seed);
  const dir = join(dataDir, name);
  await mkdir(dir, { recursive: true });
  const files = [];
  let bytes = 0;
  const width = String(count).length;
  for (let i = 0; i < count; i++) {
    const size = typeof sizes === 'number' ? sizes : Math.round(sizes[0] * (sizes[1] / sizes[0]) ** rand());
    const sub = perDir > 0 ? `d${String(Math.floor(i / perDir)).padStart(3, '0')}/` : '';
    const rel = `${sub}f${String(i).padStart(width, '0')}.bin`;
    if (sub && i % perDir === 0) await mkdir(join(dir, sub), { recursive: true });
    const body = randomBytes(size);
    const path = join(dir, rel);
    await writeFile(path, body);
    files.push({ key: `${name}/${rel}`, path, size, md5: createHash('md5').update(body).digest('hex') });
    bytes += size;
  }
  if (!withTarball) return { name, dir, tarball: undefined, files, bytes };
  const tarball = join(dataDir, `${name}.tar`);
  const r = spawnSync('tar', ['-cf', tarball, '-C', dataDir, name], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`tar -cf ${tarball}: ${r.stderr}`);
  return { name, dir, tarball, files, bytes };
}

/** A file of `sizeBytes` random bytes. Resolves with { path, size, md5 }. */
export async function makeBigFile(dataDir, name, sizeBytes) {
  await mkdir(dataDir, { recursive: true });
  const path = join(dataDir, name);
  const fh = await open(path, 'w');
  const hash = createHash('md5');
  try {
    const block = 8 * 1024 * 1024;
    for (let done = 0; done < sizeBytes; done += block) {
      const buf = randomBytes(Math.min(block, sizeBytes - done));
      hash.update(buf);
      await fh.write(buf);
    }
  } finally {
    await fh.close();
  }
  return { path, size: sizeBytes, md5: hash.digest('hex') };
}

/**
 * A file of `sizeBytes` pseudo-random bytes from a fast generator (the AES-128-CTR
 * keystream of a fixed key: every 16-byte block differs, at several hundred MB/s, where
 * randomBytes() would take minutes for gigabytes). Resolves with { path, size, md5 }.
 */
export async function makeFastFile(dataDir, name, sizeBytes, { seed = 1 } = {}) {
  await mkdir(dataDir, { recursive: true });
  const path = join(dataDir, name);
  const key = Buffer.alloc(16, seed);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const block = 8 * 1024 * 1024;
  const zeros = Buffer.alloc(block);
  const fh = await open(path, 'w');
  const hash = createHash('md5');
  try {
    for (let done = 0; done < sizeBytes; done += block) {
      const length = Math.min(block, sizeBytes - done);
      const buf = cipher.update(length === block ? zeros : zeros.subarray(0, length));
      hash.update(buf);
      await fh.write(buf);
    }
  } finally {
    await fh.close();
  }
  return { path, size: sizeBytes, md5: hash.digest('hex') };
}

/** Bytes [start, start + length) of a local file. */
export async function readRange(path, start, length) {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, start);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Bytes free (for an unprivileged user) on the file system that holds `path`. */
export async function freeBytes(path) {
  const s = await statfs(path);
  return s.bavail * s.bsize;
}
