import { EventEmitter } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runMount, type RunHooks } from '../../src/cli/run.js';
import { waitUntil } from '../support/run.js';
import type { MountConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import type { RunningMount } from '../../src/mount.js';

const config: MountConfig = {
  bucket: 'bkt',
  prefix: 'a/',
  mountpoint: '/mnt/test',
  pathStyle: false,
  anonymous: false,
  checksums: 'when-required',
  readOnly: false,
  nonempty: false,
  uid: 1,
  gid: 1,
  fileMode: 0o644,
  dirMode: 0o755,
  umask: 0,
  allowOther: false,
  allowRoot: false,
  defaultPermissions: false,
  statTtlSeconds: 5,
  ignoreMetadata: false,
  cacheDir: '/tmp/unused',
  writeMode: 'async',
  uploadConcurrency: 16,
  partSize: 8 * 1024 * 1024,
  cacheSize: 1024 ** 3,
  chunkSize: 1024 ** 2,
  memoryCacheSize: 256 * 1024 ** 2,
  maxReadAhead: 64 * 1024 ** 2,
  sequentialCutoff: 64 * 1024 ** 2,
  minFreeSpace: 1024 ** 3,
  logLevel: 'debug',
  debugFuse: false,
  foreground: true,
};

/** A mount whose external unmount and shutdown completion the test controls. */
function fakeMount() {
  let unmountFromOutside = (): void => {};
  let finishShutdown = (): void => {};
  const shutdownDone = new Promise<void>((resolve) => (finishShutdown = resolve));
  const mount: RunningMount = {
    exited: new Promise<void>((resolve) => (unmountFromOutside = resolve)),
    shutdown: vi.fn(async () => shutdownDone),
  };
  return { mount, unmountFromOutside: () => unmountFromOutside(), finishShutdown: () => finishShutdown() };
}


let dir: string;
let pidFile: string;
let events: EventEmitter;
let lines: string[];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 's3mount-run-'));
  pidFile = join(dir, 'pids', 'm.pid');
  events = new EventEmitter();
  lines = [];
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function run(mount: RunningMount | Error, hooks: RunHooks = {}) {
  const startMount = vi.fn(async () => {
    if (mount instanceof Error) throw mount;
    return mount;
  });
  const log = createLogger('debug', (line) => lines.push(line));
  return runMount(config, log, hooks, { startMount, events, pidFile });
}

/** run(), with `ready` resolving once the mount reported ready (its pid file written). */
function runUntilReady(mount: RunningMount) {
  let reportReady = (): void => {};
  const ready = new Promise<void>((resolve) => (reportReady = resolve));
  return { done: run(mount, { onReady: () => reportReady() }), ready };
}

describe('runMount', () => {
  it('reports a mount that cannot start in one line, and writes no pid file', async () => {
    const onFailure = vi.fn();
    const code = await run(new Error('bucket bkt does not exist:\n  create it first'), { onFailure });
    expect(code).toBe(1);
    expect(onFailure).toHaveBeenCalledWith('bucket bkt does not exist: create it first');
    await expect(readFile(pidFile)).rejects.toThrow(/ENOENT/);
  });

  it('writes the pid file before reporting ready, and removes it after a signal stops the mount', async () => {
    const fake = fakeMount();
    let pidAtReady = '';
    const done = run(fake.mount, { onReady: () => void readFile(pidFile, 'utf8').then((text) => (pidAtReady = text)) });
    await vi.waitFor(() => expect(pidAtReady).toBe(`${process.pid}\n`));
    events.emit('SIGTERM', 'SIGTERM');
    await vi.waitFor(() => expect(fake.mount.shutdown).toHaveBeenCalledWith(expect.objectContaining({ lazy: true })));
    fake.finishShutdown();
    expect(await done).toBe(0);
    await expect(readFile(pidFile)).rejects.toThrow(/ENOENT/);
    expect(events.listenerCount('SIGINT') + events.listenerCount('uncaughtException')).toBe(0);
  });

  it('drains without lazy unmount when unmounted from outside', async () => {
    const fake = fakeMount();
    const { done, ready } = runUntilReady(fake.mount);
    await ready;
    fake.unmountFromOutside();
    await vi.waitFor(() => expect(fake.mount.shutdown).toHaveBeenCalledWith(expect.objectContaining({ lazy: false })));
    fake.finishShutdown();
    expect(await done).toBe(0);
  });

  it('exits at once with 130 on a second SIGINT during the drain', async () => {
    const fake = fakeMount();
    const { done, ready } = runUntilReady(fake.mount);
    await ready;
    events.emit('SIGINT', 'SIGINT');
    await vi.waitFor(() => expect(fake.mount.shutdown).toHaveBeenCalled());
    events.emit('SIGTERM', 'SIGTERM');
    await vi.waitFor(() => expect(lines.join('')).toMatch(/already unmounting/));
    events.emit('SIGINT', 'SIGINT');
    expect(await done).toBe(130);
    expect(lines.join('')).toMatch(/exiting without waiting for pending uploads/);
    await expect(readFile(pidFile)).rejects.toThrow(/ENOENT/);
  });

  it('stops lazily and exits 1 after an uncaught error', async () => {
    const fake = fakeMount();
    const { done, ready } = runUntilReady(fake.mount);
    await ready;
    events.emit('uncaughtException', new Error('boom'));
    await vi.waitFor(() => expect(fake.mount.shutdown).toHaveBeenCalledWith(expect.objectContaining({ lazy: true })));
    fake.finishShutdown();
    expect(await done).toBe(1);
    expect(lines.join('')).toMatch(/s3mount error: unexpected error: boom/);
  });

  it('exits 1 when the shutdown fails', async () => {
    const mount: RunningMount = { exited: Promise.resolve(), shutdown: async () => Promise.reject(new Error('stuck')) };
    expect(await run(mount)).toBe(1);
    expect(lines.join('')).toMatch(/unmount failed: stuck/);
  });

  it('unmounts again, without reporting ready, when stopped while mounting', async () => {
    const fake = fakeMount();
    fake.finishShutdown();
    const onReady = vi.fn();
    const onFailure = vi.fn();
    const startMount = vi.fn(async () => {
      events.emit('SIGINT', 'SIGINT');
      return fake.mount;
    });
    const code = await runMount(config, createLogger('error', () => {}), { onReady, onFailure }, { startMount, events, pidFile });
    expect(code).toBe(1);
    expect(onReady).not.toHaveBeenCalled();
    expect(onFailure).toHaveBeenCalledWith('stopped before the mount was ready');
    expect(fake.mount.shutdown).toHaveBeenCalledWith(expect.objectContaining({ lazy: true }));
  });

  it('leaves a pid file that a newer mount has taken over', async () => {
    const fake = fakeMount();
    const done = run(fake.mount);
    // Only once this mount's own pid file is in place can a newer mount take it over.
    await waitUntil('the pid file', async () => (await readFile(pidFile, 'utf8').catch(() => '')) === `${process.pid}\n`, 5_000);
    await writeFile(pidFile, '999999\n');
    fake.unmountFromOutside();
    fake.finishShutdown();
    expect(await done).toBe(0);
    expect(await readFile(pidFile, 'utf8')).toBe('999999\n');
  });
});
