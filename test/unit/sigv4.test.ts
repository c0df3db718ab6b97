// src/s3/sigv4.ts against the SDK's own signer: the same request, the same moment and
// the same credentials must give the same signature, for any escaped path and with the
// headers a chunk GET sends (Range, If-Match).
import { S3Client } from '@aws-sdk/client-s3';
import { HttpRequest } from '@smithy/core/protocols';
import { afterAll, describe, expect, it } from 'vitest';
import { EMPTY_PAYLOAD_SHA256, SigV4, type SigningCredentials } from '../../src/s3/sigv4.js';

const CREDENTIALS: SigningCredentials = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
const WITH_TOKEN: SigningCredentials = { ...CREDENTIALS, sessionToken: 'FwoGZXIvYXdzEXAMPLE//token+with/odd=chars' };
const PATHS = ['/bucket/plain.txt', '/bucket/with%20space%20and%2Bplus', "/bucket/sub-delims%21%27%28%29%2A%26%3D%3B%2C%24%40%3A", '/bucket/unicode/%C3%A9t%C3%A9/%E6%97%A5', '/bucket/a%2525b', '/'];

const clients: S3Client[] = [];
afterAll(() => clients.forEach((client) => client.destroy()));

/** The signer an S3 client of the SDK signs its requests with. */
async function sdkHeaders(
  method: string,
  path: string,
  credentials: SigningCredentials,
  region: string,
  now: Date,
  extra: Record<string, string>,
): Promise<Record<string, string>> {
  const client = new S3Client({ region, credentials });
  clients.push(client);
  const signer = await client.config.signer({ name: 'sigv4', signingName: 's3', signingRegion: region, properties: {} });
  const request = new HttpRequest({
    method,
    protocol: 'https:',
    hostname: 'example.com',
    port: 8443,
    path,
    query: {},
    headers: { ...extra, host: 'example.com:8443', 'x-amz-content-sha256': EMPTY_PAYLOAD_SHA256 },
  });
  const signed = (await signer.sign(request, { signingDate: now, signingRegion: region, signingService: 's3' })) as HttpRequest;
  return signed.headers;
}

describe('SigV4', () => {
  it('signs as the SDK signs, with and without a session token, across days and regions', async () => {
    const dates = [new Date('2026-12-07T01:02:03.456Z'), new Date('2026-12-08T23:59:59.999Z')];
    for (const credentials of [CREDENTIALS, WITH_TOKEN]) {
      for (const region of ['us-east-1', 'eu-west-3']) {
        const ours = new SigV4(region, 's3');
        for (const now of dates) {
          for (const path of PATHS) {
            for (const [method, extra] of [
              ['HEAD', {}],
              ['GET', { range: 'bytes=0-8388607' }],
              ['GET', { range: 'bytes=16777216-', 'if-match': '"9b2cf535f27731c974343645a3985328-12"' }],
            ] as const) {
              const sdk = await sdkHeaders(method, path, credentials, region, now, extra);
              const mine = ours.headers({ method, host: 'example.com:8443', path, headers: { ...extra } }, credentials, now);
              expect(mine.authorization, `${method} ${path} ${region} ${now.toISOString()}`).toBe(sdk.authorization);
              expect(mine['x-amz-date']).toBe(sdk['x-amz-date']);
              expect(mine['x-amz-security-token']).toBe(sdk['x-amz-security-token']);
              expect(mine.range).toBe(sdk.range);
            }
          }
        }
      }
    }
  });

  it('makes a new signing key for new credentials', () => {
    const signer = new SigV4('us-east-1', 's3');
    const now = new Date('2026-12-07T00:00:00Z');
    const request = { method: 'HEAD', host: 'h', path: '/b/k' } as const;
    const first = signer.headers(request, CREDENTIALS, now).authorization;
    const rotated = signer.headers(request, { ...CREDENTIALS, secretAccessKey: 'another' }, now).authorization;
    expect(rotated).not.toBe(first);
    expect(signer.headers(request, CREDENTIALS, now).authorization).toBe(first);
  });
});
