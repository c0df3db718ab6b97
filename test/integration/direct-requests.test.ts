// src/s3/direct-requests.ts against the run's S3 server, over real HTTP: the HEADs and
// GETs that skip the SDK's middleware must answer exactly what the SDK's answer, for
// any key, and leave every answer but the plain ones (HEAD: 200, 404; GET: 200, 206) to
// the SDK.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, PutBucketPolicyCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startLatencyProxy, type LatencyProxy } from '../../bench/latency-proxy.mjs';
import { Bucket, type ObjectInfo } from '../../src/s3/bucket.js';
import { createS3Client } from '../../src/s3/client.js';
import { DirectRequests } from '../../src/s3/direct-requests.js';
import { FsError } from '../../src/errors.js';
import { USER_AGENT, VERSION } from '../../src/version.js';
import type { DirectGetAnswer } from '../../src/s3/direct-requests.js';
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

const md5 = (bytes: Buffer): string => createHash('md5').update(bytes).digest('hex');

async function bytesOf(answer: DirectGetAnswer): Promise<Buffer | undefined> {
  if (answer === undefined || !('got' in answer)) return undefined;
  const pieces: Buffer[] = [];
  for await (const piece of answer.got.Body as Readable) pieces.push(piece as Buffer);
  return Buffer.concat(pieces);
}

/** A body of 3 MiB + 5 that differs at every offset, so that a misplaced byte shows. */
const BIG = Buffer.from(Array.from({ length: 3 * 1024 * 1024 + 5 }, (_, i) => (i * 31 + (i >> 12)) & 0xff));

let bucket: string;
const clients: S3Client[] = [];
let proxy: S3Proxy | undefined;
let latencyProxy: LatencyProxy | undefined;

function mountClient(
  endpoint: string,
  options: { anonymous?: boolean; credentials?: { accessKeyId: string; secretAccessKey: string }; checksums?: 'when-supported' } = {},
): S3Client {
  const client = createS3Client({
    endpoint,
    pathStyle: true,
    region: 'us-east-1',
    checksums: options.checksums ?? 'when-required',
    ...(options.anonymous ? { anonymous: true } : { credentials: options.credentials ?? TEST_CREDENTIALS }),
    maxAttempts: 3,
  });
  clients.push(client);
  return client;
}

