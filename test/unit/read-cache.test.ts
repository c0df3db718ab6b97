import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ChunkCache, type ObjectVersion, type RangeFetcher } from '../../src/cache/chunk-cache.js';
import { DiskChunks } from '../../src/cache/disk-chunks.js';
import { HandedChunks } from '../../src/cache/handed-chunks.js';
import { ObjectReader } from '../../src/cache/object-reader.js';
import { ReadAhead, SequentialRuns } from '../../src/cache/read-ahead.js';
import { createLogger } from '../../src/log.js';
import type { ObjectInfo } from '../../src/s3/bucket.js';
import { waitUntil } from '../support/run.js';

const log = createLogger('error', () => undefined);
const KiB = 1024;
const MiB = 1024 * KiB;

/** An object's bytes, with every range request recorded. */
function fakeObject(size: number, etag = 'e1') {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 7 + (i >> 8)) & 0xff;
  const version: ObjectVersion = { key: 'dir/obj', etag, size };
  const requests: Array<[number, number]> = [];
  // Delivers the range in odd-sized pieces, as a socket would, so that chunks are put
  // together from pieces that straddle their edges.
  const fetch = async (v: ObjectVersion, start: number, end: number, sink: (bytes: Buffer) => void): Promise<number> => {
    requests.push([start, end]);
    for (let at = start; at < end; at += 300) {
      await new Promise((resolve) => setImmediate(resolve));
      sink(Buffer.from(bytes.subarray(at, Math.min(end, at + 300))));
    }
    return end - start;
  };
  return { bytes, version, requests, fetch };
}

/**
 * Serves objects of whole MiB from `objects` (by key) in 256 KiB pieces, one per turn
 * of the event loop, recording each request as [key, first MiB, end MiB].
 */
function mibServer(objects: Map<string, Buffer>) {
  const requests: Array<[key: string, first: number, end: number]> = [];
  const fetch = async (v: ObjectVersion, start: number, end: number, sink: (piece: Buffer) => void): Promise<number> => {
    const bytes = objects.get(v.key) as Buffer;
    requests.push([v.key, start / MiB, Math.ceil(end / MiB)]);
    for (let at = start; at < end; at += 256 * KiB) {
      await new Promise((resolve) => setImmediate(resolve));
      sink(bytes.subarray(at, Math.min(end, at + 256 * KiB)));
    }
    return end - start;
  };
  return { requests, fetch };
}

/** The read-ahead of a file read with no other, up to `maxChunks` ahead. */
function readingAlone(maxChunks: number): ReadAhead {
  return new ReadAhead(new SequentialRuns(maxChunks));
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir, { recursive: true })) {
    const st = await stat(join(dir, name)).catch(() => undefined); // a temporary file may be gone by now
    if (st?.isFile()) total += st.size;
  }
  return total;
}

/** A fresh temporary directory for each test of the enclosing describe, removed after it. */
function aChunkDirPerTest(): () => string {
  let dir: string | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 's3mount-chunks-'));
  });
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return () => {
    if (!dir) throw new Error('no chunk directory outside a test');
    return dir;
  };
}

function openDisk(dir: string): Promise<DiskChunks> {
  return DiskChunks.open(dir, { maxBytes: 1024 * KiB, minFreeBytes: 0 }, log);
}

