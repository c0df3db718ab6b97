import type { EventEmitter } from 'node:events';
import type { MountConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { RunningMount } from '../mount.js';
import { errorLine } from './messages.js';
import { pidFilePath, removePidFile, writePidFile } from './pidfile.js';
import { describeLeft, progressLine, removeProgress, writeProgress, type UploadsLeft } from './progress.js';

export interface RunHooks {
  /** The mount is up and the pid file written. */
  onReady?(): void;
  /** The mount could not start; `message` is one line. */
  onFailure?(message: string): void;
}

/** What runMount takes from the outside world; tests pass stand-ins. */
export interface RunDeps {
  startMount: (config: MountConfig, log: Logger) => Promise<RunningMount>;
  /** Where signals and uncaught errors arrive. */
  events: EventEmitter;
  pidFile: string;
}

/** SIGHUP too: a foreground mount whose terminal closes should drain, not die. */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
/** What a shell reports for a process killed by SIGINT. */
const ABORT_EXIT_CODE = 130;

/**
 * Runs a mount until it is unmounted (from outside, or by a signal) and has drained
 * its uploads. Resolves with the exit code: 0 after a clean stop, 1 when the mount
 * could not start or something crashed, 130 when a second SIGINT cut the drain short.
 */
export async function runMount(
  config: MountConfig,
  log: Logger,
  hooks: RunHooks = {},
  deps: Partial<RunDeps> = {},
): Promise<number> {
  const stop = watchForStop(deps.events ?? process, log, config.cacheDir);
  const pidFile = deps.pidFile ?? (await pidFilePath(config.mountpoint));
  let pidWritten = false;

  const lifecycle = async (): Promise<number> => {
    let mount: RunningMount;
    try {
      // Loaded here, not at the top: --help, unmount and the launcher never need the
      // S3 and FUSE stack, and should neither wait for it to load nor break with it.
      const start = deps.startMount ?? (await import('../mount.js')).startMount;
      mount = await start(config, log);
    } catch (err) {
      hooks.onFailure?.(errorLine(err));
      return 1;
    }
    if (stop.requested) {
      hooks.onFailure?.('stopped before the mount was ready');
      await shutdown(mount, true, log);
      return 1;
    }
    pidWritten = await writePidFile(pidFile).then(
      () => true,
      (err: unknown) => {
        log.warn(`cannot write the pid file ${pidFile} (${errorLine(err)}): s3mount unmount will not wait for uploads`);
        return false;
      },
    );
    hooks.onReady?.();
    const unmountedOutside = await Promise.race([mount.exited.then(() => true), stop.whenRequested.then(() => false)]);
    log.info(unmountedOutside ? 'unmounted from outside; finishing uploads' : 'finishing uploads, then unmounting');
    // What is left to upload: on this terminal (foreground), and for `s3mount unmount`.
    const line = config.foreground ? progressLine(process.stderr) : undefined;
    const progress = (left: UploadsLeft): void => {
      line?.show(describeLeft(left));
      if (pidWritten) writeProgress(pidFile, left).catch(() => undefined);
    };
    // After a signal the mount may be busy, and a lazy unmount cannot fail on that.
    const clean = await shutdown(mount, !unmountedOutside, log, progress);
    line?.end();
    return clean && !stop.crashed ? 0 : 1;
  };

  try {
    return await Promise.race([lifecycle(), stop.whenAborted]);
  } finally {
    stop.dispose();
    if (pidWritten) await removeProgress(pidFile).catch(() => undefined);
    if (pidWritten) await removePidFile(pidFile).catch((err: unknown) => log.warn(`cannot remove ${pidFile}: ${errorLine(err)}`));
  }
}

async function shutdown(mount: RunningMount, lazy: boolean, log: Logger, progress?: (left: UploadsLeft) => void): Promise<boolean> {
  try {
    await mount.shutdown({ lazy, progress });
    return true;
  } catch (err) {
    log.error(`unmount failed: ${errorLine(err)}`);
    return false;
  }
}

interface StopWatch {
  /** A signal or a crash asked the mount to stop. */
  readonly requested: boolean;
  readonly crashed: boolean;
  readonly whenRequested: Promise<void>;
  /** Resolves with an exit code when a second SIGINT says not to wait any longer. */
  readonly whenAborted: Promise<number>;
  dispose(): void;
}

/**
 * The first stop signal or uncaught error asks for a clean stop; a second SIGINT
 * (the impatient Ctrl-C) gives up on the drain.
 */
function watchForStop(events: EventEmitter, log: Logger, cacheDir: string): StopWatch {
  let request = (): void => {};
  let abort = (_code: number): void => {};
  const whenRequested = new Promise<void>((resolve) => (request = resolve));
  const whenAborted = new Promise<number>((resolve) => (abort = resolve));
  const state = { requested: false, crashed: false };

  const onSignal = (signal: NodeJS.Signals): void => {
    if (!state.requested) {
      log.info(`received ${signal}`);
    } else if (signal === 'SIGINT') {
      log.warn(
        `second SIGINT: exiting without waiting for pending uploads; they stay in the journal in ${cacheDir}, ` +
          'and the next mount with this --cache-dir uploads them',
      );
      abort(ABORT_EXIT_CODE);
    } else {
      log.warn(`${signal}: already unmounting and finishing uploads; press Ctrl-C again to exit at once`);
    }
    state.requested = true;
    request();
  };
  const onCrash = (err: unknown): void => {
    log.error(`unexpected error: ${errorLine(err)}`);
    state.crashed = true;
    state.requested = true;
    request();
  };

  for (const signal of STOP_SIGNALS) events.on(signal, onSignal);
  events.on('uncaughtException', onCrash).on('unhandledRejection', onCrash);
  return {
    get requested() {
      return state.requested;
    },
    get crashed() {
      return state.crashed;
    },
    whenRequested,
    whenAborted,
    dispose() {
      for (const signal of STOP_SIGNALS) events.off(signal, onSignal);
      events.off('uncaughtException', onCrash).off('unhandledRejection', onCrash);
    },
  };
}
