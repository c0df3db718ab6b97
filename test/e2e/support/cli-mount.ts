// Real mounts made with the built CLI (bin/s3mount.js -> dist/), against the run's S3
// server (test/global-setup.ts). Endpoint and credentials come only from
// test/support/s3.ts, so the same tests run against s3rver and Ceph RGW.
//
// Mount points are always removed with rmdir (never rm -r: a mount point that is
// still mounted would take the bucket with it).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, realpath, rm, rmdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { mountedFuseTargets, run, type RunResult } from '../../support/run.js';
import { TEST_CREDENTIALS, testEndpoint } from '../../support/s3.js';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const BIN = join(ROOT, 'bin', 's3mount.js');
export const MiB = 1024 * 1024;

export interface CliMount {
  /** The mount point (absolute, canonical: as /proc/mounts spells it). */
  readonly dir: string;
  readonly bucket: string;
  /** The key prefix the mount's root maps to ('' or 'a/b/'). */
  readonly prefix: string;
  /** The mount's --cache-dir (staging files, s3mount.log). */
  readonly cacheDir: string;
  /** Absolute path of `name` (relative to the mount's root). */
  path(name: string): string;
  /** s3mount unmount (fusermount3 -uz if that fails), then rmdir of the mount point. */
  unmount(): Promise<void>;
  /** Unmounts and mounts again with the same arguments: later reads come from S3. */
  remount(): Promise<void>;
}

/** The environment a mount needs: the test server's credentials and nothing from the host's AWS setup. */
export function cliEnv(overrides: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const region = (TEST_CREDENTIALS as { region?: string }).region ?? 'us-east-1';
  return {
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_REGION: region,
    // undefined drops the variable from the child's environment.
    AWS_SESSION_TOKEN: undefined,
    AWS_PROFILE: undefined,
    AWS_ENDPOINT_URL: undefined,
    AWS_ENDPOINT_URL_S3: undefined,
    ...overrides,
  };
}

/** Runs the built CLI (`node bin/s3mount.js ARGS`); never throws on exit codes. */
export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
  return run(process.execPath, [BIN, ...args], {
    env: cliEnv(options.env),
    timeoutMs: options.timeoutMs ?? 90_000,
    cwd: options.cwd,
  });
}

/**
 * The mount arguments every test mount uses (endpoint, path style, a private cache dir).
 * `endpoint`: another way to the test server (a proxy in front of it).
 */
export function mountArgs(source: string, dir: string, cacheDir: string, extra: string[] = [], endpoint = testEndpoint()): string[] {
  return [source, dir, '--endpoint', endpoint, '--path-style', '--cache-dir', cacheDir, ...extra];
}

/** A fresh, empty, canonical temporary directory. */
export async function tempDir(label: string): Promise<string> {
  return realpath(await mkdtemp(join(tmpdir(), `s3mount-e2e-${label}-`)));
}

/** Every mount made in this test file that has not been unmounted yet. */
const live = new Set<CliMount>();
/** Every mount point made in this test file. */
const made = new Set<string>();

/** Whether `pid` still runs: a zombie (exited, not yet reaped by init) does not. */
export async function isAlive(pid: number): Promise<boolean> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return !/^State:\s+Z/m.test(status);
  } catch {
    return false;
  }
}

export async function isMounted(dir: string): Promise<boolean> {
  return (await mountedFuseTargets()).includes(dir);
}

/**
 * Unmounts `dir` for sure: `s3mount unmount`, and when that fails (busy, a hung
 * mount process), a lazy fusermount3 -uz so that nothing stays mounted.
 * Returns the s3mount unmount result.
 */
export async function forceUnmount(dir: string): Promise<RunResult | undefined> {
  if (!(await isMounted(dir))) return undefined;
  const result = await runCli(['unmount', dir], { timeoutMs: 120_000 });
  if (result.code !== 0 || (await isMounted(dir))) {
    await run('fusermount3', ['-uz', '--', dir], { timeoutMs: 30_000 });
  }
  return result;
}

/**
 * Mounts `bucket` (or `bucket:prefix`) with the CLI in background mode: resolves once
 * the CLI has returned 0, which it does only when the mount is ready. `endpoint`: reach
 * the test server another way (e.g. through bench/latency-proxy.mjs).
 */
