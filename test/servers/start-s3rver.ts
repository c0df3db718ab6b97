import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface RunningS3rver {
  /** e.g. http://127.0.0.1:40123 (path-style, region us-east-1, credentials S3RVER/S3RVER) */
  endpoint: string;
  /** Stops exactly this server process and resolves once it has exited. */
  stop(): Promise<void>;
}

const SCRIPT = fileURLToPath(new URL('./s3rver.mjs', import.meta.url));

/**
 * Starts the patched s3rver on a free loopback port, storing its buckets in
 * `dataDir`. It runs in a child process (not in the test process) so that its
 * synchronous file-system walks never stall the code under test, and with
 * --openssl-legacy-provider for its DES continuation tokens.
 */
export function startS3rver(dataDir: string, options: { timeoutMs?: number } = {}): Promise<RunningS3rver> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', SCRIPT, '--dir', dataDir, '--port', '0', '--exit-with-stdin'],
    // stdin stays an open pipe: the server exits when it closes (we die).
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );

  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });

  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    // Keep only the tail: enough to explain a failed start.
    stderr = (stderr + chunk).slice(-4000);
  });

  async function stop(): Promise<void> {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    child.stdin.destroy();
  }

  return new Promise<RunningS3rver>((resolve, reject) => {
    let stdout = '';
    let settled = false;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void stop().finally(() => reject(new Error(`s3rver did not start: ${why}${stderr ? `\n${stderr}` : ''}`)));
    };
    const timer = setTimeout(() => fail(`no port after ${timeoutMs} ms`), timeoutMs);

    child.on('error', (err) => fail(err.message));
    child.once('exit', (code, signal) => fail(`exited with ${code ?? signal}`));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (settled) return;
      stdout += chunk;
      const newline = stdout.indexOf('\n');
      if (newline === -1) return;
      let port: unknown;
      try {
        port = (JSON.parse(stdout.slice(0, newline)) as { port?: unknown }).port;
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
