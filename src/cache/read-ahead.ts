// Read-ahead of one open file: sequential reads widen the window of chunks fetched ahead
// (doubling up to a maximum); a read elsewhere shrinks it back to nothing. Files read
// sequentially at the same time share the maximum.

/**
 * The open files in a sequential run, which share the most chunks fetched ahead (and
 * the sequential cutoff, see ObjectReader). Four readers that each fetched the whole
 * maximum ahead had four times its bytes in the heap at once, long before they read
 * them (4 x 64 MiB files read in parallel: 345 MiB peak RSS, 70k minor faults; 240 MiB
 * and 44k with a quarter each).
 */
export class SequentialRuns {
  /** Open files whose window is above nothing. */
  private runs = 0;

  constructor(
    /** The most chunks ahead, over all runs. */
    readonly maxChunks: number,
  ) {}

  /** The most chunks one run may have ahead now. */
  get chunksPerRun(): number {
    return Math.max(1, this.share(this.maxChunks));
  }

  /** One run's part of `total`, shared by the runs now under way. */
  share(total: number): number {
    return Math.floor(total / Math.max(1, this.runs));
  }

  join(): void {
    this.runs++;
  }

  leave(): void {
    this.runs--;
  }
}

export class ReadAhead {
  /** Where the next sequential read would start. */
  private expected = 0;
  /** Chunks to have fetched beyond the one being read, before sharing with other runs. */
  private window = 0;
  /** Where the current sequential run of reads began. */
  private runStart = 0;
  /** The run's bytes before this have been handed back (see passOver). */
  private passedTo = 0;
  /** readWholeNow has answered true. */
  private toldWhole = false;
  /** The stretch of handed-over chunks the reader is asking for again, in a row (see HandedChunks). */
  private lostFrom = -1;
  private lostTo = -1;

  /** A file's read-ahead, one of `runs`. */
  constructor(private readonly runs: SequentialRuns) {}

  /**
   * Notes a read of [start, end) and answers how many chunks to fetch ahead of it. The
   * kernel sends a sequential reader's requests a few at a time and not always in order:
   * a read that starts at most `slack` bytes away from where the last one ended still
   * counts as sequential.
   */
  next(start: number, end: number, slack: number): number {
    const sequential = start === 0 ? this.expected === 0 : Math.abs(start - this.expected) <= slack;
    const wasRunning = this.window > 0;
    if (sequential) this.window = Math.min(this.runs.maxChunks, Math.max(1, this.window * 2));
    else {
      this.window = 0;
      this.runStart = start;
      this.passedTo = start;
    }
    if (this.window > 0 && !wasRunning) this.runs.join();
    if (this.window === 0 && wasRunning) this.runs.leave();
    this.expected = Math.max(end, sequential ? this.expected : end);
    return Math.min(this.window, this.runs.chunksPerRun);
  }

  /**
   * Notes whether the chunks [first, last] just read are ones the kernel was given and
   * lost; answers how many such chunks the reader has now asked for in a row.
   */
  lost(first: number, last: number, handedOver: boolean): number {
    if (!handedOver) {
      this.lostFrom = -1;
      return 0;
    }
    if (this.lostFrom < 0 || first < this.lostFrom || first > this.lostTo + 1) this.lostFrom = first;
    this.lostTo = last;
    return last - this.lostFrom + 1;
  }

  /**
   * Whether reads have now covered the file, [0, size), in one sequential run: true
   * once, at the first call after that.
   */
  readWholeNow(size: number): boolean {
    if (this.toldWhole || this.runStart !== 0 || this.expected < size) return false;
    this.toldWhole = true;
    return true;
  }

  /** The file is closed: its share goes back to the other runs. */
  close(): void {
    if (this.window > 0) this.runs.leave();
    this.window = 0;
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