describe('read-ahead', () => {
  it('doubles the window on sequential reads up to the maximum, and drops it on a jump', () => {
    const r = readingAlone(8);
    expect(r.next(0, 100, 10)).toBe(1);
    expect(r.next(100, 200, 10)).toBe(2);
    expect(r.next(200, 300, 10)).toBe(4);
    expect(r.next(305, 400, 10)).toBe(8); // a small gap: still sequential
    expect(r.next(400, 500, 10)).toBe(8);
    expect(r.next(10_000, 10_100, 10)).toBe(0); // a jump
    expect(r.next(10_100, 10_200, 10)).toBe(1);
  });

  it('tells once that reads have covered the file from its first byte to its end in one run', () => {
    const whole = readingAlone(8);
    whole.next(0, 100, 10);
    expect(whole.readWholeNow(250)).toBe(false);
    whole.next(100, 250, 10);
    expect(whole.readWholeNow(250)).toBe(true);
    expect(whole.readWholeNow(250)).toBe(false); // told already
    const jumped = readingAlone(8);
    jumped.next(0, 100, 10);
    jumped.next(150, 250, 10); // a jump: [100, 150) was not read
    expect(jumped.readWholeNow(250)).toBe(false);
    const tail = readingAlone(8);
    tail.next(200, 250, 10);
    expect(tail.readWholeNow(250)).toBe(false);
  });

  it('starts no read-ahead for a first read in the middle of a file', () => {
    expect(readingAlone(8).next(5000, 6000, 10)).toBe(0);
  });

  it('shares the most chunks ahead among the files in a sequential run, and gives a share back at a jump or close', () => {
    const runs = new SequentialRuns(8);
    const [a, b, c] = [new ReadAhead(runs), new ReadAhead(runs), new ReadAhead(runs)];
    const reads = [0, 0, 0]; // where each reads next, 100 bytes at a time
    const step = (r: ReadAhead, i: number): number => r.next(reads[i] as number, (reads[i] = (reads[i] as number) + 100), 10);
    for (let n = 0; n < 4; n++) step(a, 0);
    expect(step(a, 0)).toBe(8); // alone: all of it
    step(b, 1);
    expect(step(a, 0)).toBe(4);
    for (let n = 0; n < 4; n++) step(b, 1);
    expect(step(b, 1)).toBe(4);
    step(c, 2);
    expect(step(a, 0)).toBe(2); // 8 / 3
    c.close();
    expect(step(a, 0)).toBe(4);
    expect(b.next(50_000, 50_100, 10)).toBe(0); // a jump: b's run is over
    expect(step(a, 0)).toBe(8);
    b.close(); // not in a run: nothing to give back twice
    expect(step(a, 0)).toBe(8);
    const many = Array.from({ length: 20 }, () => new ReadAhead(runs));
    for (const r of many) r.next(0, 100, 10);
    expect(step(a, 0)).toBe(1); // never less than one chunk
  });
});

describe('handed chunks', () => {
  it('knows the chunks of each version handed to the kernel, and lets read-ahead into as many as allowed', () => {
    const handed = new HandedChunks(MiB);
    const v1: ObjectVersion = { key: 'k', etag: 'e1', size: 20 * MiB };
    const v2: ObjectVersion = { key: 'k', etag: 'e2', size: 20 * MiB };
    for (const index of [3, 4, 5, 9, 17]) handed.add(v1, index);
    expect(handed.all(v1, 3, 5)).toBe(true);
    expect(handed.all(v1, 3, 6)).toBe(false);
    expect(handed.all(v2, 3, 3)).toBe(false); // another version of the key
    expect(handed.reach(v1, 0, 19, 0)).toBe(2);
    expect(handed.reach(v1, 0, 19, 2)).toBe(4);
    expect(handed.reach(v1, 6, 19, 1)).toBe(16);
    expect(handed.reach(v1, 6, 8, 0)).toBe(8);
    expect(handed.reach(v2, 0, 19, 0)).toBe(19);
  });
});

