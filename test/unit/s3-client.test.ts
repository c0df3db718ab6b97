import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { createS3Client, type S3ClientOptions } from '../../src/s3/client.js';
import { DirectRequests } from '../../src/s3/direct-requests.js';

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

/** The HEAD DirectRequests would send for `key`, stopped before the network as above. */
async function directRequest(client: S3Client, bucket: string, key: string): Promise<SentRequest> {
  let sent: SentRequest | undefined;
  client.config.requestHandler.handle = async (request) => {
    sent = request as SentRequest;
    throw new Error('stopped before sending');
  };
  // Not sent: left to the SDK.
  expect(await new DirectRequests(client, bucket).head(key)).toBeUndefined();
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

  it('addresses and signs direct HEADs as the SDK does its HeadObject', async () => {
    const cases: Array<[Omit<S3ClientOptions, 'credentials'>, string, string]> = [
      [{ endpoint: 'https://s3.example.org:8443', region: 'us-east-1', pathStyle: false }, 'photos', 'a/b c+d.jpg'],
      [{ endpoint: 'https://s3.example.org:8443', region: 'eu-west-3', pathStyle: true }, 'photos', "a/été/!'()*"],
      [{ endpoint: 'http://10.1.2.3:7480', region: 'us-east-1', pathStyle: false }, 'photos', 'k'],
      [{ region: 'eu-west-3', pathStyle: false }, 'photos', 'x/y'],
      [{ region: 'eu-west-3', pathStyle: false }, 'dotted.bucket.name', 'x/y'],
    ];
    for (const [options, bucket, key] of cases) {
      const what = JSON.stringify([options, bucket, key]);
      const sdk = await sentRequest(createS3Client({ ...options, credentials: keys }), bucket, key);
      const direct = await directRequest(createS3Client({ ...options, credentials: keys }), bucket, key);
      expect({ hostname: direct.hostname, port: direct.port, path: direct.path }, what).toEqual({ hostname: sdk.hostname, port: sdk.port, path: sdk.path });
      expect(direct.headers.host, what).toBe(`${sdk.hostname}${sdk.port === undefined ? '' : `:${sdk.port}`}`);
      // The same credential scope: key, day, region, service.
      const scope = (authorization: string | undefined): string | undefined => /Credential=[^,]*/.exec(authorization ?? '')?.[0];
      expect(scope(direct.headers.authorization), what).toBe(scope(sdk.headers.authorization));
      expect(direct.headers.authorization, what).toContain('SignedHeaders=host;x-amz-content-sha256;x-amz-date,');
    }
  });

  it('keeps one signer for all requests instead of building one per request', async () => {
    const client = createS3Client({ endpoint: 'http://10.1.2.3', region: 'us-east-1', pathStyle: true, credentials: keys });
    const scheme = { name: 'sigv4', signingName: 's3', signingRegion: 'us-east-1', properties: {} };
    const first = await client.config.signer(scheme);
    expect(await client.config.signer({ ...scheme })).toBe(first);
    expect(await client.config.signer({ ...scheme, signingRegion: 'eu-west-3' })).not.toBe(first);
    client.destroy();
  });
});
