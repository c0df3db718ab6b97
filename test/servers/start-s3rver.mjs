// Shared by the tests (global setup), the benchmark harness and the demo; typed in start-s3rver.d.mts.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';


const SCRIPT = fileURLToPath(new URL('./s3rver.mjs', import.meta.url));

/**
 * Starts the patched s3rver on a free loopback port, storing its buckets in
 * `dataDir`. It runs in a child process (not in the test process) so that its
 * synchronous file-system walks never stall the code under test, and with
 * --openssl-legacy-provider for its DES continuation tokens.
 */
/** @param {string} dataDir @param {{ timeoutMs?: number }} [options] */
export function startS3rver(dataDir, options = {}) {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', SCRIPT, '--dir', dataDir, '--port', '0', '--exit-with-stdin'],
    // stdin stays an open pipe: the server exits when it closes (we die).
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );

  const exited = new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });

  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    // Keep only the tail: enough to explain a failed start.
    stderr = (stderr + chunk).slice(-4000);
  });

  async function stop() {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    child.stdin.destroy();
  }

  return new Promise((resolve, reject) => {
    let stdout = '';
    let settled = false;
    const fail = (why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void stop().finally(() => reject(new Error(`s3rver did not start: ${why}${stderr ? `\n${stderr}` : ''}`)));
    };
    const timer = setTimeout(() => fail(`no port after ${timeoutMs} ms`), timeoutMs);

    child.on('error', (err) => fail(err.message));
    child.once('exit', (code, signal) => fail(`exited with ${code ?? signal}`));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      if (settled) return;
      stdout += chunk;
      const newline = stdout.indexOf('\n');
      if (newline === -1) return;
      let port;
      try {
        port = JSON.parse(stdout.slice(0, newline)).port;
      } catch {
        fail(`unexpected output ${JSON.stringify(stdout.slice(0, newline))}`);
        return;
      }
      if (typeof port !== 'number' || !Number.isInteger(port) || port <= 0) {
        fail(`unexpected port ${JSON.stringify(port)}`);
        return;
      }
      settled = true;
      clearTimeout(timer);
      resolve({ endpoint: `http://127.0.0.1:${port}`, stop });
    });
  });
}