describe('object reader', () => {
  it('answers exact bytes at chunk boundaries and past the end, fetching no byte twice', async () => {
    const o = fakeObject(10 * KiB + 5);
    const reader = new ObjectReader(new ChunkCache(KiB, 1024 * KiB, undefined, o.fetch), { maxReadAhead: 0, sequentialCutoff: 0 });
    const read = async (position: number, length: number): Promise<Buffer> => {
      const target = Buffer.alloc(length);
      return target.subarray(0, await reader.read(o.version, readingAlone(1), target, position));
    };
    const reads: Array<[number, number]> = [[0, 1], [KiB - 1, 2], [3 * KiB - 10, 2 * KiB + 20], [10 * KiB, 100], [10 * KiB + 4, 1]];
    for (const [position, length] of reads) {
      expect((await read(position, length)).equals(o.bytes.subarray(position, position + length))).toBe(true);
    }
    expect((await read(10 * KiB + 5, 10)).length).toBe(0);
    expect((await read(20 * KiB, 10)).length).toBe(0);
    // whole chunks, none of them twice
    const sorted = [...o.requests].sort((a, b) => a[0] - b[0]);
    for (const [i, [start, end]] of sorted.entries()) {
      expect(start % KiB).toBe(0);
      expect(end === o.version.size || end % KiB === 0).toBe(true);
      if (i > 0) expect(start).toBeGreaterThanOrEqual((sorted[i - 1] as [number, number])[1]);
    }
  });

  it('fetches a sequential reader ahead in big requests, and concurrent readers share them', async () => {
    const o = fakeObject(64 * KiB);
    const reader = new ObjectReader(new ChunkCache(KiB, 1024 * KiB, undefined, o.fetch), { maxReadAhead: 16 * KiB, sequentialCutoff: 0 });
    const ahead = readingAlone(16);
    const out = Buffer.alloc(o.bytes.length);
    for (let position = 0; position < out.length; position += 512) {
      const [a, b] = await Promise.all([
        reader.read(o.version, ahead, out.subarray(position, position + 512), position),
        reader.read(o.version, readingAlone(16), Buffer.alloc(512), position), // another reader, same bytes
      ]);
      expect(a).toBe(512);
      expect(b).toBe(512);
    }
    expect(out.equals(o.bytes)).toBe(true);
    // no byte was fetched twice
    const fetched = o.requests.reduce((n, [s, e]) => n + (e - s), 0);
    expect(fetched).toBe(o.bytes.length);
    expect(o.requests.length).toBeLessThan(64 / 2); // not one request per 1 KiB chunk
  });

  it("shares the read-ahead among files read sequentially at the same time, and gives a closed file's share back", async () => {
    // 1 MiB chunks, as mounted: read-ahead requests are groups of 8 chunks.
    const objects = new Map([['a', randomBytes(48 * MiB)], ['b', randomBytes(48 * MiB)]]);
    const server = mibServer(objects);
    const reader = new ObjectReader(new ChunkCache(MiB, 1024 * MiB, undefined, server.fetch), { maxReadAhead: 32 * MiB, sequentialCutoff: 0 });
    const files = [...objects].map(([key, bytes]) => ({ version: { key, etag: 'e1', size: bytes.length }, bytes, ahead: reader.newReadAhead() }));
    const out = Buffer.alloc(MiB);
    const readChunk = async (file: (typeof files)[number], index: number): Promise<void> => {
      expect(await reader.read(file.version, file.ahead, out, index * MiB)).toBe(MiB);
      expect(out.equals(file.bytes.subarray(index * MiB, (index + 1) * MiB))).toBe(true);
    };
    const fetchedTo = (key: string): number => Math.max(...server.requests.filter(([k]) => k === key).map(([, , end]) => end));
    for (let index = 0; index < 16; index++) {
      for (const file of files) {
        await readChunk(file, index);
        // Half of 32 chunks each, rounded up to the 8-chunk request: alone, 32.
        expect(fetchedTo(file.version.key)).toBeLessThanOrEqual(index + 1 + 16 + 7);
      }
    }
    const [a, b] = files as [(typeof files)[number], (typeof files)[number]];
    b.ahead.close();
    await readChunk(a, 16);
    expect(fetchedTo('a')).toBe(48); // 16 + 32: all of it again
  });
});

describe('object reader, files ahead', () => {
  /** Objects f0..f{n-1} of the given sizes, served by mibServer (which rounds requests to whole MiB). */
  function files(sizes: number[]) {
    const objects = new Map(sizes.map((size, i) => [`f${i}`, randomBytes(Math.ceil(size / MiB) * MiB).subarray(0, size)] as const));
    const versions = [...objects].map(([key, bytes]) => ({ key, etag: 'e1', size: bytes.length }));
    return { objects, versions };
  }

  it('fetches the next files whole, within the read-ahead, and reading them then asks for nothing', async () => {
    const { objects, versions } = files([MiB, 2 * MiB, 0, 3 * MiB, 2 * MiB]);
    const server = mibServer(objects);
    const cache = new ChunkCache(MiB, 1024 * MiB, undefined, server.fetch);
    const reader = new ObjectReader(cache, { maxReadAhead: 7 * MiB, sequentialCutoff: 0 });
    reader.readFilesAhead(versions);
    // 1 + 2 + 0 + 3 MiB fit in 7 MiB; with f4's 2 more they would not
    expect(server.requests).toEqual([['f0', 0, 1], ['f1', 0, 2], ['f3', 0, 3]]);
    for (const version of versions.slice(0, 4)) {
      const out = Buffer.alloc(version.size + 1);
      expect(await reader.read(version, readingAlone(1), out, 0)).toBe(version.size);
      expect(out.subarray(0, version.size).equals(objects.get(version.key) as Buffer)).toBe(true);
    }
    expect(server.requests.length).toBe(3);
    reader.readFilesAhead(versions.slice(1)); // at hand already: only f4 is new
    expect(server.requests.slice(3)).toEqual([['f4', 0, 2]]);
  });

  it('answers for each file it fetches what the GET was told of the object; nothing when no GET was needed or the GET failed', { timeout: 10_000 }, async () => {
    const { objects, versions } = files([MiB, 2 * MiB, 0, 3 * MiB]);
    const server = mibServer(objects);
    const infoOf = (key: string): ObjectInfo => ({ key, size: objects.get(key as `f${number}`)?.length ?? 0, etag: '"e1"', lastModified: new Date(0), metadata: { mode: '33188' } });
    const fetch: RangeFetcher = async (version, start, end, sink, answered) => {
      if (version.key === 'f1') throw new Error('refused');
      answered?.(infoOf(version.key));
      return server.fetch(version, start, end, sink);
    };
    const reader = new ObjectReader(new ChunkCache(MiB, 1024 * MiB, undefined, fetch), { maxReadAhead: 64 * MiB, sequentialCutoff: 0 });
    const answers = reader.readFilesAhead(versions);
    expect([...answers.keys()].map((version) => version.key)).toEqual(['f0', 'f1', 'f3']); // f2 is empty: no GET
    expect(await answers.get(versions[0] as ObjectVersion)).toEqual(infoOf('f0'));
    expect(await answers.get(versions[1] as ObjectVersion)).toBeUndefined();
    expect(await answers.get(versions[3] as ObjectVersion)).toEqual(infoOf('f3'));
    // At hand now: no GET, so nothing to tell.
    const again = reader.readFilesAhead([versions[0] as ObjectVersion]);
    expect(await again.get(versions[0] as ObjectVersion)).toBeUndefined();
    expect(server.requests).toEqual([['f0', 0, 1], ['f3', 0, 3]]);
  });

  it("fetches only a file's first read-ahead request ahead", () => {
    const { objects, versions } = files([20 * MiB]);
    const server = mibServer(objects);
    const reader = new ObjectReader(new ChunkCache(MiB, 1024 * MiB, undefined, server.fetch), { maxReadAhead: 64 * MiB, sequentialCutoff: 0 });
    reader.readFilesAhead(versions);
    expect(server.requests).toEqual([['f0', 0, 8]]);
  });
});

