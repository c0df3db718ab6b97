import type { MountConfig } from './config.js';
import { mountFuse, type FuseMount } from './fuse/index.js';
import type { Logger } from './log.js';
import { Bucket } from './s3/bucket.js';
import { createS3Client } from './s3/client.js';
import { resolveCredentials } from './s3/credentials.js';
import { StagingArea } from './upload/staging.js';
import { Vfs } from './vfs/vfs.js';

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
  const credentials = await resolveCredentials({
    bucket: config.bucket,
    passwdFile: config.passwdFile,
    accessKeyId: config.accessKeyId,
    env: process.env,
  });
  if (credentials?.secretAccessKey === '') log.info('signing with a blank secret (token access key)');
  const client = createS3Client({
    endpoint: config.endpoint,
    region: config.region,
    pathStyle: config.pathStyle,
    profile: config.profile,
    checksums: config.checksums,
    credentials,
  });
  const bucket = new Bucket(client, config.bucket);
  await bucket.check();

  const staging = await StagingArea.create(config.cacheDir);
  const vfs = new Vfs(bucket, staging, config, log);
  let fuse: FuseMount;
  try {
    fuse = await mountFuse(config.mountpoint, vfs, {
      fsname: config.prefix ? `${config.bucket}:${config.prefix}` : config.bucket,
      subtype: 's3mount',
      readOnly: config.readOnly,
      debug: config.debugFuse,
      attrTimeout: config.statTtlSeconds,
      entryTimeout: config.statTtlSeconds,
      negativeTimeout: Math.min(config.statTtlSeconds, 1),
      // Ops on unlinked open files go on by handle instead of .fuse_hidden renames (copies on S3).
      hardRemove: true,
      onUnexpectedError: (op, err) => log.error(`${op}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`),
    });
  } catch (err) {
    await staging.dispose();
    throw err;
  }
  log.info(`mounted s3://${config.bucket}/${config.prefix} on ${config.mountpoint}`);

  let shuttingDown: Promise<void> | undefined;
  const shutdown = async (lazy: boolean): Promise<void> => {
    await vfs.drain();
    await fuse.unmount({ lazy });
    await vfs.drain();
    await staging.dispose();
  };
  return {
    exited: fuse.exited,
    shutdown(options = {}) {
      // A failed attempt (busy mount point) may be retried, e.g. lazily.
      shuttingDown ??= shutdown(options.lazy ?? false).catch((err: unknown) => {
        shuttingDown = undefined;
        throw err;
      });
      return shuttingDown;
    },
  };
}