export async function mountBucket(
  bucket: string,
  options: { args?: string[]; prefix?: string; endpoint?: string } = {},
): Promise<CliMount> {
  const dir = await tempDir('mnt');
  made.add(dir);
  const cacheDir = await tempDir('cache');
  const source = options.prefix ? `${bucket}:${options.prefix}` : bucket;
  const prefix = options.prefix ? `${options.prefix.replace(/^\/+/, '').replace(/\/?$/, '/')}` : '';
  const args = mountArgs(source, dir, cacheDir, options.args ?? [], options.endpoint);
  let mounted = false;

  const mountNow = async (): Promise<void> => {
    const result = await runCli(args);
    if (result.code !== 0) {
      // A failed mount must not leave anything behind either.
      await forceUnmount(dir);
      throw new Error(`s3mount ${args.join(' ')} exited ${result.code ?? result.signal}: ${result.stderr.trim()}`);
    }
    if (!(await isMounted(dir))) throw new Error(`s3mount exited 0 but ${dir} is not mounted`);
    mounted = true;
  };
  const unmountNow = async (): Promise<void> => {
    if (!mounted) return;
    mounted = false;
    const result = await forceUnmount(dir);
    if (await isMounted(dir)) throw new Error(`${dir} is still mounted after s3mount unmount and fusermount3 -uz`);
    if (result && result.code !== 0) {
      throw new Error(`s3mount unmount ${dir} exited ${result.code ?? result.signal}: ${result.stderr.trim()}`);
    }
  };

  const mount: CliMount = {
    dir,
    bucket,
    prefix,
    cacheDir,
    path: (name) => join(dir, name),
    async unmount() {
      live.delete(mount);
      try {
        await unmountNow();
      } finally {
        // rmdir only: it fails (and the test with it) rather than delete through a mount.
        if (!(await isMounted(dir))) await rmdir(dir).catch(ignoreMissing);
        await rm(cacheDir, { recursive: true, force: true });
      }
    },
    async remount() {
      await unmountNow();
      await mountNow();
    },
  };
  live.add(mount);
  try {
    await mountNow();
  } catch (err) {
    live.delete(mount);
    if (!(await isMounted(dir))) await rmdir(dir).catch(ignoreMissing);
    await rm(cacheDir, { recursive: true, force: true });
    throw err;
  }
  return mount;
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err;
}

/** For afterAll/afterEach: unmounts every mount of this file still up, even after failures. */
export async function unmountAll(): Promise<void> {
  const errors: unknown[] = [];
  for (const mount of [...live]) {
    await mount.unmount().catch((err: unknown) => errors.push(err));
  }
  if (errors.length > 0) throw errors[0];
}

/** Registers a mount point made by a test itself (not by mountBucket) for the final check. */
export function trackMountpoint(dir: string): void {
  made.add(dir);
}

/** The final check of every file: none of its mount points is still mounted. */
export async function expectNothingMounted(): Promise<void> {
  const targets = await mountedFuseTargets();
  const left = [...made].filter((dir) => targets.includes(dir));
  // Clean up before failing, so that one failure does not leave mounts behind.
  for (const dir of left) await run('fusermount3', ['-uz', '--', dir]);
  // Mount points a failed test did not get to remove: rmdir only (it fails on anything
  // but an empty directory, which is all that an unmounted mount point can be).
  for (const dir of made) await rmdir(dir).catch(() => undefined);
  expect(left).toEqual([]);
}

export function md5(data: Buffer | string): string {
  return createHash('md5').update(data).digest('hex');
}

/** md5 of a file, streamed (read through the mount when `path` is under one). */
export async function md5File(path: string): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Whether `dir` is a plain, empty directory (checks a failed mount left nothing). */
export async function expectPlainEmptyDir(dir: string): Promise<void> {
  expect(await isMounted(dir)).toBe(false);
  expect((await stat(dir)).isDirectory()).toBe(true);
  expect(await readdir(dir)).toEqual([]);
}

/** A bounded-concurrency map, for bulk SDK work. */
export async function inParallel<T>(items: readonly T[], limit: number, work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}


/** A test file's afterAll: unmount everything it mounted, remove its local dir, check. */
export async function cleanUpTestFile(localDir: string | undefined): Promise<void> {
  try {
    await unmountAll();
  } finally {
    if (localDir) await rm(localDir, { recursive: true, force: true });
    await expectNothingMounted();
  }
}
