// src/s3/direct-head.ts against the run's S3 server, over real HTTP: the HEADs that
// skip the SDK's middleware must answer exactly what the SDK's HeadObject answers, for
// any key, and leave every answer other than 200 and 404 to the SDK.
import { HeadObjectCommand, PutBucketPolicyCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startLatencyProxy, type LatencyProxy } from '../../bench/latency-proxy.mjs';
import { Bucket } from '../../src/s3/bucket.js';
import { createS3Client } from '../../src/s3/client.js';
import { DirectHead } from '../../src/s3/direct-head.js';
import { FsError } from '../../src/errors.js';
import { TEST_CREDENTIALS, createTestBucket, testClient, testEndpoint, testServer } from '../support/s3.js';
import { startS3Proxy, type S3Proxy } from '../support/s3-proxy.js';

// Keys whose escaping differs between encodeURI, encodeURIComponent and S3's own rules.
const ODD_KEYS = [
  'plain.txt',
  'dir/sub/file.bin',
  'with space and+plus',
  'percent%20not-a-space',
  'question?mark#hash',
  "sub-delims!'()*&=;,$@:",
  'tilde~under_score-dash.dot',
  'unicode/été/日本語.txt',
  ' leading and trailing ',
  'ends-with-dot.',
];

let bucket: string;
const clients: S3Client[] = [];
let proxy: S3Proxy | undefined;
let latencyProxy: LatencyProxy | undefined;

function mountClient(endpoint: string, options: { anonymous?: boolean; credentials?: { accessKeyId: string; secretAccessKey: string } } = {}): S3Client {
  const client = createS3Client({
    endpoint,
    pathStyle: true,
    region: 'us-east-1',
    ...(options.anonymous ? { anonymous: true } : { credentials: options.credentials ?? TEST_CREDENTIALS }),
    maxAttempts: 3,
  });
  clients.push(client);
  return client;
}

beforeAll(async () => {
  bucket = await createTestBucket('direct-head');
  for (const [i, key] of ODD_KEYS.entries()) {
    await testClient().send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: `body ${i} of ${key}`,
        ContentType: i % 2 === 0 ? 'text/plain; charset=utf-8' : 'application/x-odd',
        Metadata: { mode: String(0o100600 + i), mtime: `${1_700_000_000 + i}.5`, 'Mixed-Case': `value ${i}` },
      }),
    );
  }
}, 60_000);

afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
  await latencyProxy?.close();
  latencyProxy = undefined;
  for (const client of clients.splice(0)) client.destroy();
});

afterAll(async () => {
  for (const client of clients.splice(0)) client.destroy();
});

