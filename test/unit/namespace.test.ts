import { describe, expect, it } from 'vitest';
import { FsError } from '../../src/errors.js';
import { Namespace, assertCreatableName, baseName, isPosixName, joinPath, parentOf } from '../../src/vfs/namespace.js';

describe('namespace', () => {
  it('maps paths to keys under the prefix and back', () => {
    const ns = new Namespace('data/2024/');
    expect(ns.key('/a/b.txt')).toBe('data/2024/a/b.txt');
    expect(ns.dirPrefix('/a')).toBe('data/2024/a/');
    expect(ns.dirPrefix('/')).toBe('data/2024/');
    expect(ns.pathOf('data/2024/a/b.txt')).toBe('/a/b.txt');
    expect(ns.pathOf('data/2024/a/')).toBe('/a');
  });

  it('works without a prefix', () => {
    const ns = new Namespace('');
    expect(ns.key('/x')).toBe('x');
    expect(ns.dirPrefix('/')).toBe('');
    expect(ns.dirPrefix('/x')).toBe('x/');
  });

  it('splits and joins paths', () => {
    expect(parentOf('/a/b/c')).toBe('/a/b');
    expect(parentOf('/a')).toBe('/');
    expect(baseName('/a/b/c')).toBe('c');
    expect(joinPath('/', 'x')).toBe('/x');
    expect(joinPath('/a', 'x')).toBe('/a/x');
  });

  it('accepts only names that can be POSIX directory entries', () => {
    for (const ok of ['a', 'with space', 'ü', '#+%?', 'x'.repeat(255)]) expect(isPosixName(ok), ok).toBe(true);
    for (const bad of ['', '.', '..', 'a/b', 'x'.repeat(256), 'é'.repeat(128), 'nul\0']) expect(isPosixName(bad), bad).toBe(false);
  });

  it('refuses to create names over 255 bytes', () => {
    expect(() => assertCreatableName(`/${'x'.repeat(256)}`)).toThrow(FsError);
    expect(() => assertCreatableName(`/${'x'.repeat(255)}`)).not.toThrow();
  });
});
