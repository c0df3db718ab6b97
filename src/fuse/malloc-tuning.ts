import { loadFuseNative } from './native.js';

const MiB = 1024 * 1024;

/**
 * glibc serves allocations from this size up with fresh mmap()ed pages, each one a page
 * fault on first touch. The read path allocates 1 MiB blocks (src/s3/http1-connection.ts);
 * glibc's own threshold moves up only to the size of the last block freed, so blocks of
 * exactly 1 MiB kept being mapped and faulted in. Below this threshold they come from the
 * heap and reuse the memory of blocks freed before.
 */
const MMAP_THRESHOLD = 4 * MiB;
/**
 * Free memory glibc keeps at the top of the heap before it gives it back. Its default
 * (128 KiB once the mmap threshold is set) would return, and fault in again, what the
 * next read takes. 64 MiB cost 30 MiB more peak RSS than 16 MiB for no less CPU.
 */
const TRIM_THRESHOLD = 16 * MiB;

/**
 * Sets the process's malloc thresholds for the read path: measured on a cold 512 MiB
 * read from s3rver, the mount's CPU went from 2.9-3.0 s to 2.1-2.5 s (docs/benchmarks.md).
 * Answers false when glibc refused (another libc): reads still work, with more faults.
 */
export function tuneMallocForReads(): boolean {
  return loadFuseNative().tuneMalloc(MMAP_THRESHOLD, TRIM_THRESHOLD);
}