describe('DirectHead', () => {
  it('answers what the SDK answers, for odd keys, with one signed request each and none of the SDK\'s', { timeout: 30_000 }, async () => {
    proxy = await startS3Proxy({ upstream: testEndpoint() });
    const direct = new DirectHead(mountClient(proxy.endpoint), bucket);
    for (const key of ODD_KEYS) {
      const sdk = await testClient().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      proxy.requests.splice(0);
      const answer = await direct.head(key);
      expect(answer, key).toEqual({
        found: {
          ContentLength: sdk.ContentLength,
          ETag: sdk.ETag,
          LastModified: sdk.LastModified,
          Metadata: sdk.Metadata,
          ContentType: sdk.ContentType,
        },
      });
      expect(proxy.requests.map((r) => r.method), key).toEqual(['HEAD']);
      const [request] = proxy.requests;
      expect(request?.headers.authorization).toMatch(new RegExp(`^AWS4-HMAC-SHA256 Credential=${TEST_CREDENTIALS.accessKeyId}/\\d{8}/us-east-1/s3/aws4_request`));
      // Every request of the SDK's middleware carries its invocation id: this one did not go through it.
      expect(request?.headers['amz-sdk-invocation-id']).toBeUndefined();
      expect(request?.url.startsWith(`/${bucket}/`)).toBe(true);
    }
  });

  it('answers a missing key itself, with one request', { timeout: 10_000 }, async () => {
    proxy = await startS3Proxy({ upstream: testEndpoint() });
    const direct = new DirectHead(mountClient(proxy.endpoint), bucket);
    expect(await direct.head('no/such key')).toEqual({ missing: true });
    expect(proxy.requests.map((r) => [r.method, r.headers['amz-sdk-invocation-id']])).toEqual([['HEAD', undefined]]);
  });

  it('leaves refused credentials to the SDK, whose error the mount shows', { timeout: 15_000 }, async () => {
    proxy = await startS3Proxy({ upstream: testEndpoint() });
    const client = mountClient(proxy.endpoint, { credentials: { accessKeyId: TEST_CREDENTIALS.accessKeyId, secretAccessKey: 'not-the-secret' } });
    expect(await new DirectHead(client, bucket).head('plain.txt')).toEqual({ refused: true });
    const sdkSent = (): boolean[] => proxy!.requests.splice(0).map((r) => r.headers['amz-sdk-invocation-id'] !== undefined);
    expect(sdkSent()).toEqual([false]);
    const fromSdk = new Bucket(client, bucket);
    for (let i = 0; i < 2; i++) {
      const err = await fromSdk.head('plain.txt').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(FsError);
      expect((err as FsError).code).toBe('EACCES');
      // Each time the direct HEAD, then the SDK's (which does not retry a 403): refused
      // both ways, the direct HEADs go on.
      expect(sdkSent()).toEqual([false, true]);
    }
  });

  it('hands every HEAD to the SDK once the server let the SDK in where it refused a direct HEAD', { timeout: 15_000 }, async () => {
    // Refused once whatever the signature, as a server would refuse ours and not the SDK's.
    latencyProxy = await startLatencyProxy({ upstream: testEndpoint(), latencyMs: 0 });
    proxy = await startS3Proxy({ upstream: latencyProxy.endpoint });
    latencyProxy.setFault({ kinds: ['HEAD'], status: 403, code: 'AccessDenied', times: 1 });
    const heads = new Bucket(mountClient(proxy.endpoint), bucket);
    const sdkSent = (): boolean[] => proxy!.requests.splice(0).map((r) => r.headers['amz-sdk-invocation-id'] !== undefined);
    expect((await heads.head('plain.txt'))?.size).toBe(Buffer.byteLength('body 0 of plain.txt'));
    expect(sdkSent()).toEqual([false, true]);
    expect((await heads.head('dir/sub/file.bin'))?.size).toBe(Buffer.byteLength('body 1 of dir/sub/file.bin'));
    expect(await heads.head('no/such key')).toBeUndefined();
    expect(sdkSent()).toEqual([true, true]);
  });

  it('leaves a failing server to the SDK, which retries it', { timeout: 15_000 }, async () => {
    latencyProxy = await startLatencyProxy({ upstream: testEndpoint(), latencyMs: 0 });
    const client = mountClient(latencyProxy.endpoint);
    latencyProxy.setFault({ kinds: ['HEAD'], status: 503, code: 'SlowDown', times: 2 });
    const info = await new Bucket(client, bucket).head('dir/sub/file.bin');
    expect(info?.size).toBe(Buffer.byteLength('body 1 of dir/sub/file.bin'));
    expect(info?.metadata).toEqual({ mode: String(0o100601), mtime: '1700000001.5', 'mixed-case': 'value 1' });
    // The direct HEAD and the SDK's first attempt got the 503s, the SDK's retry the object.
    expect(latencyProxy.stats().requests.HEAD).toBe(3);
    expect(latencyProxy.stats().faulted).toBe(2);
  });

  it('sends anonymous HEADs unsigned when the client signs nothing', { timeout: 15_000 }, async () => {
    if (testServer() === 'rgw') {
      // RGW enforces access (s3rver lets anyone do anything): allow anonymous reads.
      const policy = {
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: '*', Action: ['s3:GetObject'], Resource: [`arn:aws:s3:::${bucket}/*`] }],
      };
      await testClient().send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: JSON.stringify(policy) }));
    }
    proxy = await startS3Proxy({ upstream: testEndpoint() });
    const answer = await new DirectHead(mountClient(proxy.endpoint, { anonymous: true }), bucket).head('plain.txt');
    expect(answer && 'found' in answer ? answer.found.ContentLength : undefined).toBe(Buffer.byteLength('body 0 of plain.txt'));
    expect(proxy.requests.length).toBe(1);
    expect(proxy.requests[0]?.headers.authorization).toBeUndefined();
    expect(proxy.requests[0]?.headers['amz-sdk-invocation-id']).toBeUndefined();
  });
});
