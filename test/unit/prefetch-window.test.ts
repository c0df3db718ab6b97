import { describe, expect, it } from 'vitest';
import { PrefetchWindow, type EntryKind } from '../../src/vfs/prefetch-window.js';

const entries = (n: number): Array<readonly [string, EntryKind]> => Array.from({ length: n }, (_, i) => [`/d/f${i}`, i % 10 === 9 ? 'dir' : 'file'] as const);
const paths = (due: Array<readonly [string, EntryKind]>): string[] => due.map(([path]) => path);

const indexIn = (list: Array<readonly [string, EntryKind]>) => (path: string): number | undefined => {
  const at = list.findIndex(([p]) => p === path);
  return at < 0 ? undefined : at;
};

/** A window over `n` entries whose fetches count as held once made, as AttrStore's do. */
function windowOver(n: number, first: number, max: number): { window: PrefetchWindow; held: Set<string>; lookUp(i: number, waits?: boolean): string[] } {
  const all = entries(n);
  const window = new PrefetchWindow(all, indexIn(all), first, max);
  const held = new Set<string>();
  return {
    window,
    held,
    lookUp(i, waits = false) {
      window.lookedUp(`/d/f${i}`, waits);
      const due = paths(window.refill((path) => held.has(path)));
      for (const path of due) held.add(path);
      return due;
    },
  };
}

describe('prefetch window', () => {
  it('fetches nothing before the first lookup, then up to its size past the last lookup', () => {
    const { window, lookUp } = windowOver(20, 3, 64);
    expect(window.refill(() => false)).toEqual([]);
    expect(lookUp(0)).toEqual(['/d/f1', '/d/f2', '/d/f3']);
    expect(lookUp(1)).toEqual(['/d/f4']);
    expect(lookUp(1)).toEqual([]); // the same again: nothing new
    expect(lookUp(5)).toEqual(['/d/f6', '/d/f7', '/d/f8']); // a jump: on from there
    expect(lookUp(2)).toEqual([]); // backwards: the window stays
    expect(window.refill(() => false)).toEqual([]);
  });

  it('doubles up to its maximum each time a lookup has to wait for an entry it fetched', () => {
    const { lookUp } = windowOver(100, 2, 8);
    expect(lookUp(0)).toEqual(['/d/f1', '/d/f2']);
    expect(lookUp(1, true)).toEqual(['/d/f3', '/d/f4', '/d/f5']); // 4 past f1
    expect(lookUp(2, true).length).toBe(5); // 8 past f2: f6..f10
    expect(lookUp(3, true)).toEqual(['/d/f11']); // at its maximum: 8 past f3
    expect(lookUp(4, false)).toEqual(['/d/f12']);
  });

  it('does not grow for a lookup that waits on what it did not fetch, nor for one that finds its entry ready', () => {
    const { held, lookUp } = windowOver(100, 2, 64);
    held.add('/d/f2'); // a GET of a file fetched ahead is under way for it
    expect(lookUp(0)).toEqual(['/d/f1']);
    expect(lookUp(2, true)).toEqual(['/d/f3', '/d/f4']);
    expect(lookUp(3, false)).toEqual(['/d/f5']);
    expect(lookUp(60, true)).toEqual(['/d/f61', '/d/f62']); // never fetched by the window
  });

  it('counts entries held another way as within its size, and narrows back to its first size', () => {
    const { window, held, lookUp } = windowOver(100, 2, 64);
    lookUp(0);
    lookUp(1, true);
    expect(lookUp(2, true)).toEqual(['/d/f6', '/d/f7', '/d/f8', '/d/f9', '/d/f10']); // size 8
    for (let i = 11; i <= 30; i++) held.add(`/d/f${i}`); // files fetched ahead of a reader
    window.narrow();
    expect(lookUp(3)).toEqual([]); // within 2 past f3, all considered
    expect(lookUp(11)).toEqual([]); // f12, f13: held
    expect(lookUp(29)).toEqual(['/d/f31']);
  });

  it('is done once every entry has been considered', () => {
    const { window, lookUp } = windowOver(4, 8, 8);
    expect(window.done).toBe(false);
    expect(lookUp(0)).toEqual(['/d/f1', '/d/f2', '/d/f3']);
    expect(window.done).toBe(true);
  });
});
