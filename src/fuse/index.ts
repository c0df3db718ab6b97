export { mountFuse, FuseMount, MountError, isMountpoint, DEFAULT_MOUNT_OPTIONS } from './mount.js';
export type { FuseMountOptions } from './mount.js';
export { tuneMallocForReads } from './malloc-tuning.js';
export { FsError, toNegativeErrno } from '../errors.js';
export type { ErrnoName } from '../errors.js';
export * from '../fs-types.js';
