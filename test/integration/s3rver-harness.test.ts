// The test server harness itself: how tests find the run's server, and that a
// server started with startS3rver() stops for good.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { startS3rver } from '../servers/start-s3rver.mjs';
import { TEST_CREDENTIALS, testEndpoint } from '../support/s3.js';

describe('s3rver harness', () => {
  it('gives every test file the run\'s endpoint, through inject() and the environment', { timeout: 5_000 }, () => {
    expect(testEndpoint()).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(process.env.S3MOUNT_TEST_ENDPOINT).toBe(testEndpoint());
  });

  it('starts a server on a free port and stops exactly that one', { timeout: 30_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 's3mount-harness-'));
    const server = await startS3rver(dir);
    const client = new S3Client({
      endpoint: server.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: TEST_CREDENTIALS,
      maxAttempts: 1,
    });
    try {
      expect(server.endpoint).not.toBe(testEndpoint());
      const answer = await client.send(new ListBucketsCommand({}));
      expect(answer.$metadata.httpStatusCode).toBe(200);
      await server.stop();
      await expect(client.send(new ListBucketsCommand({}))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
      // the run's server is still there
      const shared = new S3Client({ endpoint: testEndpoint(), region: 'us-east-1', forcePathStyle: true, credentials: TEST_CREDENTIALS });
      expect((await shared.send(new ListBucketsCommand({}))).$metadata.httpStatusCode).toBe(200);
      shared.destroy();
    } finally {
      client.destroy();
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
