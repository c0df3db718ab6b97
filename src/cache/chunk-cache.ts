// Chunks of objects, by (key, ETag, index): a memory tier bounded in bytes, a disk tier
// that outlives the mount, and one request per chunk however many readers want it.
//
// A fetched chunk goes to disk once no fetch is under way, when the memory tier evicts
// it first, or when a sequential reader has read past it (release). Writing it on
// arrival cost a cold sequential read a third of its speed (measured: 82 against
// 116 MiB/s for 512 MiB), since new page-cache pages compete for the CPU with the
// network; a reader that has to wait for S3 never waits for the disk.
import { LRUCache } from 'lru-cache';
import { FsError } from '../errors.js';
import type { ObjectInfo } from '../s3/bucket.js';
import { Chunk } from './chunk.js';
import { DiskChunks } from './disk-chunks.js';

/** One version of one object, as reads address it. */
export interface ObjectVersion {
  key: string;
  etag: string;
  size: number;
}

/**
 * Fetches bytes [start, end) of the object version, handing them to `sink` in order as
 * they arrive; rejects if the object changed. Resolves with the number of bytes passed.
 * `answered`, if given, hears what the answer tells of the object before its first byte
 * (not at all if it tells too little).
 */
export type RangeFetcher = (
  version: ObjectVersion,
  start: number,
  end: number,
  sink: (bytes: Buffer) => void,
  answered?: (info: ObjectInfo) => void,
) => Promise<number>;

/** Starts a request now or later (a queue bounding requests in flight). */
export type Scheduler = (request: () => Promise<unknown>) => Promise<unknown>;

const now: Scheduler = (request) => request();

export class ChunkCache {
  private readonly memory: LRUCache<string, Chunk>;
  private readonly inFlight = new Map<string, Promise<Chunk>>();
  /** Fetched chunks not yet written to the disk tier, oldest first, by id. */
  private readonly unsaved = new Map<string, { name: string; chunk: Chunk }>();
  /** The loop writing unsaved chunks, while one runs. */
  private saving: Promise<void> | undefined;
  /** Writes of unsaved chunks to the disk tier under way, whatever started them. */
  private readonly writes = new Set<Promise<void>>();

  constructor(
    readonly chunkSize: number,
    memoryBytes: number,
    private readonly disk: DiskChunks | undefined,
    private readonly fetchRange: RangeFetcher,
  ) {
    this.memory = new LRUCache<string, Chunk>({
      maxSize: Math.max(memoryBytes, chunkSize),
      sizeCalculation: (chunk) => Math.max(1, chunk.length),
      dispose: (chunk, id, reason) => {
        const unsaved = this.unsaved.get(id);
        if (unsaved?.chunk !== chunk) return;
        // Evicted before a quiet moment came: kept now. Dropped (a new version): not at all.
        if (reason === 'evict') void this.save(id, unsaved);
        else this.unsaved.delete(id);
      },
    });
  }

  /** Chunk indexes holding bytes [start, end) of an object. */
  chunksOf(start: number, end: number): { first: number; last: number } {
    return { first: Math.floor(start / this.chunkSize), last: Math.floor((end - 1) / this.chunkSize) };
  }

  /** Whether the chunk is in memory or on its way (no request needed to have it). */
  isAtHand(version: ObjectVersion, index: number): boolean {
    const id = this.idOf(version, index);
    return this.memory.has(id) || this.inFlight.has(id);
  }

  /** The chunk's bytes, from memory, a request under way, the disk, or a new request. */
  get(version: ObjectVersion, index: number): Promise<Chunk> {
    const id = this.idOf(version, index);
    const cached = this.memory.get(id);
    if (cached) return Promise.resolve(cached);
    const running = this.inFlight.get(id);
    if (running) return running;
    const fromDisk = this.fromDisk(version, index);
    return this.track(id, fromDisk.then((bytes) => bytes ?? (this.request(version, index, index + 1, now, true)[0] as Promise<Chunk>)));
  }