describe('disk chunks', () => {
  const chunkDir = aChunkDirPerTest();
  let dir: string;
  beforeEach(() => {
    dir = chunkDir();
  });

  it('keeps chunks across instances and serves them only with the right length', async () => {
    const first = await openDisk(dir);
    const name = DiskChunks.nameOf('k', 'e', KiB, 3);
    await first.put(name, [Buffer.alloc(KiB, 9)]);
    const second = await openDisk(dir);
    expect((await second.get(name, KiB))?.equals(Buffer.alloc(KiB, 9))).toBe(true);
    expect(await second.get(DiskChunks.nameOf('k', 'other etag', KiB, 3), KiB)).toBeUndefined();
    // a file cut short is not served, and goes
    await writeFile(join(dir, name), Buffer.alloc(10));
    expect(await second.get(name, KiB)).toBeUndefined();
    expect(await dirBytes(dir)).toBe(0);
  });

  it('evicts the least recently used chunks to stay under its limit', async () => {
    const store = await DiskChunks.open(dir, { maxBytes: 4 * KiB, minFreeBytes: 0 }, log);
    const names = [0, 1, 2, 3, 4, 5].map((i) => DiskChunks.nameOf('k', 'e', KiB, i));
    for (const name of names.slice(0, 4)) await store.put(name, [Buffer.alloc(KiB, 1)]);
    expect(await store.get(names[0] as string, KiB)).toBeDefined(); // 0 is now the most recent
    await store.put(names[4] as string, [Buffer.alloc(KiB, 1)]);
    await store.put(names[5] as string, [Buffer.alloc(KiB, 1)]);
    expect(await dirBytes(dir)).toBeLessThanOrEqual(4 * KiB);
    expect(await store.get(names[0] as string, KiB)).toBeDefined();
    expect(await store.get(names[1] as string, KiB)).toBeUndefined();
    expect(await store.get(names[2] as string, KiB)).toBeUndefined();
    // a new instance finds the limit kept too
    const again = await DiskChunks.open(dir, { maxBytes: 2 * KiB, minFreeBytes: 0 }, log);
    expect(again.bytes).toBeLessThanOrEqual(2 * KiB);
    expect(await dirBytes(dir)).toBeLessThanOrEqual(2 * KiB);
  });

  it('stays within its limit while many chunks are written at once', async () => {
    const store = await DiskChunks.open(dir, { maxBytes: 4 * KiB, minFreeBytes: 0 }, log);
    const writes = Array.from({ length: 32 }, (_, i) => store.put(DiskChunks.nameOf('k', 'e', KiB, i), [Buffer.alloc(KiB, i)]));
    expect(store.bytes).toBeLessThanOrEqual(4 * KiB);
    await Promise.all(writes);
    expect(store.bytes).toBeLessThanOrEqual(4 * KiB);
    expect(await dirBytes(dir)).toBeLessThanOrEqual(4 * KiB);
    expect(await dirBytes(dir)).toBeGreaterThan(0);
  });

  it('keeps nothing when the disk has less free space than asked for', async () => {
    const store = await DiskChunks.open(dir, { maxBytes: 1024 * KiB, minFreeBytes: Number.MAX_SAFE_INTEGER }, log);
    await store.put(DiskChunks.nameOf('k', 'e', KiB, 0), [Buffer.alloc(KiB)]);
    expect(await dirBytes(dir)).toBe(0);
  });
});