beforeAll(async () => {
  bucket = await createTestBucket('direct-requests');
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
  await testClient().send(new PutObjectCommand({ Bucket: bucket, Key: 'big file.bin', Body: BIG }));
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

describe('DirectRequests', () => {
  it('answers what the SDK answers, for odd keys, with one signed request each and none of the SDK\'s', { timeout: 30_000 }, async () => {
    proxy = await startS3Proxy({ upstream: testEndpoint() });
    const direct = new DirectRequests(mountClient(proxy.endpoint), bucket);
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
      expect(request?.headers['user-agent']).toBe(USER_AGENT);
      expect(request?.url.startsWith(`/${bucket}/`)).toBe(true);
    }
  });

  it('answers a missing key itself, with one request', { timeout: 10_000 }, async () => {
    proxy = await startS3Proxy({ upstream: testEndpoint() });
    const direct = new DirectRequests(mountClient(proxy.endpoint), bucket);
    expect(await direct.head('no/such key')).toEqual({ missing: true });
    expect(proxy.requests.map((r) => [r.method, r.headers['amz-sdk-invocation-id']])).toEqual([['HEAD', undefined]]);
  });

  it('leaves refused credentials to the SDK, whose error the mount shows', { timeout: 15_000 }, async () => {
    proxy = await startS3Proxy({ upstream: testEndpoint() });
    const client = mountClient(proxy.endpoint, { credentials: { accessKeyId: TEST_CREDENTIALS.accessKeyId, secretAccessKey: 'not-the-secret' } });
    expect(await new DirectRequests(client, bucket).head('plain.txt')).toEqual({ refused: true });
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

  it('takes a HEAD refused where the server let direct requests in as a denied key, unless its clock is off', { timeout: 15_000 }, async () => {
    latencyProxy = await startLatencyProxy({ upstream: testEndpoint(), latencyMs: 0 });
    proxy = await startS3Proxy({ upstream: latencyProxy.endpoint });
    const heads = new Bucket(mountClient(proxy.endpoint), bucket);
    const sdkSent = (): boolean[] => proxy!.requests.splice(0).map((r) => r.headers['amz-sdk-invocation-id'] !== undefined);
    // Refused before anything was let in: the SDK asks too (a signature it makes and we do not).
    latencyProxy.setFault({ kinds: ['HEAD'], status: 403, code: 'AccessDenied', times: 2 });
    await expect(heads.head('plain.txt')).rejects.toMatchObject({ code: 'EACCES' });
    expect(sdkSent()).toEqual([false, true]);
    expect(await heads.head('no/such key')).toBeUndefined(); // let in: 404
    expect(sdkSent()).toEqual([false]);
    // Now a 403 is the key's: one request, no SDK.
    latencyProxy.setFault({ kinds: ['HEAD'], status: 403, code: 'AccessDenied', times: 1 });
    await expect(heads.head('plain.txt')).rejects.toMatchObject({ code: 'EACCES' });
    expect(sdkSent()).toEqual([false]);
    // Unless the answer's clock is 10 minutes off ours: the SDK corrects that and asks again.
    latencyProxy.setFault({ kinds: ['HEAD'], status: 403, code: 'AccessDenied', times: 1, date: new Date(Date.now() - 10 * 60_000) });
    expect((await heads.head('plain.txt'))?.size).toBe(Buffer.byteLength('body 0 of plain.txt'));
    expect(sdkSent()).toEqual([false, true]);
    // A GET let in says as much as a HEAD.
    const reads = new Bucket(mountClient(proxy.endpoint), bucket);
    expect((await reads.getRange('plain.txt', 0, 4)).toString()).toBe('body');
    latencyProxy.setFault({ kinds: ['HEAD'], status: 403, code: 'AccessDenied', times: 1 });
    await expect(reads.head('plain.txt')).rejects.toMatchObject({ code: 'EACCES' });
    expect(sdkSent()).toEqual([false, false]);
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

  it('sends anonymous HEADs and GETs unsigned when the client signs nothing', { timeout: 15_000 }, async () => {
    if (testServer() === 'rgw') {
      // RGW enforces access (s3rver lets anyone do anything): allow anonymous reads.
      const policy = {
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: '*', Action: ['s3:GetObject'], Resource: [`arn:aws:s3:::${bucket}/*`] }],
      };
      await testClient().send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: JSON.stringify(policy) }));
    }
    proxy = await startS3Proxy({ upstream: testEndpoint() });
    const direct = new DirectRequests(mountClient(proxy.endpoint, { anonymous: true }), bucket);
    const answer = await direct.head('plain.txt');
    expect(answer && 'found' in answer ? answer.found.ContentLength : undefined).toBe(Buffer.byteLength('body 0 of plain.txt'));
    expect((await bytesOf(await direct.get('plain.txt', { range: 'bytes=0-3' })))?.toString()).toBe('body');
    expect(proxy.requests.map((r) => r.method)).toEqual(['HEAD', 'GET']);
    for (const request of proxy.requests) {
      expect(request.headers.authorization).toBeUndefined();
      expect(request.headers['x-amz-date']).toBeUndefined();
      expect(request.headers['amz-sdk-invocation-id']).toBeUndefined();
    }
  });

  it('GETs the bytes the SDK GETs, for odd keys and ranges, with one signed request each and none of the SDK\'s', { timeout: 30_000 }, async () => {
    proxy = await startS3Proxy({ upstream: testEndpoint() });
    const direct = new DirectRequests(mountClient(proxy.endpoint), bucket);
    for (const key of ODD_KEYS) {
      const sdk = await testClient().send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: 'bytes=2-' }));
      const expected = Buffer.from(await sdk.Body!.transformToByteArray());
      proxy.requests.splice(0);
      const answer = await direct.get(key, { range: 'bytes=2-', 'if-match': sdk.ETag });
      expect((await bytesOf(answer))?.toString(), key).toBe(expected.toString());
      expect(answer && 'got' in answer ? [answer.got.ContentRange, answer.got.ContentLength] : undefined, key).toEqual([sdk.ContentRange, sdk.ContentLength]);
      expect(proxy.requests.map((r) => [r.method, r.headers.range, r.headers['if-match'], r.headers['amz-sdk-invocation-id']]), key).toEqual([['GET', 'bytes=2-', sdk.ETag, undefined]]);
      expect(proxy.requests[0]?.headers.authorization).toMatch(/SignedHeaders=host;if-match;range;x-amz-content-sha256;x-amz-date,/);
    }
    for (const [range, from, to] of [
      ['bytes=0-1048575', 0, 1024 * 1024],
      ['bytes=1048570-2097159', 1048570, 2097160],
      ['bytes=3145728-', 3145728, BIG.length],
      [undefined, 0, BIG.length],
    ] as const) {
      const bytes = await bytesOf(await direct.get('big file.bin', { range }));
      expect(bytes && md5(bytes), String(range)).toBe(md5(BIG.subarray(from, to)));
    }
  });

  it('leaves a GET whose version changed to the SDK, and the read fails with ESTALE', { timeout: 15_000 }, async () => {
    proxy = await startS3Proxy({ upstream: testEndpoint() });
    const client = mountClient(proxy.endpoint);
    const stale = '"0123456789abcdef0123456789abcdef"';
    expect(await new DirectRequests(client, bucket).get('plain.txt', { range: 'bytes=0-3', 'if-match': stale })).toBeUndefined();
    const err = await new Bucket(client, bucket).getRange('plain.txt', 0, 4, stale).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FsError);
    expect((err as FsError).code).toBe('ESTALE');
    // The direct GET alone, then the Bucket's read: direct, then the SDK's; all answered 412.
    expect(proxy.requests.map((r) => r.headers['amz-sdk-invocation-id'] !== undefined)).toEqual([false, false, true]);
  });

  it('reads through Bucket with direct GETs alone when the server answers them', { timeout: 15_000 }, async () => {
    proxy = await startS3Proxy({ upstream: testEndpoint() });
    const reads = new Bucket(mountClient(proxy.endpoint), bucket);
    const info = await reads.head('big file.bin');
    const bytes = await reads.getRange('big file.bin', 1000, 2_500_000, info?.etag);
    expect(md5(bytes)).toBe(md5(BIG.subarray(1000, 2_500_000)));
    expect(md5(await reads.getObject('big file.bin'))).toBe(md5(BIG));
    expect(proxy.requests.map((r) => [r.method, r.headers['amz-sdk-invocation-id']])).toEqual([
      ['HEAD', undefined],
      ['GET', undefined],
      ['GET', undefined],
    ]);
  });

  it("tells, from a GET's answer, what a HEAD tells of the object: directly and through the SDK, and nothing when the answer has no ETag", { timeout: 15_000 }, async () => {
    proxy = await startS3Proxy({ upstream: testEndpoint() });
    const heads = new Bucket(mountClient(proxy.endpoint), bucket);
    for (const checksums of [undefined, 'when-supported'] as const) {
      const reads = new Bucket(mountClient(proxy.endpoint, checksums ? { checksums } : {}), bucket);
      for (const key of [...ODD_KEYS, 'big file.bin']) {
        const told: ObjectInfo[] = [];
        await reads.streamRange(key, 0, 3, undefined, () => undefined, (info) => told.push(info));
        expect(told, `${key}, checksums ${checksums ?? 'when-required'}`).toEqual([await heads.head(key)]);
      }
    }
    const noEtags = await startS3Proxy({ upstream: testEndpoint(), dropAnswerHeaders: ['etag'] });
    try {
      const told: ObjectInfo[] = [];
      const bytes: Buffer[] = [];
      await new Bucket(mountClient(noEtags.endpoint), bucket).streamRange('big file.bin', 0, 10, undefined, (piece) => bytes.push(piece), (info) => told.push(info));
      expect(Buffer.concat(bytes)).toEqual(BIG.subarray(0, 10));
      expect(told).toEqual([]);
    } finally {
      await noEtags.close();
    }
  });

  it('leaves GETs to the SDK under --checksums when-supported, which checks what they answer', { timeout: 15_000 }, async () => {
    proxy = await startS3Proxy({ upstream: testEndpoint() });
    const reads = new Bucket(mountClient(proxy.endpoint, { checksums: 'when-supported' }), bucket);
    expect(md5(await reads.getRange('big file.bin', 0, 1000))).toBe(md5(BIG.subarray(0, 1000)));
    expect((await reads.head('big file.bin'))?.size).toBe(BIG.length);
    expect(proxy.requests.map((r) => [r.method, r.headers['amz-sdk-invocation-id'] !== undefined, r.headers['x-amz-checksum-mode']])).toEqual([
      ['GET', true, 'ENABLED'],
      ['HEAD', false, undefined],
    ]);
  });

  it('says s3mount and its version in the User-Agent of direct and SDK requests alike', { timeout: 15_000 }, async () => {
    proxy = await startS3Proxy({ upstream: testEndpoint() });
    const client = mountClient(proxy.endpoint);
    expect(USER_AGENT).toBe(`s3mount/${VERSION}`);
    expect(VERSION).toMatch(/^\d+\.\d+\.\d+/);
    expect((await new Bucket(client, bucket).head('plain.txt'))?.size).toBe(Buffer.byteLength('body 0 of plain.txt'));
    await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'plain.txt' }));
    const [direct, sdk] = proxy.requests;
    expect(direct?.headers['user-agent']).toBe(USER_AGENT);
    expect(sdk?.headers['amz-sdk-invocation-id']).toBeDefined();
    expect(sdk?.headers['user-agent']).toContain(USER_AGENT);
  });
});
