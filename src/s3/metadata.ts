import type { Timespec } from '../fs-types.js';

/**
 * POSIX attributes kept in an object's user metadata, in the headers that s3fs-fuse,
 * rclone and GeeseFS also read and write: x-amz-meta-mtime, -mode, -uid, -gid.
 */
export interface PosixMeta {
  mtime?: Timespec;
  /** Full st_mode, file type bits included. */
  mode?: number;
  uid?: number;
  gid?: number;
}

/** Header names as the SDK wants them in Metadata: without the x-amz-meta- prefix. */
export const META_MTIME = 'mtime';
export const META_MODE = 'mode';
export const META_UID = 'uid';
export const META_GID = 'gid';

/** s3fs' form: "<sec>" when the nanoseconds are zero, else "<sec>.<9-digit ns>". */
export function formatMtime(t: Timespec): string {
  if (t.nsec === 0) return String(t.sec);
  return `${t.sec}.${String(t.nsec).padStart(9, '0')}`;
}

/**
 * A decimal number of seconds: s3fs' 9 digits are exact, rclone's "1482412345.5" is
 * half a second, GeeseFS' integers work. Anything else is ignored (undefined).
 */
export function parseMtime(value: string | undefined): Timespec | undefined {
  const match = value?.trim().match(/^(-?\d+)(?:\.(\d+))?$/);
  if (!match) return undefined;
  const sec = Number(match[1]);
  const fraction = (match[2] ?? '').slice(0, 9).padEnd(9, '0');
  if (!Number.isSafeInteger(sec)) return undefined;
  return { sec, nsec: Number(fraction) };
}

function parseUint(value: string | undefined, max: number): number | undefined {
  if (value === undefined || !/^\d+$/.test(value.trim())) return undefined;
  const n = Number(value.trim());
  return n <= max ? n : undefined;
}

export function decodeMeta(metadata: Record<string, string> | undefined): PosixMeta {
  if (!metadata) return {};
  return {
    mtime: parseMtime(metadata[META_MTIME]),
    mode: parseUint(metadata[META_MODE], 0o177777),
    uid: parseUint(metadata[META_UID], 0xffffffff),
    gid: parseUint(metadata[META_GID], 0xffffffff),
  };
}

export function encodeMeta(meta: Required<PosixMeta>): Record<string, string> {
  return {
    [META_MTIME]: formatMtime(meta.mtime),
    [META_MODE]: String(meta.mode),
    [META_UID]: String(meta.uid),
    [META_GID]: String(meta.gid),
  };
}
