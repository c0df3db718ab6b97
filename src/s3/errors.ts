import { FsError, type ErrnoName } from '../errors.js';
import { describeTlsError, isTlsVerifyCode } from './tls-errors.js';

/**
 * What an S3 or SDK error says, read defensively: service errors carry `name`
 * (the S3 error code) and `$metadata.httpStatusCode`; answers without a body (HEAD)
 * only have the status; network failures are Node system errors with `code`,
 * sometimes wrapped in an AggregateError (one per address tried).
 */
export interface S3ErrorInfo {
  /** S3 error code (NoSuchKey, AccessDenied...), else a system error code (ECONNREFUSED...), else the error's name. */
  code: string;
  /** HTTP status when the server answered. */
  status?: number;
  /** The server's or the system's message, with anything credential-like removed. */
  message: string;
}

export function describeS3Error(err: unknown): S3ErrorInfo {
  if (typeof err !== 'object' || err === null) return { code: 'Unknown', message: redact(String(err)) };
  const e = err as {
    name?: unknown;
    code?: unknown;
    message?: unknown;
    errors?: unknown;
    $metadata?: { httpStatusCode?: unknown };
    cause?: unknown;
  };
  const status = typeof e.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined;
  let code: string | undefined;
  if (status !== undefined && typeof e.name === 'string' && e.name !== 'Unknown' && e.name !== 'Error') {
    code = e.name;
  }
  code ??= systemCode(err);
  code ??= typeof e.name === 'string' ? e.name : 'Unknown';
  const message = typeof e.message === 'string' && e.message !== 'UnknownError' ? redact(e.message) : '';
  return status === undefined ? { code, message } : { code, status, message };
}

/** ECONNREFUSED and the like, also from inside an AggregateError or a `cause`. */
function systemCode(err: unknown, depth = 0): string | undefined {
  if (typeof err !== 'object' || err === null || depth > 3) return undefined;
  const e = err as { code?: unknown; errors?: unknown; cause?: unknown };
  if (typeof e.code === 'string' && (/^E[A-Z_]+$/.test(e.code) || isTlsVerifyCode(e.code))) return e.code;
  if (Array.isArray(e.errors)) {
    for (const inner of e.errors) {
      const found = systemCode(inner, depth + 1);
      if (found) return found;
    }
  }
  return systemCode(e.cause, depth + 1);
}

const CODE_TO_ERRNO: Record<string, ErrnoName> = {
  NoSuchKey: 'ENOENT',
  NotFound: 'ENOENT',
  NoSuchBucket: 'ENOENT',
  AccessDenied: 'EACCES',
  Forbidden: 'EACCES',
  InvalidAccessKeyId: 'EACCES',
  SignatureDoesNotMatch: 'EACCES',
  AllAccessDisabled: 'EACCES',
  PreconditionFailed: 'ESTALE',
  EntityTooLarge: 'EFBIG',
  KeyTooLongError: 'ENAMETOOLONG',
  NotImplemented: 'ENOSYS',
};

const STATUS_TO_ERRNO: Record<number, ErrnoName> = {
  403: 'EACCES',
  404: 'ENOENT',
  412: 'ESTALE',
  501: 'ENOSYS',
};

/**
 * Maps an S3/SDK error to the errno a filesystem caller should see. Anything not
 * recognised (5xx after the SDK's retries, network failures, timeouts) is EIO.
 * An FsError passes through unchanged.
 */
export function toFsError(err: unknown): FsError {
  if (err instanceof FsError) return err;
  const info = describeS3Error(err);
  const errno = CODE_TO_ERRNO[info.code] ?? (info.status === undefined ? undefined : STATUS_TO_ERRNO[info.status]) ?? 'EIO';
  const status = info.status === undefined ? '' : ` (HTTP ${info.status})`;
  const detail = info.message && info.message !== info.code ? `: ${info.message}` : '';
  return new FsError(errno, `S3 ${info.code}${status}${detail}`);
}

/** An FsError for an S3 error code met outside an exception (DeleteObjects' per-key errors). */
export function fsErrorFromCode(code: string, message?: string): FsError {
  const detail = message ? `: ${redact(message)}` : '';
  return new FsError(CODE_TO_ERRNO[code] ?? 'EIO', `S3 ${code}${detail}`);
}

