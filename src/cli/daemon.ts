import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { errorLine } from './messages.js';

/**
 * Background mode. The launcher starts the mount process detached (its own session,
 * so the terminal's signals and hangup do not reach it) with a pipe on fd 3, over
 * which the mount process reports once: "ready\n" or "error <message>\n".
 */

/** Set in the mount process's environment; tells it which fd to report on. */
export const READY_FD_ENV = 'S3MOUNT_DAEMON_READY_FD';
const READY_FD = 3;

/** A report written just before the mount process exits may still be in the pipe. */
const EXIT_GRACE_MS = 1_000;
/** How long a stopped mount process gets to unmount before SIGKILL. */
const KILL_GRACE_MS = 10_000;

export interface LaunchOptions {
  /** The program and arguments of the mount process. */
  command: string;
  args: readonly string[];
  /** Receives the mount process's stdout and stderr (appended). */
  logFile: string;
  /** How long the mount may take to become ready. */
  timeoutMs?: number;
}

/**
 * Starts the mount process and resolves once it reports ready. Otherwise rejects
 * with a one-line message, after making sure the mount process has stopped (so no
 * half-started mount stays behind).
 */
export async function launchDaemon(options: LaunchOptions): Promise<void> {
  const { command, args, logFile, timeoutMs = 60_000 } = options;
  await mkdir(dirname(logFile), { recursive: true, mode: 0o700 });
  // Synchronous from spawn to awaitReport: a spawn failure is emitted on the next
  // tick and must find the listeners in place.
  const logFd = openSync(logFile, 'a', 0o600);
  let child: ChildProcess;
  try {
    child = spawn(command, args, {
      detached: true,
      stdio: ['ignore', logFd, logFd, 'pipe'],
      env: { ...process.env, [READY_FD_ENV]: String(READY_FD) },
    });
  } finally {
    // The child has its own copy of the descriptor by now.
    closeSync(logFd);
  }
  return awaitReport(child, logFile, timeoutMs);
}

function awaitReport(child: ChildProcess, logFile: string, timeoutMs: number): Promise<void> {
  const channel = child.stdio[READY_FD] as Readable;
  return new Promise<void>((resolve, reject) => {
    const timers: NodeJS.Timeout[] = [];
    let settled = false;
    let stopping = false;
    let received = '';

    const settle = (error?: string): void => {
      if (settled) return;
      settled = true;
      timers.forEach(clearTimeout);
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      // Nothing of the child may keep the launcher's event loop alive.
      channel.destroy();
      child.unref();
      if (error === undefined) resolve();
      else reject(new Error(error));
    };
    const giveUp = (error: string): void => {
      if (stopping || settled) return;
      stopping = true;
      void stopChild(child).then(() => settle(error));
    };
    const onSignal = (): void => giveUp('interrupted; the mount was cancelled');
    const exitedEarly = `the mount process exited early; see ${logFile}`;

    channel.setEncoding('utf8');
    channel.on('data', (chunk: string) => {
      received += chunk;
      const end = received.indexOf('\n');
      if (end < 0 || stopping) return;
      const line = received.slice(0, end);
      if (line === 'ready') settle();
      else if (line.startsWith('error ')) settle(line.slice('error '.length));
      else giveUp(`the mount process sent an unexpected report; see ${logFile}`);
    });
    // Closing without a report means the mount process is dying or broken.
    channel.on('end', () => giveUp(exitedEarly));
    // A reset pipe is followed by 'exit', which reports it.
    channel.on('error', () => {});
    child.on('error', (err) => settle(`cannot start the mount process: ${err.message}`));
    // libfuse's fusermount3 helper inherits the pipe and can keep it open after the
    // mount process died, so 'end' alone is not enough.
    child.on('exit', () => timers.push(setTimeout(() => giveUp(exitedEarly), EXIT_GRACE_MS)));
    timers.push(setTimeout(() => giveUp(`the mount was not ready after ${timeoutMs / 1000} s; see ${logFile}`), timeoutMs));
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  });
}

/** SIGTERM lets the mount process unmount; SIGKILL if it does not exit in time. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

/** The mount process's half: report once, then close the pipe so the launcher can go. */
export interface ReadyChannel {
  ready(): void;
  failed(message: string): void;
}

/**
 * The channel to the launcher when this process was started by launchDaemon, else
 * undefined. The marker is removed from the environment so that processes the mount
 * starts do not take themselves for daemons.
 */
export function takeReadyChannel(env: NodeJS.ProcessEnv = process.env): ReadyChannel | undefined {
  const value = env[READY_FD_ENV];
  if (value === undefined) return undefined;
  delete env[READY_FD_ENV];
  const fd = Number(value);
  let open = Number.isInteger(fd);
  const send = (line: string): void => {
    if (!open) return;
    open = false;
    try {
      writeSync(fd, `${line}\n`);
    } catch {
      // The launcher is gone (EPIPE): nobody is listening.
    } finally {
      closeSync(fd);
    }
  };
  return {
    ready: () => send('ready'),
    failed: (message) => send(`error ${errorLine(message)}`),
  };
}
