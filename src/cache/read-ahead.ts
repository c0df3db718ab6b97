// Read-ahead of one open file: sequential reads widen the window of chunks fetched ahead
// (doubling up to a maximum); a read elsewhere shrinks it back to nothing.

export class ReadAhead {
  /** Where the next sequential read would start. */
  private expected = 0;
  /** Chunks to have fetched beyond the one being read. */
  private window = 0;
  /** Where the current sequential run of reads began. */
  private runStart = 0;
  /** The run's bytes before this have been handed back (see passOver). */
  private passedTo = 0;

  constructor(
    /** The most chunks ahead. */
    private readonly maxChunks: number,
  ) {}

  /**
   * Notes a read of [start, end) and answers how many chunks to fetch ahead of it. The
   * kernel sends a sequential reader's requests a few at a time and not always in order:
   * a read that starts at most `slack` bytes away from where the last one ended still
   * counts as sequential.
   */
  next(start: number, end: number, slack: number): number {
    const sequential = start === 0 ? this.expected === 0 : Math.abs(start - this.expected) <= slack;
    if (sequential) this.window = Math.min(this.maxChunks, Math.max(1, this.window * 2));
    else {
      this.window = 0;
      this.runStart = start;
      this.passedTo = start;
    }
    this.expected = Math.max(end, sequential ? this.expected : end);
    return this.window;
  }

  /**
   * Notes that the run's reader is done with the bytes before `offset`; answers the
   * range newly left behind, [from, offset), empty if there is none.
   */
  passOver(offset: number): { from: number; to: number } {
    const from = this.passedTo;
    this.passedTo = Math.max(from, offset);
    return { from, to: this.passedTo };
  }

  /** How far `offset` lies past where the current sequential run began. */
  intoRun(offset: number): number {
    return offset - this.runStart;
  }
}
