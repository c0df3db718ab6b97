import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';

/**
 * What a mount made by a user other than root needs from the system. fusermount3
 * refuses otherwise, but its reason reaches only libfuse's stderr (the log of a
 * background mount), or nothing at all, so it is checked here first and told in
 * one line with the fix.
 */

export const FUSE_DEVICE = '/dev/fuse';
export const FUSE_CONF = '/etc/fuse.conf';

export interface UserMountRequest {
  uid: number;
  allowOther?: boolean;
  allowRoot?: boolean;
  /** For tests: other paths than the system's. */
  device?: string;
  conf?: string;
}

/** Why the mount cannot be made by this user, or undefined when it can (root always can). */
export async function userMountRefusal(request: UserMountRequest): Promise<string | undefined> {
  if (request.uid === 0) return undefined;
  const device = request.device ?? FUSE_DEVICE;
  // fusermount3 opens the device with the user's own rights, setuid root or not.
  const usable = await access(device, constants.R_OK | constants.W_OK).then(
    () => true,
    () => false,
  );
  if (!usable) return `${device} cannot be opened for reading and writing by this user: give users access to it (most systems make it mode 0666) or mount as root`;
  if (!request.allowOther && !request.allowRoot) return undefined;
  const conf = request.conf ?? FUSE_CONF;
  const text = await readFile(conf, 'utf8').catch(() => '');
  // fusermount3 wants the word alone on its line, as the comments in the file say.
  if (text.split('\n').some((line) => line.trim() === 'user_allow_other')) return undefined;
  const option = request.allowOther ? '--allow-other' : '--allow-root';
  return `${option} needs the line user_allow_other in ${conf} when the mount is not made by root: add it (as root) or mount as root`;
}
