import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type ListObjectsV2CommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import PQueue from 'p-queue';
import { FsError } from '../errors.js';
import { DEFAULT_PART_SIZE, partLayout } from '../upload/part-size.js';
import { describeEndpoint } from './client.js';
import { DirectRequests, type HeadFields } from './direct-requests.js';
import { describeConnectError, describeS3Error, fsErrorFromCode, isNotFound, toFsError, type CredentialsNote } from './errors.js';
import { canonicalEtag, decodeListingKey, encodeCopySource, quoteEtag } from './keys.js';
import { copyInParts, DEFAULT_PART_CONCURRENCY, isRetryable, STREAMED_PART_ATTEMPTS, type PartBody } from './multipart.js';

export { normalizeEtag } from './keys.js';

const MiB = 1024 * 1024;

/** What HEAD tells about an object. */
export interface ObjectInfo {
  key: string;
  size: number;
  /** As the server sent it (quoted). */
  etag: string;
  lastModified: Date;
  /** User metadata: lowercase names without "x-amz-meta-". */
  metadata: Record<string, string>;
  contentType?: string;
}

/** What a listing tells about an object (no user metadata: that costs a HEAD). */
export interface ListedObject {
  key: string;
  size: number;
  etag: string;
  lastModified: Date;
}

/** Whether a HEAD answered (user metadata, whole-second Last-Modified) rather than a listing. */
export function cameFromHead(info: ObjectInfo | ListedObject): info is ObjectInfo {
  return 'metadata' in info;
}

export interface Listing {
  objects: ListedObject[];
  /** Common prefixes, full keys with the trailing delimiter ("a/b/"). */
  prefixes: string[];
}

export interface BucketOptions {
  /** Objects above this size are copied with UploadPartCopy (default 5 GiB, S3's CopyObject limit). */
  multipartCopyThreshold?: number;
}

export const MAX_SINGLE_COPY_SIZE = 5 * 1024 * MiB;
const DELETE_BATCH = 1000;
const DELETE_CONCURRENCY = 4;
const SINGLE_DELETE_CONCURRENCY = 16;
/** Body reads that fail midway (the SDK retries only until the headers) are tried again. */
const BODY_ATTEMPTS = 3;

/**
 * One bucket, through the SDK. Every method throws FsError (see toFsError), except
 * check(), whose errors are for a human at mount time. Keys are used verbatim: the
 * mapping between paths and keys belongs to src/vfs.
 */
export class Bucket {
  private multiDeleteUnsupported = false;
  private readonly multipartCopyThreshold: number;
  /** HEADs and GETs without the SDK's middleware, where they can do without it. */
  private readonly direct: DirectRequests;

  constructor(
    readonly client: S3Client,
    readonly name: string,
    options: BucketOptions = {},
  ) {
    this.multipartCopyThreshold = options.multipartCopyThreshold ?? MAX_SINGLE_COPY_SIZE;
    this.direct = new DirectRequests(client, name);
  }

