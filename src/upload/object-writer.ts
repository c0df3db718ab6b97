import PQueue from 'p-queue';
import { FsError } from '../errors.js';
import type { Logger } from '../log.js';
import { normalizeEtag, type Bucket } from '../s3/bucket.js';
import { BUFFERED_PART_LIMIT, type PartBody } from '../s3/multipart.js';
import { encodeMeta } from '../s3/metadata.js';
import type { Timespec } from '../fs-types.js';
import type { BaseObject, Journal, RecordedMeta } from './journal.js';
import { PartBuffers } from './part-buffers.js';
import { partLayout, partsAreBlocks, type Part } from './part-size.js';
import type { StagedObject } from './staged-object.js';

export interface ObjectWriterOptions {
  /** Files below this size go up in one PUT. */
  singlePutLimit: number;
  /** Parts in flight at once, over all objects. */
  partConcurrency: number;
}

interface SentPart {
  etag: string;
  /** The object's version when the part's bytes were read. */
  version: number;
  start: number;
  size: number;
}

/** A multipart upload that parts of a file being written are streamed into. */
interface Session {
  readonly uploadId: string;
  readonly key: string;
  /** The attributes it was created with: a later change needs a copy after completing. */
  readonly meta: RecordedMeta;
  readonly startedAtMs: number;
  readonly journalName: string;
  readonly sent: Map<number, SentPart>;
  readonly sending: Map<number, Promise<void>>;
  /** Where the next block to stream starts. */
  nextStart: number;
}

function isLater(a: Timespec, b: Timespec): boolean {
  return a.sec > b.sec || (a.sec === b.sec && a.nsec >= b.nsec);
}

function timespecOf(ms: number): Timespec {
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1_000_000 };
}

/**
 * Whether the attributes the streamed upload began with can stand for `current`: the
 * same, or only an mtime from about the upload's start until now, as writes (and the
 * kernel's time update at close) make it. The object then keeps the time its upload
 * began rather than paying a server-side copy of itself; an mtime set back or ahead
 * (touch -d, tar, rsync) or another change still gets one.
 */
function streamedMetaStands(session: Session, current: RecordedMeta): boolean {
  const { meta } = session;
  return (
    meta.mode === current.mode &&
    meta.uid === current.uid &&
    meta.gid === current.gid &&
    isLater(current.mtime, timespecOf(session.startedAtMs - 1000)) &&
    isLater(timespecOf(Date.now() + 1), current.mtime)
  );
}

/** What uploadPart sends: the bytes in memory, or for big parts a stream of the file. */
async function readPart<B extends Buffer>(object: StagedObject, part: Part, body: B): Promise<B> {
  const read = await object.file.read(body, part.start);
  // The data file is never shorter than the object's size; if it is, uploading zeros would lie.
  if (read < part.size) throw new FsError('EIO', `staged file of ${object.key} ended at byte ${part.start + read}, expected ${part.start + part.size}`);
  return body;
}

/**
 * Puts a staged object into the bucket: one PUT for small files; else a multipart
 * upload whose parts are reused when they were streamed while the file was written,
 * copied server-side (UploadPartCopy) when unchanged from the base object, and sent
 * from the staged file otherwise.
 */
export class ObjectWriter {
  private readonly parts: PQueue;
  private readonly buffers: PartBuffers;
  private copyUnsupported = false;
  /** Sessions in progress, for the object they belong to. */
  private readonly sessions = new WeakMap<StagedObject, Promise<Session>>();
  /** Objects whose streaming could not start: they go up at commit, not at every write. */
  private readonly notStreaming = new WeakSet<StagedObject>();

  constructor(
    private readonly bucket: Bucket,
    private readonly journal: Journal,
    private readonly options: ObjectWriterOptions,
    private readonly log: Logger,
  ) {
    this.parts = new PQueue({ concurrency: options.partConcurrency });
    this.buffers = new PartBuffers(options.partConcurrency);
  }

  /** Sends one part of the staged file: from memory up to BUFFERED_PART_LIMIT, else streamed. */
  private sendPart(object: StagedObject, session: Session, part: Part): Promise<string> {
    const send = (body: PartBody): Promise<string> => this.bucket.uploadPart(session.key, session.uploadId, part.partNumber, body);
    if (part.size > BUFFERED_PART_LIMIT) return send({ size: part.size, open: () => object.file.stream(part.start, part.size) });
    return this.buffers.with(part.size, async (buffer) => send(await readPart(object, part, buffer)));
  }

