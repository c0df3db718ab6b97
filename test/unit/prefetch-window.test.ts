import { describe, expect, it } from 'vitest';
import { PrefetchWindow, type EntryKind } from '../../src/vfs/prefetch-window.js';

const entries = (n: number): Array<readonly [string, EntryKind]> => Array.from({ length: n }, (_, i) => [`/d/f${i}`, i % 10 === 9 ? 'dir' : 'file'] as const);
const paths = (due: Array<readonly [string, EntryKind]>): string[] => due.map(([path]) => path);

describe('prefetch window', () => {
  it('keeps at most its size ahead, and moves on as lookups are answered', () => {
    const window = new PrefetchWindow(entries(10), 3);
    const held = new Set<string>();
    const refill = (): string[] => {
      const due = paths(window.refill((path) => held.has(path)));
      for (const path of due) held.add(path);
      return due;
    };
    expect(refill()).toEqual(['/d/f0', '/d/f1', '/d/f2']);
    expect(refill()).toEqual([]); // full
    window.served('/d/f0');
    expect(refill()).toEqual(['/d/f3']);
    window.served('/d/f7'); // not ahead: moves nothing
    expect(refill()).toEqual([]);
    window.served('/d/f1');
    window.served('/d/f2');
    expect(window.refill((path) => held.has(path))).toEqual([
      ['/d/f4', 'file'],
      ['/d/f5', 'file'],
    ]);
  });

  it('skips entries already held, and drops from the window those that are no longer held', () => {
    const window = new PrefetchWindow(entries(6), 2);
    const held = new Set(['/d/f1']); // looked up already
    expect(paths(window.refill((path) => held.has(path)))).toEqual(['/d/f0', '/d/f2']);
    held.add('/d/f0').add('/d/f2');
    held.delete('/d/f0'); // expired before anyone asked: no longer ahead
    expect(paths(window.refill((path) => held.has(path)))).toEqual(['/d/f3']);
  });

  it('is done once all is fetched and asked for', () => {
    const window = new PrefetchWindow(entries(4).slice(2), 8);
    expect(paths(window.refill(() => false))).toEqual(['/d/f2', '/d/f3']);
    expect(window.done).toBe(false);
    window.served('/d/f2');
    window.served('/d/f3');
    expect(window.done).toBe(true);
  });
});
