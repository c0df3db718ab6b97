import PQueue from 'p-queue';
import type { Logger } from '../log.js';
import type { Bucket } from '../s3/bucket.js';
import { findAbandoned, removeAbandoned, type Journal, type RecoveredEntry } from './journal.js';
import type { ObjectWriter } from './object-writer.js';
import { StagedFile } from './staged-file.js';
import { StagedObject } from './staged-object.js';

/** Attempts per file before recovery hands it to the running mount's background uploads. */
const RECOVERY_ATTEMPTS = 3;

export interface RecoveryContext {
  cacheDir: string;
  identity: string;
  bucket: Bucket;
  journal: Journal;
  writer: ObjectWriter;
  concurrency: number;
  /** A read-only mount leaves the journals for the next read-write one. */
  readOnly: boolean;
  log: Logger;
}

/**
 * Finishes what mounts of the same bucket that are gone (killed, or stopped with a
 * second Ctrl-C) left in their journals: aborts their multipart uploads and uploads
 * every accepted file, before this mount serves anything. Files that still fail are
 * taken into this mount's journal and answered as pending; they are returned.
 */
export async function recoverJournals(context: RecoveryContext): Promise<StagedObject[]> {
  const { bucket, journal, writer, log } = context;
  const abandoned = await findAbandoned(context.cacheDir, context.identity);
  const entries = abandoned.flatMap((j) => j.entries);
  const uploads = abandoned.flatMap((j) => j.uploads);
  if (entries.length === 0 && uploads.length === 0) {
    await Promise.all(abandoned.map(removeAbandoned));
    return [];
  }
  const bytes = entries.reduce((sum, e) => sum + e.record.size, 0);
  if (context.readOnly) {
    log.warn(`${entries.length} file(s), ${bytes} bytes, that an earlier mount left in the journal in ${context.cacheDir} wait for the next read-write mount`);
    return [];
  }
  log.warn(`recovering ${entries.length} file(s), ${bytes} bytes, that an earlier mount left in the journal in ${context.cacheDir}`);

  for (const upload of uploads) {
    await bucket.abortUpload(upload.key, upload.uploadId).catch((err: unknown) => {
      log.warn(`could not abort the multipart upload of ${upload.key} left by an earlier mount: ${String(err)}`);
    });
  }

  const leftovers: StagedObject[] = [];
  const queue = new PQueue({ concurrency: context.concurrency });
  await Promise.all(
    entries.map((entry) =>
      queue.add(async () => {
        const file = entry.bytes ? StagedFile.fromBytes(entry.dataPath, entry.bytes) : await StagedFile.reopen(entry.dataPath);
        const object = toObject(entry, file, bucket, 'recovered');
        const error = await uploadWithRetries(writer, object);
        await object.file.close();
        if (!error) return;
        log.error(`recovered file ${entry.record.key} could not be uploaded yet (${String(error)}); it stays pending in this mount`);
        const adopted = await journal.adopt(entry);
        const pending = toObject(entry, adopted.file, bucket, adopted.id);
        await journal.commit(adopted.id, adopted.file, pending.toRecord());
        leftovers.push(pending);
      }),
    ),
  );
  await Promise.all(abandoned.map(removeAbandoned));
  log.warn(`recovery done: ${entries.length - leftovers.length} of ${entries.length} file(s) uploaded`);
  return leftovers;
}

function toObject(entry: RecoveredEntry, file: StagedFile, bucket: Bucket, id: string): StagedObject {
  const { record } = entry;
  return new StagedObject(
    {
      id,
      file,
      key: record.key,
      size: record.size,
      meta: record.meta,
      partSize: record.partSize,
      base: record.base,
      localBlocks: record.localBlocks,
      dirtyBlocks: record.dirtyBlocks,
    },
    bucket,
  );
}

async function uploadWithRetries(writer: ObjectWriter, object: StagedObject): Promise<unknown> {
  let error: unknown;
  for (let attempt = 1; attempt <= RECOVERY_ATTEMPTS; attempt++) {
    try {
      await writer.commit(object);
      return undefined;
    } catch (err) {
      error = err;
      await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
    }
  }
  return error;
}
