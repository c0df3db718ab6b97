// The journal: files waiting for upload, kept on local disk so that a killed mount
// loses nothing that close() or fsync() accepted.
//
// Layout: CACHE_DIR/journal/<bucket identity>/<pid>-<start time>-<random>/ per mount
// instance (the start time tells a reused pid from the mount's own), with
//   N.log          the log (journal-log.ts): the latest record of each accepted file, with
//                  the bytes of files staged in memory, and the multipart uploads in progress
//   N.data         the staged bytes of a file kept on disk (sparse where they still come
//                  from S3); fsync'ed before its record is written
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, rmdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Timespec } from '../fs-types.js';
import { JournalLog, replayLog } from './journal-log.js';
import { MemoryBudget, StagedFile, unlinkIfPresent } from './staged-file.js';

/** Memory for small staged files, shared by a mount's files. */
const MEMORY_BUDGET_BYTES = 64 * 1024 * 1024;

export interface RecordedMeta {
  mtime: Timespec;
  mode: number;
  uid: number;
  gid: number;
}

/** The object a staged file was opened from: bytes not staged locally come from it. */
export interface BaseObject {
  key: string;
  etag: string;
  /** The object's size (it may be more than validBytes after a truncate). */
  size: number;
  /** Bytes [0, validBytes) of the file that are not local are those of the object. */
  validBytes: number;
}

export interface JournalRecord {
  key: string;
  size: number;
  meta: RecordedMeta;
  partSize: number;
  base?: BaseObject;
  /** Blocks (parts of the size schedule) whose bytes are all in the data file. */
  localBlocks: number[];
  /** Blocks changed since the base object. */
  dirtyBlocks: number[];
}

export interface UploadRecord {
  key: string;
  uploadId: string;
}

/** A journal entry as recovery finds it. */
export interface RecoveredEntry {
  record: JournalRecord;
  /** Where its data file is, or would be. */
  dataPath: string;
  /** Its bytes, when the log holds them (the file was staged in memory). */
  bytes?: Buffer;
}

/** Names journals by what they upload to: another bucket or prefix never replays them. */
export function journalIdentity(endpoint: string | undefined, bucket: string, prefix: string): string {
  return createHash('sha256').update(JSON.stringify([endpoint ?? 'aws', bucket, prefix])).digest('hex').slice(0, 16);
}

export class Journal {
  private counter = 0;
  /** Steps of each entry, in call order: a newer record is never overtaken. */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly log: JournalLog;
  private readonly budget = new MemoryBudget(MEMORY_BUDGET_BYTES);

  private constructor(
    readonly dir: string,
    /** Kept open: new files in the folder are made durable by an fsync of it. */
    private readonly dirHandle: FileHandle,
  ) {
    this.log = new JournalLog(dir, () => dirHandle.sync());
  }

