import { constants } from 'node:os';

export type ErrnoName = keyof typeof constants.errno;

/** A filesystem error with the errno that the kernel will pass to the caller. */
export class FsError extends Error {
  readonly code: ErrnoName;

  constructor(code: ErrnoName, message?: string) {
    super(message ?? code);
    this.name = 'FsError';
    this.code = code;
  }

  get errno(): number {
    return constants.errno[this.code];
  }
}

/** The negative errno for a FUSE reply; anything that is not an FsError is EIO. */
export function toNegativeErrno(err: unknown): number {
  if (err instanceof FsError) return -err.errno;
  return -constants.errno.EIO;
}
