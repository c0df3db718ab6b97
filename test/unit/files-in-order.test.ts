import { describe, expect, it } from 'vitest';
import { FilesReadInOrder, type ListingOrder } from '../../src/cache/files-in-order.js';

const names = Array.from({ length: 30 }, (_, i) => `f${String(i).padStart(2, '0')}`);
/** A listing order as AttrStore gives it. */
const orderOf = (list: string[]): ListingOrder => ({ names: list, indexOf: (name) => (list.includes(name) ? list.indexOf(name) : undefined) });
const listing = (): ListingOrder => orderOf(names);

describe('files read in order', () => {
  it('fetches nothing for the first file of a run, then the names after each next one', () => {
    const runs = new FilesReadInOrder(3);
    expect(runs.readWhole('/d', 'f00', listing)).toEqual([]);
    expect(runs.readWhole('/d', 'f01', listing)).toEqual(['f02', 'f03', 'f04']);
    expect(runs.readWhole('/d', 'f02', listing)).toEqual(['f03', 'f04', 'f05']);
    expect(runs.readWhole('/d', 'f28', listing)).toEqual([]); // a jump: a new run begins there
    expect(runs.readWhole('/d', 'f29', listing)).toEqual([]); // the last name: nothing after it
  });

  it('continues a run over a few names left out, and not over more', () => {
    const runs = new FilesReadInOrder(2);
    runs.readWhole('/d', 'f00', listing);
    expect(runs.readWhole('/d', 'f04', listing)).toEqual(['f05', 'f06']); // 3 left out
    expect(runs.readWhole('/d', 'f09', listing)).toEqual([]); // 4 left out: a new run
    expect(runs.readWhole('/d', 'f10', listing)).toEqual(['f11', 'f12']);
  });

  it('begins a new run at a file read again or out of order', () => {
    const runs = new FilesReadInOrder(2);
    runs.readWhole('/d', 'f05', listing);
    expect(runs.readWhole('/d', 'f05', listing)).toEqual([]);
    expect(runs.readWhole('/d', 'f04', listing)).toEqual([]);
    expect(runs.readWhole('/d', 'f05', listing)).toEqual(['f06', 'f07']);
  });

  it('keeps one run per directory, and none where no listing is at hand or the name is not in it', () => {
    const runs = new FilesReadInOrder(1);
    runs.readWhole('/a', 'f00', listing);
    runs.readWhole('/b', 'f10', listing);
    expect(runs.readWhole('/a', 'f01', listing)).toEqual(['f02']);
    expect(runs.readWhole('/b', 'f11', listing)).toEqual(['f12']);
    runs.readWhole('/c', 'f00', () => undefined);
    expect(runs.readWhole('/c', 'f01', () => undefined)).toEqual([]);
    runs.readWhole('/a', 'new', listing); // not listed: the run through /a is over
    expect(runs.readWhole('/a', 'f03', listing)).toEqual([]);
  });

  it("goes on into another directory from its first file once a run read its directory's last name", () => {
    const runs = new FilesReadInOrder(2);
    const short = (): ListingOrder => orderOf(['sub', 'x', 'y', 'z']);
    runs.readWhole('/a', 'x', short);
    expect(runs.readWhole('/a', 'y', short)).toEqual(['z']);
    expect(runs.readWhole('/a', 'z', short)).toEqual([]); // the last name
    expect(runs.readWhole('/b', 'f00', listing)).toEqual(['f01', 'f02']);
    expect(runs.readWhole('/b', 'f01', listing)).toEqual(['f02', 'f03']);
    // not at /b's end: the next directory begins as any run does
    expect(runs.readWhole('/c', 'f00', listing)).toEqual([]);
  });

  it('goes on into a directory not listed yet once it is listed, and not back into the one it finished', () => {
    const runs = new FilesReadInOrder(2);
    const short = (): ListingOrder => orderOf(['x', 'y']);
    runs.readWhole('/a', 'x', short);
    expect(runs.walkingInto('/b')).toBe(false);
    runs.readWhole('/a', 'y', short); // the last name
    expect(runs.walkingInto('/a')).toBe(false);
    expect(runs.walkingInto('/b')).toBe(true); // so the Vfs lists /b at once
    expect(runs.readWhole('/b', 'f00', () => undefined)).toEqual([]); // its first lookup probed: no listing
    expect(runs.readWhole('/b', 'f00', listing)).toEqual(['f01', 'f02']); // listed now: on from f00
    expect(runs.walkingInto('/c')).toBe(false);
    const later = new FilesReadInOrder(2);
    later.readWhole('/a', 'x', short);
    later.readWhole('/a', 'y', short);
    later.readWhole('/b', 'f00', () => undefined);
    expect(later.readWhole('/b', 'f01', listing)).toEqual(['f02', 'f03']); // or from its second file
    const again = new FilesReadInOrder(2);
    again.readWhole('/a', 'x', short);
    again.readWhole('/a', 'y', short);
    expect(again.readWhole('/a', 'x', short)).toEqual([]); // the same directory again
  });

  it('fetches a directory listed right after a run finished another from its first file on, once', () => {
    const runs = new FilesReadInOrder(2);
    const short = (): ListingOrder => orderOf(['x', 'y']);
    expect(runs.listedLeaf('/b', listing)).toEqual([]); // no walk under way
    runs.readWhole('/a', 'x', short);
    runs.readWhole('/a', 'y', short); // the last name
    expect(runs.listedLeaf('/a', short)).toEqual([]); // the directory it finished
    expect(runs.listedLeaf('/e', () => orderOf([]))).toEqual([]); // nothing in it: the walk goes on past it
    expect(runs.listedLeaf('/b', listing)).toEqual(['f00', 'f01']);
    expect(runs.listedLeaf('/c', listing)).toEqual([]); // once per finished run
    expect(runs.readWhole('/b', 'f00', listing)).toEqual(['f01', 'f02']); // the run begun by the listing
  });

  it('goes on into the next directory once the names it fetches ahead reach its end, once per run', () => {
    const runs = new FilesReadInOrder(3);
    const five = (): ListingOrder => orderOf(['a', 'b', 'c', 'd', 'e']);
    expect(runs.nearingEnd('/x')).toBe(false); // no run
    runs.readWhole('/x', 'a', five);
    expect(runs.nearingEnd('/x')).toBe(false); // b, c, d ahead: not e yet
    expect(runs.readWhole('/x', 'b', five)).toEqual(['c', 'd', 'e']);
    expect(runs.nearingEnd('/x')).toBe(true);
    expect(runs.nearingEnd('/x')).toBe(false); // said once
    expect(runs.goOnInto('/y', listing)).toEqual(['f00', 'f01', 'f02']);
    expect(runs.goOnInto('/z', () => orderOf([]))).toEqual([]); // nothing there
    runs.readWhole('/x', 'c', five);
    expect(runs.nearingEnd('/x')).toBe(false);
    runs.readWhole('/x', 'e', five); // the last name
    expect(runs.readWhole('/y', 'f00', listing)).toEqual(['f01', 'f02', 'f03']); // the run begun ahead
  });

  it('asks for the listing only when a run begins', () => {
    const runs = new FilesReadInOrder(1);
    let asked = 0;
    const counted = (): ListingOrder => {
      asked++;
      return orderOf(names);
    };
    for (const name of names.slice(0, 10)) runs.readWhole('/d', name, counted);
    expect(asked).toBe(1);
  });
});