  /**
   * Fails with one clear sentence when the bucket cannot be used: missing, access
   * denied, endpoint unreachable, no credentials. HeadBucket decides most cases;
   * when its answer is not conclusive (403 from a policy that allows listing but not
   * HeadBucket, servers without HeadBucket) a one-key listing decides.
   */
  async check(credentials: CredentialsNote = {}): Promise<void> {
    const fail = async (err: unknown): Promise<never> => {
      const endpoint = await describeEndpoint(this.client);
      throw new Error(describeConnectError(err, { bucket: this.name, endpoint, credentials }), { cause: err });
    };
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.name }));
      return;
    } catch (err) {
      const { status } = describeS3Error(err);
      if (status === undefined || status === 404) return fail(err);
    }
    try {
      await this.client.send(new ListObjectsV2Command({ Bucket: this.name, MaxKeys: 1 }));
    } catch (err) {
      return fail(err);
    }
  }

  /** HEAD; undefined when the key does not exist. */
  async head(key: string): Promise<ObjectInfo | undefined> {
    const direct = await this.direct.head(key);
    if (direct !== undefined && 'missing' in direct) return undefined;
    if (direct !== undefined && 'denied' in direct) throw new FsError('EACCES', 'S3 Forbidden (HTTP 403)');
    try {
      const out =
        direct !== undefined && 'found' in direct
          ? direct.found
          : await this.direct.viaSdk(direct, () => this.client.send(new HeadObjectCommand({ Bucket: this.name, Key: key })));
      return objectInfo(key, out, out.ContentLength ?? 0);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw toFsError(err);
    }
  }

  /**
   * One directory level: every page of ListObjectsV2 with the delimiter, or only the
   * first `maxPages` (then `complete` says whether that was all).
   */
  async list(prefix: string, delimiter = '/', maxPages = Infinity): Promise<Listing & { complete: boolean }> {
    const objects: ListedObject[] = [];
    // A Set: a server may repeat a prefix on the next page.
    const prefixes = new Set<string>();
    let pages = 0;
    for await (const page of this.pages(prefix, delimiter)) {
      if (pages++ === maxPages) return { objects, prefixes: [...prefixes], complete: false };
      objects.push(...page.objects);
      for (const p of page.prefixes) prefixes.add(p);
    }
    return { objects, prefixes: [...prefixes], complete: true };
  }

  /** Every object under `prefix` at any depth, page by page. */
  async *listAll(prefix: string): AsyncGenerator<ListedObject> {
    for await (const page of this.pages(prefix, undefined)) yield* page.objects;
  }

  /**
   * Whether any key starts with `prefix`. With `ignoreMarker`, the key equal to
   * `prefix` itself (a directory marker "dir/") does not count: that answers "is
   * this directory empty" for rmdir.
   */
  async hasAnyUnder(prefix: string, options: { ignoreMarker?: boolean } = {}): Promise<boolean> {
    try {
      const out = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.name,
          Prefix: prefix || undefined,
          MaxKeys: 1,
          // Keys sort after their prefix, so starting after it skips only the marker.
          StartAfter: options.ignoreMarker && prefix ? prefix : undefined,
        }),
      );
      return (out.Contents?.length ?? 0) > 0 || (out.CommonPrefixes?.length ?? 0) > 0;
    } catch (err) {
      throw toFsError(err);
    }
  }

  /**
   * Bytes [start, endExclusive) of the object, fewer only at its end (empty at or
   * past the end). With `ifMatch`, fails with ESTALE when the object is no longer
   * that version, so that chunks of two versions are never mixed.
   */
  async getRange(key: string, start: number, endExclusive: number, ifMatch?: string): Promise<Buffer> {
    const pieces: Buffer[] = [];
    await this.streamRange(key, start, endExclusive, ifMatch, (bytes) => pieces.push(bytes));
    return pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces);
  }

  /**
   * Like getRange, but hands the bytes to `sink` in order as they arrive, so that a
   * reader can use the start of a long range before its end is in. Resolves with the
   * number of bytes delivered. `answered` hears what the first answer tells of the
   * object, as a HEAD would, before its first byte: a reader of the file saves the HEAD.
   * It is not called when the answer leaves the object's size or ETag unknown.
   */
  async streamRange(
    key: string,
    start: number,
    endExclusive: number,
    ifMatch: string | undefined,
    sink: (bytes: Buffer) => void,
    answered?: (info: ObjectInfo) => void,
  ): Promise<number> {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(endExclusive) || start < 0) {
      throw new FsError('EINVAL', `invalid range ${start}-${endExclusive}`);
    }
    return this.download(key, { start, end: endExclusive }, ifMatch, sink, answered);
  }

  /** The whole object in memory: for small objects (symlink targets, markers). */
  async getObject(key: string): Promise<Buffer> {
    const pieces: Buffer[] = [];
    await this.download(key, undefined, undefined, (bytes) => pieces.push(bytes));
    return Buffer.concat(pieces);
  }

  /**
   * GET of a range (or of the whole object), its bytes passed on in order. The SDK
   * retries a request only until the response headers arrive; a body that breaks
   * midway is asked for again from where it broke, with the same conditions, so the
   * sink sees every byte once.
   */
  private async download(
    key: string,
    range: { start: number; end: number } | undefined,
    ifMatch: string | undefined,
    sink: (bytes: Buffer) => void,
    answered?: (info: ObjectInfo) => void,
  ): Promise<number> {
    const start = range?.start ?? 0;
    let delivered = 0;
    for (let attempt = 1; ; attempt++) {
      const from = start + delivered;
      if (range && from >= range.end) return delivered;
      const rangeHeader = range || from > 0 ? `bytes=${from}-${range ? range.end - 1 : ''}` : undefined;
      const ifMatchHeader = ifMatch === undefined ? undefined : quoteEtag(ifMatch);
      let out;
      try {
        const direct = await this.direct.get(key, { range: rangeHeader, 'if-match': ifMatchHeader });
        out =
          direct !== undefined && 'got' in direct
            ? direct.got
            : await this.direct.viaSdk(direct, () =>
                this.client.send(new GetObjectCommand({ Bucket: this.name, Key: key, Range: rangeHeader, IfMatch: ifMatchHeader })),
              );
      } catch (err) {
        const { code, status } = describeS3Error(err);
        // 416: the range starts at or past the end (any range of an empty object).
        if (status === 416 || code === 'InvalidRange') return delivered;
        throw toFsError(err);
      }
      const body = bodyExtent(out.ContentRange, out.ContentLength, from);
      if (attempt === 1 && answered && body.total !== undefined && out.ETag !== undefined) answered(objectInfo(key, out, body.total));
      const end = Math.min(range?.end ?? Infinity, body.total ?? Infinity);
      let position = body.start;
      try {
        for await (const piece of (out.Body ?? []) as AsyncIterable<Uint8Array>) {
          // A server may ignore Range and send the whole object with 200 (HTTP allows
          // it), or a wider range: pass on only what was asked for.
          const lo = Math.max(position, start + delivered);
          const hi = Math.min(position + piece.byteLength, end);
          if (hi > lo) {
            sink(Buffer.from(piece.buffer, piece.byteOffset + lo - position, hi - lo));
            delivered += hi - lo;
          }
          position += piece.byteLength;
          if (start + delivered >= end) break;
        }
      } catch (err) {
        if (attempt >= BODY_ATTEMPTS) throw new FsError('EIO', `the download of ${key} broke off: ${String(err)}`);
        continue;
      }
      if (start + delivered >= end || (end === Infinity && body.total === undefined)) return delivered;
      if (attempt >= BODY_ATTEMPTS) {
        throw new FsError('EIO', `S3 answered ${position - body.start} bytes for a read of ${end - from}: short body`);
      }
    }
  }

  /** PUT of a body in memory. */
  async put(
    key: string,
    body: Buffer,
    metadata: Record<string, string>,
    contentType?: string,
  ): Promise<{ etag: string }> {
    try {
      const out = await this.client.send(
        new PutObjectCommand({
          Bucket: this.name,
          Key: key,
          Body: body,
          ContentLength: body.length,
          Metadata: metadata,
          ContentType: contentType,
        }),
      );
      return { etag: out.ETag ? canonicalEtag(out.ETag) : await this.etagOf(key) };
    } catch (err) {
      throw toFsError(err);
    }
  }

  /**
   * Server-side copy. With `metadata` the copy gets exactly that user metadata
   * (REPLACE; give `contentType` too, or it resets to the default), else the
   * source's. Objects above 5 GiB are copied in parts, all from the same source
   * version.
   */
  async copy(
    srcKey: string,
    dstKey: string,
    options: {
      size: number;
      metadata?: Record<string, string>;
      contentType?: string;
      partSize?: number;
      concurrency?: number;
    },
  ): Promise<{ etag: string }> {
    try {
      if (options.size <= this.multipartCopyThreshold) {
        const out = await this.client.send(
          new CopyObjectCommand({
            Bucket: this.name,
            Key: dstKey,
            CopySource: encodeCopySource(this.name, srcKey),
            MetadataDirective: options.metadata ? 'REPLACE' : 'COPY',
            Metadata: options.metadata,
            ContentType: options.metadata ? options.contentType : undefined,
          }),
        );
        // Ceph RGW answers the copy's ETag unquoted; quoted, as HEAD and listings give it.
        const copied = out.CopyObjectResult?.ETag;
        return { etag: copied ? canonicalEtag(copied) : await this.etagOf(dstKey) };
      }
      // A multipart upload starts without metadata: take the source's unless
      // replaced, and pin the source's version with its ETag.
      const source = await this.head(srcKey);
      if (!source) throw new FsError('ENOENT', `S3 NoSuchKey: ${srcKey}`);
      const etag = await copyInParts(this, {
        key: dstKey,
        sourceKey: srcKey,
        sourceEtag: source.etag || undefined,
        metadata: options.metadata ?? source.metadata,
        contentType: options.metadata ? options.contentType : source.contentType,
        parts: partLayout(source.size, options.partSize ?? DEFAULT_PART_SIZE),
        concurrency: options.concurrency ?? DEFAULT_PART_CONCURRENCY,
      });
      return { etag };
    } catch (err) {
      throw toFsError(err);
    }
  }

  // --- multipart uploads driven step by step (the write-back uploader streams parts) ---

  async createUpload(key: string, metadata: Record<string, string>, contentType?: string): Promise<string> {
    try {
      const out = await this.client.send(
        new CreateMultipartUploadCommand({ Bucket: this.name, Key: key, Metadata: metadata, ContentType: contentType }),
      );
      if (!out.UploadId) throw new FsError('EIO', 'S3 CreateMultipartUpload answered no UploadId');
      return out.UploadId;
    } catch (err) {
      throw toFsError(err);
    }
  }

  /**
   * Sends one part and answers its ETag. A body in memory the SDK retries; a streamed
   * one (see BUFFERED_PART_LIMIT) is opened again for each of our own attempts.
   */
  async uploadPart(key: string, uploadId: string, partNumber: number, body: PartBody): Promise<string> {
    const input = { Bucket: this.name, Key: key, UploadId: uploadId, PartNumber: partNumber };
    for (let attempt = 1; ; attempt++) {
      const stream = Buffer.isBuffer(body) ? undefined : body.open();
      const payload = Buffer.isBuffer(body) ? { Body: body, ContentLength: body.length } : { Body: stream, ContentLength: body.size };
      try {
        const out = await this.client.send(new UploadPartCommand({ ...input, ...payload }));
        if (!out.ETag) throw new FsError('EIO', `S3 answered no ETag for part ${partNumber}`);
        return out.ETag;
      } catch (err) {
        if (!stream || attempt >= STREAMED_PART_ATTEMPTS || !isRetryable(err)) throw toFsError(err);
        await new Promise((resolve) => setTimeout(resolve, 200 * 2 ** attempt));
      } finally {
        stream?.destroy();
      }
    }
  }

  /**
   * Copies bytes [start, end) of `source.key`, as it is at `source.etag` if given (else
   * ESTALE), as one part. ENOSYS when the server has no UploadPartCopy.
   */
  async copyPart(key: string, uploadId: string, partNumber: number, source: { key: string; etag?: string; start: number; end: number }): Promise<string> {
    try {
      const out = await this.client.send(
        new UploadPartCopyCommand({
          Bucket: this.name,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          CopySource: encodeCopySource(this.name, source.key),
          CopySourceRange: `bytes=${source.start}-${source.end - 1}`,
          CopySourceIfMatch: source.etag === undefined ? undefined : quoteEtag(source.etag),
        }),
      );
      const etag = out.CopyPartResult?.ETag;
      if (!etag) throw new FsError('EIO', `S3 answered no ETag for copied part ${partNumber}`);
      return quoteEtag(etag);
    } catch (err) {
      throw toFsError(err);
    }
  }

  /** Completes with exactly `parts` (ETags in part order); answers the object's ETag. */
  async completeUpload(key: string, uploadId: string, etags: string[]): Promise<{ etag: string }> {
    try {
      const out = await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.name,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
        }),
      );
      return { etag: out.ETag ? canonicalEtag(out.ETag) : await this.etagOf(key) };
    } catch (err) {
      throw toFsError(err);
    }
  }

  /** Aborts; an upload that is already gone counts as aborted. */
  async abortUpload(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.name, Key: key, UploadId: uploadId }));
    } catch (err) {
      const fsErr = toFsError(err);
      if (fsErr.code !== 'ENOENT') throw fsErr;
    }
  }

  /** Deletes a key; deleting a missing key succeeds, as in S3. */
  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.name, Key: key }));
    } catch (err) {
      throw toFsError(err);
    }
  }

  /**
   * Deletes many keys with DeleteObjects, 1000 per request, a few requests at a
   * time; one DELETE per key on servers without DeleteObjects. Fails with the first
   * key the server could not delete.
   */
  async deleteMany(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    const batches: string[][] = [];
    for (let i = 0; i < keys.length; i += DELETE_BATCH) batches.push(keys.slice(i, i + DELETE_BATCH));
    const queue = new PQueue({ concurrency: DELETE_CONCURRENCY });
    await Promise.all(batches.map((batch) => queue.add(() => this.deleteBatch(batch))));
  }

  private async deleteBatch(keys: string[]): Promise<void> {
    if (!this.multiDeleteUnsupported) {
      try {
        const out = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.name,
            Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true },
          }),
        );
        const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
        const first = failed[0];
        if (first) throw fsErrorFromCode(first.Code ?? 'InternalError', `${first.Key ?? ''}: ${first.Message ?? ''}`);
        return;
      } catch (err) {
        if (err instanceof FsError) throw err;
        if (!isMultiDeleteUnsupported(err)) throw toFsError(err);
        this.multiDeleteUnsupported = true;
      }
    }
    const queue = new PQueue({ concurrency: SINGLE_DELETE_CONCURRENCY });
    await Promise.all(keys.map((key) => queue.add(() => this.delete(key))));
  }

  private async *pages(prefix: string, delimiter: string | undefined): AsyncGenerator<Listing> {
    let token: string | undefined;
    const seen = new Set<string>();
    do {
      let out: ListObjectsV2CommandOutput;
      try {
        out = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.name,
            Prefix: prefix || undefined,
            Delimiter: delimiter || undefined,
            ContinuationToken: token,
            // Keys may hold characters that XML 1.0 cannot carry (control
            // characters) or that XML parsers rewrite (\r): ask for them URL-encoded.
            EncodingType: 'url',
          }),
        );
      } catch (err) {
        throw toFsError(err);
      }
      // Decode only what the server says it encoded: some servers ignore the request.
      const decode = out.EncodingType === 'url' ? decodeListingKey : (s: string) => s;
      yield {
        objects: (out.Contents ?? []).flatMap((o) =>
          o.Key === undefined
            ? []
            : [
                {
                  key: decode(o.Key),
                  size: o.Size ?? 0,
                  etag: canonicalEtag(o.ETag ?? ''),
                  lastModified: o.LastModified ?? new Date(0),
                },
              ],
        ),
        prefixes: (out.CommonPrefixes ?? []).flatMap((p) => (p.Prefix === undefined ? [] : [decode(p.Prefix)])),
      };
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
      if (out.IsTruncated && !token) throw new FsError('EIO', 'S3 listing is truncated but has no continuation token');
      if (token !== undefined) {
        // A server that hands out the same token twice would loop forever.
        if (seen.has(token)) throw new FsError('EIO', 'S3 listing repeated a continuation token');
        seen.add(token);
      }
    } while (token !== undefined);
  }

  /** For servers that answer an upload or copy without an ETag. */
  private async etagOf(key: string): Promise<string> {
    const info = await this.head(key);
    if (!info) throw new FsError('ENOENT', `S3 object ${key} vanished right after it was written`);
    return info.etag;
  }
}

