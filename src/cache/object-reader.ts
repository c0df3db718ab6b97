// Reads of objects through the chunk cache: the chunks a read needs are fetched at once
// (one GET per missing chunk), and a sequential reader's read-ahead is fetched in groups
// of up to REQUEST_BYTES per GET, a bounded number at a time.
import PQueue from 'p-queue';
import type { MountConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { Bucket, ObjectInfo } from '../s3/bucket.js';
import { ChunkCache, type ObjectVersion, type RangeFetcher } from './chunk-cache.js';
import { DiskChunks } from './disk-chunks.js';
import { HandedChunks } from './handed-chunks.js';
import { ReadAhead, SequentialRuns } from './read-ahead.js';

/** Read-ahead GETs cover up to this much (whole chunks), like the raw SDK's ranged GETs. */
const REQUEST_BYTES = 8 * 1024 * 1024;
/** Read-ahead GETs in flight at once, over all files. */
const READ_AHEAD_REQUESTS = 8;
/**
 * GETs of files fetched ahead of a reader in flight at once: as many as the raw SDK's
 * 16, since these files are mostly small and each GET is mostly its round trip
 * (`md5sum -c` of 2000 files 1 KiB..1 MiB behind 20 ms took 12.1 s with the 8 of the
 * read-ahead, 10.1 s with 16).
 */
const FILES_AHEAD_REQUESTS = 16;

export interface ObjectReaderOptions {
  /** Most bytes sequential readers have fetched ahead of where they read, all together. */
  maxReadAhead: number;
  /**
   * Chunks read ahead this far past where a sequential run began skip the disk tier,
   * shared by the runs under way together; 0: none do.
   */
  sequentialCutoff: number;
}

/** Where chunks come from: ranged GETs of one version. */
type RangeSource = Pick<Bucket, 'streamRange'>;

/** Everything the read cache is sized by (a view of MountConfig). */
export type ReadCacheOptions = Pick<MountConfig, 'chunkSize' | 'memoryCacheSize' | 'maxReadAhead' | 'sequentialCutoff' | 'cacheSize' | 'minFreeSpace'>;

export class ObjectReader {
  private readonly readAheadQueue = new PQueue({ concurrency: READ_AHEAD_REQUESTS });
  private readonly filesAheadQueue = new PQueue({ concurrency: FILES_AHEAD_REQUESTS });
  private readonly groupChunks: number;
  private readonly sequentialRuns: SequentialRuns;
  private readonly handed: HandedChunks;

  constructor(
    readonly cache: ChunkCache,
    private readonly options: ObjectReaderOptions,
  ) {
    this.groupChunks = Math.max(1, Math.floor(REQUEST_BYTES / cache.chunkSize));
    this.sequentialRuns = new SequentialRuns(Math.max(1, Math.floor(options.maxReadAhead / cache.chunkSize)));
    this.handed = new HandedChunks(cache.chunkSize);
  }

  /** A reader of `source`'s objects whose chunk cache keeps its disk tier in `dir` (made if missing). */
  static async open(dir: string, source: RangeSource, options: ReadCacheOptions, log: Logger): Promise<ObjectReader> {
    const disk = await DiskChunks.open(dir, { maxBytes: options.cacheSize, minFreeBytes: options.minFreeSpace }, log);
    const fetchRange: RangeFetcher = (version, start, end, sink, answered) => source.streamRange(version.key, start, end, version.etag, sink, answered);
    return new ObjectReader(new ChunkCache(options.chunkSize, options.memoryCacheSize, disk, fetchRange), {
      // Chunks fetched ahead wait in the memory tier until they are read: a window
      // nearer its size would evict them before that, and fetch them again (the tier
      // also holds chunks being read and those a reader keeps).
      maxReadAhead: Math.min(options.maxReadAhead, Math.floor(options.memoryCacheSize / 4)),
      sequentialCutoff: options.sequentialCutoff,
    });
  }

  /** The read-ahead state of a new open file (close it with the file). */
  newReadAhead(): ReadAhead {
    return new ReadAhead(this.sequentialRuns);
  }

  /** Fills `target` from bytes of the version at `position`; answers how many (0 at EOF). */
  async read(version: ObjectVersion, readAhead: ReadAhead, target: Buffer, position: number): Promise<number> {
    const end = Math.min(version.size, position + target.length);
    if (position >= end) return 0;
    const { first, last } = this.cache.chunksOf(position, end);
    const ahead = readAhead.next(position, end, this.cache.chunkSize);
    const lost = readAhead.lost(first, last, this.handed.all(version, first, last));
    if (ahead > 0) {
      const keep = (index: number): boolean => this.keepsOnDisk(readAhead, index);
      const lastChunk = this.cache.chunksOf(0, version.size).last;
      const to = Math.min(last + ahead, lastChunk);
      // A group's worth of lost chunks in a row: the page cache lost a stretch of the
      // file (or all of it), which is read ahead as a cold read.
      const reach =
        lost >= this.groupChunks ? lastChunk : this.handed.reach(version, last + 1, Math.min(lastChunk, this.groupEnd(to)), lost);
      this.fetchAhead(version, last + 1, to, this.readAheadQueue, keep, undefined, reach);
      this.releaseLeftBehind(version, readAhead, first);
    }
    let filled = 0;
    const chunks = [];
    for (let index = first; index <= last; index++) chunks.push(this.cache.get(version, index));
    for (const [i, chunk] of (await Promise.all(chunks)).entries()) {
      const chunkStart = (first + i) * this.cache.chunkSize;
      const from = Math.max(position, chunkStart) - chunkStart;
      const to = Math.min(end, chunkStart + chunk.length) - chunkStart;
      filled += chunk.copyTo(target, filled, from, to);
    }
    return filled;
  }

  /**
   * Fetches the first bytes (up to one read-ahead GET) of files a reader is expected to
   * open next, in their order, as far as they fit in a sequential run's share of the
   * read-ahead (see FilesReadInOrder). They are kept as a sequential read from their
   * start would keep them. Answers, for each file it starts a fetch of, what the GET's
   * answer tells of the object as a HEAD would (undefined if it fails, or no GET was
   * needed after all).
   */
  readFilesAhead(versions: readonly ObjectVersion[]): Map<ObjectVersion, Promise<ObjectInfo | undefined>> {
    const answers = new Map<ObjectVersion, Promise<ObjectInfo | undefined>>();
    const groupBytes = this.groupChunks * this.cache.chunkSize;
    let bytes = 0;
    for (const version of versions) {
      bytes += Math.min(version.size, groupBytes);
      if (bytes > this.sequentialRuns.share(this.options.maxReadAhead)) break;
      if (version.size === 0) continue;
      const keep = (index: number): boolean => this.withinCutoff(index * this.cache.chunkSize);
      const answer = new Promise<ObjectInfo | undefined>((answered) => {
        this.fetchAhead(version, 0, this.cache.chunksOf(0, Math.min(version.size, groupBytes)).last, this.filesAheadQueue, keep, answered);
      });
      answers.set(version, answer);
    }
    return answers;
  }

  /**
   * Fetches whole groups of chunks overlapping [from, to] that are not at hand, through
   * `queue`; those of a group starting at a chunk `keep` says yes to will be written to
   * the disk tier. `answered` hears once what the request of chunk `from` was told of
   * the object (undefined: nothing, or no request). No chunk past `through` is fetched.
   */
  private fetchAhead(
    version: ObjectVersion,
    from: number,
    to: number,
    queue: PQueue,
    keep: (index: number) => boolean,
    answered?: (info: ObjectInfo | undefined) => void,
    through = Infinity,
  ): void {
    const stop = Math.min(through, this.cache.chunksOf(0, version.size).last);
    const end = Math.min(to, stop);
    if (from > end) {
      answered?.(undefined);
      return;
    }
    for (let group = Math.floor(from / this.groupChunks); group * this.groupChunks <= end; group++) {
      const first = Math.max(from, group * this.groupChunks);
      const last = Math.min(stop, this.groupEnd(first));
      const told = first === from ? answered : undefined;
      let missing = false;
      for (let index = first; index <= last && !missing; index++) missing = !this.cache.isAtHand(version, index);
      if (!missing) {
        told?.(undefined);
        continue;
      }
      // Registered as under way now, so that readers wait for it rather than ask again.
      void this.cache.prefetch(version, first, last, { schedule: (request) => queue.add(request), keepOnDisk: keep(first), answered: told });
    }
  }

  /** The last chunk of the read-ahead group of chunk `index`. */
  private groupEnd(index: number): number {
    return (Math.floor(index / this.groupChunks) + 1) * this.groupChunks - 1;
  }

  /**
   * Chunks a sequential run has read past leave the memory tier, those before the
   * cutoff by way of the disk tier: the kernel's page cache holds their bytes, and
   * chunks kept until the tier evicts them made the mount's heap grow by as much, page
   * fault by page fault (a cold 512 MiB read on a fresh mount: 85k minor faults, 52k
   * with the tail let go). One chunk behind the read stays, for the kernel's reads that
   * arrive a little out of order.
   */
  private releaseLeftBehind(version: ObjectVersion, run: ReadAhead, first: number): void {
    const { chunkSize } = this.cache;
    const { from, to } = run.passOver(Math.max(0, first - 1) * chunkSize);
    for (let index = Math.floor(from / chunkSize); (index + 1) * chunkSize <= to; index++) {
      const keep = this.keepsOnDisk(run, index);
      this.cache.release(version, index, keep);
      if (!keep) this.handed.add(version, index);
    }
  }

  /**
   * Whether chunk `index` is still within the run's share of the cutoff (worth keeping
   * on disk). Shared, because files streamed side by side are one bulk transfer: 4 x 64
   * MiB read in parallel each kept all their chunks, a cutoff per file, and writing
   * them cost the readers a tenth of their time (1.69-2.03 s against 1.48-1.79 s).
   */
  private keepsOnDisk(run: ReadAhead, index: number): boolean {
    return this.withinCutoff(run.intoRun(index * this.cache.chunkSize));
  }

  /** Whether bytes this far into a sequential run are within its share of the cutoff. */
  private withinCutoff(intoRun: number): boolean {
    const { sequentialCutoff } = this.options;
    return sequentialCutoff === 0 || intoRun < this.sequentialRuns.share(sequentialCutoff);
  }
}
