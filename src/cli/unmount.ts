import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { isMountpoint } from '../fuse/index.js';
import { errorLine, printMessage } from './messages.js';
import { canonicalMountpoint } from './paths.js';
import { isMountProcess, pidFilePath, readPidFile, removePidFile } from './pidfile.js';
import { describeLeft, progressLine, readProgress } from './progress.js';

const execFileAsync = promisify(execFile);

const POLL_MS = 100;
const NOTICE_AFTER_MS = 2_000;
/** Draining takes as long as it takes while it moves; ten minutes without progress is a hang. */
const WAIT_LIMIT_MS = 10 * 60_000;

/**
 * `s3mount unmount MOUNTPOINT`: unmounts, then waits until the mount process (found
 * through its pid file) has drained its uploads and exited. Resolves with the exit code.
 */
export async function unmountCommand(mountpoint: string): Promise<number> {
  const target = await canonicalMountpoint(mountpoint);
  const pidFile = await pidFilePath(target);
  // Read before unmounting: the mount process removes the file as it exits.
  const pid = await readPidFile(pidFile);
  const running = pid !== undefined && (await isMountProcess(pid));
  if (pid !== undefined && !running) await removePidFile(pidFile, pid);

  if (!(await isMountpoint(target))) {
    printMessage(`${target} is not mounted`);
    return 1;
  }
  const failure = await fusermountUnmount(target);
  if (failure !== undefined) {
    printMessage(failure);
    return 1;
  }
  if (pid === undefined || !running) return 0;
  if (await waitForExit(pid, pidFile)) {
    // A mount killed while draining leaves its file behind.
    await removePidFile(pidFile, pid);
    return 0;
  }
  printMessage(
    `${target} is unmounted, but its mount process (pid ${pid}) has made no upload progress for ` +
      `${WAIT_LIMIT_MS / 60_000} minutes; it carries on in the background (its log says why)`,
  );
  return 1;
}

/** undefined on success, else the one-line reason. */
async function fusermountUnmount(target: string): Promise<string | undefined> {
  try {
    await execFileAsync('fusermount3', ['-u', '--', target]);
    return undefined;
  } catch (err) {
    const failure = err as NodeJS.ErrnoException & { stderr?: string };
    if (failure.code === 'ENOENT') return 'fusermount3 was not found; install the fuse3 package';
    const reason = errorLine(failure.stderr?.trim() || failure.message).replace(/^fusermount3: /, '');
    if (/busy/i.test(reason)) {
      return `${target} is busy: close the files open under it (fuser -vm ${target} shows them) and try again`;
    }
    return reason;
  }
}

/** Polls until the mount process is gone, showing what it has left to upload meanwhile. */
async function waitForExit(pid: number, pidFile: string): Promise<boolean> {
  const started = Date.now();
  let lastProgressAt = started;
  let lastText = '';
  const line = progressLine(process.stderr);
  try {
    while (await isMountProcess(pid)) {
      if (Date.now() - lastProgressAt > WAIT_LIMIT_MS) return false;
      if (Date.now() - started > NOTICE_AFTER_MS) {
        const left = await readProgress(pidFile);
        const text = left ? describeLeft(left) : 'waiting for uploads to finish...';
        if (text !== lastText) lastProgressAt = Date.now();
        lastText = text;
        line.show(text);
      }
      await sleep(POLL_MS);
    }
    return true;
  } finally {
    line.end();
  }
}