  /**
   * Fetches chunks first..last that are neither at hand nor on disk, a run of
   * consecutive ones in one request (read-ahead: fewer, bigger GETs), started through
   * `how.schedule`; those on disk are read from there. They count as under way from the
   * call on. Resolves once they are all in. Without `how.keepOnDisk`, the fetched chunks
   * are kept in memory only (the tail of a long sequential read). `how.answered` is
   * called once: with what the answer to the request of chunk `first` tells of the
   * object, or with undefined if there is no such request or its answer tells too little.
   */
  async prefetch(
    version: ObjectVersion,
    first: number,
    last: number,
    how: { schedule?: Scheduler; keepOnDisk?: boolean; answered?: (info: ObjectInfo | undefined) => void } = {},
  ): Promise<void> {
    const { schedule = now, keepOnDisk = true, answered } = how;
    const pending: Promise<Chunk>[] = [];
    let runStart = -1;
    const flush = (end: number): void => {
      if (runStart < 0) return;
      for (const [i, chunk] of this.request(version, runStart, end, schedule, keepOnDisk, runStart === first ? answered : undefined).entries()) {
        pending.push(this.track(this.idOf(version, runStart + i), chunk));
      }
      runStart = -1;
    };
    // Chunk `first` needs no request: nothing will be answered.
    if (this.isAtHand(version, first) || this.isOnDisk(version, first)) answered?.(undefined);
    for (let index = first; index <= last; index++) {
      if (this.isAtHand(version, index)) flush(index);
      else if (this.isOnDisk(version, index)) {
        flush(index);
        pending.push(this.get(version, index));
      } else if (runStart < 0) runStart = index;
    }
    flush(last + 1);
    await Promise.all(pending).catch(() => undefined); // a reader that needs a chunk sees the error
  }

  /**
   * A sequential reader is done with the chunk: out of memory with it. One worth
   * keeping (`keep`) goes to the disk tier first if it is not there yet, and stays in
   * memory if the disk tier does not take it (there is none, or no room); one not worth
   * keeping is dropped unless it is waiting to be written for another reader.
   */
  release(version: ObjectVersion, index: number, keep: boolean): void {
    const id = this.idOf(version, index);
    const chunk = this.memory.peek(id);
    if (!chunk) return;
    const unsaved = this.unsaved.get(id);
    if (!keep) {
      if (!unsaved) this.memory.delete(id);
      return;
    }
    if (!this.disk) return;
    if (!unsaved) {
      if (this.disk.has(this.diskName(version, index))) this.memory.delete(id);
      return;
    }
    void this.save(id, unsaved).then(() => {
      if (this.disk?.has(unsaved.name) && this.memory.peek(id) === chunk) this.memory.delete(id);
    });
  }

  /** Drops the object's chunks from memory (a new version replaced it). */
  forget(key: string): void {
    const prefix = `${key}\0`;
    for (const id of this.memory.keys()) if (id.startsWith(prefix)) this.memory.delete(id);
  }

  private isOnDisk(version: ObjectVersion, index: number): boolean {
    return this.disk?.has(this.diskName(version, index)) ?? false;
  }

  private async fromDisk(version: ObjectVersion, index: number): Promise<Chunk | undefined> {
    const { start, end } = this.rangeOf(version, index);
    const bytes = await this.disk?.get(this.diskName(version, index), end - start);
    return bytes && Chunk.of(bytes);
  }

