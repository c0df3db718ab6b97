import { afterEach, describe, expect, it, vi } from 'vitest';
import { ExpirySweep } from '../../src/vfs/expiry-sweep.js';

type Expiring = { expires: number };

afterEach(() => {
  vi.useRealTimers();
});

describe('expiry sweep', () => {
  it('drops expired entries once the map grows past its limit, then past twice what is left', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const map = new Map<string, Expiring>();
    const sweep = new ExpirySweep(map, (entry) => entry.expires, 4);
    const add = (key: string, ttl: number): void => {
      map.set(key, { expires: Date.now() + ttl });
      sweep.added();
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
    const sweep = new ExpirySweep(map, (entry) => entry.expires, 10);
    for (let i = 0; i < 1000; i++) {
      map.set(`k${i}`, { expires: Date.now() + 60_000 });
      sweep.added();
    }
    expect(map.size).toBe(1000);
  });

  it('sweeps a map whose values are the deadlines themselves', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const map = new Map<string, number>();
    const sweep = new ExpirySweep(map, (deadline) => deadline, 2);
    map.set('old', Date.now() + 10);
    map.set('fresh', Date.now() + 1000);
    vi.advanceTimersByTime(100);
    map.set('new', Date.now() + 1000);
    sweep.added();
    expect([...map.keys()]).toEqual(['fresh', 'new']);
  });
});
