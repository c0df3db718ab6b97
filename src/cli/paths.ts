import { realpath } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

/**
 * The mount point as /proc/self/mountinfo spells it (symlinks above it resolved), so
 * that mount checks and pid file names agree however the user wrote the path. Only
 * the parent is resolved: stat on the mount point itself goes to the FUSE server,
 * and a hung or dead mount would hang or fail us.
 */
export async function canonicalMountpoint(path: string): Promise<string> {
  const absolute = resolve(path);
  if (absolute === '/') return absolute;
  try {
    return join(await realpath(dirname(absolute)), basename(absolute));
  } catch {
    return absolute;
  }
}