  /**
   * One request for chunks [first, end), started through `schedule`: each chunk's
   * promise resolves as soon as its own bytes are in, not when the whole range is.
   */
  private request(
    version: ObjectVersion,
    first: number,
    end: number,
    schedule: Scheduler,
    keepOnDisk: boolean,
    answered?: (info: ObjectInfo | undefined) => void,
  ): Promise<Chunk>[] {
    const chunks = Array.from({ length: end - first }, (_, i) => ({ range: this.rangeOf(version, first + i), ...deferred<Chunk>() }));
    let current = 0;
    let pieces: Buffer[] = [];
    let filled = 0;
    const sink = (bytes: Buffer): void => {
      let offset = 0;
      while (offset < bytes.length && current < chunks.length) {
        const chunk = chunks[current] as (typeof chunks)[number];
        const wanted = chunk.range.end - chunk.range.start - filled;
        const piece = bytes.subarray(offset, offset + wanted);
        pieces.push(piece);
        offset += piece.length;
        filled += piece.length;
        if (piece.length < wanted) continue;
        const complete = new Chunk(pieces);
        if (this.disk && keepOnDisk) this.unsaved.set(this.idOf(version, first + current), { name: this.diskName(version, first + current), chunk: complete });
        chunk.resolve(complete);
        current++;
        pieces = [];
        filled = 0;
      }
    };
    const start = this.rangeOf(version, first).start;
    const stop = this.rangeOf(version, end - 1).end;
    let told = answered === undefined;
    const tell = (info: ObjectInfo | undefined): void => {
      if (told) return;
      told = true;
      answered?.(info);
    };
    schedule(() => this.fetchRange(version, start, stop, sink, answered && tell)).then(
      () => {
        tell(undefined);
        // An object shorter than its version's size: a server that is not consistent.
        const error = new FsError('EIO', `${version.key} ended before byte ${stop}`);
        for (const chunk of chunks.slice(current)) chunk.reject(error);
      },
      (err: unknown) => {
        tell(undefined);
        for (const chunk of chunks.slice(current)) chunk.reject(err);
      },
    );
    return chunks.map((chunk) => chunk.promise);
  }

  private track(id: string, fetching: Promise<Chunk>): Promise<Chunk> {
    this.inFlight.set(id, fetching);
    fetching.then(
      (chunk) => {
        if (this.inFlight.get(id) === fetching) this.inFlight.delete(id);
        this.memory.set(id, chunk);
        this.saveWhileQuiet();
      },
      () => {
        if (this.inFlight.get(id) === fetching) this.inFlight.delete(id);
        this.saveWhileQuiet();
      },
    );
    return fetching;
  }

  /**
   * Writes every chunk not yet on disk, fetches under way or not: at unmount, when no
   * read will want the CPU any more.
   */
  async saveAll(): Promise<void> {
    await Promise.all([this.saving, ...this.writes]);
    await this.saveUnsaved(() => true);
  }

  /** Writes unsaved chunks to the disk tier, one at a time, until a fetch starts. */
  private saveWhileQuiet(): void {
    if (this.saving || !this.disk) return;
    this.saving = this.saveUnsaved(() => this.inFlight.size === 0).finally(() => {
      this.saving = undefined;
      // Fetches that ended while the loop was stopping (chunks of one request complete
      // in the same tick) found it still running and started no other.
      if (this.inFlight.size === 0 && this.unsaved.size > 0) this.saveWhileQuiet();
    });
  }

  private async saveUnsaved(shouldGoOn: () => boolean): Promise<void> {
    for (const [id, unsaved] of this.unsaved) {
      if (!shouldGoOn()) break;
      await this.save(id, unsaved);
    }
  }

  /** Takes the chunk out of `unsaved` and writes it; resolves once written (or refused). */
  private save(id: string, unsaved: { name: string; chunk: Chunk }): Promise<void> {
    this.unsaved.delete(id);
    const writing: Promise<void> = (this.disk?.put(unsaved.name, unsaved.chunk.pieces) ?? Promise.resolve()).finally(() =>
      this.writes.delete(writing),
    );
    this.writes.add(writing);
    return writing;
  }

  private diskName(version: ObjectVersion, index: number): string {
    return DiskChunks.nameOf(version.key, version.etag, this.chunkSize, index);
  }

  private rangeOf(version: ObjectVersion, index: number): { start: number; end: number } {
    const start = index * this.chunkSize;
    return { start, end: Math.min(version.size, start + this.chunkSize) };
  }

  private idOf(version: ObjectVersion, index: number): string {
    return `${version.key}\0${version.etag}\0${index}`;
  }
}

function deferred<T>(): { promise: Promise<T>; resolve(value: T): void; reject(reason: unknown): void } {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
