import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PART_SIZE,
  MAX_PARTS,
  MAX_PART_SIZE,
  MIN_PART_SIZE,
  PARTS_PER_STEP,
  blockAt,
  blocksIn,
  partLayout,
  partSizes,
  partsAreBlocks,
  scheduleCapacity,
  scheduledPartSize,
  type Part,
} from '../../src/upload/part-size.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

/** The S3 rules every layout must keep, plus contiguity. */
function expectValid(parts: Part[], totalSize: number): void {
  expect(parts.length).toBeGreaterThanOrEqual(1);
  expect(parts.length).toBeLessThanOrEqual(MAX_PARTS);
  let offset = 0;
  parts.forEach((part, i) => {
    expect(part.partNumber).toBe(i + 1);
    expect(part.start).toBe(offset);
    expect(part.size).toBeLessThanOrEqual(MAX_PART_SIZE);
    if (i < parts.length - 1) expect(part.size).toBeGreaterThanOrEqual(MIN_PART_SIZE);
    offset += part.size;
  });
  expect(offset).toBe(totalSize);
}

describe('partLayout', () => {
  it('gives a 0-byte object one empty part', { timeout: 5_000 }, () => {
    expect(partLayout(0)).toEqual([{ partNumber: 1, start: 0, size: 0 }]);
  });

  it('gives a 1-byte object one 1-byte part', { timeout: 5_000 }, () => {
    expect(partLayout(1)).toEqual([{ partNumber: 1, start: 0, size: 1 }]);
  });

  it('fits exactly 5 MiB in one part with a 5 MiB part size', { timeout: 5_000 }, () => {
    expect(partLayout(5 * MiB, 5 * MiB)).toEqual([{ partNumber: 1, start: 0, size: 5 * MiB }]);
    expect(partSizes(5 * MiB + 1, 5 * MiB)).toEqual([5 * MiB, 1]);
  });

  it('cuts 20 MiB into four 5 MiB parts', { timeout: 5_000 }, () => {
    const parts = partLayout(20 * MiB, 5 * MiB);
    expect(parts.map((p) => p.size)).toEqual([5 * MiB, 5 * MiB, 5 * MiB, 5 * MiB]);
    expectValid(parts, 20 * MiB);
  });

  it('keeps the first part size for the first 1000 parts, then doubles', { timeout: 5_000 }, () => {
    expect(scheduledPartSize(1)).toBe(DEFAULT_PART_SIZE);
    expect(scheduledPartSize(1000)).toBe(DEFAULT_PART_SIZE);
    expect(scheduledPartSize(1001)).toBe(2 * DEFAULT_PART_SIZE);
    expect(scheduledPartSize(2001)).toBe(4 * DEFAULT_PART_SIZE);
    expect(scheduledPartSize(10_000)).toBe(512 * DEFAULT_PART_SIZE);
    // 8000 MiB is exactly 1000 parts of 8 MiB; one more byte starts part 1001
    const full = partSizes(8000 * MiB);
    expect(full).toHaveLength(1000);
    expect(full.every((s) => s === 8 * MiB)).toBe(true);
    const oneMore = partLayout(8000 * MiB + 1);
    expect(oneMore).toHaveLength(1001);
    expect(oneMore.at(-1)).toEqual({ partNumber: 1001, start: 8000 * MiB, size: 1 });
  });

  it('does not depend on the total size for the parts it shares', { timeout: 5_000 }, () => {
    const small = partLayout(100 * MiB + 123);
    const large = partLayout(100 * GiB);
    for (const part of small.slice(0, -1)) expect(large[part.partNumber - 1]).toEqual(part);
  });

  it('fits 5 TiB in at most 10,000 parts of 5 MiB to 5 GiB (default part size)', { timeout: 10_000 }, () => {
    const parts = partLayout(5 * TiB);
    expectValid(parts, 5 * TiB);
  });

  it('fits 5 TiB with the smallest first part size too', { timeout: 10_000 }, () => {
    expect(scheduleCapacity(5 * MiB)).toBeLessThan(5 * TiB); // so the uniform fallback is used
    const parts = partLayout(5 * TiB, 5 * MiB);
    expectValid(parts, 5 * TiB);
    expect(parts.length).toBeLessThanOrEqual(MAX_PARTS);
  });

  it('handles odd sizes and the largest possible object', { timeout: 10_000 }, () => {
    for (const size of [MIN_PART_SIZE - 1, 7 * MiB + 3, 3 * GiB + 17, 8 * TiB]) expectValid(partLayout(size), size);
    expectValid(partLayout(MAX_PARTS * MAX_PART_SIZE), MAX_PARTS * MAX_PART_SIZE);
  });

  it('refuses impossible inputs', { timeout: 5_000 }, () => {
    expect(() => partLayout(-1)).toThrow(RangeError);
    expect(() => partLayout(1.5)).toThrow(RangeError);
    expect(() => partLayout(MAX_PARTS * MAX_PART_SIZE + 1)).toThrow(RangeError);
    expect(() => partLayout(10, MIN_PART_SIZE - 1)).toThrow(RangeError);
    expect(() => partLayout(10, MAX_PART_SIZE + 1)).toThrow(RangeError);
  });
});

