import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { access, lstat, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';

/**
 * A running mount leaves its pid in a file named after its mount point, so that
 * `s3mount unmount` can wait for it to finish uploading. Mount and unmount find the
 * same file when run by the same user.
 */
export async function pidFilePath(mountpoint: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const name = `${createHash('sha256').update(mountpoint).digest('hex').slice(0, 32)}.pid`;
  return join(await pidDir(env), name);
}

async function pidDir(env: NodeJS.ProcessEnv): Promise<string> {
  const uid = process.getuid?.() ?? 0;
  if (uid === 0 && ((await isWritable('/run/s3mount')) || (await isWritable('/run')))) return '/run/s3mount';
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime && isAbsolute(runtime)) return join(runtime, 's3mount');
  return join(tmpdir(), `s3mount-${uid}`);
}

async function isWritable(path: string): Promise<boolean> {
  return access(path, constants.W_OK).then(
    () => true,
    () => false,
  );
}

export async function writePidFile(file: string, pid: number = process.pid): Promise<void> {
  const dir = dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // In a shared /tmp another user could have made the directory first and would then
  // control which process `s3mount unmount` waits for.
  const st = await lstat(dir);
  if (!st.isDirectory() || st.uid !== (process.getuid?.() ?? st.uid)) {
    throw new Error(`${dir} is not a directory of this user`);
  }
  // Readers never see a half-written file.
  const temporary = `${file}.${pid}.tmp`;
  await writeFile(temporary, `${pid}\n`, { mode: 0o644 });
  await rename(temporary, file);
}

/** The pid in the file; undefined when there is no file or it holds no pid. */
export async function readPidFile(file: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * Removes the file if it still names `pid`: a new mount at the same place may have
 * replaced it while this one was draining.
 */
export async function removePidFile(file: string, pid: number = process.pid): Promise<void> {
  if ((await readPidFile(file)) !== pid) return;
  await unlink(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

/**
 * Whether `pid` is still an s3mount process. The command line is checked because a
 * pid file left by a killed mount may name a pid that now belongs to something else.
 */
export async function isMountProcess(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).includes('s3mount');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}
