// The patched binding's mallopt() export, which the mount calls before it reads anything.
import { describe, expect, it } from 'vitest';
import { tuneMallocForReads } from '../../src/fuse/index.js';

describe('tuneMallocForReads', () => {
  it('sets the thresholds: glibc (Debian) takes them', { timeout: 10_000 }, () => {
    expect(tuneMallocForReads()).toBe(true);
  });
});