describe('chunk cache', () => {
  const chunkDir = aChunkDirPerTest();

  it('serves chunks of a version from disk in a new cache, never those of another version', async () => {
    const dir = chunkDir();
    const o = fakeObject(4 * KiB);
    const disk = await openDisk(dir);
    const first = new ChunkCache(KiB, 1024 * KiB, disk, o.fetch);
    await first.get(o.version, 2);
    await waitUntil('the disk copy, written in the background', async () => (await dirBytes(dir)) === KiB);
    expect(o.requests).toHaveLength(1);
    const second = new ChunkCache(KiB, 1024 * KiB, await openDisk(dir), o.fetch);
    expect((await second.get(o.version, 2)).toBuffer().equals(o.bytes.subarray(2 * KiB, 3 * KiB))).toBe(true);
    expect(o.requests).toHaveLength(1);
    await second.get({ ...o.version, etag: 'e2' }, 2);
    expect(o.requests).toHaveLength(2);
    await waitUntil('the chunk of the other version on disk too', async () => (await dirBytes(dir)) === 2 * KiB);
  });

  it('reads ahead from disk what an earlier cache kept there, and fetches only the rest', async () => {
    const dir = chunkDir();
    const o = fakeObject(8 * KiB);
    const first = new ChunkCache(KiB, 1024 * KiB, await openDisk(dir), o.fetch);
    await first.prefetch(o.version, 0, 3);
    await waitUntil('the disk copies, written in the background', async () => (await dirBytes(dir)) === 4 * KiB);
    expect(o.requests).toEqual([[0, 4 * KiB]]);
    const second = new ChunkCache(KiB, 1024 * KiB, await openDisk(dir), o.fetch);
    await second.prefetch(o.version, 0, 7);
    expect(o.requests).toEqual([[0, 4 * KiB], [4 * KiB, 8 * KiB]]);
    for (let index = 0; index < 8; index++) {
      expect((await second.get(o.version, index)).toBuffer().equals(o.bytes.subarray(index * KiB, (index + 1) * KiB))).toBe(true);
    }
    expect(o.requests).toHaveLength(2);
    await waitUntil('the fetched rest on disk too', async () => (await dirBytes(dir)) === 8 * KiB);
  });
});

