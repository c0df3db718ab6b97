// Chunks of objects, by (key, ETag, index): a memory tier bounded in bytes, a disk tier
// that outlives the mount, and one request per chunk however many readers want it.
import { LRUCache } from 'lru-cache';
import { DiskChunks } from './disk-chunks.js';

/** One version of one object, as reads address it. */
export interface ObjectVersion {
  key: string;
  etag: string;
  size: number;
}

/** Fetches bytes [start, end) of the object version; rejects if it changed. */
export type RangeFetcher = (version: ObjectVersion, start: number, end: number) => Promise<Buffer>;

/** Starts a request now or later (a queue bounding requests in flight). */
export type Scheduler = (request: () => Promise<Buffer>) => Promise<Buffer>;

export class ChunkCache {
  private readonly memory: LRUCache<string, Buffer>;
  private readonly inFlight = new Map<string, Promise<Buffer>>();

  constructor(
    readonly chunkSize: number,
    memoryBytes: number,
    private readonly disk: DiskChunks | undefined,
    private readonly fetchRange: RangeFetcher,
  ) {
    this.memory = new LRUCache<string, Buffer>({ maxSize: Math.max(memoryBytes, chunkSize), sizeCalculation: (b) => Math.max(1, b.length) });
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
  get(version: ObjectVersion, index: number): Promise<Buffer> {
    const id = this.idOf(version, index);
    const cached = this.memory.get(id);
    if (cached) return Promise.resolve(cached);
    const running = this.inFlight.get(id);
    if (running) return running;
    return this.track(id, this.fromDiskOrServer(version, index, id));
  }

  /**
   * Fetches chunks first..last that are not at hand, a run of consecutive ones in one
   * request (read-ahead: fewer, bigger GETs), started through `schedule`. They count as
   * under way from the call on. Resolves once they are all in.
   */
  async prefetch(version: ObjectVersion, first: number, last: number, schedule: Scheduler = (request) => request()): Promise<void> {
    const pending: Promise<unknown>[] = [];
    let runStart = -1;
    const flush = (end: number): void => {
      if (runStart < 0) return;
      pending.push(this.fetchRun(version, runStart, end, schedule));
      runStart = -1;
    };
    for (let index = first; index <= last; index++) {
      if (this.isAtHand(version, index)) flush(index);
      else if (runStart < 0) runStart = index;
    }
    flush(last + 1);
    await Promise.all(pending);
  }

  /** Drops the object's chunks from memory (a new version replaced it). */
  forget(key: string): void {
    const prefix = `${key}\0`;
    for (const id of this.memory.keys()) if (id.startsWith(prefix)) this.memory.delete(id);
  }

  private async fromDiskOrServer(version: ObjectVersion, index: number, id: string): Promise<Buffer> {
    const { start, end } = this.rangeOf(version, index);
    const name = DiskChunks.nameOf(version.key, version.etag, this.chunkSize, index);
    const onDisk = await this.disk?.get(name, end - start);
    if (onDisk) return onDisk;
    const bytes = await this.fetchRange(version, start, end);
    this.keepOnDisk(version, index, bytes);
    return bytes;
  }

  /** One request for chunks [first, end): each chunk resolves when it arrives. */
  private async fetchRun(version: ObjectVersion, first: number, end: number, schedule: Scheduler): Promise<void> {
    const start = this.rangeOf(version, first).start;
    const stop = this.rangeOf(version, end - 1).end;
    const request = schedule(() => this.fetchRange(version, start, stop));
    const waits: Promise<Buffer>[] = [];
    for (let index = first; index < end; index++) {
      const from = this.rangeOf(version, index);
      const chunk = request.then((all) => {
        const bytes = all.subarray(from.start - start, from.end - start);
        this.keepOnDisk(version, index, bytes);
        return bytes;
      });
      waits.push(this.track(this.idOf(version, index), chunk));
    }
    await Promise.all(waits).catch(() => undefined); // a reader that needs a chunk sees the error
  }

  private track(id: string, fetching: Promise<Buffer>): Promise<Buffer> {
    this.inFlight.set(id, fetching);
    fetching.then(
      (bytes) => {
        if (this.inFlight.get(id) === fetching) this.inFlight.delete(id);
        this.memory.set(id, bytes);
      },
      () => {
        if (this.inFlight.get(id) === fetching) this.inFlight.delete(id);
      },
    );
    return fetching;
  }

  private keepOnDisk(version: ObjectVersion, index: number, bytes: Buffer): void {
    if (!this.disk) return;
    void this.disk.put(DiskChunks.nameOf(version.key, version.etag, this.chunkSize, index), bytes);
  }

  private rangeOf(version: ObjectVersion, index: number): { start: number; end: number } {
    const start = index * this.chunkSize;
    return { start, end: Math.min(version.size, start + this.chunkSize) };
  }

  private idOf(version: ObjectVersion, index: number): string {
    return `${version.key}\0${version.etag}\0${index}`;
  }
}