  /**
   * Called after each write: once a file written from scratch has complete parts beyond
   * the single-PUT size, they start uploading, so that close waits only for the last.
   */
  streamParts(object: StagedObject): void {
    if (object.size < this.options.singlePutLimit || this.notStreaming.has(object) || !object.looksComplete(object.blockAt(0))) return;
    const session = this.sessions.get(object) ?? this.openSession(object);
    session.then((s) => {
      for (let block = object.blockAt(s.nextStart); object.looksComplete(block); block = object.blockAt(s.nextStart)) {
        s.nextStart = block.start + block.size;
        const sending = this.parts.add(() => this.sendBlock(object, s, block)).catch((err: unknown) => {
          // Not an error of the file yet: the commit sends the part again and reports that.
          this.log.debug(`streaming part ${block.partNumber} of ${object.key}: ${String(err)}`);
        });
        s.sending.set(block.partNumber, sending);
      }
    }, (err: unknown) => {
      // Not an error of the file yet: the commit starts its own upload and reports that.
      this.log.debug(`starting a multipart upload of ${object.key}: ${String(err)}`);
      this.notStreaming.add(object);
    });
  }

  private openSession(object: StagedObject): Promise<Session> {
    const key = object.key;
    const meta = object.meta;
    const startedAtMs = Date.now();
    const opening = (async (): Promise<Session> => {
      const uploadId = await this.bucket.createUpload(key, encodeMeta(meta));
      const journalName = await this.journal.recordUpload(object.id, { key, uploadId });
      return { uploadId, key, meta, startedAtMs, journalName, sent: new Map(), sending: new Map(), nextStart: 0 };
    })();
    this.sessions.set(object, opening);
    // A session that could not start is forgotten: the next attempt starts anew.
    opening.catch(() => {
      if (this.sessions.get(object) === opening) this.sessions.delete(object);
    });
    return opening;
  }

  private async sendBlock(object: StagedObject, session: Session, block: Part): Promise<void> {
    const version = object.version;
    const etag = await this.sendPart(object, session, block);
    session.sent.set(block.partNumber, { etag, version, start: block.start, size: block.size });
  }

  private async closeSession(object: StagedObject, abort: boolean): Promise<void> {
    const session = await this.sessions.get(object)?.catch(() => undefined);
    this.sessions.delete(object);
    if (!session) return;
    await Promise.all(session.sending.values());
    if (abort) {
      try {
        await this.bucket.abortUpload(session.key, session.uploadId);
      } catch (err) {
        // Its journal note stays: the next mount aborts it.
        this.log.warn(`could not abort the multipart upload of ${session.key}: ${String(err)}`);
        return;
      }
    }
    await this.journal.forgetUpload(session.journalName);
  }

  /** Whether parts of the object are being streamed into a multipart upload. */
  isStreaming(object: StagedObject): boolean {
    return this.sessions.has(object);
  }

  /** Drops the streamed parts (the file moved or went away). */
  discard(object: StagedObject): Promise<void> {
    return this.closeSession(object, true);
  }

  /** Uploads the object's current content and metadata; one commit at a time per object. */
  async commit(object: StagedObject): Promise<void> {
    const version = object.commitStarted();
    try {
      await this.upload(object, version);
    } finally {
      object.commitEnded();
    }
  }

  private async upload(object: StagedObject, version: number): Promise<void> {
    const key = object.key;
    const size = object.size;
    const metadata = encodeMeta(object.meta);
    let etag: string;
    let how: string;
    if (object.onlyMetaChanged) {
      await this.discard(object);
      ({ etag } = await this.bucket.copy(key, key, { size, metadata }));
      how = 'new metadata copied onto the object';
    } else if (size < this.options.singlePutLimit) {
      await this.discard(object);
      await object.makeAllLocal();
      const body = await readPart(object, { partNumber: 1, start: 0, size }, Buffer.allocUnsafe(size));
      ({ etag } = await this.bucket.put(key, body, metadata));
      how = 'one PUT';
    } else {
      const counts = { streamed: 0, copied: 0, sent: 0 };
      etag = await this.commitInParts(object, key, size, metadata, counts);
      how = `${counts.sent} part(s) sent, ${counts.streamed} streamed while written, ${counts.copied} copied server-side`;
    }
    object.committed(version, key, etag, size);
    this.log.debug(`uploaded ${key} (${size} bytes, ETag ${etag}): ${how}`);
  }

