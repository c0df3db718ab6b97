import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { createS3Client } from '../../src/s3/client.js';

interface SentRequest {
  hostname: string;
  port?: number;
  path: string;
  headers: Record<string, string>;
}

/**
 * The request `client` would send for a HEAD of `key` in `bucket`, as it leaves the
 * SDK (addressed and signed), stopped before the network: a virtual-hosted address
 * (BUCKET.HOST) cannot be reached on a test machine without wildcard DNS. The
 * end-to-end tests send the path-style and unsigned forms to a real server.
 */
async function sentRequest(client: S3Client, bucket: string, key: string): Promise<SentRequest> {
  let sent: SentRequest | undefined;
  const stop = new Error('stopped before sending');
  client.middlewareStack.add(
    () => async (args) => {
      sent = args.request as SentRequest;
      throw stop;
    },
    { step: 'deserialize', name: 'captureRequest' },
  );
  await expect(client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).rejects.toBe(stop);
  client.destroy();
  if (!sent) throw new Error('no request was built');
  return sent;
}

const keys = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' };

describe('S3 client addressing and signing', () => {
  it('addresses the bucket in the host name unless --path-style', async () => {
    const endpoint = 'https://s3.example.org:8443';
    const virtual = await sentRequest(createS3Client({ endpoint, region: 'us-east-1', pathStyle: false, credentials: keys }), 'photos', 'a/b.jpg');
    expect(virtual).toMatchObject({ hostname: 'photos.s3.example.org', port: 8443, path: '/a/b.jpg' });
    const path = await sentRequest(createS3Client({ endpoint, region: 'us-east-1', pathStyle: true, credentials: keys }), 'photos', 'a/b.jpg');
    expect(path).toMatchObject({ hostname: 's3.example.org', port: 8443, path: '/photos/a/b.jpg' });
  });

  it('uses path style for an IP endpoint, where a bucket cannot be a host name', async () => {
    const sent = await sentRequest(createS3Client({ endpoint: 'http://10.1.2.3:7480', region: 'us-east-1', pathStyle: false, credentials: keys }), 'photos', 'k');
    expect(sent).toMatchObject({ hostname: '10.1.2.3', path: '/photos/k' });
  });

  it('signs with the credentials given, and sends nothing of them with --no-sign-request', async () => {
    const signed = await sentRequest(createS3Client({ endpoint: 'http://10.1.2.3', region: 'us-east-1', pathStyle: true, credentials: keys }), 'b', 'k');
    expect(signed.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\//);
    const unsigned = await sentRequest(createS3Client({ endpoint: 'http://10.1.2.3', region: 'us-east-1', pathStyle: true, anonymous: true }), 'b', 'k');
    const names = Object.keys(unsigned.headers).map((name) => name.toLowerCase());
    expect(names).not.toContain('authorization');
    expect(names.filter((name) => /^x-amz-(date|content-sha256|security-token)$/.test(name))).toEqual([]);
  });
});
