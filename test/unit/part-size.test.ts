import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PART_SIZE,
  MAX_PARTS,
  MAX_PART_SIZE,
  MIN_PART_SIZE,
  partLayout,
  partSizes,
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
