import { EventEmitter, once } from 'node:events';
import PQueue from 'p-queue';
import { FsError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Journal } from './journal.js';
import type { ObjectWriter } from './object-writer.js';
import type { StagedObject } from './staged-object.js';

export interface UploaderOptions {
  /** Objects uploaded at once in the background. */
  concurrency: number;
  /** Bytes staged before writes wait for uploads to free space. */
  cacheSize: number;
  /** Called after each successful upload of an object. */
  uploaded(object: StagedObject): void;
  /** Called when an object's background upload ends (done, cancelled or abandoned). */
  settled(object: StagedObject): void;
}

export interface DrainProgress {
  files: number;
  bytes: number;
}

/**
 * A closed file waits this long before its upload starts: tools set times and modes and
 * rename right after close (tar, rsync, cp -p), and those then go up with the data.
 */
const UPLOAD_DELAY_MS = 100;

/** Waits between attempts of a failing background upload: 1 s doubling to 15 s. */
function backoffMs(attempt: number): number {
  return Math.min(15_000, 1000 * 2 ** attempt);
}

/**
 * Write-back: accepts staged objects into the journal and uploads them in the
 * background, a bounded number at a time, retrying failures until they succeed. One
 * upload at a time per object; a newer version waits for the running one and then
 * supersedes whatever was queued.
 */
export class Uploader {
  private readonly queue: PQueue;
  /** Objects waiting for (or in) a background upload. */
  private readonly pending = new Set<StagedObject>();
  /** The running commit of each object. */
  private readonly running = new Map<StagedObject, Promise<void>>();
  private readonly events = new EventEmitter();
  private readonly retryTimers = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();
  /**
   * Pending objects whose last attempt the server refused (access denied): still retried
   * while mounted, as permissions may be fixed meanwhile, but not waited for at unmount.
   */
  private readonly refused = new Set<StagedObject>();
  private abandoned = false;

  constructor(
    private readonly writer: ObjectWriter,
    private readonly journal: Journal,
    private readonly log: Logger,
    private readonly options: UploaderOptions,
  ) {
    this.queue = new PQueue({ concurrency: options.concurrency });
    this.events.setMaxListeners(0);
  }

  /** Makes what close() or fsync() accepted durable on local disk. */
  accept(object: StagedObject): Promise<void> {
    return this.record(object, true);
  }

  /**
   * Records a change that came without a close (chmod, utimens, truncate by path). The
   * data of a file already accepted needs no new fsync; one never accepted does.
   */
  note(object: StagedObject): Promise<void> {
    return this.record(object, object.journaledVersion === 0);
  }

  private async record(object: StagedObject, durable: boolean): Promise<void> {
    if (object.journaledVersion === object.version || !object.dirty) return;
    const version = object.version;
    if (durable) await this.journal.commit(object.id, object.file, object.toRecord());
    else await this.journal.update(object.id, object.file, object.toRecord());
    object.journaledVersion = version;
  }

  /** Queues an accepted object for a background upload. */
  schedule(object: StagedObject): void {
    if (this.pending.has(object) || this.abandoned) return;
    this.pending.add(object);
    void this.sleep(UPLOAD_DELAY_MS).then(() => this.queue.add(() => this.uploadInBackground(object)));
  }

  /**
   * Uploads the object now, after any running upload of it: resolves once the version
   * current at the call is in the bucket; rejects if that attempt fails (the object
   * stays in the journal and a scheduled upload keeps retrying).
   */
  async uploadNow(object: StagedObject): Promise<void> {
    const target = object.version;
    while (object.uploadedVersion < target) await this.commitOnce(object);
  }

  /**
   * Stops the object's background upload (renamed, deleted): resolves once no upload
   * of it runs any more. Whatever already reached the bucket stays there.
   */
  async cancel(object: StagedObject): Promise<void> {
    this.pending.delete(object);
    await this.running.get(object)?.catch(() => undefined);
    await this.writer.discard(object);
  }

  isPending(object: StagedObject): boolean {
    return this.pending.has(object) || this.running.has(object);
  }

  /**
   * Lets a write grow the staging area by `growth` bytes: waits while `used()` would go
   * beyond --cache-size and uploads are pending that will free space. (A single open
   * file bigger than the limit still grows: nothing could free space for it.)
   */
  async waitForRoom(used: () => number, growth: number): Promise<void> {
    while (used() + growth > this.options.cacheSize && this.pending.size > 0 && !this.abandoned) {
      await once(this.events, 'settled');
    }
  }

  /**
   * Resolves once nothing is pending, or only uploads the server refuses: those are left
   * in the journal (see abandon) for a later mount, since waiting for them could hang an
   * unmount forever. `progress` is called about every second meanwhile.
   */
  async drain(progress?: (left: DrainProgress) => void): Promise<void> {
    const report = () => progress?.(this.left());
    const ticker = progress ? setInterval(report, 1000) : undefined;
    try {
      if (this.pending.size > 0) report();
      while (this.pending.size > this.refused.size && !this.abandoned) await once(this.events, 'settled');
    } finally {
      if (ticker) clearInterval(ticker);
    }
    if (this.refused.size > 0) {
      const keys = [...this.refused].map((object) => object.key);
      const shown = keys.slice(0, 5).join(', ') + (keys.length > 5 ? `, and ${keys.length - 5} more` : '');
      this.log.error(`the server refused the upload of ${keys.length} file(s) (access denied): ${shown}; they stay in the journal for the next mount`);
      this.abandon();
    }
  }

  /** What is still to upload. */
  left(): DrainProgress {
    let bytes = 0;
    for (const object of this.pending) bytes += object.size;
    return { files: this.pending.size, bytes };
  }

  /** Stops uploading (a second Ctrl-C): what is pending stays in the journal for the next mount. */
  abandon(): void {
    this.abandoned = true;
    this.queue.clear();
    for (const retry of this.retryTimers) retry.wake();
    this.events.emit('settled');
  }

  private commitOnce(object: StagedObject): Promise<void> {
    const previous = this.running.get(object) ?? Promise.resolve();
    const run = previous
      .catch(() => undefined)
      .then(async () => {
        if (!object.dirty) return;
        await this.writer.commit(object);
        // Still dirty: changed during the upload, its record must say what is left to send.
        if (object.dirty) await this.accept(object);
        else {
          await this.journal.forgetRecord(object.id);
          object.journaledVersion = 0;
        }
        this.options.uploaded(object);
      });
    const tracked = run.finally(() => {
      if (this.running.get(object) === tracked) this.running.delete(object);
    });
    this.running.set(object, tracked);
    return tracked;
  }

  private async uploadInBackground(object: StagedObject): Promise<void> {
    try {
      for (let attempt = 0; object.dirty && this.pending.has(object) && !this.abandoned; attempt++) {
        try {
          await this.commitOnce(object);
          this.refused.delete(object);
        } catch (err) {
          const wait = backoffMs(attempt);
          this.log.warn(`upload of ${object.key} failed (${String(err)}); trying again in ${wait / 1000} s`);
          if (err instanceof FsError && err.code === 'EACCES' && !this.refused.has(object)) {
            this.refused.add(object);
            this.events.emit('settled');
          }
          await this.sleep(wait);
        }
      }
    } finally {
      this.refused.delete(object);
      this.pending.delete(object);
      this.events.emit('settled');
      this.options.settled(object);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const retry = {
        timer: setTimeout(() => retry.wake(), ms),
        wake: () => {
          clearTimeout(retry.timer);
          this.retryTimers.delete(retry);
          resolve();
        },
      };
      this.retryTimers.add(retry);
    });
  }
}
