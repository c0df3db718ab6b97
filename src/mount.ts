import type { MountConfig } from './config.js';
import type { Logger } from './log.js';

/** A mounted bucket, as the CLI drives it. */
export interface RunningMount {
  /** Resolves once the kernel mount is gone (unmounted by us, by umount or fusermount3 -u). */
  readonly exited: Promise<void>;
  /**
   * Finishes in-flight uploads, unmounts (lazily if `lazy`: open files keep working
   * until closed) and resolves when the FUSE loop has ended. Safe to call twice.
   */
  shutdown(options?: { lazy?: boolean }): Promise<void>;
}

/**
 * Checks the bucket and the mount point, mounts, and resolves once the mount is ready.
 * Fails with an Error whose message is one clear line (what is wrong, what to do).
 */
export async function startMount(config: MountConfig, log: Logger): Promise<RunningMount> {
  void config;
  void log;
  throw new Error('startMount: not implemented yet');
}
