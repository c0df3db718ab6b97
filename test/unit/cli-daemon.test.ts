import { open, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { launchDaemon, READY_FD_ENV, takeReadyChannel } from '../../src/cli/daemon.js';

/**
 * Stands in for the mount process: records how it was started, then behaves as its
 * first argument says. It speaks the fd 3 protocol by hand.
 */
const FAKE_MOUNT = `
import { closeSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { spawn } from 'node:child_process';
const [mode, state] = process.argv.slice(2);
const stat = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
writeFileSync(state, JSON.stringify({ pid: process.pid, session: Number(stat[3]), marker: process.env.${READY_FD_ENV} }));
process.on('SIGTERM', () => { writeFileSync(state + '.sigterm', ''); process.exit(0); });
console.error('fake mount says hello');
if (mode === 'ready') { writeSync(3, 'ready\\n'); closeSync(3); setTimeout(() => {}, 30_000); }
if (mode === 'error') { writeSync(3, 'error bucket bkt does not exist; create it\\n'); process.exit(1); }
if (mode === 'exit') process.exit(3);
if (mode === 'hang') setTimeout(() => {}, 30_000);
if (mode === 'garbage') { writeSync(3, 'hello\\n'); setTimeout(() => {}, 30_000); }
if (mode === 'orphan-pipe') {
  // Like libfuse's fusermount3 helper: a subprocess that inherits the pipe and outlives us.
  const helper = spawn('sleep', ['30'], { stdio: ['ignore', 'ignore', 'ignore', 3], detached: true });
  writeFileSync(state + '.helper', String(helper.pid));
  process.exit(3);
}
`;

let dir: string;
let script: string;
let state: string;
let logFile: string;
const pidsToKill: number[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 's3mount-daemon-'));
  script = join(dir, 'fake-mount.mjs');
  state = join(dir, 'state.json');
  logFile = join(dir, 'cache', 's3mount.log');
  await writeFile(script, FAKE_MOUNT);
});
afterEach(async () => {
  for (const pid of pidsToKill.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await rm(dir, { recursive: true, force: true });
});

const launch = (mode: string, timeoutMs = 10_000) =>
  launchDaemon({ command: process.execPath, args: [script, mode, state], logFile, timeoutMs });

async function fakeState(): Promise<{ pid: number; session: number; marker: string }> {
  const recorded = JSON.parse(await readFile(state, 'utf8')) as { pid: number; session: number; marker: string };
  pidsToKill.push(recorded.pid);
  return recorded;
}

const isRunning = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('launchDaemon', () => {
  it('returns on ready and leaves the mount process running in its own session, logging to the file', async () => {
    await launch('ready');
    const child = await fakeState();
    expect(isRunning(child.pid)).toBe(true);
    expect(child.session).toBe(child.pid);
    expect(child.marker).toBe('3');
    expect(await readFile(logFile, 'utf8')).toContain('fake mount says hello');
  });

  it('appends to an existing log file', async () => {
    await launch('exit').catch(() => {});
    await launch('exit').catch(() => {});
    expect((await readFile(logFile, 'utf8')).match(/says hello/g)).toHaveLength(2);
  });

  it("passes on the mount process's error message", async () => {
    await expect(launch('error')).rejects.toThrow(/^bucket bkt does not exist; create it$/);
  });

  it('says where the log is when the mount process dies without a report', async () => {
    await expect(launch('exit')).rejects.toThrow(`the mount process exited early; see ${logFile}`);
  });

  it('does not wait for a subprocess that inherited the pipe', async () => {
    const started = Date.now();
    await expect(launch('orphan-pipe')).rejects.toThrow(/exited early/);
    pidsToKill.push(Number(await readFile(`${state}.helper`, 'utf8')));
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('stops a mount process that is not ready in time', async () => {
    await expect(launch('hang', 500)).rejects.toThrow(`the mount was not ready after 0.5 s; see ${logFile}`);
    const child = await fakeState();
    await expect(readFile(`${state}.sigterm`)).resolves.toBeDefined();
    expect(isRunning(child.pid)).toBe(false);
  });

  it('stops a mount process that sends something unexpected', async () => {
    await expect(launch('garbage')).rejects.toThrow(/unexpected report/);
    expect(isRunning((await fakeState()).pid)).toBe(false);
  });

  it('fails clearly when the program cannot be started', async () => {
    await expect(launchDaemon({ command: join(dir, 'missing'), args: [], logFile })).rejects.toThrow(
      /cannot start the mount process: .*ENOENT/,
    );
  });
});

describe('takeReadyChannel', () => {
  it('is absent in the foreground', () => {
    expect(takeReadyChannel({})).toBeUndefined();
  });

  it('reports once on the fd, as one line, and removes the marker', async () => {
    const file = join(dir, 'report');
    const handle = await open(file, 'w');
    const env: NodeJS.ProcessEnv = { [READY_FD_ENV]: String(handle.fd) };
    const channel = takeReadyChannel(env);
    expect(env[READY_FD_ENV]).toBeUndefined();
    channel!.failed('no such bucket:\n  create it');
    channel!.ready();
    expect(await readFile(file, 'utf8')).toBe('error no such bucket: create it\n');
    // The channel closed the descriptor itself.
    await expect(handle.close()).rejects.toThrow(/EBADF/);
  });
});
