// The S3 side of the harness: the test server (s3rver or Ceph RGW, started as the tests start them),
// SDK clients, and checks of what is in a bucket.
import { createHash } from 'node:crypto';
import http from 'node:http';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';

export const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
export const REGION = 'us-east-1';

/** The tests' own launcher of the patched s3rver (free port, stops exactly its process). */
export { startS3rver } from '../../test/servers/start-s3rver.mjs';
/** The tests' single-node Ceph RGW (its own pid files, stopped by its stop()). */
export { startRgw } from '../../test/servers/start-rgw.mjs';

/** The raw SDK as a careful user would set it up: path style, checksums only when required. */
export function makeClient(endpoint, maxSockets = 64) {
  return new S3Client({
    endpoint,
    region: REGION,
    forcePathStyle: true,
    credentials: CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: new NodeHttpHandler({ httpAgent: new http.Agent({ keepAlive: true, maxSockets }) }),
  });
}

export async function createBucket(client, bucket) {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
}

/** Map key -> { size, etag } of every object under `prefix`. */
export async function listAll(client, bucket, prefix = '') {
  const out = new Map();
  let token;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) out.set(o.Key, { size: o.Size, etag: (o.ETag ?? '').replaceAll('"', '') });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/**
 * What is missing or wrong in the bucket compared with `expected` (array of
 * { key, size, md5? }). Single-part ETags (32 hex digits) are compared with the md5;
 * s3rver's multipart ETags are not md5s and are not compared. [] when all is there.
 */
export async function checkObjects(client, bucket, expected) {
  const have = await listAll(client, bucket);
  const problems = [];
  for (const e of expected) {
    const o = have.get(e.key);
    if (!o) problems.push(`${e.key}: missing`);
    else if (o.size !== e.size) problems.push(`${e.key}: ${o.size} bytes, expected ${e.size}`);
    else if (e.md5 && e.size < 5 * 1024 * 1024 && /^[0-9a-f]{32}$/.test(o.etag) && o.etag !== e.md5) {
      problems.push(`${e.key}: ETag ${o.etag}, expected md5 ${e.md5}`);
    }
  }
  return problems;
}

/** md5 (hex) and size of an object, by streaming it. */
export async function objectMd5(client, bucket, key) {
  const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const hash = createHash('md5');
  for await (const chunk of res.Body) hash.update(chunk);
  return { size: head.ContentLength, md5: hash.digest('hex') };
}

/** Runs `fn(item)` over `items` with at most `limit` in flight; rejects on the first error. */
export async function pool(items, limit, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
