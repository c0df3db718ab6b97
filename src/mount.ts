import { homedir } from 'node:os';
import { join } from 'node:path';
import type { MountConfig } from './config.js';
import { mountFuse, tuneMallocForReads, type FuseMount } from './fuse/index.js';
import type { Logger } from './log.js';
import { Bucket } from './s3/bucket.js';
import { createS3Client } from './s3/client.js';
import { describeCredentials, resolveCredentials } from './s3/credentials.js';
import { Journal, journalIdentity } from './upload/journal.js';
import { ObjectWriter } from './upload/object-writer.js';
import { recoverJournals } from './upload/recovery.js';
import type { DrainProgress } from './upload/uploader.js';
import { Vfs } from './vfs/vfs.js';
import { ObjectReader } from './cache/object-reader.js';

/**
 * Parts of multipart uploads in flight at once, over all files. 8, as the AWS CLI's 10 and
 * rclone's 4 per file: measured on s3rver (512 MiB, dd), 8 took 5.9 s, 16 took 6.5 s and
 * 4 took 6.7 s; more only queue at the server.
 */
const PART_CONCURRENCY = 8;
/** Files below this size are uploaded with one PUT. */
const SINGLE_PUT_LIMIT = 8 * 1024 * 1024;

/** A mounted bucket, as the CLI drives it. */
export interface RunningMount {
  /** Resolves once the kernel mount is gone (unmounted by us, by umount or fusermount3 -u). */
  readonly exited: Promise<void>;
  /**
   * Unmounts (lazily if `lazy`: open files keep working until closed), then uploads
   * everything pending, telling `progress` what is left about every second. Safe to
   * call twice.
   */
  shutdown(options?: { lazy?: boolean; progress?: (left: DrainProgress) => void }): Promise<void>;
}

/**
 * Checks the bucket and the mount point, mounts, and resolves once the mount is ready.
 * Fails with an Error whose message is one clear line (what is wrong, what to do).
 */
export async function startMount(config: MountConfig, log: Logger): Promise<RunningMount> {
  if (!tuneMallocForReads()) log.debug('malloc thresholds not set (not glibc?): reads fault in more fresh memory');
  const credentials = await resolveCredentials({
    bucket: config.bucket,
    anonymous: config.anonymous,
    passwdFile: config.passwdFile,
    accessKeyId: config.accessKeyId,
    credentialsFile: config.credentialsFile,
    profile: config.profile,
    env: process.env,
    home: homedir(),
  });
  log.info(describeCredentials(credentials));
  const client = createS3Client({
    endpoint: config.endpoint,
    region: config.region,
    pathStyle: config.pathStyle,
    profile: config.profile,
    checksums: config.checksums,
    credentials: credentials.kind === 'given' ? credentials.credentials : undefined,
    anonymous: credentials.kind === 'anonymous',
    caBundle: config.caBundle,
  });
  const bucket = new Bucket(client, config.bucket);
  // Said when access is denied: which credentials to check (the chain's are the SDK's to tell).
  await bucket.check({ anonymous: credentials.kind === 'anonymous', from: credentials.kind === 'given' ? credentials.from : undefined });

  const identity = journalIdentity(config.endpoint, config.bucket, config.prefix);
  const journal = await Journal.create(config.cacheDir, identity);
  const writer = new ObjectWriter(bucket, journal, { singlePutLimit: SINGLE_PUT_LIMIT, partConcurrency: PART_CONCURRENCY }, log);
  // What a killed mount left is uploaded before anything can read over it.
  const leftovers = await recoverJournals({
    cacheDir: config.cacheDir,
    identity,
    bucket,
    journal,
    writer,
    concurrency: config.uploadConcurrency,
    readOnly: config.readOnly,
    log,
  });
  const reader = await ObjectReader.open(join(config.cacheDir, 'chunks', identity), bucket, config, log);
  const vfs = new Vfs(bucket, { journal, writer, reader }, config, log);
  vfs.adopt(leftovers);
  let fuse: FuseMount;
  try {
    fuse = await mountFuse(config.mountpoint, vfs, {
      fsname: config.prefix ? `${config.bucket}:${config.prefix}` : config.bucket,
      subtype: 's3mount',
      readOnly: config.readOnly,
      allowOther: config.allowOther,
      allowRoot: config.allowRoot,
      defaultPermissions: config.defaultPermissions,
      umask: config.umask,
      mountFlags: config.mountFlags,
      nonempty: config.nonempty,
      debug: config.debugFuse,
      attrTimeout: config.statTtlSeconds,
      entryTimeout: config.statTtlSeconds,
      negativeTimeout: Math.min(config.statTtlSeconds, 1),
      // No hard_remove: an unlinked open file gets a .fuse_hidden name (the Vfs keeps it in
      // memory), so the kernel's SETATTR for it (writeback cache) finds a path.
      // The kernel gathers small writes (tar writes 10 KiB at a time) into requests of up
      // to 1 MiB: one FUSE round trip instead of a hundred. It flushes them before FLUSH
      // and FSYNC, and sends the mtime it kept as a SETATTR, which lands in the staged file.
      writebackCache: !config.readOnly,
      onUnexpectedError: (op, err) => log.error(`${op}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`),
    });
  } catch (err) {
    await journal.close();
    throw err;
  }
  log.info(`mounted s3://${config.bucket}/${config.prefix} on ${config.mountpoint}`);

  let shuttingDown: Promise<void> | undefined;
  const shutdown = async (lazy: boolean, progress?: (left: DrainProgress) => void): Promise<void> => {
    await fuse.unmount({ lazy });
    await reader.cache.saveAll(); // so that the next mount finds what this one read
    await vfs.drain(progress);
    if (!(await journal.close())) log.warn(`uploads left in the journal ${journal.dir}: the next mount with --cache-dir ${config.cacheDir} finishes them`);
  };
  return {
    exited: fuse.exited,
    shutdown(options = {}) {
      // A failed attempt (busy mount point) may be retried, e.g. lazily.
      shuttingDown ??= shutdown(options.lazy ?? false, options.progress).catch((err: unknown) => {
        shuttingDown = undefined;
        throw err;
      });
      return shuttingDown;
    },
  };
}