  /** A new journal folder for this mount instance. */
  static async create(cacheDir: string, identity: string): Promise<Journal> {
    const dir = join(cacheDir, 'journal', identity, `${process.pid}-${processStartTime(process.pid) ?? 0}-${randomBytes(4).toString('hex')}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new Journal(dir, await open(dir, 'r'));
  }

  /** A new staged file (in memory while small); it is no journal entry until commit(). */
  async newDataFile(): Promise<{ id: string; file: StagedFile }> {
    const id = String(++this.counter);
    return { id, file: await StagedFile.create(join(this.dir, `${id}.data`), this.budget) };
  }

  /** Takes over an entry of an earlier mount's journal (recovery that could not finish). */
  async adopt(entry: RecoveredEntry): Promise<{ id: string; file: StagedFile }> {
    const id = String(++this.counter);
    const path = join(this.dir, `${id}.data`);
    if (entry.bytes) return { id, file: StagedFile.fromBytes(path, entry.bytes) };
    await rename(entry.dataPath, path);
    await this.dirHandle.sync();
    return { id, file: await StagedFile.reopen(path) };
  }

  /** Makes the entry durable: its data (in the log or in its synced data file) and record. */
  async commit(id: string, file: StagedFile, record: JournalRecord): Promise<void> {
    await this.inOrder(id, () => this.putRecord(id, file, record, true));
  }

  /**
   * A new record for an entry whose data did not change (a chmod, utimens or truncate by
   * path): written, so it survives the process being killed, but not fsync'ed, as such a
   * change on a local disk is not durable before an fsync either.
   */
  async update(id: string, file: StagedFile, record: JournalRecord): Promise<void> {
    await this.inOrder(id, () => this.putRecord(id, file, record, false));
  }

  /** The file is in the bucket as it is: no record needed (the data may still be open). */
  async forgetRecord(id: string): Promise<void> {
    await this.inOrder(id, () => this.log.drop(entryKey(id)));
  }

  /** Drops an entry whose upload is done (or whose file is gone): record first, then data. */
  async forget(id: string, file: StagedFile): Promise<void> {
    await this.forgetRecord(id);
    await file.discard();
  }

  /** Notes a multipart upload begun for entry `id`; answers the name to forget it by. */
  async recordUpload(id: string, upload: UploadRecord): Promise<string> {
    const name = `${UPLOAD_PREFIX}${id}.${++this.counter}`;
    await this.log.put(name, upload, undefined, true);
    return name;
  }

  async forgetUpload(name: string): Promise<void> {
    await this.log.drop(name);
  }

  /** Removes the folder if no entry is left in it (a second Ctrl-C may leave some). */
  async close(): Promise<boolean> {
    const empty = this.log.empty;
    await this.log.close();
    await this.dirHandle.close();
    if (empty) await rm(this.dir, { recursive: true, force: true });
    return empty;
  }

  private async putRecord(id: string, file: StagedFile, record: JournalRecord, durable: boolean): Promise<void> {
    const bytes = await file.memoryCopy();
    if (!bytes && durable) {
      await file.sync();
      if (file.newDirEntry) {
        await this.dirHandle.sync();
        file.newDirEntry = false;
      }
    }
    await this.log.put(entryKey(id), record, bytes, durable);
  }

  private inOrder(id: string, step: () => Promise<void>): Promise<void> {
    const run = (this.chains.get(id) ?? Promise.resolve()).catch(() => undefined).then(step);
    const tracked = run.finally(() => {
      if (this.chains.get(id) === tracked) this.chains.delete(id);
    });
    this.chains.set(id, tracked);
    return tracked;
  }
}

const ENTRY_PREFIX = 'file:';
const UPLOAD_PREFIX = 'upload:';

function entryKey(id: string): string {
  return `${ENTRY_PREFIX}${id}`;
}

/** The journal folder of a mount that is gone, as recovery reads it. */
export interface AbandonedJournal {
  dir: string;
  entries: RecoveredEntry[];
  uploads: UploadRecord[];
}

/**
 * Journal folders of this bucket identity whose mount process is gone (killed, or
 * stopped with uploads left). Data files without a record were never accepted and are
 * deleted here.
 */
export async function findAbandoned(cacheDir: string, identity: string): Promise<AbandonedJournal[]> {
  const root = join(cacheDir, 'journal', identity);
  const found: AbandonedJournal[] = [];
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const [pid, startTime] = name.split('-').map(Number);
    if (!Number.isInteger(pid) || (pid as number) <= 0 || isAlive(pid as number, startTime)) continue;
    const dir = join(root, name);
    const { entries, uploads } = await readJournalFolder(dir);
    const onDisk = new Set(entries.filter((e) => !e.bytes).map((e) => e.dataPath));
    for (const file of await readdir(dir)) {
      if (file.endsWith('.data') && !onDisk.has(join(dir, file))) await unlinkIfPresent(join(dir, file));
    }
    found.push({ dir, entries, uploads });
  }
  return found;
}

/** What a journal folder holds: its accepted files and its multipart uploads in progress. */
export async function readJournalFolder(dir: string): Promise<{ entries: RecoveredEntry[]; uploads: UploadRecord[] }> {
  const entries: RecoveredEntry[] = [];
  const uploads: UploadRecord[] = [];
  for (const [key, state] of await replayLog(dir)) {
    if (key.startsWith(UPLOAD_PREFIX)) {
      uploads.push(state.body as UploadRecord);
    } else if (key.startsWith(ENTRY_PREFIX)) {
      const dataPath = join(dir, `${key.slice(ENTRY_PREFIX.length)}.data`);
      entries.push({ record: state.body as JournalRecord, dataPath, ...(state.data ? { bytes: state.data } : {}) });
    }
  }
  return { entries, uploads };
}

/** Removes an abandoned folder once everything in it was uploaded or taken over. */
export async function removeAbandoned(journal: AbandonedJournal): Promise<void> {
  await rm(journal.dir, { recursive: true, force: true });
  await rmdir(join(journal.dir, '..')).catch(() => undefined);
}

/**
 * Whether the process that made a journal still runs. A zombie (killed, not yet
 * reaped) is gone, and so is an other process that got the same pid later.
 */
export function isAlive(pid: number, startTime?: number): boolean {
  const stat = procStat(pid);
  if (!stat) return false;
  if (stat.state === 'Z' || stat.state === 'X') return false;
  return !startTime || stat.startTime === startTime;
}

/** Field 22 of /proc/PID/stat: clock ticks after boot when the process started. */
function processStartTime(pid: number): number | undefined {
  return procStat(pid)?.startTime;
}

function procStat(pid: number): { state: string; startTime: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: fields after it start at the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '', startTime: Number(fields[19]) };
}
