import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startS3rver } from './servers/start-s3rver.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Endpoint of the run's s3rver, e.g. http://127.0.0.1:40123 */
    s3Endpoint: string;
  }
}

/**
 * One s3rver for the whole run, in a fresh temporary directory. Tests read the
 * endpoint with `inject('s3Endpoint')` (or S3MOUNT_TEST_ENDPOINT, which child
 * processes inherit) and each test file makes its own bucket (test/support/s3.ts).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dataDir = await mkdtemp(join(tmpdir(), 's3mount-s3rver-'));
  let server;
  try {
    server = await startS3rver(dataDir);
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  project.provide('s3Endpoint', server.endpoint);
  process.env.S3MOUNT_TEST_ENDPOINT = server.endpoint;

  return async () => {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
}
