// Runs of files of one directory read whole, one after another, in listing order: what
// `md5sum -c`, `tar c`, `cp -r`, `grep -r` and `rsync` do. Each file costs them a full
// round trip to S3 before its first byte (2000 small files against a 20 ms region: 66 s
// for `md5sum -c`, 5-6 s for the raw SDK fetching 16 at a time), unless the next files
// of the run are fetched while they read this one.

/**
 * How far past the run's last file the next one read may be in the listing and still
 * continue it: the names between may be subdirectories, empty files (no read), or files
 * the tool leaves out.
 */
const MAX_STEP = 4;
/** Directories whose runs are remembered at once; a bound, not a policy. */
const MAX_DIRECTORIES = 1000;

/** A directory's names in listing order, and where a name is among them. */
export interface ListingOrder {
  readonly names: readonly string[];
  /** Index of `name` in `names`; undefined if it is not there. */
  indexOf(name: string): number | undefined;
}

interface Run {
  /** The directory's names in listing order, as they were when the run began. */
  names: readonly string[];
  /** Index in `names` of the last file read. */
  at: number;
  /** Whether nearingEnd() has said so: the walk's next directory is fetched ahead once. */
  wentOn?: boolean;
}

export class FilesReadInOrder {
  private readonly runs = new Map<string, Run>();
  /**
   * The directory where the last run read its listing's last name, until a file of
   * another directory is read whole: a walk through a tree (`tar c`, `cp -r`) goes on
   * to the next directory, whose run then fetches ahead from its first file on.
   */
  private finished: string | undefined;

  constructor(
    /** How many names past the last file read are fetched ahead. */
    private readonly filesAhead: number,
  ) {}

  /**
   * Notes that `name` in `dir` was read whole. Answers the names after it, in listing
   * order, to fetch ahead: none unless it continues a run (one file read whole is no
   * run yet: `cat` of one file, or a tool reading a file it needs). `listing()` gives
   * the directory's listing order, or undefined when no listing is at hand; it is asked
   * for only when a run begins.
   */
  readWhole(dir: string, name: string, listing: () => ListingOrder | undefined): string[] {
    let run = this.runs.get(dir);
    const next = run ? indexWithin(run.names, name, run.at + 1, MAX_STEP) : -1;
    const walkedOn = this.walkingInto(dir);
    if (run && next >= 0) run.at = next;
    else {
      run = this.begin(dir, name, listing());
      // No listing yet (the first lookup in a directory probes): the walk may go on
      // from the next file, once the directory is listed.
      if (!run) return [];
      if (!walkedOn) {
        this.finished = undefined;
        return [];
      }
    }
    this.finished = run.at === run.names.length - 1 ? dir : undefined;
    return run.names.slice(run.at + 1, run.at + 1 + this.filesAhead);
  }

  /**
   * Notes that `dir`, which has no subdirectories, was listed (readdir): right after a
   * run finished another directory, a walk has come to it (`tar c` and `cp -r` list a
   * directory before they read its files). Answers the names to fetch ahead from its
   * first on, and its first file read then goes on from there. Once per finished run,
   * so that an `ls` after a walk fetches at most one directory's files.
   */
  listedLeaf(dir: string, listing: () => ListingOrder | undefined): string[] {
    if (!this.walkingInto(dir)) return [];
    const names = listing()?.names;
    if (!names?.length) return [];
    this.finished = undefined;
    return this.startBefore(dir, names);
  }

  /**
   * Whether the run in `dir` has come near its listing's end (the names it fetches ahead
   * reach the last one): the walk's next directory may be fetched ahead now (goOnInto()).
   * True once per run.
   */
  nearingEnd(dir: string): boolean {
    const run = this.runs.get(dir);
    if (run === undefined || run.wentOn || run.at + 1 + this.filesAhead < run.names.length) return false;
    run.wentOn = true;
    return true;
  }

  /**
   * `next` (listed: `listing()` gives its order) is where a walk goes once the run that
   * nears its end is over. A run begins there before its first file, and the names to
   * fetch ahead of it from its first on are answered.
   */
  goOnInto(next: string, listing: () => ListingOrder | undefined): string[] {
    const names = listing()?.names;
    return names?.length ? this.startBefore(next, names) : [];
  }

  /** Whether a file read whole in `dir` now would be a walk's first there, from a directory it finished. */
  walkingInto(dir: string): boolean {
    return this.finished !== undefined && this.finished !== dir;
  }

  private begin(dir: string, name: string, order: ListingOrder | undefined): Run | undefined {
    const at = order?.indexOf(name);
    if (!order || at === undefined) {
      this.runs.delete(dir);
      return undefined;
    }
    return this.start(dir, { names: order.names, at });
  }

  /** A run in `dir` before its first file; answers the names to fetch ahead from there. */
  private startBefore(dir: string, names: readonly string[]): string[] {
    this.start(dir, { names, at: -1 });
    return names.slice(0, this.filesAhead);
  }

  private start(dir: string, run: Run): Run {
    if (this.runs.size >= MAX_DIRECTORIES) this.runs.clear();
    this.runs.set(dir, run);
    return run;
  }
}

/** Index of `name` in names[from, from + count), or -1. */
function indexWithin(names: readonly string[], name: string, from: number, count: number): number {
  const end = Math.min(names.length, from + count);
  for (let i = from; i < end; i++) if (names[i] === name) return i;
  return -1;
}
