import { execFile } from 'node:child_process';
import { mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = join(root, 'bin', 's3mount.js');
const execFileAsync = promisify(execFile);

/** Runs the built CLI; never throws on exit codes. */
async function s3mount(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [bin, ...args], { timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const failed = err as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

let dir: string;
beforeAll(async () => {
  // Type errors elsewhere in the tree are the typecheck's business: tsc emits
  // dist/ regardless, and that is what the CLI runs.
  await execFileAsync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', root]).catch(() => {});
  dir = await realpath(await mkdtemp(join(tmpdir(), 's3mount-bin-')));
}, 120_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('bin/s3mount.js', () => {
  it('explains itself with --help', async () => {
    const { code, stdout } = await s3mount('--help');
    expect(code).toBe(0);
    for (const text of ['BUCKET[:PREFIX] MOUNTPOINT', 'unmount', '--endpoint', '--path-style', '--foreground', 'AWS_ACCESS_KEY_ID']) {
      expect(stdout).toContain(text);
    }
  });

  it('prints the package version', async () => {
    const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string };
    expect(await s3mount('--version')).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
  });

  it('rejects bad input with exit code 1 and one line on stderr', async () => {
    const { code, stdout, stderr } = await s3mount('bkt', dir, '--file-mode', '99');
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^s3mount: --file-mode must be an octal mode[^\n]*\n$/);
  });

  it('refuses to unmount what is not mounted', async () => {
    const { code, stderr } = await s3mount('unmount', dir);
    expect(code).toBe(1);
    expect(stderr).toBe(`s3mount: ${dir} is not mounted\n`);
  });
});
