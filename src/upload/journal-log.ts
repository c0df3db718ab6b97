// The journal's log: the latest state of each entry (a file's record, maybe with its bytes;
// a multipart upload in progress), appended to preallocated segment files.
//
// Why a log of preallocated segments: close() must not return before the file is durable,
// and fsync of a new or growing file waits for an ext4 journal commit, which on a busy
// disk (an S3 server on the same machine, or just many files) costs milliseconds. An
// overwrite of blocks that are already written needs only fdatasync of the data: a small
// file's close costs one write and one fdatasync, and concurrent closes share it.
//
// Segment N.log: a 16-byte header (magic, epoch, crc), then frames, then zeros:
//   [u32 payload length][u32 crc32(epoch, payload)][payload: u32 header length, header JSON, data]
// The epoch orders segments at replay. A free segment is reused under a new epoch: frames
// of its earlier life fail the crc, and replay of a segment stops at the first bad frame.
import { crc32 } from 'node:zlib';
import { open, readdir, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

export const SEGMENT_BYTES = 8 * 1024 * 1024;
const HEADER_BYTES = 16;
const FRAME_HEAD_BYTES = 8;
const MAGIC = Buffer.from('s3mjrnl1');
/** Free segments kept for reuse; more are deleted. */
const SPARE_SEGMENTS = 2;
const ZEROS = Buffer.alloc(1024 * 1024);

/** An entry's latest state as replay finds it. */
export interface LogState {
  body: unknown;
  /** Bytes stored with it, if any. */
  data?: Buffer;
}

interface Segment {
  slot: number;
  handle: FileHandle;
  epoch: number;
  /** Next frame's offset. */
  end: number;
  /** Entries whose latest frame is in this segment and that are not dropped. */
  live: Set<string>;
}

interface Pending {
  key: string;
  /** undefined: a barrier, resolved once what was queued before it is written. */
  payload?: Buffer[];
  dropped: boolean;
  durable: boolean;
  settle: (err?: unknown) => void;
}

export class JournalLog {
  private current?: Segment;
  private readonly full: Segment[] = [];
  private readonly spare: Segment[] = [];
  private readonly segmentOf = new Map<string, Segment>();
  /** Keys put and not dropped, written or still queued. */
  private readonly known = new Set<string>();
  private queue: Pending[] = [];
  private writing = false;
  private nextSlot = 1;
  private nextEpoch = 1;
  /** Segments written to since the last fdatasync. */
  private readonly unsynced = new Set<Segment>();

  constructor(
    readonly dir: string,
    /** Synced after a new segment file is made. */
    private readonly syncDir: () => Promise<void>,
  ) {}

  /** Sets `key`'s state; resolves once it is written (and durable, if asked). */
  put(key: string, body: unknown, data: Buffer | undefined, durable: boolean): Promise<void> {
    this.known.add(key);
    return this.enqueue(key, { key, body, data: data !== undefined }, data, durable, false);
  }

  /** Drops `key`: replay will not find it. Not durable by itself. */
  drop(key: string): Promise<void> {
    if (!this.known.delete(key)) return Promise.resolve();
    return this.enqueue(key, { key, dropped: true }, undefined, false, true);
  }

  /** Whether no entry is live. */
  get empty(): boolean {
    return this.known.size === 0;
  }

  /** Waits for what is queued, then closes the segment files. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.push({ key: '', dropped: false, durable: false, settle: () => resolve() }));
    const all = [this.current, ...this.full, ...this.spare].filter((s): s is Segment => s !== undefined);
    await Promise.all(all.map((s) => s.handle.close()));
    this.current = undefined;
    this.full.length = 0;
    this.spare.length = 0;
  }

  private enqueue(key: string, header: object, data: Buffer | undefined, durable: boolean, dropped: boolean): Promise<void> {
    const json = Buffer.from(JSON.stringify(header));
    const length = Buffer.alloc(4);
    length.writeUInt32LE(json.length);
    const payload = data ? [length, json, data] : [length, json];
    const bytes = FRAME_HEAD_BYTES + 4 + json.length + (data?.length ?? 0);
    if (bytes > SEGMENT_BYTES - HEADER_BYTES) {
      return Promise.reject(new Error(`journal frame of ${bytes} bytes does not fit a ${SEGMENT_BYTES}-byte segment`));
    }
    return new Promise((resolve, reject) => {
      this.push({ key, payload, dropped, durable, settle: (err) => (err ? reject(err) : resolve()) });
    });
  }

  private push(pending: Pending): void {
    this.queue.push(pending);
    void this.kick();
  }

  /** One batch at a time: what queues meanwhile shares the next write and fdatasync. */
  private async kick(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        try {
          await this.writeBatch(batch);
          for (const p of batch) p.settle();
        } catch (err) {
          // The segment's tail is unknown now: later frames go to a fresh one.
          if (this.current) this.full.push(this.current);
          this.current = undefined;
          for (const p of batch) p.settle(err);
        }
      }
    } finally {
      this.writing = false;
    }
  }

  private async writeBatch(batch: Pending[]): Promise<void> {
    let buffers: Buffer[] = [];
    let start = 0;
    const flush = async (): Promise<void> => {
      if (buffers.length === 0 || !this.current) return;
      await writeAllv(this.current.handle, buffers, start);
      this.unsynced.add(this.current);
      buffers = [];
    };
    for (const p of batch) {
      if (!p.payload) continue;
      const length = p.payload.reduce((n, b) => n + b.length, 0);
      if (!this.current || this.current.end + FRAME_HEAD_BYTES + length > SEGMENT_BYTES) {
        await flush();
        await this.rotate();
      }
      const segment = this.current as Segment;
      if (buffers.length === 0) start = segment.end;
      const head = Buffer.alloc(FRAME_HEAD_BYTES);
      head.writeUInt32LE(length, 0);
      head.writeUInt32LE(frameCrc(segment.epoch, p.payload), 4);
      buffers.push(head, ...p.payload);
      segment.end += FRAME_HEAD_BYTES + length;
      this.segmentOf.get(p.key)?.live.delete(p.key);
      if (p.dropped) {
        this.segmentOf.delete(p.key);
      } else {
        segment.live.add(p.key);
        this.segmentOf.set(p.key, segment);
      }
    }
    await flush();
    if (batch.some((p) => p.durable)) await this.syncAll();
  }

  /** fdatasync of what was written; then segments nothing refers to any more are freed. */
  private async syncAll(): Promise<void> {
    const segments = [...this.unsynced];
    this.unsynced.clear();
    await Promise.all(segments.map((s) => s.handle.datasync()));
    // Only now: a segment is freed once what superseded its frames is durable.
    for (let i = this.full.length - 1; i >= 0; i--) {
      const segment = this.full[i] as Segment;
      if (segment.live.size > 0 || this.unsynced.has(segment)) continue;
      this.full.splice(i, 1);
      await this.free(segment);
    }
  }

  private async free(segment: Segment): Promise<void> {
    if (this.spare.length < SPARE_SEGMENTS) {
      this.spare.push(segment);
      return;
    }
    await segment.handle.close();
    await unlink(join(this.dir, `${segment.slot}.log`));
  }

  /** Moves on to a fresh segment: a spare one under a new epoch, or a new file. */
  private async rotate(): Promise<void> {
    if (this.current) {
      if (this.unsynced.has(this.current)) {
        await this.current.handle.datasync();
        this.unsynced.delete(this.current);
      }
      this.full.push(this.current);
      this.current = undefined;
    }
    const segment = this.spare.pop() ?? (await this.createSegment());
    segment.epoch = this.nextEpoch++;
    segment.end = HEADER_BYTES;
    segment.live.clear();
    await writeAllv(segment.handle, [segmentHeader(segment.epoch)], 0);
    await segment.handle.datasync();
    this.current = segment;
  }

  private async createSegment(): Promise<Segment> {
    const slot = this.nextSlot++;
    const handle = await open(join(this.dir, `${slot}.log`), 'w+', 0o600);
    try {
      // Written, not just allocated: overwriting written blocks needs no metadata commit.
      for (let offset = 0; offset < SEGMENT_BYTES; offset += ZEROS.length) {
        await writeAllv(handle, [ZEROS.subarray(0, Math.min(ZEROS.length, SEGMENT_BYTES - offset))], offset);
      }
      await handle.sync();
      await this.syncDir();
    } catch (err) {
      await handle.close();
      throw err;
    }
    return { slot, handle, epoch: 0, end: HEADER_BYTES, live: new Set() };
  }
}

