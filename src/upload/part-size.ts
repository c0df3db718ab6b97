// Part layout of multipart uploads and copies.
//
// S3 limits: every part but the last is at least 5 MiB, a part is at most 5 GiB,
// an upload has at most 10,000 parts, an object at most 5 TiB.
//
// The size of part N depends only on N and the first part's size, never on the
// object's total size: a file that is still being written can have its first parts
// uploaded before its length is known. Parts keep the first size for 1,000 parts,
// then double every 1,000 parts (capped at 5 GiB). With the default 8 MiB that
// covers 7.8 TiB, and a file below 8 GiB is uploaded in uniform 8 MiB parts.

const MiB = 1024 * 1024;

export const MIN_PART_SIZE = 5 * MiB;
export const MAX_PART_SIZE = 5 * 1024 * MiB;
export const MAX_PARTS = 10_000;
export const DEFAULT_PART_SIZE = 8 * MiB;
/** Parts per step of the schedule: the part size doubles after each step. */
export const PARTS_PER_STEP = 1_000;

export interface Part {
  /** 1-based, as S3 numbers parts. */
  partNumber: number;
  /** Offset of the part's first byte in the object. */
  start: number;
  size: number;
}

function checkFirstPartSize(firstPartSize: number): void {
  if (!Number.isSafeInteger(firstPartSize) || firstPartSize < MIN_PART_SIZE || firstPartSize > MAX_PART_SIZE) {
    throw new RangeError(`part size must be an integer from ${MIN_PART_SIZE} to ${MAX_PART_SIZE} bytes, not ${firstPartSize}`);
  }
}

/** Full size of part `partNumber` (1-based) in the size-independent schedule. */
export function scheduledPartSize(partNumber: number, firstPartSize = DEFAULT_PART_SIZE): number {
  checkFirstPartSize(firstPartSize);
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_PARTS) {
    throw new RangeError(`part number must be from 1 to ${MAX_PARTS}, not ${partNumber}`);
  }
  const step = Math.floor((partNumber - 1) / PARTS_PER_STEP);
  return Math.min(firstPartSize * 2 ** step, MAX_PART_SIZE);
}

/** How many bytes the schedule can hold in MAX_PARTS parts. */
export function scheduleCapacity(firstPartSize = DEFAULT_PART_SIZE): number {
  checkFirstPartSize(firstPartSize);
  let total = 0;
  for (let step = 0; step * PARTS_PER_STEP < MAX_PARTS; step++) {
    total += PARTS_PER_STEP * Math.min(firstPartSize * 2 ** step, MAX_PART_SIZE);
  }
  return total;
}

/**
 * The parts of an object of `totalSize` bytes, in order; their sizes add up to
 * `totalSize`. A 0-byte object has one empty part (an upload needs at least one).
 *
 * The schedule above is used whenever it holds the object. Only when it does not
 * (a first part size close to 5 MiB and an object of several TiB) are the parts
 * made uniform instead: ceil(total / 10,000) rounded up to a MiB.
 */
export function partLayout(totalSize: number, firstPartSize = DEFAULT_PART_SIZE): Part[] {
  checkFirstPartSize(firstPartSize);
  if (!Number.isSafeInteger(totalSize) || totalSize < 0) {
    throw new RangeError(`object size must be a non-negative integer, not ${totalSize}`);
  }
  if (totalSize > MAX_PARTS * MAX_PART_SIZE) {
    throw new RangeError(`an object of ${totalSize} bytes does not fit in ${MAX_PARTS} parts of at most 5 GiB`);
  }
  if (totalSize === 0) return [{ partNumber: 1, start: 0, size: 0 }];

  const sizeOf =
    totalSize <= scheduleCapacity(firstPartSize)
      ? (n: number) => scheduledPartSize(n, firstPartSize)
      : uniformPartSize(totalSize, firstPartSize);

  const parts: Part[] = [];
  let start = 0;
  for (let partNumber = 1; start < totalSize; partNumber++) {
    const size = Math.min(sizeOf(partNumber), totalSize - start);
    parts.push({ partNumber, start, size });
    start += size;
  }
  return parts;
}

function uniformPartSize(totalSize: number, firstPartSize: number): () => number {
  const size = Math.max(firstPartSize, Math.ceil(totalSize / MAX_PARTS / MiB) * MiB);
  return () => size;
}

/** Just the sizes of partLayout(). */
export function partSizes(totalSize: number, firstPartSize = DEFAULT_PART_SIZE): number[] {
  return partLayout(totalSize, firstPartSize).map((part) => part.size);
}

/**
 * The block (part of the size-independent schedule) that holds byte `offset`, with its
 * range. Staged files track what is local and what changed per block, so that a block
 * is exactly a part whenever partLayout() follows the schedule.
 */
export function blockAt(offset: number, firstPartSize = DEFAULT_PART_SIZE): Part {
  let start = 0;
  for (let step = 0; ; step++) {
    const size = Math.min(firstPartSize * 2 ** step, MAX_PART_SIZE);
    const stepBytes = size * PARTS_PER_STEP;
    if (offset < start + stepBytes || step * PARTS_PER_STEP + PARTS_PER_STEP >= MAX_PARTS) {
      const index = Math.floor((offset - start) / size);
      return { partNumber: step * PARTS_PER_STEP + index + 1, start: start + index * size, size };
    }
    start += stepBytes;
  }
}

/** The blocks that overlap bytes [start, end), in order. */
export function blocksIn(start: number, end: number, firstPartSize = DEFAULT_PART_SIZE): Part[] {
  const blocks: Part[] = [];
  for (let offset = start; offset < end; ) {
    const block = blockAt(offset, firstPartSize);
    blocks.push(block);
    offset = block.start + block.size;
  }
  return blocks;
}

/** Whether partLayout() of a `totalSize` object uses the schedule, i.e. its parts are blocks. */
export function partsAreBlocks(totalSize: number, firstPartSize = DEFAULT_PART_SIZE): boolean {
  return totalSize <= scheduleCapacity(firstPartSize);
}