function isMultiDeleteUnsupported(err: unknown): boolean {
  const { code, status } = describeS3Error(err);
  return code === 'NotImplemented' || code === 'MissingContentMD5' || status === 501 || status === 405;
}

/** What a HEAD's or GET's answer tells of the object, which is `size` bytes long. */
function objectInfo(key: string, out: HeadFields, size: number): ObjectInfo {
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(out.Metadata ?? {})) metadata[name.toLowerCase()] = value;
  return {
    key,
    size,
    etag: canonicalEtag(out.ETag ?? ''),
    lastModified: out.LastModified ?? new Date(0),
    metadata,
    ...(out.ContentType === undefined ? {} : { contentType: out.ContentType }),
  };
}

/**
 * Where the body of a GET answer starts in the object, and the object's size when the
 * answer tells it. A body that starts after the byte asked for is of no use.
 */
function bodyExtent(contentRange: string | undefined, contentLength: number | undefined, from: number): { start: number; total?: number } {
  if (!contentRange) return { start: 0, total: contentLength };
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(contentRange.trim());
  if (!match) throw new FsError('EIO', `S3 answered an unreadable Content-Range: ${contentRange}`);
  const start = Number(match[1]);
  if (start > from) throw new FsError('EIO', `S3 answered bytes from ${start} for a read from ${from}`);
  return { start, total: match[3] === '*' ? undefined : Number(match[3]) };
}