function frameCrc(epoch: number, payload: Buffer[]): number {
  const e = Buffer.alloc(4);
  e.writeUInt32LE(epoch);
  let crc = crc32(e);
  for (const b of payload) crc = crc32(b, crc);
  return crc;
}

function segmentHeader(epoch: number): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt32LE(epoch, 8);
  header.writeUInt32LE(crc32(header.subarray(0, 12)), 12);
  return header;
}

async function writeAllv(handle: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let pending = buffers.filter((b) => b.length > 0);
  while (pending.length > 0) {
    const { bytesWritten } = await handle.writev(pending, position);
    position += bytesWritten;
    let skip = bytesWritten;
    while (pending.length > 0 && skip >= (pending[0] as Buffer).length) skip -= (pending.shift() as Buffer).length;
    if (skip > 0 && pending.length > 0) pending[0] = (pending[0] as Buffer).subarray(skip);
  }
}

/**
 * The live entries of a journal folder's log: segments in epoch order, frames in each up
 * to the first that is torn, stale or absent.
 */
export async function replayLog(dir: string): Promise<Map<string, LogState>> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^\d+\.log$/.test(n));
  const segments: { epoch: number; bytes: Buffer }[] = [];
  for (const name of names) {
    const handle = await open(join(dir, name), 'r');
    try {
      const bytes = await handle.readFile();
      const epoch = readHeader(bytes);
      if (epoch !== undefined) segments.push({ epoch, bytes });
    } finally {
      await handle.close();
    }
  }
  segments.sort((a, b) => a.epoch - b.epoch);
  const states = new Map<string, LogState>();
  for (const { epoch, bytes } of segments) {
    for (let offset = HEADER_BYTES; offset + FRAME_HEAD_BYTES <= bytes.length; ) {
      const length = bytes.readUInt32LE(offset);
      const end = offset + FRAME_HEAD_BYTES + length;
      if (length < 4 || end > bytes.length) break;
      const payload = bytes.subarray(offset + FRAME_HEAD_BYTES, end);
      if (frameCrc(epoch, [payload]) !== bytes.readUInt32LE(offset + 4)) break;
      const headerLength = payload.readUInt32LE(0);
      const header = JSON.parse(payload.subarray(4, 4 + headerLength).toString('utf8')) as { key: string; body?: unknown; data?: boolean; dropped?: boolean };
      if (header.dropped) states.delete(header.key);
      else states.set(header.key, { body: header.body, data: header.data ? Buffer.from(payload.subarray(4 + headerLength)) : undefined });
      offset = end;
    }
  }
  return states;
}

function readHeader(bytes: Buffer): number | undefined {
  if (bytes.length < HEADER_BYTES || !bytes.subarray(0, 8).equals(MAGIC)) return undefined;
  if (crc32(bytes.subarray(0, 12)) !== bytes.readUInt32LE(12)) return undefined;
  return bytes.readUInt32LE(8);
}
