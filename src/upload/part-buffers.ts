/**
 * Memory reused for parts read from staged files. A fresh 8 MiB buffer per part kept the
 * garbage collector busy for about a fifth of the mount's CPU time on a large write.
 * Buffers are kept only while parts keep coming: a second after the last one is done,
 * they are let go.
 */
export class PartBuffers {
  private readonly free: Buffer<ArrayBuffer>[] = [];
  private inUse = 0;
  private release: NodeJS.Timeout | undefined;

  constructor(
    /** At most this many are kept, and only of the sizes asked for. */
    private readonly keep: number,
    private readonly idleMs = 1000,
  ) {}

  /** Runs `use` with a buffer of exactly `size` bytes that is its own until it settles. */
  async with<T>(size: number, use: (buffer: Buffer<ArrayBuffer>) => Promise<T>): Promise<T> {
    clearTimeout(this.release);
    const at = this.free.findIndex((b) => b.length === size);
    // Unzeroed: users fill it before reading from it.
    const [buffer = Buffer.allocUnsafe(size)] = at >= 0 ? this.free.splice(at, 1) : [];
    this.inUse++;
    try {
      return await use(buffer);
    } finally {
      this.inUse--;
      this.free.push(buffer);
      if (this.free.length > this.keep) this.free.shift();
      if (this.inUse === 0) this.release = setTimeout(() => (this.free.length = 0), this.idleMs).unref();
    }
  }

  /** Buffers kept for reuse now (for tests). */
  get kept(): number {
    return this.free.length;
  }
}