describe('blocks (blockAt, blocksIn, partsAreBlocks)', () => {
  const FIRST_SIZES = [MIN_PART_SIZE, DEFAULT_PART_SIZE, 16 * MiB, MAX_PART_SIZE];

  it('are contiguous from byte 0 and numbered from 1, with the scheduled sizes', { timeout: 10_000 }, () => {
    for (const first of FIRST_SIZES) {
      expect(blockAt(0, first)).toEqual({ partNumber: 1, start: 0, size: first });
      let start = 0;
      for (let n = 1; n <= MAX_PARTS; n++) {
        const block = blockAt(start, first);
        expect(block).toEqual({ partNumber: n, start, size: scheduledPartSize(n, first) });
        // every byte of the block is in it: its last byte too
        expect(blockAt(start + block.size - 1, first)).toEqual(block);
        if (n > 1) expect(blockAt(start - 1, first).partNumber).toBe(n - 1);
        start += block.size;
      }
      expect(start).toBe(scheduleCapacity(first));
    }
  });

  it('keep the first size for 1000 blocks, then double every 1000 blocks, capped at 5 GiB', { timeout: 5_000 }, () => {
    for (const first of FIRST_SIZES) {
      let start = 0;
      for (let step = 0; step * PARTS_PER_STEP < MAX_PARTS; step++) {
        const size = Math.min(first * 2 ** step, MAX_PART_SIZE);
        const firstOfStep = blockAt(start, first);
        expect(firstOfStep).toEqual({ partNumber: step * PARTS_PER_STEP + 1, start, size });
        const lastStart = start + (PARTS_PER_STEP - 1) * size;
        expect(blockAt(lastStart, first)).toEqual({ partNumber: (step + 1) * PARTS_PER_STEP, start: lastStart, size });
        start += PARTS_PER_STEP * size;
      }
    }
    // The 8 MiB default in numbers: block 1000 ends at 8000 MiB, block 1001 is 16 MiB.
    expect(blockAt(8000 * MiB - 1)).toEqual({ partNumber: 1000, start: 7992 * MiB, size: 8 * MiB });
    expect(blockAt(8000 * MiB)).toEqual({ partNumber: 1001, start: 8000 * MiB, size: 16 * MiB });
    expect(blockAt(24_000 * MiB)).toEqual({ partNumber: 2001, start: 24_000 * MiB, size: 32 * MiB });
    // 16 MiB doubled nine times would be 8 GiB: the last step is capped at 5 GiB.
    expect(blockAt(scheduleCapacity(16 * MiB) - 1, 16 * MiB)).toMatchObject({ partNumber: MAX_PARTS, size: MAX_PART_SIZE });
  });

  it("are partLayout()'s parts whenever partsAreBlocks(size)", { timeout: 30_000 }, () => {
    const cases: Array<[size: number, first: number]> = [
      [1, DEFAULT_PART_SIZE],
      [8 * MiB - 1, DEFAULT_PART_SIZE],
      [8 * MiB, DEFAULT_PART_SIZE],
      [8 * MiB + 1, DEFAULT_PART_SIZE],
      [100 * MiB + 123, DEFAULT_PART_SIZE],
      [8000 * MiB, DEFAULT_PART_SIZE],
      [8000 * MiB + 1, DEFAULT_PART_SIZE],
      [3 * GiB + 17, DEFAULT_PART_SIZE],
      [5 * TiB, DEFAULT_PART_SIZE],
      [scheduleCapacity(DEFAULT_PART_SIZE), DEFAULT_PART_SIZE],
      [20 * MiB, MIN_PART_SIZE],
      [scheduleCapacity(MIN_PART_SIZE), MIN_PART_SIZE],
      [MAX_PARTS * MAX_PART_SIZE, MAX_PART_SIZE],
    ];
    for (const [size, first] of cases) {
      expect(partsAreBlocks(size, first)).toBe(true);
      const parts = partLayout(size, first);
      parts.forEach((part, i) => {
        const block = blockAt(part.start, first);
        if (i < parts.length - 1) {
          expect(block).toEqual(part);
        } else {
          // the last part is the start of its block, cut at the object's end
          expect(block).toEqual({ ...part, size: block.size });
          expect(part.size).toBeGreaterThan(0);
          expect(part.size).toBeLessThanOrEqual(block.size);
        }
      });
      // and blocksIn(0, size) lists the same blocks
      const blocks = blocksIn(0, size, first);
      expect(blocks.map((b) => [b.partNumber, b.start])).toEqual(parts.map((p) => [p.partNumber, p.start]));
    }
  });

  it('are not the parts when partsAreBlocks(size) is false (the uniform fallback)', { timeout: 10_000 }, () => {
    expect(partsAreBlocks(scheduleCapacity(MIN_PART_SIZE), MIN_PART_SIZE)).toBe(true);
    expect(partsAreBlocks(scheduleCapacity(MIN_PART_SIZE) + 1, MIN_PART_SIZE)).toBe(false);
    expect(partsAreBlocks(scheduleCapacity(DEFAULT_PART_SIZE) + 1, DEFAULT_PART_SIZE)).toBe(false);
    const parts = partLayout(5 * TiB, MIN_PART_SIZE);
    expect(partsAreBlocks(5 * TiB, MIN_PART_SIZE)).toBe(false);
    // uniform parts: part 1 is already bigger than block 1
    expect(parts[0]?.size).toBeGreaterThan(blockAt(0, MIN_PART_SIZE).size);
  });

  it('blocksIn(start, end) covers exactly [start, end), one block each, in order', { timeout: 10_000 }, () => {
    const ranges: Array<[start: number, end: number]> = [
      [0, 1],
      [0, 8 * MiB],
      [8 * MiB, 16 * MiB],
      [8 * MiB - 1, 8 * MiB + 1],
      [1, 20 * MiB - 1],
      [30 * MiB, 30 * MiB + 4096],
      [7992 * MiB + 5, 8000 * MiB + 16 * MiB + 1],
      [3 * GiB + 17, 3 * GiB + 100 * MiB],
      [0, 5 * TiB],
    ];
    for (const first of [MIN_PART_SIZE, DEFAULT_PART_SIZE]) {
      for (const [start, end] of ranges) {
        const blocks = blocksIn(start, end, first);
        expect(blocks.length).toBeGreaterThan(0);
        // the first holds `start`, the last holds `end - 1`
        expect(blocks[0]).toEqual(blockAt(start, first));
        expect(blocks.at(-1)).toEqual(blockAt(end - 1, first));
        // no gap, no overlap, no repeat, and every block overlaps the range
        blocks.forEach((block, i) => {
          if (i > 0) {
            const before = blocks[i - 1] as Part;
            expect(block.partNumber).toBe(before.partNumber + 1);
            expect(block.start).toBe(before.start + before.size);
          }
          expect(block.start).toBeLessThan(end);
          expect(block.start + block.size).toBeGreaterThan(start);
        });
      }
    }
    expect(blocksIn(8 * MiB, 16 * MiB)).toEqual([{ partNumber: 2, start: 8 * MiB, size: 8 * MiB }]);
    expect(blocksIn(8 * MiB - 1, 8 * MiB + 1).map((b) => b.partNumber)).toEqual([1, 2]);
    expect(blocksIn(8000 * MiB - 1, 8000 * MiB + 1).map((b) => [b.partNumber, b.size])).toEqual([
      [1000, 8 * MiB],
      [1001, 16 * MiB],
    ]);
    // an empty range has no block
    expect(blocksIn(5, 5)).toEqual([]);
    expect(blocksIn(10, 5)).toEqual([]);
  });
});
