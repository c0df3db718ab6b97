// Upload progress while a mount drains: on the mount's own terminal (foreground), and
// through a small file beside the pid file for `s3mount unmount`, which waits on
// another terminal for a background mount.
import { readFile, rm, writeFile } from 'node:fs/promises';

export interface UploadsLeft {
  files: number;
  bytes: number;
}

export function describeLeft(left: UploadsLeft): string {
  const mib = left.bytes / (1024 * 1024);
  const size = mib >= 10 ? `${Math.round(mib)} MiB` : `${mib.toFixed(1)} MiB`;
  return `uploading: ${left.files} file(s), ${size} left`;
}

/** Where a mount whose pid file is `pidFile` reports what it has left to upload. */
export function progressFilePath(pidFile: string): string {
  return `${pidFile}.uploads`;
}

export async function writeProgress(pidFile: string, left: UploadsLeft): Promise<void> {
  await writeFile(progressFilePath(pidFile), JSON.stringify(left));
}

export async function readProgress(pidFile: string): Promise<UploadsLeft | undefined> {
  try {
    const left = JSON.parse(await readFile(progressFilePath(pidFile), 'utf8')) as UploadsLeft;
    return Number.isFinite(left.files) && Number.isFinite(left.bytes) ? left : undefined;
  } catch {
    return undefined;
  }
}

export async function removeProgress(pidFile: string): Promise<void> {
  await rm(progressFilePath(pidFile), { force: true });
}

/**
 * One line that rewrites itself on a terminal; elsewhere (a log, a pipe) a new line
 * at most every 10 s, so that a long drain neither floods nor stays silent.
 */
export function progressLine(stream: NodeJS.WriteStream): { show(text: string): void; end(): void } {
  let shown = false;
  let lastLineAt = 0;
  return {
    show(text) {
      if (stream.isTTY) {
        stream.write(`\r\x1b[Ks3mount: ${text}`);
        shown = true;
      } else if (Date.now() - lastLineAt >= 10_000) {
        stream.write(`s3mount: ${text}\n`);
        lastLineAt = Date.now();
      }
    },
    end() {
      if (shown) stream.write('\n');
      shown = false;
    },
  };
}
