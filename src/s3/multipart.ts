// Multipart uploads and copies: create, parts in parallel, complete, or abort.
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import PQueue from 'p-queue';
import { FsError } from '../errors.js';
import type { Part } from '../upload/part-size.js';
import { describeS3Error } from './errors.js';
import { encodeCopySource, quoteEtag } from './keys.js';

export const DEFAULT_PART_CONCURRENCY = 4;

/**
 * Parts up to this size are read into memory and sent as a Buffer: the SDK can
 * then retry them. Larger parts (only in files above 8 GB with the default part
 * size) are streamed from the file, because holding several of them in memory
 * would cost gigabytes; the SDK never retries a streamed body, so we do.
 */
export const BUFFERED_PART_LIMIT = 16 * 1024 * 1024;
const STREAMED_PART_ATTEMPTS = 3;

interface Target {
  client: S3Client;
  bucket: string;
  key: string;
}

interface MultipartRun extends Target {
  metadata: Record<string, string>;
  contentType?: string;
  parts: Part[];
  concurrency: number;
  /** Sends one part and answers its ETag. */
  sendPart(part: Part, uploadId: string): Promise<string>;
}

/**
 * Runs a whole multipart upload. Completes with exactly the parts sent, in order;
 * on any failure waits for the parts in flight, aborts the upload (so that no
 * orphaned parts are billed) and rethrows the first error. Answers the ETag that
 * CompleteMultipartUpload gave, which may be '' on some servers.
 */
async function runMultipart(run: MultipartRun): Promise<string> {
  const { client, bucket, key } = run;
  const created = await client.send(
    new CreateMultipartUploadCommand({
      Bucket: bucket,
      Key: key,
      Metadata: run.metadata,
      ContentType: run.contentType,
    }),
  );
  const uploadId = created.UploadId;
  if (!uploadId) throw new FsError('EIO', 'S3 CreateMultipartUpload answered no UploadId');

  try {
    const completed: CompletedPart[] = [];
    const errors: unknown[] = [];
    const queue = new PQueue({ concurrency: run.concurrency });
    for (const part of run.parts) {
      // Errors are collected, never thrown from the task: after the first one the
      // remaining tasks return at once, and onIdle() still resolves.
      void queue.add(async () => {
        if (errors.length > 0) return;
        try {
          const etag = await run.sendPart(part, uploadId);
          completed.push({ PartNumber: part.partNumber, ETag: etag });
        } catch (err) {
          errors.push(err);
        }
      });
    }
    await queue.onIdle();
    if (errors.length > 0) throw errors[0];

    completed.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    const done = await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: completed },
      }),
    );
    return done.ETag ?? '';
  } catch (err) {
    await client
      .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
      .catch(() => {
        // Best effort: the original error is the one to report, and a bucket
        // lifecycle rule is the safety net for uploads that could not be aborted.
      });
    throw err;
  }
}

export interface UploadFromFile extends Target {
  handle: FileHandle;
  metadata: Record<string, string>;
  contentType?: string;
  parts: Part[];
  concurrency?: number;
}

/** Uploads the byte ranges `parts` of an open file as one object. */
export function uploadFileParts(upload: UploadFromFile): Promise<string> {
  const { client, bucket, key, handle } = upload;
  return runMultipart({
    ...upload,
    concurrency: upload.concurrency ?? DEFAULT_PART_CONCURRENCY,
    async sendPart(part, uploadId) {
      const input = { Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: part.partNumber, ContentLength: part.size };
      if (part.size <= BUFFERED_PART_LIMIT) {
        const body = await readExactly(handle, part.start, part.size);
        const out = await client.send(new UploadPartCommand({ ...input, Body: body }));
        return requireEtag(out.ETag, part);
      }
      for (let attempt = 1; ; attempt++) {
        const body = fileRangeStream(handle, part.start, part.size);
        try {
          const out = await client.send(new UploadPartCommand({ ...input, Body: body }));
          return requireEtag(out.ETag, part);
        } catch (err) {
          if (attempt >= STREAMED_PART_ATTEMPTS || !isRetryable(err)) throw err;
          await delay(200 * 2 ** attempt);
        } finally {
          body.destroy();
        }
      }
    },
  });
}

export interface CopyInParts extends Target {
  sourceKey: string;
  /** The source's ETag: every part copies from that version or fails with 412. */
  sourceEtag?: string;
  metadata: Record<string, string>;
  contentType?: string;
  parts: Part[];
  concurrency?: number;
}

/** Copies an object server-side with UploadPartCopy (needed above 5 GiB). */
export function copyParts(copy: CopyInParts): Promise<string> {
  const { client, bucket, key } = copy;
  const source = encodeCopySource(bucket, copy.sourceKey);
  return runMultipart({
    ...copy,
    concurrency: copy.concurrency ?? DEFAULT_PART_CONCURRENCY,
    async sendPart(part, uploadId) {
      const out = await client.send(
        new UploadPartCopyCommand({
          Bucket: bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: part.partNumber,
          CopySource: source,
          CopySourceRange: `bytes=${part.start}-${part.start + part.size - 1}`,
          CopySourceIfMatch: copy.sourceEtag === undefined ? undefined : quoteEtag(copy.sourceEtag),
        }),
      );
      return requireEtag(out.CopyPartResult?.ETag, part);
    },
  });
}

const STREAM_CHUNK = 1024 * 1024;

/**
 * Bytes [start, start + size) of an open file as a stream, read at explicit
 * positions: parts in parallel share the handle without disturbing each other, and
 * destroying the stream leaves the handle open (an fs.ReadStream on the handle's
 * descriptor would close it). FileHandle.close() waits for a read in progress.
 */
function fileRangeStream(handle: FileHandle, start: number, size: number): Readable {
  async function* chunks(): AsyncGenerator<Buffer> {
    const end = start + size;
    for (let offset = start; offset < end; ) {
      const length = Math.min(STREAM_CHUNK, end - offset);
      const buffer = Buffer.allocUnsafe(length);
      const { bytesRead } = await handle.read(buffer, 0, length, offset);
      if (bytesRead === 0) {
        throw new FsError('EIO', `file ended at byte ${offset}, expected ${end}: it changed during the upload`);
      }
      offset += bytesRead;
      yield buffer.subarray(0, bytesRead);
    }
  }
  return Readable.from(chunks(), { objectMode: false });
}

/** Reads exactly `size` bytes at `start`; a shorter file is an error, not a short part. */
export async function readExactly(handle: FileHandle, start: number, size: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(size);
  let filled = 0;
  while (filled < size) {
    const { bytesRead } = await handle.read(buffer, filled, size - filled, start + filled);
    if (bytesRead === 0) {
      throw new FsError('EIO', `file ended at byte ${start + filled}, expected ${start + size}: it changed during the upload`);
    }
    filled += bytesRead;
  }
  return buffer;
}

function requireEtag(etag: string | undefined, part: Part): string {
  if (!etag) throw new FsError('EIO', `S3 answered no ETag for part ${part.partNumber}`);
  return etag;
}

/** Worth another try: no answer at all, a 5xx, or throttling. */
function isRetryable(err: unknown): boolean {
  const { code, status } = describeS3Error(err);
  if (status === undefined) return !(err instanceof FsError);
  return status >= 500 || status === 429 || code === 'RequestTimeout' || code === 'SlowDown';
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
