// The journal: files waiting for upload, kept on local disk so that a killed mount
// loses nothing that close() or fsync() accepted.
//
// Layout: CACHE_DIR/journal/<bucket identity>/<pid>-<start time>-<random>/ per mount
// instance (the start time tells a reused pid from the mount's own), with
//   N.data         the staged bytes of one file (sparse where they still come from S3)
//   N.json         its record: written (atomically, after the data was fsync'ed) when a
//                  close or fsync accepts the file; a .data without .json was never accepted
//   N.M.upload.json  a multipart upload in progress for it, to abort after a crash
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Timespec } from '../fs-types.js';
import { StagedFile } from './staged-file.js';

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
  dataPath: string;
}

/** Names journals by what they upload to: another bucket or prefix never replays them. */
export function journalIdentity(endpoint: string | undefined, bucket: string, prefix: string): string {
  return createHash('sha256').update(JSON.stringify([endpoint ?? 'aws', bucket, prefix])).digest('hex').slice(0, 16);
}

export class Journal {
  private counter = 0;
  /** Writes and removals of each file, in call order: a newer record is never overtaken. */
  private readonly chains = new Map<string, Promise<void>>();

  private constructor(
    readonly dir: string,
    /** Kept open: every record is followed by an fsync of the folder. */
    private readonly dirHandle: FileHandle,
  ) {}

  /** A new journal folder for this mount instance. */
  static async create(cacheDir: string, identity: string): Promise<Journal> {
    const dir = join(cacheDir, 'journal', identity, `${process.pid}-${processStartTime(process.pid) ?? 0}-${randomBytes(4).toString('hex')}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new Journal(dir, await open(dir, 'r'));
  }

  /** A data file for a new staged file; it is no journal entry until commit(). */
  async newDataFile(): Promise<{ id: string; file: StagedFile }> {
    const id = String(++this.counter);
    return { id, file: await StagedFile.create(join(this.dir, `${id}.data`)) };
  }

  /** Takes over a data file of an earlier mount's journal (recovery that could not finish). */
  async adopt(dataPath: string): Promise<{ id: string; file: StagedFile }> {
    const id = String(++this.counter);
    const path = join(this.dir, `${id}.data`);
    await rename(dataPath, path);
    await this.dirHandle.sync();
    return { id, file: await StagedFile.reopen(path) };
  }

  /** Makes the entry durable: the record is in place only once the data is synced too. */
  async commit(id: string, file: StagedFile, record: JournalRecord): Promise<void> {
    await this.writeAtomically(`${id}.json`, record, { data: file, durable: true });
  }

  /** The file is in the bucket as it is: no record needed (the data may still be open). */
  async forgetRecord(id: string): Promise<void> {
    await this.inOrder(`${id}.json`, () => rm(join(this.dir, `${id}.json`), { force: true }));
  }

  /** Drops an entry whose upload is done (or whose file is gone): record first, then data. */
  async forget(id: string, file: StagedFile): Promise<void> {
    await this.forgetRecord(id);
    await file.discard();
  }

  /** Notes a multipart upload begun for entry `id`; answers the name to forget it by. */
  async recordUpload(id: string, upload: UploadRecord): Promise<string> {
    const name = `${id}.${++this.counter}.upload.json`;
    await this.writeAtomically(name, upload, { durable: true });
    return name;
  }

  async forgetUpload(name: string): Promise<void> {
    await rm(join(this.dir, name), { force: true });
  }

  /** Removes the folder if no entry is left in it (a second Ctrl-C may leave some). */
  async close(): Promise<boolean> {
    const names = await readdir(this.dir).catch(() => []);
    const entries = names.filter((n) => n.endsWith('.json') && !n.endsWith('.upload.json'));
    if (entries.length > 0) return false;
    await this.dirHandle.close();
    await rm(this.dir, { recursive: true, force: true });
    return true;
  }

  private inOrder(name: string, step: () => Promise<void>): Promise<void> {
    const run = (this.chains.get(name) ?? Promise.resolve()).catch(() => undefined).then(step);
    const tracked = run.finally(() => {
      if (this.chains.get(name) === tracked) this.chains.delete(name);
    });
    this.chains.set(name, tracked);
    return tracked;
  }

  /**
   * A new record for an entry whose data did not change (a chmod, utimens or truncate by
   * path): atomic, so it survives the process being killed, but not fsync'ed, as such a
   * change on a local disk is not durable before an fsync either.
   */
  async update(id: string, record: JournalRecord): Promise<void> {
    await this.writeAtomically(`${id}.json`, record, { durable: false });
  }

  /** Replaces `name` with `content` atomically, and durably if asked, with `data` synced first. */
  private writeAtomically(name: string, content: unknown, options: { data?: StagedFile; durable: boolean }): Promise<void> {
    const text = JSON.stringify(content);
    return this.inOrder(name, async () => {
      const tmp = join(this.dir, `${name}.tmp`);
      // In parallel: the rename is what makes the record count, and it waits for both.
      await Promise.all([options.data?.sync(), writeFile(tmp, text, { mode: 0o600, flush: options.durable })]);
      await rename(tmp, join(this.dir, name));
      if (options.durable) await this.dirHandle.sync();
    });
  }
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
    const names = await readdir(dir);
    const entries: RecoveredEntry[] = [];
    const uploads: UploadRecord[] = [];
    for (const file of names) {
      if (file.endsWith('.upload.json')) {
        uploads.push(JSON.parse(await readFile(join(dir, file), 'utf8')) as UploadRecord);
      } else if (file.endsWith('.json')) {
        const id = file.slice(0, -'.json'.length);
        entries.push({ record: JSON.parse(await readFile(join(dir, file), 'utf8')) as JournalRecord, dataPath: join(dir, `${id}.data`) });
      }
    }
    for (const file of names) {
      const id = file.split('.')[0];
      const accepted = names.includes(`${id}.json`);
      if (file.endsWith('.tmp') || (file.endsWith('.data') && !accepted)) await rm(join(dir, file), { force: true });
    }
    found.push({ dir, entries, uploads });
  }
  return found;
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
