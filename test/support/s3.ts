// Raw-SDK helpers for tests against the run's S3 server (test/global-setup.ts).
// They deliberately bypass src/s3 so that tests check src/s3 against the
// server, not against itself.
import { randomBytes } from 'node:crypto';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type HeadObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { inject } from 'vitest';

/** s3rver's built-in account; the RGW test server's user has the same keys. */
export const TEST_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

/**
 * Which server the run uses (S3MOUNT_TEST_SERVER, test/global-setup.ts): 's3rver', or
 * 'rgw' (a real Ceph RGW). For a test that only one of them can pass, say so with
 * `it.skipIf(testServer() !== 'rgw')(...)` and why, rather than bending the test.
 */
export function testServer(): 's3rver' | 'rgw' {
  let server: string | undefined;
  try {
    server = inject('s3Server');
  } catch {
    // not inside a vitest worker: fall back to the environment
  }
  server ??= process.env.S3MOUNT_TEST_SERVER ?? 's3rver';
  if (server !== 's3rver' && server !== 'rgw') throw new Error(`unknown test server ${JSON.stringify(server)}`);
  return server;
}

export function testEndpoint(): string {
  let endpoint: string | undefined;
  try {
    endpoint = inject('s3Endpoint');
  } catch {
    // not inside a vitest worker: fall back to the environment
  }
  endpoint ??= process.env.S3MOUNT_TEST_ENDPOINT;
  if (!endpoint) throw new Error('no test S3 endpoint: is test/global-setup.ts registered in vitest.config.ts?');
  return endpoint;
}

let shared: S3Client | undefined;

/** An SDK client for the test server: path style, us-east-1, fixed credentials (never the environment's). */
export function testClient(): S3Client {
  shared ??= new S3Client({
    endpoint: testEndpoint(),
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: TEST_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return shared;
}

/** Creates a fresh bucket with a unique, valid name derived from `label`. */
export async function createTestBucket(label: string): Promise<string> {
  const slug = label
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 30);
  const name = `t-${slug || 'bucket'}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`.replace(/--+/g, '-');
  await testClient().send(new CreateBucketCommand({ Bucket: name }));
  return name;
}

export async function putObject(
  bucket: string,
  key: string,
  body: string | Buffer = '',
  metadata?: Record<string, string>,
): Promise<string> {
  const out = await testClient().send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: Buffer.byteLength(body), Metadata: metadata }),
  );
  return out.ETag ?? '';
}

export async function getObjectBytes(bucket: string, key: string): Promise<Buffer> {
  const out = await testClient().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  if (!out.Body) return Buffer.alloc(0);
  return Buffer.from(await out.Body.transformToByteArray());
}

/** HeadObject's answer, or undefined when the key does not exist. */
export async function headObject(bucket: string, key: string): Promise<HeadObjectCommandOutput | undefined> {
  try {
    return await testClient().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  } catch (err) {
    if (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 404) return undefined;
    throw err;
  }
}

/** Every key under `prefix`, in the server's order, across all pages. */
export async function listKeys(bucket: string, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    // URL-encoded keys come back exact (s3rver escapes XML twice in plain listings).
    const page = await testClient().send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token, EncodingType: 'url' }),
    );
    // S3 form-encodes: a space may come as "+", a "+" as "%2B".
    const decode = page.EncodingType === 'url' ? (k: string) => decodeURIComponent(k.replace(/\+/g, ' ')) : (k: string) => k;
    for (const object of page.Contents ?? []) if (object.Key !== undefined) keys.push(decode(object.Key));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}
