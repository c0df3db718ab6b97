// Mounting the bucket with each tool the harness compares: s3mount (the built CLI) and,
// when installed, the peers s3fs and rclone (Debian packages). Every mount is recorded so
// that it is unmounted even when a workload fails (`fusermount3 -uz` as a last resort),
// and every process the harness starts is ended by its own pid. Mount points are only
// ever rmdir'ed, never removed recursively.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CREDENTIALS, REGION } from './s3.mjs';

/** Mount points in /proc/mounts (octal escapes decoded). */
export function mountedPaths() {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' ')[1].replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))));
}

export function isMounted(path) {
  return mountedPaths().includes(path);
}

/** Commands started by run() that have not exited yet. */
const running = new Set();

/**
 * Ends the commands run() started that are still running (tar, dd...): SIGTERM by pid,
 * SIGKILL after 5 s. Resolves once they have exited.
 */
export async function killRunning() {
  await Promise.all([...running].map((child) => reap(child, 0)));
}

/**
 * Runs a command to completion (never through a shell). Resolves { code, stdout, stderr, seconds }.
 * With `onStdout`, the output is not kept: each chunk (a Buffer, binary safe) goes to
 * `onStdout` as it arrives, and `stdout` is ''.
 */
export function run(cmd, args, { env, timeoutMs = 0, cwd, onStdout } = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    child.on('exit', () => running.delete(child));
    let stdout = '';
    let stderr = '';
    if (onStdout) child.stdout.on('data', onStdout);
    else child.stdout.setEncoding('utf8').on('data', (s) => (stdout = (stdout + s).slice(-20_000)));
    child.stderr.setEncoding('utf8').on('data', (s) => (stderr = (stderr + s).slice(-20_000)));
    const timer = timeoutMs > 0 ? setTimeout(() => child.kill('SIGTERM'), timeoutMs) : undefined;
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal, stdout, stderr, seconds: (performance.now() - started) / 1000 });
    });
  });
}

function tail(path, lines = 15) {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

async function waitForMount(mnt, child, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!isMounted(mnt)) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) throw new Error(`${what} exited before mounting`);
    if (Date.now() > deadline) throw new Error(`${what} did not mount within ${timeoutMs / 1000} s`);
    await sleep(50);
  }
}

async function waitForUnmount(mnt, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (isMounted(mnt) && Date.now() < deadline) await sleep(50);
  return !isMounted(mnt);
}

/** Waits for a child to exit; SIGTERM after `graceMs`, SIGKILL 5 s later (by its pid). */
async function reap(child, graceMs) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const term = setTimeout(() => child.kill('SIGTERM'), graceMs);
  const kill = setTimeout(() => child.kill('SIGKILL'), graceMs + 5_000);
  await exited;
  clearTimeout(term);
  clearTimeout(kill);
}

