import { afterEach, describe, expect, it, vi } from 'vitest';
import { ExpirySweep, type Expiring } from '../../src/vfs/expiry-sweep.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('expiry sweep', () => {
  it('drops expired entries once the map grows past its limit, then past twice what is left', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const map = new Map<string, Expiring>();
    const sweep = new ExpirySweep(4);
    const add = (key: string, ttl: number): void => {
      map.set(key, { expires: Date.now() + ttl });
      sweep.added(map);
    };
    add('a', 10);
    add('b', 10);
    add('c', 1000);
    add('d', 1000);
    vi.advanceTimersByTime(100); // a and b expire
    expect([...map.keys()]).toEqual(['a', 'b', 'c', 'd']); // at the limit: no sweep yet
    add('e', 1000);
    expect([...map.keys()]).toEqual(['c', 'd', 'e']);
    // the next sweep comes past 6 entries (twice the 3 left)
    add('f', 10);
    add('g', 10);
    add('h', 1000);
    vi.advanceTimersByTime(100);
    expect(map.size).toBe(6);
    add('i', 1000);
    expect([...map.keys()]).toEqual(['c', 'd', 'e', 'h', 'i']);
  });

  it('keeps every fresh entry, however many', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const map = new Map<string, Expiring>();
    const sweep = new ExpirySweep(10);
    for (let i = 0; i < 1000; i++) {
      map.set(`k${i}`, { expires: Date.now() + 60_000 });
      sweep.added(map);
    }
    expect(map.size).toBe(1000);
  });
});