/** True when the error says the key (or bucket) does not exist. */
export function isNotFound(err: unknown): boolean {
  if (err instanceof FsError) return err.code === 'ENOENT';
  const info = describeS3Error(err);
  return info.code === 'NoSuchKey' || info.code === 'NotFound' || info.code === 'NoSuchBucket' || info.status === 404;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'ETIMEDOUT',
  'EPIPE',
  'EPROTO',
  'TimeoutError',
  'RequestTimeout',
]);

/** Which credentials a request was signed with, for the advice when access is denied. */
export interface CredentialsNote {
  /** Not signed at all (--no-sign-request). */
  anonymous?: boolean;
  /** Found by s3mount: "the passwd file /etc/passwd-s3fs"; undefined for the SDK's default chain. */
  from?: string;
}

const CREDENTIAL_CODES = new Set(['CredentialsProviderError', 'TokenProviderError']);

/**
 * One human sentence for a failure at mount time (the bucket check): what is wrong
 * and what to change. Never contains credentials: only the bucket, the endpoint and
 * error codes appear.
 */
export function describeConnectError(err: unknown, where: { bucket: string; endpoint?: string; credentials?: CredentialsNote }): string {
  const { bucket } = where;
  const endpoint = where.endpoint ? redactUrl(where.endpoint) : 'the default AWS S3 endpoint';
  const info = describeS3Error(err);
  const code = info.code;

  if (CREDENTIAL_CODES.has(code) || /credential/i.test(code)) {
    return (
      'no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, name a profile of ' +
      '~/.aws/credentials with --profile (or AWS_PROFILE), give --passwd-file or --credentials-file, ' +
      'or --no-sign-request for a public bucket'
    );
  }
  if (info.status === undefined && isTlsVerifyCode(code)) return describeTlsError(code, endpoint);
  if (code === 'NoSuchBucket' || (info.status === 404 && code !== 'NoSuchKey')) {
    return `bucket ${bucket} does not exist at ${endpoint}`;
  }
  if (
    info.status === 403 ||
    code === 'AccessDenied' ||
    code === 'InvalidAccessKeyId' ||
    code === 'SignatureDoesNotMatch' ||
    code === 'AllAccessDisabled'
  ) {
    const why = info.status === 403 && code === 'Unknown' ? 'HTTP 403' : code;
    const denied = `access denied to bucket ${bucket} at ${endpoint} (${why})`;
    const { anonymous, from } = where.credentials ?? {};
    if (anonymous) return `${denied}: the bucket does not allow anonymous access; drop --no-sign-request and give credentials`;
    const which = from ? `from ${from}` : '(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, --profile)';
    return `${denied}: check the credentials ${which} and the bucket policy`;
  }
  if (info.status === 301 || code === 'PermanentRedirect' || code === 'AuthorizationHeaderMalformed') {
    return `bucket ${bucket} is in another region than the one used (${code}): pass --region`;
  }
  if (info.status === undefined && (NETWORK_CODES.has(code) || code.startsWith('ERR_TLS') || /CERT|SSL/.test(code))) {
    return `cannot reach ${endpoint}: ${code}; check --endpoint and the network`;
  }
  const status = info.status === undefined ? '' : `, HTTP ${info.status}`;
  const detail = info.message && info.message !== code ? `: ${info.message}` : '';
  return `cannot use bucket ${bucket} at ${endpoint} (${code}${status})${detail}`;
}

/**
 * Errors should never carry secrets, but some servers echo request details.
 * Remove what looks like an access key id, a secret key or a signature.
 */
function redact(text: string): string {
  return text
    .replace(/\b(?:AKIA|ASIA)[A-Z0-9]{12,}\b/g, '<access-key>')
    .replace(/(Signature|Credential|X-Amz-Security-Token|X-Amz-Signature)=[^\s&,]+/gi, '$1=<redacted>')
    .replace(/(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])/g, '<redacted>');
}

/** An endpoint URL without user:password@ (which some users put there). */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.username && !parsed.password) return url;
    parsed.username = '';
    parsed.password = '';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}