  private async commitInParts(
    object: StagedObject,
    key: string,
    size: number,
    metadata: Record<string, string>,
    counts: Record<'streamed' | 'copied' | 'sent', number>,
  ): Promise<string> {
    const asBlocks = partsAreBlocks(size, object.partSize);
    let session = await this.sessions.get(object)?.catch(() => undefined);
    if (session && (session.key !== key || !asBlocks)) {
      await this.discard(object);
      session = undefined;
    }
    const current = session ?? (await this.openSession(object));
    // Parts that are no blocks (only for objects beyond the schedule) are sent from local bytes.
    if (!asBlocks) await object.makeAllLocal();
    try {
      const parts = partLayout(size, object.partSize);
      const base = object.base;
      const copying = asBlocks && base !== undefined && !this.copyUnsupported && parts.some((part) => !object.blockChanged(part));
      if (copying) await this.assertBaseUnchanged(base);
      const etags = await Promise.all(parts.map((part) => this.parts.add(() => this.partEtag(object, current, part, asBlocks, counts))));
      if (copying) await this.assertBaseUnchanged(base);
      const done = await this.bucket.completeUpload(key, current.uploadId, etags as string[]);
      this.sessions.delete(object);
      await this.journal.forgetUpload(current.journalName);
      if (current.meta === object.meta) return done.etag;
      if (streamedMetaStands(current, object.meta)) {
        object.meta = { ...object.meta, mtime: current.meta.mtime };
        return done.etag;
      }
      // Streamed parts were begun before a chmod or a time set back: put those on now.
      return (await this.bucket.copy(key, key, { size, metadata })).etag;
    } catch (err) {
      await this.closeSession(object, true).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Parts copied from the base object must come from the version that was staged. S3
   * checks the copy's If-Match; Ceph RGW 16 ignores it on UploadPartCopy, so the base is
   * also looked at before and after the copies: replaced by another client, the commit
   * fails with ESTALE rather than mixing two versions.
   */
  private async assertBaseUnchanged(base: BaseObject): Promise<void> {
    const now = await this.bucket.head(base.key);
    if (!now || normalizeEtag(now.etag) !== normalizeEtag(base.etag)) {
      throw new FsError('ESTALE', `${base.key} changed in the bucket since it was opened here: its unchanged parts cannot be copied`);
    }
  }

  private async partEtag(
    object: StagedObject,
    session: Session,
    part: Part,
    asBlocks: boolean,
    counts: Record<'streamed' | 'copied' | 'sent', number>,
  ): Promise<string> {
    if (asBlocks) {
      await session.sending.get(part.partNumber);
      const sent = session.sent.get(part.partNumber);
      if (sent && sent.start === part.start && sent.size === part.size && !object.changedSince(part, sent.version)) {
        counts.streamed++;
        return sent.etag;
      }
      const base = object.base;
      if (base && !this.copyUnsupported && !object.blockChanged(part)) {
        try {
          counts.copied++;
          return await this.bucket.copyPart(session.key, session.uploadId, part.partNumber, {
            key: base.key,
            etag: base.etag,
            start: part.start,
            end: part.start + part.size,
          });
        } catch (err) {
          counts.copied--;
          if (!(err instanceof FsError && err.code === 'ENOSYS')) throw err;
          if (!this.copyUnsupported) {
            this.copyUnsupported = true;
            this.log.warn('the server does not implement UploadPartCopy (501 NotImplemented): unchanged parts of big files are downloaded and uploaded again instead');
          }
        }
      }
    }
    if (asBlocks) await object.makeLocal(part);
    counts.sent++;
    const version = object.version;
    const etag = await this.sendPart(object, session, part);
    session.sent.set(part.partNumber, { etag, version, start: part.start, size: part.size });
    return etag;
  }
}