describe('chunk cache, disk writes', () => {
  const chunkDir = aChunkDirPerTest();

  /** A fetcher whose requests for chunk `held` wait until `release` is called. */
  function heldObject(size: number, held: number, chunkSize: number) {
    const o = fakeObject(size);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const fetch = async (v: ObjectVersion, start: number, end: number, sink: (bytes: Buffer) => void): Promise<number> => {
      if (start === held * chunkSize) await released;
      return o.fetch(v, start, end, sink);
    };
    return { ...o, fetch, release };
  }

  /** A cache over a 4-chunk object that has chunks 0 and 1, with chunk 3's fetch held. */
  async function chunks0And1InWhile3IsHeld() {
    const dir = chunkDir();
    const o = heldObject(4 * KiB, 3, KiB);
    const disk = await openDisk(dir);
    const puts = vi.spyOn(disk, 'put');
    const cache = new ChunkCache(KiB, 1024 * KiB, disk, o.fetch);
    const slow = cache.get(o.version, 3);
    await cache.get(o.version, 0);
    await cache.get(o.version, 1);
    return { dir, o, cache, slow, puts };
  }

  it('writes a fetched chunk to disk only once no fetch is under way', async () => {
    const { dir, o, slow, puts } = await chunks0And1InWhile3IsHeld();
    // A write on arrival would have been started by now: before the awaited get resolved.
    expect(puts).not.toHaveBeenCalled();
    o.release();
    await slow;
    await waitUntil('three chunk files, once the last fetch is in', async () => (await dirBytes(dir)) === 3 * KiB);
  });

  it('writes chunks that all came in at once, in one piece of one request', async () => {
    const dir = chunkDir();
    const o = fakeObject(4 * KiB);
    // One socket read that holds the whole body: every chunk of the request completes in
    // the same tick, the first while the others still count as under way.
    const fetchAtOnce = async (v: ObjectVersion, start: number, end: number, sink: (bytes: Buffer) => void): Promise<number> => {
      await new Promise((resolve) => setImmediate(resolve));
      sink(Buffer.from(o.bytes.subarray(start, end)));
      return end - start;
    };
    const cache = new ChunkCache(KiB, 1024 * KiB, await openDisk(dir), fetchAtOnce);
    await cache.prefetch(o.version, 0, 3);
    await waitUntil('four chunk files, with no fetch under way', async () => (await dirBytes(dir)) === 4 * KiB, 3_000);
  });

  it('saveAll writes every unsaved chunk at once, a fetch under way or not (unmount)', async () => {
    const { dir, o, cache, slow } = await chunks0And1InWhile3IsHeld();
    await cache.saveAll();
    expect(await dirBytes(dir)).toBe(2 * KiB);
    o.release();
    await slow;
    await waitUntil('chunk 3 on disk too, once quiet', async () => (await dirBytes(dir)) === 3 * KiB);
  });

  it('writes the chunks a sequential reader leaves behind at once, fetches under way or not, and lets them go from memory', async () => {
    const dir = chunkDir();
    const o = fakeObject(16 * KiB);
    const held = heldObject(KiB, 0, KiB);
    const other: ObjectVersion = { ...held.version, key: 'other' };
    const fetch = (v: ObjectVersion, start: number, end: number, sink: (bytes: Buffer) => void): Promise<number> =>
      v.key === other.key ? held.fetch(v, start, end, sink) : o.fetch(v, start, end, sink);
    const cache = new ChunkCache(KiB, 1024 * KiB, await openDisk(dir), fetch);
    const slow = cache.get(other, 0); // a fetch under way all along: no quiet moment comes
    const reader = new ObjectReader(cache, { maxReadAhead: 4 * KiB, sequentialCutoff: 0 });
    const ahead = reader.newReadAhead();
    const out = Buffer.alloc(KiB);
    for (let index = 0; index < 16; index++) {
      expect(await reader.read(o.version, ahead, out, index * KiB)).toBe(KiB);
      expect(out.equals(o.bytes.subarray(index * KiB, (index + 1) * KiB))).toBe(true);
    }
    // Chunks 0..13: one chunk behind the last read (15) stays, for reads out of order.
    await waitUntil('the 14 chunks left behind on disk', async () => (await dirBytes(dir)) === 14 * KiB);
    await waitUntil('and out of memory', async () => [...Array(16).keys()].filter((index) => cache.isAtHand(o.version, index)).length === 2);
    expect([...Array(16).keys()].filter((index) => cache.isAtHand(o.version, index))).toEqual([14, 15]);
    const requests = o.requests.length;
    expect((await cache.get(o.version, 3)).toBuffer().equals(o.bytes.subarray(3 * KiB, 4 * KiB))).toBe(true);
    expect(o.requests.length).toBe(requests); // from the disk tier
    held.release();
    await slow;
    await cache.saveAll(); // nothing left writing into the directory the test removes
  });

  it('keeps in memory a chunk left behind that the disk tier has no room for', async () => {
    const o = fakeObject(4 * KiB);
    // Room for half a chunk: nothing can be kept on disk.
    const disk = await DiskChunks.open(chunkDir(), { maxBytes: KiB / 2, minFreeBytes: 0 }, log);
    const cache = new ChunkCache(KiB, 1024 * KiB, disk, o.fetch);
    const reader = new ObjectReader(cache, { maxReadAhead: 4 * KiB, sequentialCutoff: 0 });
    const ahead = reader.newReadAhead();
    const out = Buffer.alloc(KiB);
    for (let index = 0; index < 4; index++) expect(await reader.read(o.version, ahead, out, index * KiB)).toBe(KiB);
    await cache.saveAll();
    expect([...Array(4).keys()].filter((index) => cache.isAtHand(o.version, index))).toEqual([0, 1, 2, 3]);
    const requests = o.requests.length;
    await reader.read(o.version, readingAlone(4), out, 0);
    expect(o.requests.length).toBe(requests);
  });

  it('keeps on disk what a sequential read fetched before its cutoff, and a read elsewhere starts a new run', async () => {
    // 1 MiB chunks, as mounted: read-ahead requests are then groups of 8 chunks.
    const bytes = randomBytes(64 * MiB);
    const version: ObjectVersion = { key: 'big', etag: 'e1', size: bytes.length };
    const { fetch } = mibServer(new Map([[version.key, bytes]]));
    const kept = async (sequentialCutoff: number): Promise<number[]> => {
      const disk = await DiskChunks.open(join(chunkDir(), `cutoff-${sequentialCutoff}`), { maxBytes: 1024 * MiB, minFreeBytes: 0 }, log);
      const cache = new ChunkCache(MiB, 1024 * MiB, disk, fetch);
      const reader = new ObjectReader(cache, { maxReadAhead: 8 * MiB, sequentialCutoff });
      const ahead = reader.newReadAhead();
      const out = Buffer.alloc(MiB);
      // 40 MiB from the start (a run past the cutoff), then the last 8 MiB (a short run).
      for (const index of [...Array(40).keys(), ...Array.from({ length: 8 }, (_, i) => 56 + i)]) {
        expect(await reader.read(version, ahead, out, index * MiB)).toBe(MiB);
        expect(out.equals(bytes.subarray(index * MiB, (index + 1) * MiB))).toBe(true);
      }
      await cache.prefetch(version, 40, 47); // the first run's last read-ahead (to chunk 39 + 8) is in
      await cache.saveAll();
      return [...Array(64).keys()].filter((index) => disk.has(DiskChunks.nameOf(version.key, version.etag, MiB, index)));
    };
    const withCutoff = await kept(16 * MiB);
    for (let index = 0; index < 16; index++) expect(withCutoff).toContain(index);
    // Read-ahead decides per request of 8 chunks, by where the request starts.
    expect(withCutoff.filter((index) => index >= 16 && index < 56)).toEqual([]);
    for (let index = 56; index < 64; index++) expect(withCutoff).toContain(index);
    const withoutCutoff = await kept(0);
    for (let index = 0; index < 40; index++) expect(withoutCutoff).toContain(index);
    for (let index = 56; index < 64; index++) expect(withoutCutoff).toContain(index);
  });

  it('shares the sequential cutoff among files read sequentially at the same time', async () => {
    const objects = new Map([['a', randomBytes(32 * MiB)], ['b', randomBytes(32 * MiB)]]);
    const kept = async (keys: string[]): Promise<number[][]> => {
      const disk = await DiskChunks.open(join(chunkDir(), keys.join('')), { maxBytes: 1024 * MiB, minFreeBytes: 0 }, log);
      const cache = new ChunkCache(MiB, 1024 * MiB, disk, mibServer(objects).fetch);
      const reader = new ObjectReader(cache, { maxReadAhead: 8 * MiB, sequentialCutoff: 16 * MiB });
      const files = keys.map((key) => ({ version: { key, etag: 'e1', size: 32 * MiB }, ahead: reader.newReadAhead() }));
      const out = Buffer.alloc(MiB);
      for (let index = 0; index < 32; index++) {
        for (const { version, ahead } of files) {
          expect(await reader.read(version, ahead, out, index * MiB)).toBe(MiB);
          expect(out.equals((objects.get(version.key) as Buffer).subarray(index * MiB, (index + 1) * MiB))).toBe(true);
        }
      }
      await cache.saveAll();
      return keys.map((key) => [...Array(32).keys()].filter((index) => disk.has(DiskChunks.nameOf(key, 'e1', MiB, index))));
    };
    const firstChunks = (n: number): number[] => [...Array(n).keys()];
    expect(await kept(['a'])).toEqual([firstChunks(16)]);
    // Two at once: 8 MiB each, so that together they keep no more than one alone.
    expect(await kept(['a', 'b'])).toEqual([firstChunks(8), firstChunks(8)]);
  });

  it('reads ahead of a re-read only as far into chunks handed to the kernel as it shows them lost', async () => {
    const bytes = randomBytes(80 * MiB);
    const version: ObjectVersion = { key: 'stream', etag: 'e1', size: bytes.length };
    const { requests, fetch } = mibServer(new Map([[version.key, bytes]]));
    const reader = new ObjectReader(new ChunkCache(MiB, 1024 * MiB, undefined, fetch), { maxReadAhead: 16 * MiB, sequentialCutoff: 4 * MiB });
    const readRun = async (from: number, to: number): Promise<void> => {
      const ahead = reader.newReadAhead();
      const out = Buffer.alloc(128 * KiB);
      for (let at = from; at < to; at += out.length) {
        expect(await reader.read(version, ahead, out, at)).toBe(out.length);
        expect(out.equals(bytes.subarray(at, at + out.length))).toBe(true);
      }
      ahead.close();
    };
    const fetchedMiB = (): number => requests.reduce((n, [, first, end]) => n + end - first, 0);
    await readRun(0, 80 * MiB); // cold: past 4 MiB, only the kernel's page cache keeps the chunks
    expect(fetchedMiB()).toBe(80);
    // A warm re-read asks only for what the page cache lost: a hole of 2 MiB costs at
    // most twice its size, not a window of chunks the kernel still holds.
    requests.length = 0;
    await readRun(20 * MiB, 22 * MiB);
    expect(requests[0]).toEqual(['stream', 20, 21]);
    expect(Math.max(...requests.map(([, , end]) => end))).toBeLessThanOrEqual(24);
    // The page cache lost all the rest: past a group of 8 lost chunks in a row, it is
    // read ahead as a cold read, in GETs of 8 chunks.
    requests.length = 0;
    await readRun(24 * MiB, 80 * MiB);
    expect(fetchedMiB()).toBe(54); // the last two chunks are still at hand from the first read
    expect(requests.slice(-5).map(([, first, end]) => end - first)).toEqual([8, 8, 8, 8, 6]);
  });

  it('drops from memory the chunks past the cutoff that a sequential read has left behind, and only those', async () => {
    const bytes = randomBytes(32 * MiB);
    const version: ObjectVersion = { key: 'stream', etag: 'e1', size: bytes.length };
    const { requests, fetch } = mibServer(new Map([[version.key, bytes]]));
    const readThrough = async (sequentialCutoff: number): Promise<{ cache: ChunkCache; reader: ObjectReader; atHand: number[] }> => {
      // Memory for every chunk: whatever leaves it was let go, not evicted.
      const cache = new ChunkCache(MiB, 1024 * MiB, undefined, fetch);
      const reader = new ObjectReader(cache, { maxReadAhead: 8 * MiB, sequentialCutoff });
      const ahead = reader.newReadAhead();
      const out = Buffer.alloc(MiB);
      for (let index = 0; index < 32; index++) {
        expect(await reader.read(version, ahead, out, index * MiB)).toBe(MiB);
        expect(out.equals(bytes.subarray(index * MiB, (index + 1) * MiB))).toBe(true);
      }
      return { cache, reader, atHand: [...Array(32).keys()].filter((index) => cache.isAtHand(version, index)) };
    };
    const released = await readThrough(8 * MiB);
    // Kept: the chunks before the cutoff, and the last two (the read's own and one behind it).
    expect(released.atHand).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 30, 31]);
    requests.length = 0;
    const out = Buffer.alloc(KiB);
    await released.reader.read(version, readingAlone(8), out, 3 * MiB);
    expect(requests).toEqual([]);
    await released.reader.read(version, readingAlone(8), out, 10 * MiB + 5);
    expect(out.equals(bytes.subarray(10 * MiB + 5, 10 * MiB + 5 + KiB))).toBe(true);
    expect(requests).toEqual([['stream', 10, 11]]);
    // --sequential-cutoff 0 keeps everything: nothing is let go either.
    expect((await readThrough(0)).atHand).toEqual([...Array(32).keys()]);
  });

  it('writes a chunk the memory tier evicts before a quiet moment, and none of a forgotten object', async () => {
    const dir = chunkDir();
    const o = heldObject(8 * KiB, 7, KiB);
    // Memory for two chunks: reading four evicts the first two while chunk 7 is still coming.
    const cache = new ChunkCache(KiB, 2 * KiB, await openDisk(dir), o.fetch);
    const slow = cache.get(o.version, 7);
    for (let index = 0; index < 4; index++) await cache.get(o.version, index);
    await waitUntil('the two evicted chunks on disk', async () => (await dirBytes(dir)) === 2 * KiB);
    cache.forget(o.version.key); // chunks 2 and 3 are of a replaced version now
    o.release();
    await slow;
    await waitUntil('chunk 7 on disk', async () => (await dirBytes(dir)) === 3 * KiB);
    const fresh = new ChunkCache(KiB, 1024 * KiB, await openDisk(dir), o.fetch);
    const before = o.requests.length;
    for (const index of [0, 1, 7]) await fresh.get(o.version, index);
    expect(o.requests).toHaveLength(before);
    await fresh.get(o.version, 2);
    expect(o.requests).toHaveLength(before + 1);
    await fresh.saveAll(); // its copy of chunk 2 is written in the background: not into a removed directory
  });
});