function commandExists(name) {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/**
 * The tools. `durability`: 'unmount' when the data is in the bucket once the tool's
 * unmount returns (s3mount drains on unmount; s3fs uploads inside close), 'poll' when the
 * harness must watch the bucket (rclone uploads ~5 s after close and drops what is
 * pending on unmount).
 */
export const TOOLS = {
  s3mount: { label: 's3mount', durability: 'unmount', peer: false },
  's3mount-sync': { label: 's3mount --write-mode=sync', durability: 'unmount', peer: false, extraArgs: ['--write-mode=sync'] },
  s3fs: { label: 's3fs', durability: 'unmount', peer: true, command: 's3fs', debian: 's3fs' },
  rclone: { label: 'rclone mount', durability: 'poll', peer: true, command: 'rclone', debian: 'rclone' },
};

/** Which peers are installed: { s3fs: true, rclone: false }. */
export function detectPeers() {
  return Object.fromEntries(
    Object.entries(TOOLS)
      .filter(([, t]) => t.peer)
      .map(([id, t]) => [id, commandExists(t.command)]),
  );
}

/** Whether the built CLI knows --write-mode (the write-back work adds it). */
export function s3mountHasWriteMode(root) {
  const r = spawnSync(process.execPath, [join(root, 'bin/s3mount.js'), '--help'], { encoding: 'utf8' });
  return /--write-mode/.test(r.stdout ?? '');
}

/**
 * Mounts for one run of the harness, all under `workDir`: mount points in
 * `workDir/mnt/N`, caches and logs in `workDir/cache/N`.
 */
export class Mounter {
  constructor({ root, workDir, endpoint, s3mountArgs = [] }) {
    this.root = root;
    this.s3mountArgs = s3mountArgs; // extra options for every s3mount mount
    this.workDir = workDir;
    this.endpoint = endpoint; // what the tools talk to (the latency proxy)
    this.next = 1;
    /** @type {Set<Mount>} */
    this.active = new Set();
    this.mountPoints = [];
  }

  /** Mounts `bucket` with `toolId`; resolves once the mount is ready. */
  async mount(toolId, bucket) {
    if (this.closed) throw new Error('the run is being stopped');
    const tool = TOOLS[toolId];
    const n = this.next++;
    const mnt = join(this.workDir, 'mnt', `${n}-${toolId}`);
    const cacheDir = join(this.workDir, 'cache', `${n}-${toolId}`);
    await mkdir(mnt, { recursive: true });
    await mkdir(cacheDir, { recursive: true });
    this.mountPoints.push(mnt);
    const m = new Mount(this, tool, toolId, bucket, mnt, cacheDir);
    this.active.add(m);
    try {
      await m.start();
    } catch (err) {
      await m.cleanup();
      throw err;
    }
    return m;
  }

  /** Unmounts whatever is still mounted (after a failure); no mount may start afterwards. */
  async cleanupAll() {
    this.closed = true;
    for (const m of [...this.active]) await m.cleanup();
  }

  /** Mount points of this run that are still in /proc/mounts. */
  leftovers() {
    const mine = join(this.workDir, '');
    return mountedPaths().filter((p) => p.startsWith(mine));
  }

  /** rmdir the (empty, unmounted) mount points. Never recursive. */
  async removeMountPoints() {
    for (const p of this.mountPoints) {
      if (!isMounted(p)) await rmdir(p).catch(() => {});
    }
    await rmdir(join(this.workDir, 'mnt')).catch(() => {});
  }
}

class Mount {
  constructor(mounter, tool, toolId, bucket, mnt, cacheDir) {
    Object.assign(this, { mounter, tool, toolId, bucket, mnt, cacheDir });
    this.durability = tool.durability;
    this.child = undefined;
    this.log = join(cacheDir, `${toolId}.log`);
  }

  async start() {
    const { root, endpoint } = this.mounter;
    if (this.toolId.startsWith('s3mount')) {
      const env = { ...process.env, AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey, AWS_REGION: REGION };
      const args = [join(root, 'bin/s3mount.js'), this.bucket, this.mnt, '--endpoint', endpoint, '--path-style', '--cache-dir', this.cacheDir, ...this.mounter.s3mountArgs, ...(this.tool.extraArgs ?? [])];
      const r = await run(process.execPath, args, { env, timeoutMs: 60_000 });
      this.log = join(this.cacheDir, 's3mount.log');
      if (r.code !== 0) throw new Error(`s3mount did not mount (exit ${r.code}): ${r.stderr.trim()}\n${tail(this.log)}`);
      await waitForMount(this.mnt, undefined, 10_000, 's3mount');
    } else if (this.toolId === 's3fs') {
      const passwd = join(this.cacheDir, 'passwd');
      writeFileSync(passwd, `${CREDENTIALS.accessKeyId}:${CREDENTIALS.secretAccessKey}\n`, { mode: 0o600 });
      const opts = `passwd_file=${passwd},url=${endpoint},use_path_request_style,endpoint=${REGION}`;
      this.spawnLogged('s3fs', [this.bucket, this.mnt, '-f', '-o', opts], process.env);
      await waitForMount(this.mnt, this.child, 30_000, 's3fs');
    } else if (this.toolId === 'rclone') {
      const conf = join(this.cacheDir, 'rclone.conf');
      writeFileSync(
        conf,
        `[bench]\ntype = s3\nprovider = Other\naccess_key_id = ${CREDENTIALS.accessKeyId}\nsecret_access_key = ${CREDENTIALS.secretAccessKey}\nregion = ${REGION}\nendpoint = ${endpoint}\nforce_path_style = true\n`,
        { mode: 0o600 },
      );
      // The machines set AWS_CA_BUNDLE, which rclone's S3 backend cannot use over http.
      const env = { ...process.env };
      delete env.AWS_CA_BUNDLE;
      this.spawnLogged(
        'rclone',
        ['--config', conf, 'mount', `bench:${this.bucket}`, this.mnt, '--vfs-cache-mode', 'writes', '--cache-dir', join(this.cacheDir, 'vfs')],
        env,
      );
      await waitForMount(this.mnt, this.child, 30_000, 'rclone');
    } else {
      throw new Error(`unknown tool ${this.toolId}`);
    }
  }

  spawnLogged(cmd, args, env) {
    const fd = openSync(this.log, 'a');
    try {
      this.child = spawn(cmd, args, { env, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    this.child.on('error', () => {});
  }

  /**
   * The tool's own unmount: `s3mount unmount` (returns once pending uploads are in the
   * bucket), or fusermount3 -u and the wait for the peer's process to exit.
   */
  async unmount() {
    if (this.toolId.startsWith('s3mount')) {
      const r = await run(process.execPath, [join(this.mounter.root, 'bin/s3mount.js'), 'unmount', this.mnt], { timeoutMs: 15 * 60_000 });
      if (r.code !== 0) throw new Error(`s3mount unmount failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}\n${tail(this.log)}`);
    } else {
      const r = await run('fusermount3', ['-u', this.mnt], { timeoutMs: 60_000 });
      if (r.code !== 0) throw new Error(`fusermount3 -u ${this.mnt}: ${r.stderr.trim()}`);
      await reap(this.child, 120_000);
    }
    if (!(await waitForUnmount(this.mnt, 10_000))) throw new Error(`${this.mnt} is still mounted after unmount`);
    this.mounter.active.delete(this);
  }

  /** Last resort after a failure: unmount by any means, end the peer's process. */
  cleanup() {
    // Once at a time: a failing workload and a signal's shutdown may both ask.
    this.cleaning ??= this.doCleanup().finally(() => (this.cleaning = undefined));
    return this.cleaning;
  }

  async doCleanup() {
    if (isMounted(this.mnt)) {
      try {
        await this.unmount();
      } catch (err) {
        process.stderr.write(`bench: ${err.message.split('\n')[0]}; lazy unmount of ${this.mnt}\n`);
      }
    }
    if (isMounted(this.mnt)) await run('fusermount3', ['-uz', this.mnt], { timeoutMs: 30_000 });
    await reap(this.child, 10_000);
    this.mounter.active.delete(this);
  }

  logTail(lines) {
    return tail(this.log, lines);
  }
}
