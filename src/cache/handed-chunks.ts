// Chunks whose only copy is the kernel's: a sequential reader left them behind past the
// cutoff, so neither tier keeps them, and a warm re-read counts on the page cache.
import { LRUCache } from 'lru-cache';
import type { ObjectVersion } from './chunk-cache.js';

/** Versions remembered at once; a re-read of an older one is read ahead as any read. */
const VERSIONS = 256;

/**
 * The kernel's page cache does not keep all it was given: on the 6.18 kernel here a cold
 * read through FUSE (a passthrough of a local file through the same binding too) leaves
 * a few folios of the file out of it (up to 12 MiB of 512 measured), and a warm re-read
 * asks for just those. Read ahead as a cold read, each such hole grew into a window of
 * GETs of bytes the kernel still had (249 MiB fetched for a 12 MiB hole). Knowing which
 * chunks were handed over, the read-ahead of a re-read goes no further into them than
 * the reader has shown them to be lost.
 */
export class HandedChunks {
  /** A bit per chunk of each version (1 TiB at 1 MiB chunks: 128 KiB), not a set of numbers. */
  private readonly byVersion = new LRUCache<string, Uint8Array>({ max: VERSIONS });

  constructor(private readonly chunkSize: number) {}

  /** A sequential reader has passed chunk `index` and no tier keeps it. */
  add(version: ObjectVersion, index: number): void {
    const id = idOf(version);
    let bits = this.byVersion.get(id);
    if (!bits) {
      bits = new Uint8Array(Math.ceil(Math.ceil(version.size / this.chunkSize) / 8));
      this.byVersion.set(id, bits);
    }
    if (index >> 3 < bits.length) bits[index >> 3] = (bits[index >> 3] as number) | (1 << (index & 7));
  }

  /** Whether every chunk of [first, last] was handed over (the kernel asks again for lost bytes). */
  all(version: ObjectVersion, first: number, last: number): boolean {
    const bits = this.byVersion.get(idOf(version));
    if (!bits) return false;
    for (let index = first; index <= last; index++) if (!has(bits, index)) return false;
    return true;
  }

  /**
   * How far read-ahead over [from, to] should go: up to the chunk before the handed-over
   * one past the first `allowance` (those the kernel is likely to still hold).
   */
  reach(version: ObjectVersion, from: number, to: number, allowance: number): number {
    const bits = this.byVersion.get(idOf(version));
    if (!bits) return to;
    let handed = 0;
    for (let index = from; index <= to; index++) {
      if (has(bits, index) && ++handed > allowance) return index - 1;
    }
    return to;
  }
}

function has(bits: Uint8Array, index: number): boolean {
  return ((bits[index >> 3] ?? 0) & (1 << (index & 7))) !== 0;
}

function idOf(version: ObjectVersion): string {
  return `${version.key}\0${version.etag}`;
}
