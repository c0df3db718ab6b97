import { UsageError } from './messages.js';

export interface BucketSource {
  bucket: string;
  /** '' or 'a/b/'. */
  prefix: string;
}

/** `BUCKET`, `BUCKET:PREFIX` or `s3://BUCKET/PREFIX`. */
export function parseSource(text: string): BucketSource {
  const [, bucket = '', prefix = ''] = /^s3:\/\/([^/]*)\/?(.*)$/is.exec(text) ?? /^([^:]*):?(.*)$/s.exec(text) ?? [];
  checkBucketName(bucket);
  return { bucket, prefix: normalisePrefix(prefix) };
}

function normalisePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+/, '');
  return trimmed === '' || trimmed.endsWith('/') ? trimmed : `${trimmed}/`;
}

/**
 * What no S3 service accepts. Legacy AWS buckets (before 2018, us-east-1) may have
 * up to 255 characters with uppercase and underscores, and Ceph RGW can be configured
 * to allow them, so those only get a warning (bucketNameWarning).
 */
function checkBucketName(bucket: string): void {
  if (bucket === '') {
    throw new UsageError('the bucket name is missing; write BUCKET, BUCKET:PREFIX or s3://BUCKET/PREFIX');
  }
  if (!/^[A-Za-z0-9._-]{1,255}$/.test(bucket)) {
    throw new UsageError(
      `'${bucket}' is not a bucket name: bucket names have at most 63 lowercase letters, digits, ` +
        'dots and hyphens; write BUCKET, BUCKET:PREFIX or s3://BUCKET/PREFIX',
    );
  }
}

/** Names that only legacy buckets have; undefined for names that follow today's rules. */
export function bucketNameWarning(bucket: string): string | undefined {
  const compliant =
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) && !bucket.includes('..') && !/^\d+\.\d+\.\d+\.\d+$/.test(bucket);
  return compliant
    ? undefined
    : `bucket name '${bucket}' breaks the S3 naming rules (3-63 lowercase letters, digits, dots and hyphens): ` +
        'only legacy buckets have such names, and they may need --path-style';
}
