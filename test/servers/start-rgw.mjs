// Shared by the tests (global setup) and the benchmark harness (--server rgw); typed in start-rgw.d.mts.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./ceph-rgw.sh', import.meta.url));

/**
 * Runs the script with `args`, collecting its output (stderr: the tail only, enough to
 * explain a failure); never rejects.
 * @param {string[]} args
 * @returns {{ child: import('node:child_process').ChildProcess, done: Promise<{ code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }> }}
 */
function runScript(args, env = process.env) {
  // detached: the script gets its own process group, so that a timeout can stop it
  // and whatever it runs (ceph, curl...) at once. The daemons it starts run in their
  // own sessions and are stopped by `down`, from their pid files.
  const child = spawn('bash', [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk) => (stderr = (stderr + chunk).slice(-6000)));
  const done = new Promise((resolve) => {
    child.once('error', (err) => resolve({ code: null, signal: null, stdout, stderr: `${stderr}\n${err.message}` }));
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

/** @param {string} dir */
async function down(dir) {
  const { code, signal, stderr } = await runScript(['down', dir]).done;
  if (code !== 0) throw new Error(`ceph-rgw.sh down ${dir} failed (${code ?? signal}):\n${stderr}`);
}

/**
 * Starts a single-node Ceph RGW (test/servers/ceph-rgw.sh) with its state in `dir`,
 * on free loopback ports. Needs the Debian packages (`bash test/servers/ceph-rgw.sh
 * install`, as root). Never blocks the event loop: the script runs as a child.
 *
 * A watchdog (`ceph-rgw.sh watch dir`) holds a pipe from this process: if this
 * process dies without calling stop(), the pipe closes and the watchdog stops the
 * daemons, so a crashed or killed test run leaves nothing behind.
 */
/**
 * @param {string} dir
 * @param {{ ldap?: boolean, timeoutMs?: number }} [options]
 */
export async function startRgw(dir, options = {}) {
  const timeoutMs = options.timeoutMs ?? 90_000;

  const watchdog = spawn('bash', [SCRIPT, 'watch', dir], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  const watchdogExited = new Promise((resolve) => {
    watchdog.once('error', () => resolve());
    watchdog.once('exit', () => resolve());
  });
  // The watchdog must not keep this process alive, nor its pipe.
  watchdog.unref();
  watchdog.stdin?.unref?.();

  let stopping;
  const stop = () => {
    stopping ??= (async () => {
      try {
        await down(dir);
      } finally {
        // Its own `down` then finds nothing left to stop, and it exits. Referenced
        // again while we wait: with nothing else pending (a run's teardown) an
        // unreferenced child would let node exit before the caller's next step.
        watchdog.ref();
        watchdog.stdin?.destroy();
        let timer;
        await Promise.race([watchdogExited, new Promise((resolve) => (timer = setTimeout(resolve, 15_000)))]);
        clearTimeout(timer);
      }
    })();
    return stopping;
  };

  const args = ['up', dir, ...(options.ldap ? ['--ldap'] : [])];
  // The script bounds its own wait for S3 by RGW_UP_TIMEOUT; the timer below is the
  // backstop for anything else hanging (a ceph command, a lost port).
  const { child, done } = runScript(args, { ...process.env, RGW_UP_TIMEOUT: String(Math.ceil(timeoutMs / 1000)) });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    if (child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }, timeoutMs + 15_000);
  const exit = await done;
  clearTimeout(timer);

  const fail = async (why) => {
    await stop().catch(() => undefined);
    throw new Error(`Ceph RGW did not start in ${dir}: ${why}${exit.stderr ? `\n${exit.stderr}` : ''}`);
  };

  if (timedOut) return fail(`no endpoint after ${timeoutMs + 15_000} ms`);
  if (exit.code !== 0) return fail(`ceph-rgw.sh up exited with ${exit.code ?? exit.signal}`);
  const endpoint = exit.stdout.trim().split('\n').pop() ?? '';
  if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(endpoint)) return fail(`unexpected output ${JSON.stringify(exit.stdout)}`);

  let ldapToken;
  if (options.ldap) {
    ldapToken = (await readFile(join(dir, 'ldap-token'), 'utf8')).trim();
    if (!ldapToken) return fail('empty ldap-token');
  }
  return { endpoint, ...(ldapToken === undefined ? {} : { ldapToken }), stop };
}
