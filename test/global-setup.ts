import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startRgw } from './servers/start-rgw.mjs';
import { startS3rver } from './servers/start-s3rver.mjs';

/** The S3 servers a run can use: S3MOUNT_TEST_SERVER=s3rver (default) or rgw. */
export type TestServerKind = 's3rver' | 'rgw';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Endpoint of the run's S3 server, e.g. http://127.0.0.1:40123 */
    s3Endpoint: string;
    /** Which server that is, for tests that only one of them can pass. */
    s3Server: TestServerKind;
    /**
     * RGW only (started with LDAP authentication): an access key that is an LDAP token,
     * valid with any secret, blank included; '' on s3rver.
     */
    ldapToken: string;
  }
}

function serverKind(): TestServerKind {
  const value = process.env.S3MOUNT_TEST_SERVER ?? 's3rver';
  if (value === 's3rver' || value === 'rgw') return value;
  throw new Error(`S3MOUNT_TEST_SERVER must be s3rver or rgw, not ${JSON.stringify(value)}`);
}

/**
 * One S3 server for the whole run, in a fresh temporary directory: s3rver, or with
 * S3MOUNT_TEST_SERVER=rgw a single-node Ceph RGW (test/servers/ceph-rgw.sh; its
 * Debian packages must be installed: `bash test/servers/ceph-rgw.sh install`).
 * Both take the credentials S3RVER/S3RVER. Tests read the endpoint with
 * `inject('s3Endpoint')` and the kind with `inject('s3Server')` (or
 * S3MOUNT_TEST_ENDPOINT and S3MOUNT_TEST_SERVER, which child processes inherit),
 * and each test file makes its own bucket (test/support/s3.ts).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const kind = serverKind();
  const dataDir = await mkdtemp(join(tmpdir(), `s3mount-${kind}-`));
  let server: { endpoint: string; ldapToken?: string; stop(): Promise<void> };
  try {
    // RGW takes ~15 s to come up (most of it creating its pools).
    // RGW runs with LDAP authentication on: the S3RVER keys work as before, and the
    // token access keys that sites such as OSiRIS hand out can be tested too.
    server = kind === 'rgw' ? await startRgw(dataDir, { ldap: true, timeoutMs: 90_000 }) : await startS3rver(dataDir);
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  project.provide('s3Endpoint', server.endpoint);
  project.provide('s3Server', kind);
  project.provide('ldapToken', server.ldapToken ?? '');
  process.env.S3MOUNT_TEST_ENDPOINT = server.endpoint;
  process.env.S3MOUNT_TEST_SERVER = kind;

  return async () => {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
}
