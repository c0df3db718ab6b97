// Multipart helpers: part bodies, which errors are worth another try, and a whole
// server-side copy in parts (for objects above CopyObject's 5 GiB).
import type { Readable } from 'node:stream';
import PQueue from 'p-queue';
import { FsError } from '../errors.js';
import type { Part } from '../upload/part-size.js';
import type { Bucket } from './bucket.js';
import { describeS3Error } from './errors.js';

export const DEFAULT_PART_CONCURRENCY = 4;

/**
 * Parts up to this size are sent from memory: the SDK can then retry them. Larger parts
 * (only in files above 8 GiB with the default part size) are streamed from the file,
 * because holding several of them in memory would cost gigabytes; the SDK never retries
 * a streamed body, so Bucket.uploadPart does.
 */
export const BUFFERED_PART_LIMIT = 16 * 1024 * 1024;
export const STREAMED_PART_ATTEMPTS = 3;

/** A part's bytes: in memory, or a stream that can be opened again for each attempt. */
export type PartBody = Buffer | { size: number; open(): Readable };

/** Worth another try: no answer at all, a 5xx, or throttling. */
export function isRetryable(err: unknown): boolean {
  const { code, status } = describeS3Error(err);
  if (status === undefined) return !(err instanceof FsError);
  return status >= 500 || status === 429 || code === 'RequestTimeout' || code === 'SlowDown';
}

export interface CopyInParts {
  sourceKey: string;
  /** The source's ETag: every part copies from that version or fails with ESTALE. */
  sourceEtag?: string;
  key: string;
  metadata: Record<string, string>;
  contentType?: string;
  parts: Part[];
  concurrency?: number;
}

/**
 * Copies an object server-side with UploadPartCopy. Completes with exactly the parts
 * copied; on any failure aborts the upload (so that no orphaned parts are billed) and
 * rethrows the first error.
 */
export async function copyInParts(bucket: Bucket, copy: CopyInParts): Promise<string> {
  const uploadId = await bucket.createUpload(copy.key, copy.metadata, copy.contentType);
  try {
    const queue = new PQueue({ concurrency: copy.concurrency ?? DEFAULT_PART_CONCURRENCY });
    const etags = await Promise.all(
      copy.parts.map((part) =>
        queue.add(() =>
          bucket.copyPart(copy.key, uploadId, part.partNumber, {
            key: copy.sourceKey,
            etag: copy.sourceEtag,
            start: part.start,
            end: part.start + part.size,
          }),
        ),
      ),
    );
    return (await bucket.completeUpload(copy.key, uploadId, etags as string[])).etag;
  } catch (err) {
    // Best effort: the original error is the one to report, and a bucket lifecycle rule
    // is the safety net for uploads that could not be aborted.
    await bucket.abortUpload(copy.key, uploadId).catch(() => undefined);
    throw err;
  }
}
