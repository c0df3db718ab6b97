// The S3 error -> errno mapping and the mount-time messages, on error objects
// shaped as the SDK and Node produce them. (test/integration/s3-bucket.test.ts
// checks the same paths against real server answers.)
import { NoSuchBucket, NoSuchKey, S3ServiceException } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { FsError } from '../../src/errors.js';
import { describeConnectError, isNotFound, toFsError } from '../../src/s3/errors.js';
import { canonicalEtag, decodeListingKey, encodeCopySource, normalizeEtag, quoteEtag } from '../../src/s3/keys.js';

function serviceError(name: string, status: number | undefined, message = 'UnknownError'): S3ServiceException {
  return new S3ServiceException({
    name,
    $fault: status !== undefined && status >= 500 ? 'server' : 'client',
    $metadata: status === undefined ? {} : { httpStatusCode: status },
    message,
  });
}

function systemError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:9`), { code, $metadata: { attempts: 3 } });
}

const where = { bucket: 'data', endpoint: 'http://127.0.0.1:9000' };

describe('toFsError', () => {
  it.each([
    [new NoSuchKey({ message: 'The specified key does not exist.', $metadata: { httpStatusCode: 404 } }), 'ENOENT'],
    [new NoSuchBucket({ message: 'no bucket', $metadata: { httpStatusCode: 404 } }), 'ENOENT'],
    [serviceError('NotFound', 404), 'ENOENT'],
    [serviceError('Unknown', 404), 'ENOENT'],
    [serviceError('AccessDenied', 403, 'Access Denied'), 'EACCES'],
    [serviceError('Unknown', 403), 'EACCES'],
    [serviceError('InvalidAccessKeyId', 403), 'EACCES'],
    [serviceError('SignatureDoesNotMatch', 403), 'EACCES'],
    [serviceError('PreconditionFailed', 412), 'ESTALE'],
    [serviceError('Unknown', 412), 'ESTALE'],
    [serviceError('EntityTooLarge', 400), 'EFBIG'],
    [serviceError('KeyTooLongError', 400), 'ENAMETOOLONG'],
    [serviceError('InternalError', 500), 'EIO'],
    [serviceError('SlowDown', 503), 'EIO'],
    [systemError('ECONNREFUSED'), 'EIO'],
    [new AggregateError([systemError('ECONNREFUSED')], 'connect failed'), 'EIO'],
    [new Error('anything else'), 'EIO'],
    ['a string', 'EIO'],
  ])('maps %s to %s', { timeout: 5_000 }, (err, code) => {
    const mapped = toFsError(err);
    expect(mapped).toBeInstanceOf(FsError);
    expect(mapped.code).toBe(code);
  });

  it('passes an FsError through', { timeout: 5_000 }, () => {
    const err = new FsError('ENOTEMPTY');
    expect(toFsError(err)).toBe(err);
  });

  it('keeps the S3 code in the message, without secrets', { timeout: 5_000 }, () => {
    const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
    const mapped = toFsError(serviceError('SignatureDoesNotMatch', 403, `we computed a different signature for ${secret}`));
    expect(mapped.message).toContain('SignatureDoesNotMatch');
    expect(mapped.message).toContain('HTTP 403');
    expect(mapped.message).not.toContain(secret);
    expect(toFsError(serviceError('X', 400, 'key AKIAIOSFODNN7EXAMPLE refused')).message).not.toContain('AKIAIOSFODNN7EXAMPLE');
  });
});

describe('isNotFound', () => {
  it('knows the ways S3 says "no such thing"', { timeout: 5_000 }, () => {
    expect(isNotFound(serviceError('NotFound', 404))).toBe(true);
    expect(isNotFound(serviceError('NoSuchKey', 404))).toBe(true);
    expect(isNotFound(new FsError('ENOENT'))).toBe(true);
    expect(isNotFound(serviceError('AccessDenied', 403))).toBe(false);
    expect(isNotFound(systemError('ECONNREFUSED'))).toBe(false);
  });
});

describe('describeConnectError', () => {
  it('names a missing bucket and the endpoint', { timeout: 5_000 }, () => {
    expect(describeConnectError(serviceError('NoSuchBucket', 404), where)).toBe(
      'bucket data does not exist at http://127.0.0.1:9000',
    );
    expect(describeConnectError(serviceError('NotFound', 404), where)).toBe('bucket data does not exist at http://127.0.0.1:9000');
    expect(describeConnectError(serviceError('NotFound', 404), { bucket: 'data' })).toBe(
      'bucket data does not exist at the default AWS S3 endpoint',
    );
  });

  it('points at the credentials when access is denied', { timeout: 5_000 }, () => {
    for (const err of [serviceError('AccessDenied', 403), serviceError('Unknown', 403), serviceError('InvalidAccessKeyId', 403)]) {
      expect(describeConnectError(err, where)).toMatch(
        /^access denied to bucket data at http:\/\/127\.0\.0\.1:9000 \(.+\): check the credentials \(AWS_ACCESS_KEY_ID\/AWS_SECRET_ACCESS_KEY, --profile\)/,
      );
    }
  });

  it('says when the endpoint cannot be reached', { timeout: 5_000 }, () => {
    for (const code of ['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'EHOSTUNREACH']) {
      expect(describeConnectError(systemError(code), where)).toBe(
        `cannot reach http://127.0.0.1:9000: ${code}; check --endpoint and the network`,
      );
    }
    expect(describeConnectError(new AggregateError([systemError('ECONNREFUSED'), systemError('ECONNREFUSED')]), where)).toBe(
      'cannot reach http://127.0.0.1:9000: ECONNREFUSED; check --endpoint and the network',
    );
    const timeout = Object.assign(new Error('Socket timed out without establishing a connection'), { name: 'TimeoutError' });
    expect(describeConnectError(timeout, where)).toMatch(/^cannot reach .*: TimeoutError;/);
  });

  it('names the credentials to check when access is denied', { timeout: 5_000 }, () => {
    const denied = serviceError('AccessDenied', 403);
    expect(describeConnectError(denied, { ...where, credentials: { from: 'the passwd file /etc/passwd-s3fs' } })).toBe(
      'access denied to bucket data at http://127.0.0.1:9000 (AccessDenied): check the credentials from the passwd file /etc/passwd-s3fs and the bucket policy',
    );
    expect(describeConnectError(denied, { ...where, credentials: { anonymous: true } })).toBe(
      'access denied to bucket data at http://127.0.0.1:9000 (AccessDenied): the bucket does not allow anonymous access; drop --no-sign-request and give credentials',
    );
  });

  it('says what to do about a certificate that fails verification', { timeout: 5_000 }, () => {
    const https = { bucket: 'data', endpoint: 'https://s3.example.org' };
    // Node's TLS errors carry these codes, wrapped by the SDK as a plain Error.
    const tlsError = (code: string) => Object.assign(new Error('certificate problem'), { code, $metadata: {} });
    for (const code of ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT']) {
      expect(describeConnectError(tlsError(code), https)).toBe(
        `cannot verify the TLS certificate of https://s3.example.org (${code}): if the server's certificate is signed by a private CA, give that CA's certificate with --ca-bundle FILE`,
      );
    }
    expect(describeConnectError(tlsError('ERR_TLS_CERT_ALTNAME_INVALID'), https)).toMatch(
      /^the TLS certificate of https:\/\/s3\.example\.org is not issued for its host name \(ERR_TLS_CERT_ALTNAME_INVALID\): use the name .* in --endpoint$/,
    );
    expect(describeConnectError(tlsError('CERT_HAS_EXPIRED'), https)).toMatch(/is out of its validity dates \(CERT_HAS_EXPIRED\): renew it/);
  });

  it('says when there are no credentials', { timeout: 5_000 }, () => {
    const err = Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' });
    expect(describeConnectError(err, where)).toMatch(/^no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
  });

  it('never shows user:password from an endpoint URL', { timeout: 5_000 }, () => {
    const message = describeConnectError(serviceError('NoSuchBucket', 404), {
      bucket: 'data',
      endpoint: 'http://me:hunter2@127.0.0.1:9000',
    });
    expect(message).toBe('bucket data does not exist at http://127.0.0.1:9000');
  });

  it('falls back to the code and status', { timeout: 5_000 }, () => {
    expect(describeConnectError(serviceError('InternalError', 500, 'We encountered an internal error'), where)).toBe(
      'cannot use bucket data at http://127.0.0.1:9000 (InternalError, HTTP 500): We encountered an internal error',
    );
  });
});

describe('keys', () => {
  it('encodes copy sources, keeping slashes', { timeout: 5_000 }, () => {
    expect(encodeCopySource('b', 'a/b c+d#e?f%g ü')).toBe('b/a/b%20c%2Bd%23e%3Ff%25g%20%C3%BC');
    expect(encodeCopySource('b', '$&,:;=@')).toBe('b/%24%26%2C%3A%3B%3D%40');
  });

  it('compares ETags with or without quotes', { timeout: 5_000 }, () => {
    expect(normalizeEtag('"abc"')).toBe('abc');
    expect(normalizeEtag('abc')).toBe('abc');
    expect(normalizeEtag('W/"abc-2"')).toBe('abc-2');
    expect(quoteEtag('abc')).toBe('"abc"');
    expect(quoteEtag('"abc"')).toBe('"abc"');
    for (const form of ['abc', '"abc"', ' "abc" ', 'W/"abc"']) expect(canonicalEtag(form)).toBe('"abc"');
    expect(canonicalEtag('')).toBe('');
  });

  it('decodes url-encoded listing keys, "+" being a space', { timeout: 5_000 }, () => {
    expect(decodeListingKey('a+b%2Bc%20d/%C3%BC%0D')).toBe('a b+c d/ü\r');
  });
});
