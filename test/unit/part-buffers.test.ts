import { afterEach, describe, expect, it, vi } from 'vitest';
import { PartBuffers } from '../../src/upload/part-buffers.js';

const MiB = 1024 * 1024;

describe('PartBuffers', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('hands a buffer of the size asked for back out to the next part of that size', async () => {
    const buffers = new PartBuffers(4);
    const first = await buffers.with(8 * MiB, async (b) => b);
    expect(first.length).toBe(8 * MiB);
    const second = await buffers.with(8 * MiB, async (b) => b);
    expect(second).toBe(first);
    const other = await buffers.with(5 * MiB, async (b) => b);
    expect(other).not.toBe(first);
    expect(other.length).toBe(5 * MiB);
  });

  it('never gives one buffer to two parts in flight', async () => {
    const buffers = new PartBuffers(4);
    const seen = new Set<Buffer>();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const inFlight = [1, 2, 3].map(() => buffers.with(MiB, async (b) => { seen.add(b); await gate; }));
    release();
    await Promise.all(inFlight);
    expect(seen.size).toBe(3);
  });

  it('keeps at most its limit, and lets them all go once idle', async () => {
    vi.useFakeTimers();
    const buffers = new PartBuffers(2, 1000);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const inFlight = [1, 2, 3].map(() => buffers.with(MiB, () => gate));
    release();
    await Promise.all(inFlight);
    expect(buffers.kept).toBe(2);
    vi.advanceTimersByTime(999);
    expect(buffers.kept).toBe(2);
    vi.advanceTimersByTime(1);
    expect(buffers.kept).toBe(0);
  });

  it('returns the buffer when the part fails, and passes the failure on', async () => {
    const buffers = new PartBuffers(1);
    await expect(buffers.with(MiB, async () => { throw new Error('refused'); })).rejects.toThrow('refused');
    expect(buffers.kept).toBe(1);
  });
});
