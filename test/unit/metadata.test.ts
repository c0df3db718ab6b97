import { describe, expect, it } from 'vitest';
import { decodeMeta, encodeMeta, formatMtime, parseMtime } from '../../src/s3/metadata.js';

describe('x-amz-meta-mtime codec', () => {
  it('writes s3fs form: seconds alone when the nanoseconds are zero, else 9 digits', () => {
    expect(formatMtime({ sec: 1482412345, nsec: 0 })).toBe('1482412345');
    expect(formatMtime({ sec: 1482412345, nsec: 5 })).toBe('1482412345.000000005');
    expect(formatMtime({ sec: 1482412345, nsec: 123456789 })).toBe('1482412345.123456789');
  });

  it('reads any decimal number of seconds', () => {
    expect(parseMtime('1482412345.5')).toEqual({ sec: 1482412345, nsec: 500000000 }); // rclone
    expect(parseMtime('1482412345.000000005')).toEqual({ sec: 1482412345, nsec: 5 }); // s3fs
    expect(parseMtime('1482412345')).toEqual({ sec: 1482412345, nsec: 0 }); // GeeseFS
    expect(parseMtime('1482412345.1234567891')).toEqual({ sec: 1482412345, nsec: 123456789 });
  });

  it('ignores what is not a number', () => {
    for (const bad of ['', 'abc', '1e9', '12:00', '1.2.3', undefined]) expect(parseMtime(bad)).toBeUndefined();
  });

  it('round-trips through encode and decode', () => {
    const meta = { mtime: { sec: 981173106, nsec: 123456789 }, mode: 0o100640, uid: 1000, gid: 70000 };
    const encoded = encodeMeta(meta);
    expect(encoded).toEqual({ mtime: '981173106.123456789', mode: String(0o100640), uid: '1000', gid: '70000' });
    expect(decodeMeta(encoded)).toEqual(meta);
  });

  it('drops malformed mode, uid and gid', () => {
    expect(decodeMeta({ mode: '-1', uid: 'root', gid: '99999999999' })).toEqual({ mtime: undefined, mode: undefined, uid: undefined, gid: undefined });
  });
});
