import { createRequire } from 'node:module';

/** The patched fuse-native (patches/fuse-native+2.2.6.patch): its raw callback API. */
type RawCallback = (result: number, ...values: unknown[]) => void;
export type RawOps = Record<string, (...args: never[]) => void>;

export interface RawTimespec {
  sec: number;
  nsec: number;
}

export interface RawFuseOptions {
  fsname?: string;
  subtype?: string;
  allowOther?: boolean;
  allowRoot?: boolean;
  autoUnmount?: boolean;
  defaultPermissions?: boolean;
  readOnly?: boolean;
  debug?: boolean;
  kernelCache?: boolean;
  autoCache?: boolean;
  hardRemove?: boolean;
  useIno?: boolean;
  writebackCache?: boolean;
  attrTimeout?: number;
  entryTimeout?: number;
  negativeTimeout?: number;
  maxWrite?: number;
  maxRead?: number;
  maxBackground?: number;
  maxThreads?: number;
  timeout?: false | Record<string, number | false>;
  extraOptions?: string[];
  onExit?: () => void;
}

export interface RawFuse {
  mount(cb: (err: Error | null) => void): void;
  whenExited(cb: () => void): void;
}

export interface RawFuseConstructor {
  new (mountpoint: string, ops: RawOps, options: RawFuseOptions): RawFuse;
  UTIME_NOW: number;
  UTIME_OMIT: number;
  OPEN_DIRECT_IO: number;
  OPEN_KEEP_CACHE: number;
  /** mallopt(M_MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD) for the process; false if refused. */
  tuneMalloc(mmapThreshold: number, trimThreshold: number): boolean;
}

export type { RawCallback };

const require = createRequire(import.meta.url);

/** Loaded on first use, so that code which never mounts does not need the addon. */
export function loadFuseNative(): RawFuseConstructor {
  return require('fuse-native') as RawFuseConstructor;
}
